"""Hostile Reject / Approve with comment / Reassign submissions and Show changes clicks through
real slack-bolt: forged private_metadata and selected users, words that try to ping or disguise
links, clicks from elsewhere. Each must be refused or rendered harmless, and audited."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

from tests.adapters.slack.conftest import CHANNEL, Harness, all_text, button_id
from tests.adapters.slack.test_changes import changes_messages, fill, revise, worker_for
from tests.adapters.slack.test_deadlines import gate
from tests.engine.helpers import current, interactions

RUN = "gate#v1"
EVIL = "<!channel> @everyone <@U0BEN> <https://evil.example|click here> &"


async def raw(
    h: Harness, user: str, view: dict[str, Any], element: dict[str, Any], meta: str | None = None
) -> Any:
    """A decision modal's submission built by hand, as a hostile client sends it."""
    payload = h.sim._envelope("view_submission", h.sim._user(user, user[2:].lower()))
    out = copy.deepcopy(view)
    out.pop("id", None)
    if meta is not None:
        out["private_metadata"] = meta
    payload["trigger_id"] = h.sim._trigger_id()
    payload["view"] = {**out, "state": {"values": {"decision": {"decision": element}}}}
    return await h.sim._post_payload(h.url, payload)


async def modal(h: Harness, user: str, action: str) -> dict[str, Any]:
    await h.click(user, h.last_with_button(action), action)
    return list(h.fake.opened_views.values())[-1]


async def test_a_non_approver_cannot_reject_comment_or_reassign(h: Harness, tmp_path: Path) -> None:
    gate(h.engine, tmp_path, "")
    await h.command("run gate", user="U0CAROL")
    ex = current(h.engine, RUN)[0]
    for action in ("reject", "approve_with_comment", "reassign"):
        view = await modal(h, "U0ANA", action)  # opened by an approver, submitted by Carol
        element = (
            {"type": "users_select", "selected_user": "U0CAROL"}
            if action == "reassign"
            else {"type": "plain_text_input", "value": "mine"}
        )
        resp = await raw(h, "U0CAROL", view, element)
        assert "You may not approve this" in str(resp.body), (action, resp)
    await h.settle()
    assert current(h.engine, RUN) == (ex, "waiting_approval_to_complete")
    kinds = [(k, o) for k, o, who in interactions(h.engine, ex) if who == "U0CAROL"]
    assert kinds == [("reject", "refused"), ("approve_complete", "refused"), ("reassign", "refused")]
    await h.click("U0CAROL", h.last_with_button("approve_complete"), "approve_complete")
    assert current(h.engine, RUN)[1] == "waiting_approval_to_complete"  # reassigning herself gained nothing


async def test_reassign_hands_over_to_one_person_only(h: Harness, tmp_path: Path) -> None:
    """selected_user is client-controlled: a group handle, a role or mention syntax must not
    become an approver principal (nor a ping in the thread)."""
    h.fake.add_user("U0DAN", "Dan", name="dan")
    gate(h.engine, tmp_path, "")
    await h.command("run gate", user="U0CAROL")
    ex = current(h.engine, RUN)[0]
    view = await modal(h, "U0ANA", "reassign")
    for forged in ("@leads", "role:1", "U0DAN> <!channel", "!channel", "", "U0DAN|x"):
        resp = await raw(h, "U0ANA", view, {"type": "users_select", "selected_user": forged})
        assert isinstance(resp.body, dict) and resp.body.get("response_action") == "errors", (forged, resp)
    await h.settle()
    assert not [m for m in h.thread() if "handed the decision" in m.text]
    assert ("reassign", "accepted", "U0ANA") not in interactions(h.engine, ex)
    assert ("reassign", "refused", "U0ANA") in interactions(h.engine, ex)
    assert not any("<!channel>" in all_text(m) for m in h.fake.messages_in(CHANNEL))


async def test_reasons_and_comments_reach_slack_escaped(h: Harness, tmp_path: Path) -> None:
    gate(h.engine, tmp_path, "")
    await h.command("run gate", user="U0CAROL")
    card = h.last_with_button("approve_with_comment")
    view = await modal(h, "U0ANA", "approve_with_comment")
    assert (await h.sim.view_submission(h.url, "U0ANA", view, {"decision": EVIL})).body == ""
    await h.settle()
    card = h.fake.get_message(CHANNEL, card.ts)
    assert "&lt;!channel&gt;" in all_text(card) and "<!channel>" not in all_text(card)
    assert "<https://evil" not in all_text(card) and "<@U0BEN>" not in all_text(card)

    await h.command("run gate", user="U0CAROL")
    card = h.last_with_button("reject")
    view = await modal(h, "U0BEN", "reject")
    assert (await h.sim.view_submission(h.url, "U0BEN", view, {"decision": EVIL})).body == ""
    await h.settle()
    for message in [h.fake.get_message(CHANNEL, card.ts), *h.thread()]:
        text = all_text(message)
        assert "<!channel>" not in text and "<https://evil" not in text and "<@U0BEN>" not in text, text
    assert any("&lt;!channel&gt;" in all_text(m) for m in h.thread() if "failed" in m.text)
    h.fake.assert_all_ok()


