"""A restarted bot (new Engine.open on the same database, new client) handles a button and
modals that were posted or opened before the restart."""

from __future__ import annotations

from engine.api import Engine
from tests.adapters.discord.helpers import (
    ALICE,
    BOB,
    answer,
    bare,
    click_answer,
    fresh,
    open_modal,
    start_bot,
    sync_to_guild,
    thread_of,
    with_button,
)
from tests.adapters.discord.test_interactions import HERE, actor, brief_submitted
from tests.fakes.discord_fake import FakeDiscord


async def test_button_and_modals_from_before_a_restart(fake: FakeDiscord, engine: Engine) -> None:
    await sync_to_guild(fake)
    before = await start_bot(fake, engine)
    approve_id = brief_submitted(engine)  # blog-post#v1: its approval card
    revise_id = brief_submitted(engine)  # blog-post#v2: a revision modal left open
    engine.start_run("blog-post", actor(ALICE), HERE)  # blog-post#v3: its form modal left open
    await before.drain()
    threads = [thread_of(fake, f"blog-post#v{n}") for n in (1, 2, 3)]
    approval = with_button(fake.messages_in(threads[0]), "pb:approve_complete:")
    review = with_button(fake.messages_in(threads[1]), "pb:request_revision:")
    form = with_button(fake.messages_in(threads[2]), "pb:open_form:")
    revise_modal = await open_modal(fake, review, f"pb:request_revision:{revise_id}", BOB)
    form_modal = await open_modal(fake, form, form.custom_ids()[0], ALICE)

    await before.close()
    engine.close()
    engine = Engine.open(engine.ws.base, clock=engine.clock)
    after = await start_bot(fake, engine)
    try:
        assert (await click_answer(fake, approval, f"pb:approve_complete:{approve_id}", BOB)).content == (
            "Approved Brief."
        )
        asked = await fake.submit_modal(threads[1], revise_modal["custom_id"], {"feedback": "Shorter"}, BOB)
        assert (await answer(fake, asked)).content == "Revision requested for Brief."
        page1 = {"topic": "After the restart", "words": "1200", "urgent": ["no"], "tone": ["casual"]}
        saved = await answer(fake, await fake.submit_modal(threads[2], form_modal["custom_id"], page1, ALICE))
        assert saved.content == "1/2 ✔" and bare(saved.custom_ids())[0].endswith(":1")
        # The draft lives in the database: page 2 submits page 1's values too.
        page2 = await open_modal(fake, saved, saved.custom_ids()[0], ALICE)
        done = await answer(fake, await fake.submit_modal(threads[2], page2["custom_id"], {}, ALICE))
        assert done.content == "Form for Brief submitted."
        (brief,) = [a for a in engine.artifacts("blog-post#v3") if a.name == "brief"]
        assert '"topic": "After the restart"' in engine.artifact_path(brief.artifact_id).read_text()

        await after.drain()
        approval = fresh(fake, approval)
        review = fresh(fake, review)
        assert approval.custom_ids() == [] and "Approved by Bob" in approval.text
        assert review.custom_ids() == [] and "Revision requested by Bob" in review.text
        assert form.custom_ids() == [] and "Submitted by Alice" in form.text
        fake.assert_no_errors()
    finally:
        await after.close()
        engine.close()
