"""A signed request takes effect once: replays (byte for byte) and Slack's retries are acked
without effect, over HTTP and in Socket Mode."""

from __future__ import annotations

from datetime import timedelta

from engine.api import Engine
from engine.clock import ManualClock
from engine.inbox import WINDOW
from engine.models import RequestKeyRow
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


async def test_keys_are_pruned_after_the_window(engine: Engine, clock: ManualClock) -> None:
    assert engine.claim_request("slack-request:abc")
    assert not engine.claim_request("slack-request:abc")
    clock.advance((WINDOW + timedelta(seconds=1)).total_seconds())
    assert engine.claim_request("slack-request:other")  # prunes the old key
    with engine.store.read() as s:
        assert s.query(RequestKeyRow).count() == 1
