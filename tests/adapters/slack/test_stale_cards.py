"""A click on an out-of-date card is refused privately: approving approves what the card showed."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from adapters.slack.directory import PLATFORM
from engine import messages
from engine.actors import Actor
from engine.models import InteractionRow
from tests.adapters.slack.conftest import CHANNEL, Harness, button_id, has_buttons
from tests.engine.test_seen import GATE


def approvals_by_revision(h: Harness) -> list[tuple[str, str, int]]:
    with h.engine.store.read() as s:
        rows = s.scalars(select(InteractionRow).where(InteractionRow.kind == "approve_complete"))
        # (A refusal is audited in a transaction of its own, without the revision.)
        return [(r.actor_id, r.outcome, r.revision) for r in rows]


async def test_approve_on_the_card_of_an_earlier_revision_is_refused(h: Harness) -> None:
    h.engine.import_pipeline_text(GATE, actor=None)
    await h.command("run gate", user="U0ANA")
    review = h.last_with_button("approve_complete")
    assert str(button_id(review, "approve_complete")).count(":") == 4  # pb:action:id:revision:digest
    await h.click("U0CAROL", review, "request_revision")
    [feedback] = h.fake.opened_views.values()
    assert feedback["private_metadata"].count(":") == 2
    resp = await h.sim.view_submission(h.url, "U0CAROL", feedback, {"feedback": "Not yet"})
    assert resp.body == ""
    # Ben's Approve left before Slack showed the revision: it was meant for revision 0.
    await h.click("U0BEN", review, "approve_complete")
    assert h.ephemerals_for("U0BEN") == [messages.STALE_CARD]
    assert approvals_by_revision(h) == [("U0BEN", "refused", 0)]
    [ex] = h.engine.run("gate#v1").executions
    assert (ex.status, ex.revision) == ("waiting_approval_to_complete", 1)

    old = h.fake.get_message(CHANNEL, review.ts)
    latest = h.last_with_button("approve_complete")
    assert not has_buttons(old) and latest.ts != review.ts and "(revision 1)" in latest.text
    await h.click("U0BEN", latest, "approve_complete")
    assert h.engine.run("gate#v1").info.status == "completed"
    h.fake.assert_all_ok()


async def test_approve_and_revision_at_the_same_moment(h: Harness) -> None:
    h.engine.import_pipeline_text(GATE, actor=None)
    for trial in range(1, 11):
        await h.command("run gate", user="U0ANA")
        review = h.last_with_button("approve_complete")
        await h.click("U0CAROL", review, "request_revision")
        feedback = [*h.fake.opened_views.values()][-1]
        await asyncio.gather(
            h.click("U0BEN", review, "approve_complete", settle=False),
            h.sim.view_submission(h.url, "U0CAROL", feedback, {"feedback": f"fix {trial}"}),
        )
        await h.settle()
        run = h.engine.run(f"gate#v{trial}")
        if run.info.status == "in_progress":
            await asyncio.to_thread(h.engine.cancel, run.info.name, Actor(PLATFORM, "U0ANA", "ana"))
            await h.settle()
    assert not [a for a in approvals_by_revision(h) if a[1] == "accepted" and a[2] != 0]
    h.fake.assert_all_ok()


async def test_a_button_posted_before_cards_carried_a_revision_still_works(h: Harness) -> None:
    h.engine.import_pipeline_text(GATE, actor=None)
    await h.command("run gate", user="U0ANA")
    [ex] = h.engine.run("gate#v1").executions
    legacy = f"pb:approve_complete:{ex.execution_id}"  # as an earlier pipebot encoded it
    button = {
        "type": "button",
        "action_id": legacy,
        "value": legacy,
        "text": {"type": "plain_text", "text": "OK"},
    }
    old = h.fake.post_message(CHANNEL, "an old card", [{"type": "actions", "elements": [button]}])
    await h.click("U0BEN", old, "approve_complete")
    assert h.ephemerals_for("U0BEN") == []
    assert h.engine.run("gate#v1").info.status == "completed"
    h.fake.assert_all_ok()
