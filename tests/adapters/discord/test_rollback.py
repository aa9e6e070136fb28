"""Rollback through Discord: the proposal's Confirm button (a DynamicItem), restore and history."""

from __future__ import annotations

from tests.adapters.discord.helpers import ALICE, Bot, click_answer, command
from tests.adapters.discord.test_interactions import actor, brief_submitted
from tests.fakes.discord_fake import FakeDiscord


async def test_rollback_confirm_restore_and_history(fake: FakeDiscord, bot: Bot) -> None:
    execution_id = brief_submitted(bot.engine)
    bot.engine.approve_complete(execution_id, actor(ALICE))
    proposal = await command(fake, ALICE, "rollback", run="blog-post#v1", checkpoint="brief")
    assert proposal.ephemeral and proposal.content.startswith("Roll back **blog-post#v1** to brief?")
    assert proposal.custom_ids() == ["pb:confirm_rollback:1", "pb:keep_rollback:1"]
    done = await click_answer(fake, proposal, "pb:confirm_rollback:1", ALICE)
    assert done.content == "Rolled back blog-post#v1 to brief (rollback 1)."
    assert bot.engine.run("blog-post#v1").info.done == 0
    restored = await command(fake, ALICE, "restore", rollback=1)
    assert restored.content.startswith("Restored rollback 1 (restore 2")
    history = await command(fake, ALICE, "history", run="blog-post#v1")
    assert "rollback 1 to brief" in history.content and "restored rollback 1" in history.content
    listed = await command(fake, ALICE, "rollbacks", target="blog-post")
    assert "#2 " in listed.content and "restored (restore 2)" in listed.content
    fake.assert_no_errors()
