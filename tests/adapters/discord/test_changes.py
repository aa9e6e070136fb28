"""Show changes on Discord: the button posts the diff once (mentions defused), a second click is
answered privately, a long diff comes as a .diff attachment."""

from __future__ import annotations

from engine import messages
from engine.actors import Actor, Conversation
from tests.adapters.discord.helpers import (
    ALICE,
    BOB,
    CHANNEL,
    Bot,
    click_answer,
    thread_messages,
    with_button,
)
from tests.fakes.discord_fake import FakeDiscord

HERE = Conversation("discord", str(CHANNEL))
ANA = Actor("discord", str(ALICE.id), "Alice")
NOTES = """
id: notes
name: Notes
checkpoints:
  - id: note
    name: Note
    mode: human_only
    inputs: [{id: note, label: Note, type: multiline_text, required: true}]
    human: {approval_to_complete: true, max_revisions: 2}
    save_form_as_artifact: true
    outputs: [{name: note, format: json}]
"""


def revised(bot: Bot, first: str, second: str) -> int:
    engine = bot.engine
    engine.import_pipeline_text(NOTES, actor=None)
    info = engine.start_run("notes", ANA, HERE)
    [ex] = engine.run(info.name).executions
    engine.submit_form(ex.execution_id, ANA, {"note": first})
    engine.request_revision(ex.execution_id, ANA, "again")
    engine.submit_form(ex.execution_id, ANA, {"note": second})
    return ex.execution_id


async def test_show_changes_on_discord(fake: FakeDiscord, bot: Bot) -> None:
    ex = revised(bot, "hello", "hello @everyone <@710000000000000002>")
    await bot.drain()
    card = with_button(thread_messages(fake), f"pb:show_changes:{ex}:")
    answer = await click_answer(fake, card, f"pb:show_changes:{ex}", BOB)
    assert answer.content == messages.CHANGES_POSTED
    await bot.drain()
    [posted] = [m for m in thread_messages(fake) if "Changes in" in m.text]
    assert "--- note.json (revision 1)" in posted.text and "+++ note.json (revision 2)" in posted.text
    assert '+  "note": "hello @\u200beveryone <@\u200b710000000000000002>"' in posted.text
    assert "@everyone" not in posted.text and not posted.attachments
    again = await click_answer(fake, card, f"pb:show_changes:{ex}", ALICE)
    assert again.content == messages.CHANGES_ABOVE
    await bot.drain()
    assert len([m for m in thread_messages(fake) if "Changes in" in m.text]) == 1
    fake.assert_no_errors()


async def test_a_long_diff_is_attached_on_discord(fake: FakeDiscord, bot: Bot) -> None:
    ex = revised(bot, "\n".join(f"line {i}" for i in range(200)), "\n".join(f"line {i}!" for i in range(200)))
    await bot.drain()
    card = with_button(thread_messages(fake), f"pb:show_changes:{ex}:")
    await click_answer(fake, card, f"pb:show_changes:{ex}", BOB)
    await bot.drain()
    [posted] = [m for m in thread_messages(fake) if "Changes in" in m.text]
    assert "attached as note-r1.diff" in posted.text
    [diff] = posted.attachments
    assert diff.filename == "note-r1.diff" and diff.data.decode().startswith("--- note.json (revision 1)\n")
    fake.assert_no_errors()
