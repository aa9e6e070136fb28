"""The whole blog-post example through Slack: slash command, modals, files, approvals, revision."""

from __future__ import annotations

import time
from typing import Any

import pytest

from engine import messages
from engine.clock import ManualClock
from tests.adapters.slack.conftest import CHANNEL, Harness, all_text, button_id, has_buttons

pytestmark = pytest.mark.slow

BRIEF = {
    "topic": "Launch day",
    "words": "900",
    "notes": "line one\nline two",
    "urgent": ["yes"],
    "tone": "formal",
}


def open_modal(h: Harness) -> dict[str, Any]:
    [view] = h.fake.opened_views.values()
    return view


def blocks_by_id(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {b["block_id"]: b for b in view["blocks"]}


async def test_blog_post_run_through_slack(h: Harness, clock: ManualClock) -> None:
    fake = h.fake
    await h.command("run blog-post")
    assert h.ephemerals_for("U0ANA") == ["Started blog-post#v1."]
    run_msg = h.run_message()
    assert "blog-post#v1" in run_msg.text and "0/3" in run_msg.text

    # -- the brief form: a modal built from the checkpoint's inputs ------------------------------
    form_msg = h.last_with_button("open_form")
    await h.click("U0ANA", form_msg, "open_form")
    view = open_modal(h)
    blocks = blocks_by_id(view)
    assert view["private_metadata"].split(":")[0].isdigit()
    assert "Describe the post you want" in view["blocks"][0]["text"]["text"]
    assert blocks["topic"]["element"]["type"] == "plain_text_input"
    assert blocks["topic"]["element"]["max_length"] == 200 and not blocks["topic"]["optional"]
    assert blocks["words"]["element"] == {
        "type": "number_input",
        "action_id": "words",
        "is_decimal_allowed": False,
        "min_value": "100",
        "max_value": "5000",
        "initial_value": "800",
    }
    assert blocks["notes"]["element"]["multiline"] is True
    assert blocks["urgent"]["element"]["type"] == "checkboxes"
    assert blocks["tone"]["element"]["initial_option"]["value"] == "casual"
    assert blocks["reference"]["element"]["type"] == "file_input"

    # Invalid values that Slack's client lets through: the engine says why, on the right blocks.
    started = time.monotonic()
    resp = await h.sim.view_submission(
        h.url,
        "U0ANA",
        view,
        {**BRIEF, "topic": "   ", "reference": [("empty.txt", b"")]},
        user_name="ana",
    )
    assert time.monotonic() - started < 3.0
    assert resp.body["response_action"] == "errors"
    assert resp.body["errors"] == {"topic": "is required", "reference": "file is empty"}
    await h.settle()
    assert h.engine.run("blog-post#v1").executions[0].status == "waiting_for_input"
    assert view["id"] in fake.opened_views  # the modal stays open with the errors

    resp = await h.sim.view_submission(
        h.url, "U0ANA", view, {**BRIEF, "reference": [("ref.txt", b"reference material")]}, user_name="ana"
    )
    assert resp.status == 200 and resp.body == ""
    await h.settle()
    assert fake.downloads, "the file_input file was fetched with the bot token"
    form_msg = fake.get_message(CHANNEL, form_msg.ts)
    assert form_msg.edited and not has_buttons(form_msg)
    assert f"Submitted by ana at {messages.at(clock())}" in all_text(form_msg)

    # Artifacts: shared into the run's thread with the files_upload_v2 flow.
    assert fake.calls_to("files.getUploadURLExternal") and fake.calls_to("files.completeUploadExternal")
    uploaded = {f.name: f for f in fake.uploaded_files}
    assert "brief.json" in uploaded and uploaded["brief.json"].thread_ts == run_msg.ts
    assert b"Launch day" in uploaded["brief.json"].content
    shared = next(m for m in fake.messages_in(CHANNEL, run_msg.ts) if uploaded["brief.json"].id in m.files)
    (preview,) = shared.blocks  # short text previewed inline, in a markdown block
    assert preview["type"] == "markdown" and "```json\n{" in preview["text"]
    assert "Launch day" in preview["text"]

    # -- request a revision: a modal asks for feedback ------------------------------------------
    review = h.last_with_button("approve_complete")
    assert "Brief" in review.text and button_id(review, "request_revision")
    await h.click("U0BEN", review, "request_revision")
    feedback_view = open_modal(h)
    assert feedback_view["callback_id"] == "pb_feedback"
    resp = await h.sim.view_submission(h.url, "U0BEN", feedback_view, {"feedback": "Shorter please"})
    assert resp.body == ""
    await h.settle()
    review = fake.get_message(CHANNEL, review.ts)
    assert "Revision requested by ben" in all_text(review) and not has_buttons(review)

    form_msg = h.last_with_button("open_form")
    assert "Shorter please" in all_text(form_msg)
    await h.click("U0ANA", form_msg, "open_form")
    view = open_modal(h)
    assert "Shorter please" in str(view["blocks"][1])
    assert blocks_by_id(view)["topic"]["element"]["initial_value"] == "Launch day"  # prefilled
    resp = await h.sim.view_submission(h.url, "U0ANA", view, {**BRIEF, "topic": "Launch"}, user_name="ana")
    assert resp.body == ""
    await h.settle()

    # -- approve: the request is edited to say who approved, and its buttons are gone ------------
    review = h.last_with_button("approve_complete")
    assert "(revision 1)" in review.text
    await h.click("U0BEN", review, "approve_complete")
    review = fake.get_message(CHANNEL, review.ts)
    assert f"Approved by ben at {messages.at(clock())}" in all_text(review)
    assert not has_buttons(review)
    assert any(c.method == "chat.update" and c.args["ts"] == review.ts for c in fake.calls)

    # -- outline: approve start, fill, approve; sign-off: approve; the run completes ------------
    await h.click("U0BEN", h.last_with_button("approve_start"), "approve_start")
    await h.click("U0ANA", h.last_with_button("open_form"), "open_form")
    resp = await h.sim.view_submission(h.url, "U0ANA", open_modal(h), {"outline": "Intro\nBody\nEnd"})
    assert resp.body == ""
    await h.settle()
    await h.click("U0BEN", h.last_with_button("approve_complete"), "approve_complete")
    await h.click("U0BEN", h.last_with_button("approve_complete"), "approve_complete")

    assert h.engine.run("blog-post#v1").info.status == "completed"
    run_msg = fake.get_message(CHANNEL, run_msg.ts)
    assert "completed" in run_msg.text and "3/3" in run_msg.text and run_msg.edited
    assert any("blog-post#v1 completed." in m.text for m in h.thread())
    assert all(m.thread_ts == run_msg.ts for m in h.thread())  # everything else is in the thread
    fake.assert_all_ok()
