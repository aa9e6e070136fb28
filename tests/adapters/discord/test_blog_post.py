"""A whole blog-post run through Discord: slash command, thread, modal forms, files, approvals, revision."""

from __future__ import annotations

import json
import re

from tests.adapters.discord.helpers import (
    ALICE,
    BOB,
    CHANNEL,
    Bot,
    answer,
    bare,
    click_answer,
    command,
    fields_of,
    fresh,
    open_modal,
    thread_messages,
    with_button,
)
from tests.fakes.discord_fake import FakeDiscord, FakeFile
from tests.fakes.discord_limits import FLAG_COMPONENTS_V2 as COMPONENTS_V2


async def test_blog_post_run_end_to_end(fake: FakeDiscord, bot: Bot) -> None:
    engine = bot.engine
    started = await command(fake, ALICE, "run", pipeline="blog-post")
    assert started.content == "Started blog-post#v1." and started.ephemeral

    # The status card (one V2 container) in the channel, a thread started from it, the form card inside.
    await bot.drain()
    status = next(m for m in fake.messages_in(CHANNEL) if not m.ephemeral and m.flags & COMPONENTS_V2)
    assert status.text.startswith("### blog-post#v1 · Blog post") and not status.content and not status.embeds
    assert "in progress" in status.text and "0/3" in status.text and "Now: **Brief**" in status.text
    assert list(fake.threads) == [status.id]
    thread = status.id  # a thread started from a message has its id
    card = with_button(thread_messages(fake), "pb:open_form:")
    (form_button,) = card.custom_ids()
    execution_id = int(bare([form_button])[0].rsplit(":", 1)[1])

    # Page 1 of the form: five inputs in Labels, title within 45 characters.
    modal = await open_modal(fake, card, form_button, ALICE)
    assert modal["title"] == "Brief (1/2)" and bare([modal["custom_id"]]) == [f"pbm:form:{execution_id}:0"]
    fields = fields_of(modal)
    assert list(fields) == ["topic", "words", "notes", "urgent", "tone"]
    assert (
        fields["topic"]["type"] == 4
        and fields["topic"]["style"] == 1
        and fields["topic"]["max_length"] == 200
    )
    assert fields["notes"]["style"] == 2 and fields["words"]["value"] == "800"
    assert [o["value"] for o in fields["tone"]["options"]] == ["formal", "casual"]
    assert [o["value"] for o in fields["urgent"]["options"]] == ["yes", "no"]

    # An invalid value: the errors come back, nothing changes, the values are kept for the reopened form.
    bad = {
        "topic": "Launch day",
        "words": "99999",
        "notes": "line one\nline two",
        "urgent": ["yes"],
        "tone": ["formal"],
    }
    errors = await answer(fake, await fake.submit_modal(thread, modal["custom_id"], bad, ALICE))
    assert errors.ephemeral and "**Word count** must be at most 5000" in errors.content
    assert engine.run("blog-post#v1").executions[0].status == "waiting_for_input"
    reopened = fields_of(await open_modal(fake, errors, f"pbf:{execution_id}:0", ALICE))
    assert reopened["topic"]["value"] == "Launch day" and reopened["words"]["value"] == "99999"
    assert [o["value"] for o in reopened["tone"]["options"] if o.get("default")] == ["formal"]

    # A valid page 1, then "Continue" to page 2 with the file upload.
    saved = await answer(
        fake, await fake.submit_modal(thread, modal["custom_id"], {**bad, "words": "900"}, ALICE)
    )
    assert bare(saved.custom_ids()) == [f"pbf:{execution_id}:1"]
    page2 = await open_modal(fake, saved, f"pbf:{execution_id}:1", ALICE)
    assert page2["title"] == "Brief (2/2)"
    assert fields_of(page2)["reference"]["type"] == 19
    upload = FakeFile("notes.txt", b"reference material", "text/plain")
    done = await answer(
        fake, await fake.submit_modal(thread, page2["custom_id"], {"reference": [upload]}, ALICE)
    )
    assert done.content == "Form for Brief submitted."

    # The form card is edited in place, artifacts are attached in the thread, approval is asked.
    await bot.drain()
    card = fresh(fake, card)
    assert card.custom_ids() == [] and "Submitted by Alice at 09:00" in card.text
    files = {a.filename: a.data for m in thread_messages(fake) for a in m.attachments}
    assert files["reference.txt"] == b"reference material"
    shared = next(m for m in thread_messages(fake) if m.attachments)
    assert sorted(shared.file_components) == sorted(f"attachment://{a.filename}" for a in shared.attachments)
    brief = json.loads(files["brief.json"])
    assert brief["topic"] == "Launch day" and brief["words"] == 900 and brief["urgent"] is True
    approval = with_button(thread_messages(fake), "pb:approve_complete:")
    assert bare(approval.custom_ids()) == [
        f"pb:approve_complete:{execution_id}",
        f"pb:request_revision:{execution_id}",
        f"pb:approve_with_comment:{execution_id}",
        f"pb:reject:{execution_id}",
    ]
    assert "**Topic**\nLaunch day" in approval.text

    approved = await click_answer(fake, approval, f"pb:approve_complete:{execution_id}", BOB)
    assert approved.content == "Approved Brief." and approved.ephemeral
    await bot.drain()
    approval = fresh(fake, approval)
    assert (
        approval is not None and approval.custom_ids() == [] and "Approved by Bob at 09:00" in approval.text
    )

    # Outline: approve its start, fill the one-page form, then ask for a revision in a modal.
    start = with_button(thread_messages(fake), "pb:approve_start:")
    outline_id = int(bare(start.custom_ids())[0].rsplit(":", 1)[1])
    assert (await click_answer(fake, start, start.custom_ids()[0], BOB)).content == "Started Outline."
    await bot.drain()
    form = with_button(thread_messages(fake), f"pb:open_form:{outline_id}")
    modal = await open_modal(fake, form, f"pb:open_form:{outline_id}", ALICE)
    assert modal["title"] == "Outline" and modal["components"][0]["type"] == 10  # the instructions
    sent = await answer(
        fake, await fake.submit_modal(thread, modal["custom_id"], {"outline": "1. Intro"}, ALICE)
    )
    assert sent.content == "Form for Outline submitted."
    await bot.drain()
    review = with_button(thread_messages(fake), f"pb:request_revision:{outline_id}")
    revise = await open_modal(fake, review, f"pb:request_revision:{outline_id}", BOB)
    assert (
        bare([revise["custom_id"]]) == [f"pbm:revise:{outline_id}"] and revise["title"] == "Request revision"
    )
    asked = await answer(
        fake, await fake.submit_modal(thread, revise["custom_id"], {"feedback": "Add a summary"}, BOB)
    )
    assert asked.content == "Revision requested for Outline."
    await bot.drain()
    review = fresh(fake, review)
    assert "Revision requested by Bob" in review.text and review.custom_ids() == []
    again = with_button(thread_messages(fake), f"pb:open_form:{outline_id}")
    assert "Add a summary" in again.text and again.id != form.id
    modal = await open_modal(fake, again, f"pb:open_form:{outline_id}", ALICE)
    assert fields_of(modal)["outline"]["value"] == "1. Intro"  # the last submission prefills the revision
    assert "Add a summary" in modal["components"][0]["content"]
    await answer(
        fake, await fake.submit_modal(thread, modal["custom_id"], {"outline": "1. Intro\n2. Summary"}, ALICE)
    )
    await bot.drain()
    review = with_button(thread_messages(fake), f"pb:approve_complete:{outline_id}")
    assert f"pb:request_revision:{outline_id}" not in bare(review.custom_ids())  # max_revisions reached
    await click_answer(fake, review, review.custom_ids()[0], BOB)
    await bot.drain()

    # Sign-off (no inputs), then completion: the status message is edited to completed 3/3.
    signoff = with_button(thread_messages(fake), "pb:approve_complete:")
    assert signoff.id != review.id
    assert (await click_answer(fake, signoff, signoff.custom_ids()[0], BOB)).content == "Approved Sign-off."
    await bot.drain()
    status = fresh(fake, status)
    assert "completed" in status.text and "3/3" in status.text
    assert any("blog-post#v1 completed." in m.text for m in thread_messages(fake))
    # Interaction answers were ephemeral; what everyone sees in the thread was posted by the outbox.
    assert all("interaction_metadata" not in m.payload for m in thread_messages(fake) if not m.ephemeral)

    # Every message was posted or edited by channel id with mentions disabled; no interaction
    # token was used for the outbox's edits; the fake accepted everything.
    writes = [
        r.json.get("data", r.json) if r.path.endswith("/callback") else r.json
        for r in fake.requests
        if r.method in ("POST", "PATCH") and re.search(r"/messages(/\d+)?$|^/webhooks/|/callback$", r.path)
    ]
    texts = [w for w in writes if w.get("content") or (w.get("flags") or 0) & COMPONENTS_V2]
    assert len(texts) > 20 and [w for w in texts if w.get("allowed_mentions") != {"parse": []}] == []
    assert all(r.path.startswith("/channels/") for r in fake.requests if r.method == "PATCH")
    fake.assert_no_errors()
