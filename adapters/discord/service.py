"""Discord in ``pipebot serve``, and ``pipebot discord sync-commands``."""

from __future__ import annotations

import asyncio
import logging

import discord

from adapters.discord.client import PipebotClient
from adapters.discord.commands import sync
from adapters.discord.deliver import DiscordDeliverer
from adapters.discord.endpoints import configure_endpoints
from adapters.discord.interactions import PLATFORM
from adapters.discord.stream import DiscordTurns
from bot.settings import Settings
from engine.api import Engine

log = logging.getLogger("pipebot.discord")


async def run_discord(engine: Engine, settings: Settings, stop: asyncio.Event) -> None:
    """Connect, deliver the outbox's Discord rows, and close cleanly when ``stop`` is set."""
    if not settings.discord_token:
        raise ValueError("DISCORD_TOKEN is not set")
    configure_endpoints(settings.discord_api_url, settings.discord_gateway_url)
    client = PipebotClient(engine)
    engine.outbox.register(PLATFORM, DiscordDeliverer(client, engine))
    engine.turn_sinks[PLATFORM] = DiscordTurns(client)
    runner = asyncio.create_task(client.start(settings.discord_token), name="discord-client")
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        engine.outbox.unregister(PLATFORM)  # another replica's client delivers from now on
        await client.close()
        try:
            await runner
        except asyncio.CancelledError:
            pass
        except Exception:
            # serve gathers its services quietly at shutdown: say here why Discord stopped.
            log.exception("the Discord client stopped")
            raise
    log.info("discord client closed")


async def sync_commands(settings: Settings, engine: Engine | None = None) -> list[str]:
    """Register /pipeline with Discord over REST only (no gateway); returns where it went."""
    if not settings.discord_token:
        raise ValueError("DISCORD_TOKEN is not set")
    configure_endpoints(settings.discord_api_url, settings.discord_gateway_url)
    client = PipebotClient(engine)
    try:
        await client.login(settings.discord_token)
        return await sync(client.tree, settings.guild_ids)
    finally:
        await client.close()


def sync_commands_main(settings: Settings) -> int:
    """``pipebot discord sync-commands``."""
    try:
        where = asyncio.run(sync_commands(settings))
    except (ValueError, discord.DiscordException) as exc:
        log.error("could not sync the commands: %s", exc)
        return 1
    print(f"synced /pipeline: {', '.join(where)}")
    return 0
