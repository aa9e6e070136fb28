"""Socket Mode against a loopback websocket, and Web API rate limits waited out."""

from __future__ import annotations

import time
from typing import Any

import pytest

from adapters.slack.app import MAX_INLINE_WAIT, SocketModeHandler, create_slack_app
from adapters.slack.directory import PLATFORM
from engine.api import Engine
from engine.clock import ManualClock
from tests.adapters.slack.conftest import CHANNEL, Harness, button_id
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_payloads import build_action


def command_payload(fake: FakeSlack, text: str, user: str = "U0ANA") -> dict[str, Any]:
    fake.add_user(user, user[2:].title(), name=user[2:].lower())
    return {
        "token": "verification_token",
        "team_id": fake.team_id,
        "team_domain": "fake-workspace",
        "channel_id": CHANNEL,
        "channel_name": "pipe",
        "user_id": user,
        "user_name": user[2:].lower(),
        "command": "/pipeline",
        "text": text,
        "api_app_id": fake.app_id,
        "is_enterprise_install": "false",
        "response_url": fake.issue_response_url(CHANNEL, user),
        "trigger_id": fake.issue_trigger_id(),
    }


def click_payload(fake: FakeSlack, user: str, channel: str, ts: str, action_id: str) -> dict[str, Any]:
    message = fake.get_message(channel, ts).to_api(fake.team_id)
    return {
        "type": "block_actions",
        "user": {"id": user, "username": user[2:].lower(), "name": user[2:].lower(), "team_id": fake.team_id},
        "api_app_id": fake.app_id,
        "token": "verification_token",
        "team": {"id": fake.team_id, "domain": "fake-workspace"},
        "container": {"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": False},
        "channel": {"id": channel, "name": "pipe"},
        "message": message,
        "response_url": fake.issue_response_url(channel, user, ts),
        "trigger_id": fake.issue_trigger_id(),
        "state": {"values": {}},
        "actions": [build_action(message["blocks"], action_id, None)],
    }


@pytest.mark.slow
async def test_socket_mode_over_a_loopback_websocket(engine: Engine, fake: FakeSlack) -> None:
    slack = await create_slack_app(engine, token=fake.token, signing_secret=None, api_url=fake.api_url)
    engine.outbox.register(PLATFORM, slack.deliverer)
    handler = SocketModeHandler(slack, fake.app_token)
    await handler.connect_async()  # type: ignore[no-untyped-call]
    try:
        assert [c.method for c in fake.calls][:1] == ["apps.connections.open"]
        started = time.monotonic()
        command = command_payload(fake, "run blog-post")
        eid = await fake.socket.send("slash_commands", command)
        assert await fake.socket.wait_ack(eid) == {"envelope_id": eid}
        assert time.monotonic() - started < 1.0
        # The same envelope sent again (Slack re-sends what it thinks was not acked): acked, no effect.
        await fake.socket.wait_ack(await fake.socket.send("slash_commands", command, envelope_id=eid))
        await slack.ctx.idle()
        await engine.outbox.drain()
        # A malformed envelope is acked (or Slack would send it again) and dropped.
        bad = {"type": "block_actions", "user": {"id": "U0ANA"}, "actions": []}
        eid = await fake.socket.send("interactive", bad)
        assert await fake.socket.wait_ack(eid) == {"envelope_id": eid}
        [run_msg] = fake.messages_in(CHANNEL)
        assert "blog-post#v1" in run_msg.text and len(engine.runs()) == 1

        [form] = [m for m in fake.messages_in(CHANNEL, run_msg.ts) if button_id(m, "open_form")]
        action_id = button_id(form, "open_form")
        assert action_id
        eid = await fake.socket.send("interactive", click_payload(fake, "U0ANA", CHANNEL, form.ts, action_id))
        await fake.socket.wait_ack(eid)
        await slack.ctx.idle()
        [view] = fake.opened_views.values()
        assert view["callback_id"] == "pb_form"

        # The same event delivered twice (Slack's retry_attempt) is acted on once.
        event = {
            "type": "event_callback",
            "team_id": fake.team_id,
            "api_app_id": fake.app_id,
            "event": {"type": "app_home_opened", "user": "U0ANA", "channel": "D0ANA", "tab": "home"},
            "event_id": "Ev0SOCKET1",
            "event_time": int(time.time()),
        }
        for attempt in (0, 1):
            eid = await fake.socket.send("events_api", event, retry_attempt=attempt)
            await fake.socket.wait_ack(eid)
            await slack.ctx.idle()
        assert len(fake.calls_to("views.publish")) == 1
        fake.assert_all_ok()
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]
        await slack.close()


@pytest.mark.slow
async def test_short_rate_limits_are_waited_out(h: Harness) -> None:
    h.fake.rate_limit("chat.postMessage", times=1, retry_after=1)
    h.fake.rate_limit("users.info", times=1, retry_after=1)
    await h.command("run blog-post")
    posts = h.fake.calls_to("chat.postMessage")
    assert [c.status for c in posts[:2]] == [429, 200]
    assert posts[1].time - posts[0].time >= 1.0  # Retry-After honoured
    assert [m.text.split(" —")[0] for m in h.fake.messages_in(CHANNEL)] == ["blog-post#v1"]
    assert len(h.thread()) == 2  # nothing lost: the notice and the form card follow
    assert h.ephemerals_for("U0ANA") == ["Started blog-post#v1."]
    h.fake.assert_all_ok()


async def test_long_rate_limits_are_left_to_the_outbox(h: Harness, clock: ManualClock) -> None:
    wait = int(MAX_INLINE_WAIT) + 25
    h.fake.rate_limit("chat.postMessage", times=1, retry_after=wait)
    await h.command("run blog-post")
    assert h.fake.messages_in(CHANNEL) == []  # RetryLater: the row waits, nothing is dropped
    clock.advance(wait - 1)
    await h.settle()
    assert h.fake.messages_in(CHANNEL) == []
    clock.advance(1)
    await h.settle()
    [run_msg] = h.fake.messages_in(CHANNEL)
    assert len(h.fake.messages_in(CHANNEL, run_msg.ts)) == 2
    assert len(h.fake.calls_to("chat.postMessage")) == 4  # one refused, three delivered
    h.fake.assert_all_ok()
