"""A signed request takes effect once: replays (byte for byte) and Slack's retries are acked
without effect, over HTTP and in Socket Mode."""

from __future__ import annotations

from datetime import timedelta

from adapters.slack.directory import PLATFORM
from engine.actors import Actor
from engine.api import Engine
from engine.clock import ManualClock
from engine.inbox import KEEP, Interaction, digest
from engine.models import InboxRow
from tests.adapters.slack.conftest import CHANNEL, Harness


async def test_a_replayed_slash_command_starts_one_run(h: Harness) -> None:
    await h.command("run blog-post")
    original = h.sim.sent[-1]
    for _ in range(3):
        replay = await h.sim.replay(original)
        assert (replay.status, replay.body) == (200, "")
    await h.settle()
    assert [r.name for r in h.engine.runs()] == ["blog-post#v1"]
    assert len(h.fake.messages_in(CHANNEL)) == 1
    assert h.ephemerals_for("U0ANA") == ["Started blog-post#v1."]
    h.fake.assert_all_ok()


async def test_retries_of_commands_and_clicks_take_effect_once(h: Harness) -> None:
    await h.command("run blog-post")
    for retry in (1, 2):
        assert (await h.sim.replay(h.sim.sent[0], retry_num=retry)).status == 200
    await h.settle()
    assert len(h.engine.runs()) == 1

    form = h.last_with_button("open_form")
    await h.click("U0ANA", form, "open_form")
    click = h.sim.sent[-1]
    assert (await h.sim.replay(click, retry_num=1)).status == 200
    assert (await h.sim.replay(click)).status == 200
    await h.settle()
    assert len(h.fake.calls_to("views.open")) == 1  # one modal, not three
    h.fake.assert_all_ok()


async def test_keys_are_pruned_a_day_after_handling(engine: Engine, clock: ManualClock) -> None:
    row = Interaction(
        PLATFORM, "command", Actor(PLATFORM, "U0ANA", "ana"), None, {}, digest("slack-request:abc")
    )
    assert engine.inbox.record(row, handled="done") is not None
    assert engine.inbox.record(row) is None  # the same request again: no second row, no effect
    clock.advance((KEEP + timedelta(seconds=1)).total_seconds())
    engine.inbox.prune()
    assert engine.inbox.record(row) is not None  # long gone: its signature is stale anyway
    with engine.inbox.rows.read() as s:
        assert s.query(InboxRow).count() == 1
