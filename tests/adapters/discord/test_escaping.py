"""Discord: words from people cannot ping: allowed_mentions parses nothing, and @everyone,
@here and <@id> show as text in every card and answer."""

from __future__ import annotations

from engine.actors import Actor, Conversation
from tests.adapters.discord.helpers import CHANNEL, Bot, thread_messages, with_button
from tests.adapters.slack.test_escaping import NOTES
from tests.fakes.discord_fake import FakeDiscord

HERE = Conversation("discord", str(CHANNEL))
ANA = Actor("discord", "710000000000000009", "Ana")
EVIL = "@everyone @here <@710000000000000002> <@&910000000000000030>"


async def test_form_values_and_feedback_cannot_ping(fake: FakeDiscord, bot: Bot) -> None:
    engine = bot.engine
    engine.import_pipeline_text(NOTES, actor=None)
    info = engine.start_run("notes", ANA, HERE)
    [ex] = engine.run(info.name).executions
    engine.submit_form(ex.execution_id, ANA, {"note": EVIL})
    await bot.drain()
    card = with_button(thread_messages(fake), "pb:approve_complete:")
    assert "@\u200beveryone @\u200bhere <@\u200b710000000000000002>" in card.text
    assert "@everyone" not in card.text and "<@7" not in card.text
    engine.request_revision(ex.execution_id, ANA, EVIL)
    await bot.drain()
    shown = "\n".join(m.text for m in thread_messages(fake))
    assert "@everyone" not in shown and "@here" not in shown and "<@&910000000000000030>" not in shown
    sent = [
        r.json
        for r in fake.requests
        if r.method in ("POST", "PATCH") and isinstance(r.json, dict) and "components" in r.json
    ]
    assert len(sent) >= 5 and all(j.get("allowed_mentions") == {"parse": []} for j in sent), sent
    fake.assert_no_errors()
