"""The manifest, `pipebot discord sync-commands`, and run_discord inside `pipebot serve`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import discord
import pytest

from adapters.discord.manifest import manifest
from adapters.discord.service import run_discord, sync_commands
from bot.cli import main
from engine.api import Engine
from tests.adapters.discord.helpers import ALICE, GUILD, answer, settings_for
from tests.conftest import ROOT
from tests.fakes.discord_fake import CommandSync, FakeDiscord

MANIFEST = ROOT / "manifests" / "discord.json"


def test_manifest_matches_the_code() -> None:
    written = json.loads(MANIFEST.read_text(encoding="utf-8"))
    assert written == manifest(), "regenerate: python -m adapters.discord.manifest > manifests/discord.json"
    assert written["intents"] == {"names": ["GUILDS"], "integer": 1}
    wanted = discord.Permissions(
        view_channel=True,
        send_messages=True,
        send_messages_in_threads=True,
        create_public_threads=True,
        embed_links=True,
        attach_files=True,
        read_message_history=True,
    )
    assert written["permissions"]["integer"] == wanted.value
    assert written["invite_url"].endswith(f"scope=bot%20applications.commands&permissions={wanted.value}")
    names = [o["name"] for o in written["commands"][0]["options"]]
    assert names == ["help", "list", "show", "run", "status", "runs", "pause", "resume", "rollback",
                     "rollbacks", "restore", "history", "cancel", "artifacts", "pending",
                     "import", "delete"]  # fmt: skip


async def test_sync_commands_sends_the_manifest(fake: FakeDiscord) -> None:
    assert await sync_commands(settings_for(fake, f"{GUILD}")) == [f"guild {GUILD}"]
    assert await sync_commands(settings_for(fake)) == ["global"]
    assert fake.command_syncs == [CommandSync(GUILD, ["pipeline"]), CommandSync(None, ["pipeline"])]
    (guild_put,) = [r for r in fake.requests if r.route.endswith(f"/guilds/{GUILD}/commands")]
    assert guild_put.json == manifest()["commands"]
    fake.assert_no_errors()


async def test_cli_sync_commands(fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = {
        "DISCORD_TOKEN": fake.token,
        "DISCORD_API_URL": fake.api_url,
        "DISCORD_GATEWAY_URL": fake.gateway_url,
        "DISCORD_GUILD_IDS": str(GUILD),
        "BASE_PIPELINES_PATH": str(tmp_path),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    # The CLI runs its own event loop: give it a thread so the fake keeps serving on this one.
    assert await asyncio.to_thread(main, ["discord", "sync-commands"]) == 0
    assert fake.command_syncs == [CommandSync(GUILD, ["pipeline"])]


async def test_run_discord_serves_until_stopped(fake: FakeDiscord, engine: Engine) -> None:
    await sync_commands(settings_for(fake, f"{GUILD}"))
    stop = asyncio.Event()
    service = asyncio.create_task(run_discord(engine, settings_for(fake), stop))
    await fake.wait_connected()
    assert fake.intents == 1  # GUILDS only
    assert "discord" in engine.outbox.deliverers
    asked = await fake.send_slash_command(GUILD, next(iter(fake.channels)), ALICE, "pipeline list")
    assert "blog-post" in (await answer(fake, asked)).content
    stop.set()
    await asyncio.wait_for(service, 5)
    await fake.wait_for(lambda: not fake.connected)
    fake.assert_no_errors()
