"""The outbox deliverer for Discord: the run's status message, its thread, edits in place, files.

Everything goes through channel and message ids with the bot token (never an interaction token,
which expires after 15 minutes), so an approval can be edited days later and after restarts.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import discord

from adapters.discord.layout import layout_of
from adapters.discord.render import (
    MAX_CONTENT,
    MAX_FILES,
    NO_MENTIONS,
    Rendered,
    clip,
    markdown,
    render,
    thread_name,
)
from engine.api import Engine
from engine.errors import PipebotError
from engine.notifications import ArtifactInfo, ArtifactsCard, NoticeCard, RunStatusCard
from engine.outbox import Delivery, MessageRef, RetryLater

log = logging.getLogger("pipebot.discord")
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024
THREAD_ARCHIVE_MINUTES: Literal[10080] = 10080  # a week: approvals may come days later
THREAD_EXISTS = 160004
NONCE_WINDOW = 120.0  # seconds Discord is relied on to deduplicate an enforced nonce ("a few minutes")


class DiscordDeliverer:
    def __init__(self, client: discord.Client, engine: Engine, max_upload_bytes: int | None = None) -> None:
        """``max_upload_bytes`` lowers the guild's own limit (e.g. behind a proxy with a body limit)."""
        self.client, self.engine, self.max_upload_bytes = client, engine, max_upload_bytes

    async def deliver(self, delivery: Delivery) -> MessageRef | None:
        if self.client.user is None:  # not logged in yet: the row waits, nothing is lost
            raise RetryLater(1.0, "Discord client not logged in yet")
        try:
            if isinstance(delivery.note, RunStatusCard):
                return await self._status(delivery)
            return await self._in_thread(delivery)
        except discord.RateLimited as exc:  # longer than the client waits by itself
            raise RetryLater(exc.retry_after) from exc
        except discord.HTTPException as exc:
            if exc.status == 429:  # discord.py gave up after its own retries
                raise RetryLater(float(exc.response.headers.get("Retry-After", 1.0))) from exc
            raise

    # -- where ---------------------------------------------------------------------------------

    def _channel(self, channel_id: str) -> discord.PartialMessageable:
        return self.client.get_partial_messageable(int(channel_id))

    async def _edit(self, ref: MessageRef, shown: Rendered) -> MessageRef:
        message = self._channel(ref.channel).get_partial_message(int(ref.message_id))
        # content and embeds cleared: a message posted before Components V2 becomes a card too.
        await message.edit(content=None, embeds=[], view=layout_of(shown), allowed_mentions=NO_MENTIONS)
        return ref

    async def _send(
        self, channel_id: str, shown: Rendered, nonce: str, files: list[discord.File] | None = None
    ) -> int:
        """Post with the outbox row's nonce (discord.py sends enforce_nonce): the same row sent
        again within Discord's nonce window returns the first message instead of a second one."""
        message = await self._channel(channel_id).send(
            files=files or [],
            view=layout_of(shown, files or []),
            allowed_mentions=shown.mentions,
            nonce=nonce,
        )
        return message.id

    async def _find(self, d: Delivery, channel_id: str, shown: Rendered) -> int | None:
        """After a crash between posting and recording: within the nonce window a second send
        is deduplicated by Discord itself; past it, look for our message among the recent ones."""
        if d.sending_since is None:
            return None
        if (datetime.now(UTC).replace(tzinfo=None) - d.sending_since).total_seconds() < NONCE_WINDOW:
            return None
        since = d.sending_since.replace(tzinfo=UTC) - timedelta(seconds=5)
        async for message in self._channel(channel_id).history(limit=50, after=since):
            same = _texts(message.components) == shown.fitted()
            if self.client.user is not None and message.author.id == self.client.user.id and same:
                log.info("outbox row %s was posted before a restart: adopting it", d.outbox_id)
                return message.id
        return None

    # -- the run's status message and its thread -------------------------------------------------

    async def _status(self, d: Delivery) -> MessageRef:
        shown = render(d.note)
        if d.existing is not None:
            return await self._edit(d.existing, shown)
        nonce = f"pb{d.outbox_id}"
        if d.conversation.thread:  # started inside a thread: the run lives there
            where = d.conversation.thread
            message_id = await self._find(d, where, shown) or await self._send(where, shown, nonce)
            return MessageRef(d.conversation.thread, str(message_id), d.conversation.thread)
        where = d.conversation.channel
        message_id = await self._find(d, where, shown) or await self._send(where, shown, nonce)
        ref = MessageRef(d.conversation.channel, str(message_id))
        try:
            thread = await self._start_thread(ref, thread_name(d.note.run))
        except Exception as exc:
            # The message exists: failing now would post it twice. Notes start the thread later.
            log.warning("could not start the thread of %s yet: %r", d.note.run.name, exc)
            return ref
        return MessageRef(ref.channel, ref.message_id, thread)

    async def _start_thread(self, parent: MessageRef, name: str) -> str | None:
        """A public thread from the status message; None where threads cannot be (voice chat...)."""
        channel_id = int(parent.channel)
        channel = self.client.get_channel(channel_id) or await self.client.fetch_channel(channel_id)
        if not isinstance(channel, discord.TextChannel):
            return None
        message = channel.get_partial_message(int(parent.message_id))
        try:
            thread = await message.create_thread(name=name, auto_archive_duration=THREAD_ARCHIVE_MINUTES)
        except discord.HTTPException as exc:
            if exc.code != THREAD_EXISTS:
                raise
            return parent.message_id  # a thread started from a message has the message's id
        return str(thread.id)

    async def _thread_of(self, d: Delivery) -> str:
        if d.parent is None:  # no status message (yet): the conversation itself
            return d.conversation.thread or d.conversation.channel
        if d.parent.thread_id:
            return d.parent.thread_id
        return await self._start_thread(d.parent, thread_name(d.note.run)) or d.parent.channel

    # -- everything else, in the thread ----------------------------------------------------------

    async def _in_thread(self, d: Delivery) -> MessageRef:
        shown = render(d.note)
        if d.existing is not None:  # attachments are kept by an edit: only text and buttons change
            return await self._edit(d.existing, shown)
        where = await self._thread_of(d)
        found = await self._find(d, where, shown)
        if found is not None:
            message_id = found
        elif isinstance(d.note, ArtifactsCard):
            message_id = await self._artifacts(where, d.note, shown, f"pb{d.outbox_id}")
        else:
            files = None
            if shown.file is not None:  # Show changes: a long diff goes with its card as a file
                name, content = shown.file
                files = [discord.File(io.BytesIO(content.encode()), filename=name)]
            message_id = await self._send(where, shown, f"pb{d.outbox_id}", files)
            if isinstance(d.note, NoticeCard) and d.note.direct:
                await self._direct(d.note)
        return MessageRef(where, str(message_id), where if where != d.conversation.channel else None)

    async def _direct(self, note: NoticeCard) -> None:
        """A reminder also reaches each person in a DM channel, where they accept DMs from the bot."""
        for principal in note.direct:
            platform, _, user_id = principal.partition(":")
            if platform != "discord" or not user_id.isdigit():
                continue
            try:
                channel = await self.client.create_dm(discord.Object(int(user_id)))
                await channel.send(
                    clip(f"{markdown(note.text)} ({note.run.name})", MAX_CONTENT),
                    allowed_mentions=NO_MENTIONS,
                )
            except discord.HTTPException as exc:  # DMs closed: the thread's mention still reached them
                log.warning("direct message to %s failed: %r", user_id, exc)

    def _upload_limit(self, channel_id: str) -> int:
        channel = self.client.get_channel(int(channel_id))
        guild = getattr(channel, "guild", None)
        limit = guild.filesize_limit if isinstance(guild, discord.Guild) else DEFAULT_UPLOAD_LIMIT
        return min(limit, self.max_upload_bytes or limit)

    def _file(self, info: ArtifactInfo) -> tuple[Path | None, int]:
        try:
            path = self.engine.artifact_path(info.artifact_id)
        except PipebotError:  # gone since (a rollback archived it): announce it, do not fail the row
            return None, info.size
        return (path, path.stat().st_size) if path.is_file() else (None, info.size)

    async def _artifacts(self, where: str, note: ArtifactsCard, shown: Rendered, nonce: str) -> int:
        """Attach what fits the guild's upload limit (batched per message); announce the rest."""
        limit = self._upload_limit(where)
        found = await asyncio.to_thread(lambda: [(a, *self._file(a)) for a in note.artifacts])
        batches: list[list[tuple[ArtifactInfo, Path]]] = [[]]
        used = 0
        too_big: list[str] = []
        for info, path, size in found:
            if path is None or size > limit:
                too_big.append(
                    f"• {info.name}.{info.format} ({size} bytes) — `pipebot artifacts get {info.artifact_id}`"
                )
                continue
            if len(batches[-1]) == MAX_FILES or used + size > limit:
                batches.append([])
                used = 0
            batches[-1].append((info, path))
            used += size
        texts = [*shown.texts, "\n".join(too_big)] if too_big else shown.texts
        first: int | None = None
        for i, batch in enumerate(batches):
            files = [discord.File(path, filename=f"{info.name}.{info.format}") for info, path in batch]
            card = Rendered(texts if first is None else [f"📎 {note.checkpoint} (continued)"])
            message_id = await self._send(where, card, nonce if i == 0 else f"{nonce}.{i}", files)
            first = first or message_id
        assert first is not None
        return first


def _texts(components: Sequence[Any]) -> list[str]:
    """The text displays of a Components V2 message, in order (to recognise our own card)."""
    out: list[str] = []
    for c in components:
        if isinstance(c, discord.components.TextDisplay):
            out.append(c.content)
        out += _texts(getattr(c, "children", None) or [])
    return out
