"""Deadlines, reminders, reject, approve with comment and reassign in Slack: real slack-bolt over
real HTTP against FakeSlack; the deadline test runs the serve timer loop with real seconds."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import pytest

from engine import timers
from engine.api import Engine
from tests.adapters.slack.conftest import CHANNEL, Harness, all_text, has_buttons, start_harness, stop_harness
from tests.fakes.slack_api import FakeSlack

GATE = """\
id: gate
approvers: [slack:U0ANA, slack:U0BEN, "slack:@leads"]
human: {{{human}}}
checkpoints:
  - id: review
"""


def gate(engine: Engine, tmp_path: Path, human: str) -> None:
    path = tmp_path / "gate.yaml"
    path.write_text(GATE.format(human=human))
    engine.import_pipeline(path)


async def test_reject_with_a_reason_through_the_modal(h: Harness, tmp_path: Path) -> None:
    gate(h.engine, tmp_path, "deadline: 2d, on_deadline: approve")
    await h.command("run gate", user="U0CAROL")
    card = h.last_with_button("reject")
    assert "<!date^" in all_text(card) and "{date_short_pretty}" in all_text(card)  # reader's own zone
    await h.click("U0BEN", card, "reject")
    [view] = h.fake.opened_views.values()
    assert view["callback_id"] == "pb_reject"
    resp = await h.sim.view_submission(h.url, "U0BEN", view, {"decision": "   "})
    assert "Say why" in str(resp.body)  # the modal stays open with the engine's refusal
    resp = await h.sim.view_submission(h.url, "U0BEN", view, {"decision": "Numbers are wrong"})
    assert resp.body == ""
    await h.settle()
    card = h.fake.get_message(CHANNEL, card.ts)
    assert "Rejected by ben" in all_text(card) and "Numbers are wrong" in all_text(card)
    assert not has_buttons(card)
    assert h.engine.run("gate#v1").info.status == "failed"
    assert any("gate#v1 failed" in m.text for m in h.thread())


async def test_approve_with_comment_and_reassign(h: Harness, tmp_path: Path) -> None:
    h.fake.add_user("U0DAN", "Dan Lead", name="dan")
    gate(h.engine, tmp_path, "")
    await h.command("run gate", user="U0CAROL")
    card = h.last_with_button("reassign")
    await h.click("U0ANA", card, "reassign")
    [view] = h.fake.opened_views.values()
    resp = await h.sim.view_submission(h.url, "U0ANA", view, {"decision": "U0DAN"})
    assert resp.body == ""
    await h.settle()
    notice = [m for m in h.thread() if "handed the decision" in m.text][-1]
    assert "<@U0DAN>" in all_text(notice)
    assert any("handed the decision" in m.text for m in h.fake.messages_in("D0DAN"))  # a DM too
    card = h.fake.get_message(CHANNEL, card.ts)
    assert "Handed to dan" in all_text(card)
    await h.click("U0DAN", card, "approve_with_comment")
    view = list(h.fake.opened_views.values())[-1]
    assert view["callback_id"] == "pb_comment"
    resp = await h.sim.view_submission(h.url, "U0DAN", view, {"decision": "Fine by me"})
    await h.settle()
    card = h.fake.get_message(CHANNEL, card.ts)
    assert "Approved by dan" in all_text(card) and "Fine by me" in all_text(card)
    assert h.engine.run("gate#v1").info.status == "completed"


@pytest.mark.slow
async def test_a_real_deadline_edits_the_card_and_reminds(fake: FakeSlack, tmp_path: Path) -> None:
    engine = Engine.open(tmp_path / "base")  # the real clock
    fake.set_usergroup("S0LEADS", ["U0LEA"], handle="leads")
    gate(engine, tmp_path, "deadline: 3s, on_deadline: approve, remind_every: 1s, max_reminders: 1")
    h = await start_harness(engine, fake)
    stop = asyncio.Event()
    loop = asyncio.create_task(timers.run(engine.fire_timers, engine.next_timer_due, engine.clock, stop))
    try:
        began = time.monotonic()
        await h.command("run gate", user="U0CAROL")
        card = h.last_with_button("approve_complete")
        while "Approved automatically" not in all_text(h.fake.get_message(CHANNEL, card.ts)):
            assert time.monotonic() - began < 10, fake.describe()
            await asyncio.sleep(0.1)
            await h.settle()
        assert time.monotonic() - began >= 3
        card = h.fake.get_message(CHANNEL, card.ts)
        assert "Approved automatically: no decision within 3 s" in all_text(card) and not has_buttons(card)
        texts = [all_text(m) for m in h.thread()]
        [reminder] = [t for t in texts if "Reminder (1 of 1)" in t]
        assert "<@U0ANA>" in reminder and "<@U0BEN>" in reminder and "<!subteam^S0LEADS>" in reminder
        assert "U0CAROL" not in reminder.split("Reminder")[0]
        assert any("Reminder (1 of 1)" in m.text for m in h.fake.messages_in("D0ANA"))
        assert not h.fake.messages_in("D0LEA")  # a group is mentioned, never messaged one by one
        assert any("Review: Approved automatically" in t for t in texts)
        assert engine.run("gate#v1").info.status == "completed"
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await loop
        await stop_harness(h)
        engine.close()
