"""Live agent turns in Discord: the turn's card is posted in the run's thread when the model starts
writing, then edited as it writes, at most once per ``edit_seconds`` (Discord's rate limits are per
channel). The outbox's final edit gives the finished card its whole text and usage."""

from __future__ import annotations

import time
from collections.abc import Callable

import discord

from adapters.discord.layout import layout_of
from adapters.discord.render import NO_MENTIONS, Rendered, turn_title
from engine.notifications import TurnCard
from engine.outbox import MessageRef
from engine.streams import TurnHeader


class DiscordTurns:
    """The Discord adapter's ``TurnSink``."""

    def __init__(
        self,
        client: discord.Client,
        *,
        edit_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client, self.edit_seconds, self.clock = client, edit_seconds, clock

    async def open(self, header: TurnHeader) -> DiscordTurn | None:
        parent = header.target.parent
        if parent is None or self.client.user is None:
            return None
        return DiscordTurn(self, header, parent.thread_id or parent.channel)


class DiscordTurn:
    def __init__(self, turns: DiscordTurns, header: TurnHeader, where: str) -> None:
        self.turns, self.header, self.where = turns, header, where
        self.text = ""
        self.message: discord.Message | None = None
        self.edited_at = 0.0
        self.dirty = False
        h = header
        self.title = turn_title(
            TurnCard(key=h.key, run=h.target.info, execution_id=h.execution_id, checkpoint=h.checkpoint,
                     agent=h.agent, round=h.round, text="")
        )  # fmt: skip

    async def append(self, text: str) -> None:
        self.text += text
        self.dirty = True
        await self._show(final=False)

    async def _show(self, *, final: bool) -> None:
        if not self.dirty or (not final and self.turns.clock() - self.edited_at < self.turns.edit_seconds):
            return
        card = layout_of(Rendered([self.title, self.text or "…"]))
        if self.message is None:
            channel = self.turns.client.get_partial_messageable(int(self.where))
            self.message = await channel.send(view=card, allowed_mentions=NO_MENTIONS)
        else:
            self.message = await self.message.edit(view=card, allowed_mentions=NO_MENTIONS)
        self.edited_at, self.dirty = self.turns.clock(), False

    async def finish(self, card: TurnCard) -> MessageRef | None:
        if self.message is None:
            return None  # nothing shown yet: the outbox posts the finished card
        return MessageRef(self.where, str(self.message.id), self.where)

    async def abort(self) -> None:
        self.dirty = False
