"""Who may click, clicks that race, and clicks on messages from before a restart."""

from __future__ import annotations

import asyncio

from adapters.slack.directory import PLATFORM
from engine import messages
from engine.actors import Actor
from engine.api import Engine
from engine.clock import ManualClock
from tests.adapters.slack.conftest import (
    CHANNEL,
    Harness,
    all_text,
    has_buttons,
    start_harness,
    stop_harness,
)
from tests.fakes.slack_api import FakeSlack

RELEASE = {
    "version": "1.4.0",
    "risk": "low",
    "downtime": 0,
    "rollback_plan": "redeploy 1.3.9",
    "tested": True,
}


def slack_user(user_id: str) -> Actor:
    return Actor(PLATFORM, user_id, user_id[2:].lower())


async def brief_submitted(h: Harness) -> None:
    """A blog-post run waiting for the brief's approval (the form is tested in test_blog_post)."""
    await h.command("run blog-post")
    [ex] = h.engine.run("blog-post#v1").executions
    await asyncio.to_thread(h.engine.submit_form, ex.execution_id, slack_user("U0ANA"), {"topic": "Launch"})
    await h.settle()


async def test_unauthorized_click_gets_an_ephemeral_refusal(h: Harness) -> None:
    h.fake.add_user("U0RM1", "Rita Manager", name="rita")
    h.fake.add_user("U0RM2", "Rob Manager", name="rob")
    h.fake.set_usergroup("S0RM", ["U0RM1", "U0RM2", "U0CAROL"], handle="release-managers")
    await h.command("run release", user="U0CAROL")
    [ex] = h.engine.run("release#v1").executions
    await asyncio.to_thread(h.engine.submit_form, ex.execution_id, slack_user("U0CAROL"), RELEASE)
    await h.settle()
    review = h.last_with_button("approve_complete")
    assert "(0/2 approvals)" in review.text

    await h.click("U0MALLORY", review, "approve_complete")
    assert h.ephemerals_for("U0MALLORY") == [messages.NOT_APPROVER]
    await h.click("U0CAROL", review, "approve_complete")  # in the group, but started the run
    assert h.ephemerals_for("U0CAROL")[-1] == messages.SELF_APPROVAL
    assert has_buttons(h.fake.get_message(CHANNEL, review.ts))

    await h.click("U0RM1", review, "approve_complete")  # a member of @release-managers
    assert h.ephemerals_for("U0RM1") == []  # success shows in the message itself
    review = h.fake.get_message(CHANNEL, review.ts)
    assert "(1/2 approvals)" in review.text and has_buttons(review)
    await h.click("U0RM2", review, "approve_complete")
    review = h.fake.get_message(CHANNEL, review.ts)
    assert "Approved by rita, rob at" in all_text(review) and not has_buttons(review)
    # Group membership comes from one cached usergroups.list, not one call per click.
    assert len(h.fake.calls_to("usergroups.list")) == 1
    h.fake.assert_all_ok()


async def test_double_click_changes_nothing_twice(h: Harness, clock: ManualClock) -> None:
    await brief_submitted(h)
    review = h.last_with_button("approve_complete")
    # Clicks that reach Slack before the message loses its buttons (the outbox has not run yet).
    for user in ("U0BEN", "U0BEN", "U0ANA"):
        await h.click(user, review, "approve_complete", settle=False)
        await h.slack.ctx.idle()
    await h.settle()
    when = messages.at(clock())
    assert h.ephemerals_for("U0BEN") == [f"Already approved by ben at {when}."]
    assert h.ephemerals_for("U0ANA")[-1] == f"Already approved by ben at {when}."
    review = h.fake.get_message(CHANNEL, review.ts)
    assert not has_buttons(review) and len(review.history) == 1  # edited once
    assert [e.checkpoint_id for e in h.engine.run("blog-post#v1").executions] == ["brief", "outline"]
    h.fake.assert_all_ok()


async def test_concurrent_clicks_make_one_transition(h: Harness, clock: ManualClock) -> None:
    await brief_submitted(h)
    await h.click("U0BEN", h.last_with_button("approve_complete"), "approve_complete")
    start = h.last_with_button("approve_start")
    users = ["U0ANA", "U0BEN", "U0CAT", "U0DAN"]
    await asyncio.gather(*(h.click(u, start, "approve_start", settle=False) for u in users))
    await h.settle()
    # One click made the transition (and got no answer: the message shows it); the others were told.
    answers = {u: [t for t in h.ephemerals_for(u) if not t.startswith("Started blog-post")] for u in users}
    [winner_id] = [u for u, told in answers.items() if not told]
    winner = winner_id[2:].lower()
    when = messages.at(clock())
    assert all(
        told == [f"Already approved by {winner} at {when}."] for u, told in answers.items() if u != winner_id
    )
    outline = h.engine.run("blog-post#v1").executions[-1]
    assert (outline.checkpoint_id, outline.status) == ("outline", "waiting_for_input")
    start = h.fake.get_message(CHANNEL, start.ts)
    assert f"Approved by {winner}" in all_text(start) and not has_buttons(start)
    h.fake.assert_all_ok()


async def test_a_new_app_on_the_same_database_handles_old_buttons(
    engine: Engine, fake: FakeSlack, clock: ManualClock
) -> None:
    first = await start_harness(engine, fake)
    await brief_submitted(first)
    review = first.last_with_button("approve_complete")
    await stop_harness(first)
    engine.close()

    reopened = Engine.open(engine.ws.base, clock=clock)
    second = await start_harness(reopened, fake)
    try:
        await second.click("U0BEN", review, "approve_complete")
        review = fake.get_message(CHANNEL, review.ts)
        assert "Approved by ben" in all_text(review) and not has_buttons(review)
        assert reopened.run("blog-post#v1").executions[-1].status == "waiting_approval_to_start"
        # The new process still posts into the run's thread: the parent's ts came from the database.
        assert second.last_with_button("approve_start").thread_ts == second.run_message().ts
        fake.assert_all_ok()
    finally:
        await stop_harness(second)
        reopened.close()
