"""The front's answers from the inbox when the platform can no longer be answered in place:
a modal (the click's first response, within 3 s) and a deferred click's token (15 min)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from engine import messages
from engine.api import Engine
from engine.clock import ManualClock
from tests.adapters.discord.helpers import ALICE, BOB, Bot, click, thread_of, with_button
from tests.adapters.discord.test_interactions import HERE, actor, brief_submitted
from tests.fakes.discord_fake import FakeDiscord


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll: the inbox's state changes tell the fake nothing."""
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise TimeoutError("condition not met")


async def test_a_form_that_could_not_open_within_3_s_is_told_privately(
    fake: FakeDiscord, engine: Engine, bot: Bot, clock: ManualClock
) -> None:
    engine.start_run("blog-post", actor(ALICE), HERE)
    await bot.drain()
    form = with_button(fake.messages_in(thread_of(fake, "blog-post#v1")), "pb:open_form:")
    engine.inbox.hold_seconds = 0.2  # the row waits (a restart, a stall) ...
    asked = await click(fake, form, form.custom_ids()[0], ALICE)
    await until(lambda: engine.inbox.busy)  # recorded, its handling under way
    clock.advance(4)  # ... past the 3 s in which the modal could open
    [told] = await fake.wait_for(lambda: fake.direct_messages(ALICE.id) or None)
    assert told.text == messages.RESTARTED_BEFORE_FORM.format(button="Open form")
    assert asked not in fake.interaction_responses  # nothing sent too late
    await engine.inbox.idle()
    fake.assert_no_errors()


async def test_a_click_whose_token_expired_is_told_privately_and_is_not_acted_on(
    fake: FakeDiscord, engine: Engine, bot: Bot, clock: ManualClock
) -> None:
    approve_id = brief_submitted(engine)
    await bot.drain()
    card = with_button(fake.messages_in(thread_of(fake, "blog-post#v1")), "pb:approve_complete:")
    engine.inbox.hold_seconds = 0.2
    asked = await click(fake, card, f"pb:approve_complete:{approve_id}", BOB)
    await until(lambda: engine.inbox.busy)  # recorded and deferred, handling held
    clock.advance(16 * 60)  # the interaction token answers 15 minutes
    [told] = await fake.wait_for(lambda: fake.direct_messages(BOB.id) or None)
    assert told.text == messages.TOO_LATE_TO_ANSWER
    assert fake.interaction_responses[asked]["type"] == 5  # deferred by the front, at once
    assert "Approved by" not in card.text and len(fake.direct_messages(BOB.id)) == 1
    await engine.inbox.idle()
    fake.assert_no_errors()
