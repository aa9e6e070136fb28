"""Driving pipebot's real discord.py client against the Discord fake, with the real engine."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any

from adapters.discord.client import PipebotClient
from adapters.discord.deliver import DiscordDeliverer
from adapters.discord.service import sync_commands
from bot.settings import Settings
from engine.api import Engine
from tests.conftest import ADMIN_ROLE
from tests.fakes.discord_fake import FakeDiscord, FakeRole, FakeUser, StoredMessage

GUILD = 910000000000000001
CHANNEL = 910000000000000010
RELEASE_ROLE = 1234  # examples/release.yaml: approvers include "discord:role:1234"
OTHER_ROLE = 910000000000000030
ROLES = [
    FakeRole(RELEASE_ROLE, "release-managers"),
    FakeRole(OTHER_ROLE, "writers"),
    FakeRole(ADMIN_ROLE, "pipebot-admins"),
]
ALICE = FakeUser(710000000000000001, "alice", roles=(OTHER_ROLE,), global_name="Alice")
BOB = FakeUser(710000000000000002, "bob", global_name="Bob")
CAROL = FakeUser(710000000000000003, "carol", roles=(RELEASE_ROLE,), global_name="Carol")
DAVE = FakeUser(710000000000000004, "dave", roles=(RELEASE_ROLE,), global_name="Dave")
ERIN = FakeUser(710000000000000005, "erin", roles=(RELEASE_ROLE,), global_name="Erin")
OLIVE = FakeUser(710000000000000006, "olive", roles=(ADMIN_ROLE,), global_name="Olive")  # an admin
LOADING = 1 << 7
EPHEMERAL = 1 << 6


def settings_for(fake: FakeDiscord, guild_ids: str | None = None) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        discord_token=fake.token,
        discord_api_url=fake.api_url,
        discord_gateway_url=fake.gateway_url,
        discord_guild_ids=guild_ids,
    )


@dataclass
class Bot:
    """A started PipebotClient registered as the engine's Discord deliverer."""

    fake: FakeDiscord
    engine: Engine
    client: PipebotClient
    task: asyncio.Task[None]
    seen: list[int] = field(default_factory=list)

    async def drain(self) -> int:
        """Deliver everything due now (the outbox is run by hand: deterministic, no sleeps)."""
        total = 0
        while delivered := await self.engine.outbox.drain():
            total += delivered
        return total

    async def close(self) -> None:
        await self.client.close()
        await asyncio.wait_for(self.task, 5)


async def start_bot(fake: FakeDiscord, engine: Engine) -> Bot:
    client = PipebotClient(engine, guild_ready_timeout=0.01)
    engine.outbox.register("discord", DiscordDeliverer(client, engine))
    await client.login(fake.token)  # REST login first: wait_until_ready needs it
    task = asyncio.create_task(client.connect())
    ready = asyncio.create_task(client.wait_until_ready())
    done, _ = await asyncio.wait({task, ready}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
    if ready not in done or ready.exception() is not None:
        ready.cancel()
        await client.close()
        raise TimeoutError("pipebot's Discord client did not become ready")
    return Bot(fake, engine, client, task)


async def sync_to_guild(fake: FakeDiscord) -> None:
    await sync_commands(settings_for(fake, str(GUILD)))


def answer_of(fake: FakeDiscord, interaction_id: int) -> StoredMessage | None:
    """The bot's final answer to an interaction: the response or its latest follow-up, not loading."""
    record = fake.interactions[interaction_id]
    found = [fake.find_message(i) for i in (record.original_message_id, *record.followup_ids) if i]
    done = [m for m in found if m is not None and not m.flags & LOADING and m.text]
    return done[-1] if done else None


async def answer(fake: FakeDiscord, interaction_id: int) -> StoredMessage:
    return await fake.wait_for(lambda: answer_of(fake, interaction_id))


async def command(fake: FakeDiscord, user: FakeUser, name: str, **options: Any) -> StoredMessage:
    """Run ``/pipeline <name>`` and return the bot's answer."""
    interaction_id = await fake.send_slash_command(GUILD, CHANNEL, user, f"pipeline {name}", options)
    return await answer(fake, interaction_id)


CARD_SEEN = re.compile(r":r?\d+:[0-9a-f]{12}$")  # what a card showed: revision and digest


def bare(custom_ids: list[str]) -> list[str]:
    """Custom ids without the revision and digest of the card they are on."""
    return [CARD_SEEN.sub("", c) for c in custom_ids]


def full_id(message: StoredMessage, custom_id: str) -> str:
    """The message's custom id that is `custom_id` (or `custom_id` plus what the card showed)."""
    ids = message.custom_ids()
    if custom_id in ids:
        return custom_id
    found = [c for c in ids if CARD_SEEN.sub("", c) == custom_id]
    return found[0] if len(found) == 1 else custom_id


async def click(fake: FakeDiscord, message: StoredMessage, custom_id: str, user: FakeUser) -> int:
    return await fake.click_button(message.channel_id, message.id, full_id(message, custom_id), user)


async def click_answer(
    fake: FakeDiscord, message: StoredMessage, custom_id: str, user: FakeUser
) -> StoredMessage:
    return await answer(fake, await click(fake, message, custom_id, user))


async def open_modal(
    fake: FakeDiscord, message: StoredMessage, custom_id: str, user: FakeUser
) -> dict[str, Any]:
    """Click a button that opens a modal; return the modal (callback type 9 data)."""
    body = await fake.wait_response(await click(fake, message, custom_id, user))
    assert body["type"] == 9, body
    modal: dict[str, Any] = body["data"]
    return modal


def fields_of(modal: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The modal's inputs by custom_id (the component inside each Label)."""
    return {
        c["component"]["custom_id"]: {**c["component"], "label": c["label"]}
        for c in modal["components"]
        if c["type"] == 18
    }


def fresh(fake: FakeDiscord, message: StoredMessage) -> StoredMessage:
    """The message as Discord holds it now (after the outbox's edits)."""
    found = fake.find_message(message.id)
    assert found is not None, f"message {message.id} was deleted"
    return found


def thread_of(fake: FakeDiscord, run: str) -> int:
    """The id of the run's thread (named after the run)."""
    (found,) = [t for t, data in fake.threads.items() if data["name"].startswith(f"{run} ")]
    return found


def thread_messages(fake: FakeDiscord) -> list[StoredMessage]:
    (thread_id,) = list(fake.threads)
    return fake.messages_in(thread_id)


def with_button(messages: list[StoredMessage], prefix: str) -> StoredMessage:
    """The last message having a component whose custom_id starts with ``prefix``."""
    found = [m for m in messages if any(c.startswith(prefix) for c in m.custom_ids())]
    assert found, f"no message with a {prefix!r} button in {[m.custom_ids() for m in messages]}"
    return found[-1]
