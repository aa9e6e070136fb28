"""The inbox behind Slack: a replayed request acts once, and a form that can no longer open is
explained to the person (the process that acked the click died; the trigger_id expired)."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from adapters.slack.app import create_slack_app, create_slack_handler
from adapters.slack.directory import PLATFORM
from adapters.slack.service import HttpServer
from engine import messages
from engine.actors import Actor, Conversation
from engine.api import Engine
from engine.clock import ManualClock
from engine.models import InboxEffectRow, InboxRow
from tests.adapters.slack.conftest import CHANNEL, SECRET, Harness, button_id
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_signing import SlackClientSim


def inbox_rows(engine: Engine) -> list[InboxRow]:
    with engine.inbox.rows.read() as s:
        return list(s.query(InboxRow).order_by(InboxRow.id))


def effects(engine: Engine) -> set[str]:
    with engine.store.read() as s:
        return set(s.scalars(select(InboxEffectRow.dedup_key)))


async def test_a_replayed_command_acts_once(h: Harness) -> None:
    await h.command("run blog-post")
    first = h.sim.sent[-1]
    async with h.sim._session.post(first.url, data=first.body, headers=first.headers) as resp:  # type: ignore[union-attr]
        assert resp.status == 200  # acked: Slack must not retry it again
    await h.settle()
    assert [r.name for r in h.engine.runs()] == ["blog-post#v1"]
    [row] = inbox_rows(h.engine)
    assert row.kind == "command" and row.handled_at is not None and effects(h.engine) == {row.dedup_key}
    assert h.ephemerals_for("U0ANA") == ["Started blog-post#v1."]


async def test_a_form_that_can_no_longer_open_is_explained(
    engine: Engine, fake: FakeSlack, clock: ManualClock
) -> None:
    # The process that acks the click does not handle it (as when it dies right after the ack).
    front = await create_slack_app(
        engine, token=fake.token, signing_secret=SECRET, api_url=fake.api_url, handle_here=False
    )
    engine.outbox.register(PLATFORM, front.deliverer)
    server = HttpServer(front)
    url = await server.start("127.0.0.1", 0) + "/slack/events"
    sim = SlackClientSim(SECRET, fake)
    stop = asyncio.Event()
    try:
        engine.start_run("blog-post", Actor(PLATFORM, "U0ANA", "ana"), Conversation(PLATFORM, CHANNEL))
        await engine.outbox.drain()
        [run] = fake.messages_in(CHANNEL)
        form = [m for m in fake.messages_in(CHANNEL, thread_ts=run.ts) if button_id(m, "open_form")][-1]
        action_id = button_id(form, "open_form")
        assert action_id is not None
        resp = await sim.block_action(url, "U0ANA", action_id, channel_id=CHANNEL, message_ts=form.ts)
        assert resp.status == 200
        [row] = inbox_rows(engine)
        assert row.kind == "click" and row.handled_at is None

        clock.advance(5)  # the restart took longer than the click's trigger_id lives
        ctx, _ = await create_slack_handler(engine, token=fake.token, api_url=fake.api_url)
        engine.inbox.partner = engine.inbox.owner  # as an engine process takes its front's rows
        handling = asyncio.create_task(engine.inbox.run(stop))
        told = messages.RESTARTED_BEFORE_FORM.format(button="Open form")
        await fake.wait_for(lambda: [e for e in fake.ephemerals if e.text == told] or None, what="the notice")
        assert fake.calls_to("views.open") == []
        stop.set()
        await handling
        [row] = inbox_rows(engine)
        assert row.handled_at is not None and row.result == "trigger expired: told the person"
        await ctx.http.close()
    finally:
        stop.set()
        await sim.close()
        await server.stop()
        await front.close()
    fake.assert_all_ok()
