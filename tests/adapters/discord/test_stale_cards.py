"""Discord: a click on an out-of-date card is refused privately; pre-upgrade buttons still work."""

from __future__ import annotations

import discord

from adapters.actions import ActionRef
from adapters.discord.interactions import ActionButton
from engine import messages
from engine.actors import Actor, Conversation
from tests.adapters.discord.helpers import (
    BOB,
    CAROL,
    CHANNEL,
    Bot,
    answer,
    click_answer,
    fresh,
    open_modal,
    thread_messages,
    with_button,
)
from tests.engine.test_seen import GATE
from tests.fakes.discord_fake import FakeDiscord

HERE = Conversation("discord", str(CHANNEL))
ANA = Actor("discord", "710000000000000009", "Ana")


async def test_approve_on_the_card_of_an_earlier_revision_is_refused(fake: FakeDiscord, bot: Bot) -> None:
    bot.engine.import_pipeline_text(GATE, actor=None)
    bot.engine.start_run("gate", ANA, HERE)
    await bot.drain()
    card = with_button(thread_messages(fake), "pb:approve_complete:")
    approve, revise = card.custom_ids()[:2]
    assert approve.count(":") == 4 and revise.count(":") == 4

    modal = await open_modal(fake, card, revise, CAROL)
    assert modal["custom_id"].count(":r0:") == 1
    asked = await answer(
        fake, await fake.submit_modal(card.channel_id, modal["custom_id"], {"feedback": "No"}, CAROL)
    )
    assert asked.content == "Revision requested for Sign-off."
    # Bob's Approve left before Discord showed the revision: it was meant for revision 0.
    stale = await click_answer(fake, card, approve, BOB)
    assert stale.content == messages.STALE_CARD and stale.ephemeral

    await bot.drain()
    assert fresh(fake, card).custom_ids() == []
    latest = with_button(thread_messages(fake), "pb:approve_complete:")
    assert latest.id != card.id
    assert (await click_answer(fake, latest, latest.custom_ids()[0], BOB)).content == "Approved Sign-off."
    fake.assert_no_errors()


async def test_buttons_from_before_cards_carried_a_revision_still_work(fake: FakeDiscord, bot: Bot) -> None:
    bot.engine.import_pipeline_text(GATE, actor=None)
    info = bot.engine.start_run("gate", ANA, HERE)
    await bot.drain()
    [ex] = bot.engine.run(info.name).executions
    card = with_button(thread_messages(fake), "pb:approve_complete:")
    # A card as an earlier pipebot posted it: pb:<action>:<execution>, nothing else.
    view = discord.ui.View(timeout=None)
    view.add_item(ActionButton(ActionRef("approve_complete", ex.execution_id), "Approve"))
    thread = bot.client.get_channel(card.channel_id) or await bot.client.fetch_channel(card.channel_id)
    assert isinstance(thread, discord.Thread)
    await thread.send("an old card", view=view)
    old = with_button(thread_messages(fake), f"pb:approve_complete:{ex.execution_id}")
    assert old.custom_ids() == [f"pb:approve_complete:{ex.execution_id}"]
    assert (await click_answer(fake, old, old.custom_ids()[0], BOB)).content == "Approved Sign-off."
    fake.assert_no_errors()
