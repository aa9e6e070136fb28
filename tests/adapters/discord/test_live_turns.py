"""Live agent turns in Discord: each speaker's card is posted when the model starts writing and
edited at most once per second; the outbox then gives it the whole turn and its usage."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from adapters.discord.stream import DiscordTurns
from engine.llm import LLM
from engine.worker import Worker, WorkerConfig
from tests.adapters.discord.helpers import ALICE, Bot, thread_messages
from tests.adapters.discord.test_interactions import HERE, actor
from tests.adapters.slack.test_live_turns import CON, DEBATE, JUDGE, PRO
from tests.fakes.discord_fake import FakeDiscord
from tests.fakes.openai_server import FakeOpenAI


@pytest.fixture
async def openai_fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as fake:
        yield fake


async def test_turns_are_cards_edited_at_most_once_per_second(
    fake: FakeDiscord, bot: Bot, openai_fake: FakeOpenAI
) -> None:
    engine = bot.engine
    engine.turn_sinks["discord"] = DiscordTurns(bot.client, edit_seconds=1.0)
    engine.import_pipeline_text(DEBATE, actor=None)
    engine.start_run("debate", actor(ALICE), HERE)
    await bot.drain()
    openai_fake.script(PRO, CON, JUDGE)
    worker = Worker(
        engine,
        lambda: LLM(api_key=openai_fake.api_key, base_url=openai_fake.base_url, max_tokens=10_000),
        WorkerConfig(heartbeat_seconds=0.5),
    )
    started = time.monotonic()
    await worker.drain()
    elapsed = time.monotonic() - started
    live_edits = {m.id: m.edits for m in thread_messages(fake)}
    await bot.drain()
    cards = [m for m in thread_messages(fake) if m.text.startswith("💬")]
    assert [c.text.split("\n")[0] for c in cards] == [
        "💬 **pro** · round 1", "💬 **con** · round 1", "💬 **judge** · round 2"
    ]  # fmt: skip
    usage = [(r.prompt_tokens, r.completion_tokens) for r in openai_fake.completed]
    for card, (tokens_in, tokens_out) in zip(cards, usage, strict=True):
        assert live_edits[card.id] <= elapsed + 1  # at most one edit per second while it was written
        assert card.edits == live_edits[card.id] + 1  # then the finished card, once
        assert f"{tokens_in}+{tokens_out} tokens" in card.text
    assert "Ship on Monday, with the notes." in cards[2].text
    fake.assert_no_errors()
