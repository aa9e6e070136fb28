"""Fixtures: the Discord fake on loopback, and pipebot's client connected to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import discord.gateway
import discord.http
import pytest

from adapters.discord.endpoints import configure_endpoints
from engine.api import Engine
from tests.adapters.discord.helpers import ALICE, CHANNEL, GUILD, ROLES, Bot, start_bot, sync_to_guild
from tests.fakes.discord_fake import FakeChannel, FakeDiscord


@pytest.fixture
def restore_endpoints() -> Iterator[None]:
    """configure_endpoints sets process-wide class attributes of discord.py: put them back."""
    base, gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    yield
    discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = base, gateway


@pytest.fixture
async def fake(restore_endpoints: None) -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        server.add_guild(GUILD, channels=[FakeChannel(CHANNEL, "pipelines")], roles=ROLES, members=[ALICE])
        configure_endpoints(server.api_url, server.gateway_url)
        yield server


@pytest.fixture
async def bot(fake: FakeDiscord, engine: Engine) -> AsyncIterator[Bot]:
    await sync_to_guild(fake)
    started = await start_bot(fake, engine)
    try:
        yield started
    finally:
        await started.close()