OTHER = """\
id: other
approvers: [slack:U0BEN]
checkpoints:
  - id: review
"""


async def test_a_forged_decision_on_another_execution_is_checked_against_that_one(
    h: Harness, tmp_path: Path
) -> None:
    """Metadata pointing at another execution: the engine checks that execution's own approvers
    and state (a decided one stays decided; another pipeline's approvers are its own)."""
    gate(h.engine, tmp_path, "")
    h.engine.import_pipeline_text(OTHER, actor=None)
    await h.command("run gate", user="U0CAROL")
    view = await modal(h, "U0ANA", "reject")
    await h.click("U0BEN", h.last_with_button("approve_complete"), "approve_complete")
    assert h.engine.run(RUN).info.status == "completed"
    await h.command("run other", user="U0CAROL")
    other = current(h.engine, "other#v1")[0]
    # Ana's reject modal of gate's (decided) execution: already approved, unchanged.
    resp = await raw(h, "U0ANA", view, {"type": "plain_text_input", "value": "no"})
    assert "Already approved by ben" in str(resp.body), resp
    # Pointed at a run of a pipeline Ana may not approve, with or without what a card showed.
    for meta in (
        view["private_metadata"].replace(view["private_metadata"].split(":")[0], str(other), 1),
        str(other),
    ):
        resp = await raw(h, "U0ANA", view, {"type": "plain_text_input", "value": "no"}, meta)
        assert "You may not approve this" in str(resp.body), resp
    await h.settle()
    assert h.engine.run(RUN).info.status == "completed"
    assert current(h.engine, "other#v1") == (other, "waiting_approval_to_complete")
    assert [(k, o) for k, o, _ in interactions(h.engine, other)] == [("reject", "refused")] * 2


async def test_show_changes_posts_once_and_only_in_the_runs_thread(h: Harness) -> None:
    """Clicks racing each other, and one forged from another channel (the button's id copied):
    one diff, in the run's own thread; the other channel gets nothing of the artifact."""
    worker = worker_for(h)
    await h.command("run scripted")
    await fill(h, worker, "alpha")
    await revise(h, worker, "secret beta")
    review = h.last_with_button("show_changes")
    action_id = button_id(review, "show_changes")
    assert action_id is not None
    h.fake.add_channel("C0OTHER", "elsewhere")

    async def from_elsewhere() -> Any:
        payload = h.sim._envelope("block_actions", h.sim._user("U0EVE", "eve"))
        payload["container"] = {"type": "message", "message_ts": "1.1", "channel_id": "C0OTHER"}
        payload["channel"] = {"id": "C0OTHER", "name": "elsewhere"}
        payload["response_url"] = h.sim._response_url("C0OTHER", "U0EVE", "1.1")
        payload["trigger_id"] = h.sim._trigger_id()
        payload["actions"] = [{"type": "button", "action_id": action_id, "value": action_id}]
        return await h.sim._post_payload(h.url, payload)

    clicks = [h.click(u, review, "show_changes", settle=False) for u in ("U0ANA", "U0BEN", "U0CAROL")]
    await asyncio.gather(from_elsewhere(), *clicks, from_elsewhere())
    await h.settle()
    assert len(changes_messages(h)) == 1 and "secret beta" in changes_messages(h)[0]
    elsewhere = [all_text(m) for m in h.fake.messages_in("C0OTHER")]
    told = [e.text for e in h.fake.ephemerals if e.channel == "C0OTHER"]
    assert not [t for t in [*elsewhere, *told] if "secret" in t]


async def test_a_reason_that_is_not_unicode_is_refused(h: Harness, tmp_path: Path) -> None:
    """A lone surrogate ("\\ud800" in the JSON) failed inside the engine: no answer, no audit.
    The request is the client's error (400); nothing changes, and the next honest one works."""
    gate(h.engine, tmp_path, "")
    await h.command("run gate", user="U0CAROL")
    view = await modal(h, "U0ANA", "reject")
    resp = await raw(h, "U0ANA", view, {"type": "plain_text_input", "value": "no\ud800"})
    assert resp.status == 400, resp
    await h.settle()
    assert current(h.engine, RUN)[1] == "waiting_approval_to_complete"
    resp = await raw(h, "U0ANA", view, {"type": "plain_text_input", "value": "no"})
    assert resp.body == "", resp
    await h.settle()
    assert h.engine.run(RUN).info.status == "failed"
