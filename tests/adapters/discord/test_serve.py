"""Discord through `pipebot serve` as deployed: the front process records and defers each
interaction, the engine process handles it from the inbox and answers through its token."""

from __future__ import annotations

import asyncio
import socket

import pytest

from adapters.discord.inbox import ACK_WAIT
from bot.serve import serve_async
from bot.settings import Settings
from engine.api import Engine
from tests.adapters.discord.helpers import (
    ALICE,
    CHANNEL,
    GUILD,
    answer,
    answer_of,
    open_modal,
    sync_to_guild,
)
from tests.fakes.discord_fake import FakeDiscord, StoredMessage

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_command_a_form_and_its_submission_through_the_engine_process(
    fake: FakeDiscord, engine: Engine
) -> None:
    await sync_to_guild(fake)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        base_pipelines_path=engine.ws.base,
        discord_token=fake.token,
        discord_api_url=fake.api_url,
        discord_gateway_url=fake.gateway_url,
        log_level="WARNING",
        pipebot_http_port=free_port(),  # its /healthz: not the default 3000 another test may hold
    )
    stop = asyncio.Event()
    serving = asyncio.create_task(serve_async(settings, stop))
    try:
        await fake.wait_for(lambda: fake.connected, timeout=60)
        # The engine process may still be starting: the row waits for it (and so does the test).
        asked = await fake.send_slash_command(
            GUILD, CHANNEL, ALICE, "pipeline run", {"pipeline": "blog-post"}
        )
        started = await fake.wait_for(lambda: answer_of(fake, asked), timeout=60)
        assert started.content == "Started blog-post#v1." and started.ephemeral

        def form_card() -> StoredMessage | None:
            messages = [m for t in fake.threads for m in fake.messages_in(t)]
            found = [m for m in messages if any(c.startswith("pb:open_form:") for c in m.custom_ids())]
            return found[-1] if found else None

        card = await fake.wait_for(form_card, timeout=30)
        modal = await open_modal(fake, card, card.custom_ids()[0], ALICE)  # opened by the engine process
        page1 = {"topic": "Through serve", "words": "900", "urgent": ["no"], "tone": ["casual"]}
        thread = next(iter(fake.threads))
        submitted = await fake.submit_modal(thread, modal["custom_id"], page1, ALICE)
        saved = await answer(fake, submitted)
        assert saved.content == "1/2 ✔"
        # The engine process heard of the row together with its deferral, and answered at once
        # (not after the ACK_WAIT it gives a deferral it never hears of).
        record = fake.interactions[submitted]
        assert record.responded_at is not None and record.answered_at is not None
        assert record.answered_at - record.responded_at < ACK_WAIT / 2
    finally:
        stop.set()
        await asyncio.wait_for(serving, 60)
    fake.assert_no_errors()
