"""Live agent turns: each turn's text shown as the model writes it, by whichever chat runs it.

Best effort by design. The outbox stays the record: every turn ends as a ``TurnCard`` in the
outbox, with the key of the live message when there was one, so the delivery replaces the live
text with the final text and usage, and a turn whose live message failed (or a worker with no
chat at hand) is still posted once, whole. A sink that fails never fails the attempt.

The engine knows no platform: an adapter registers a ``TurnSink`` under its platform name, and
the worker opens one ``TurnWriter`` per model call of a run on that platform.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from engine.actors import Conversation
from engine.definitions import AgentSpec
from engine.discussions import Turn
from engine.llm import OnDelta
from engine.notifications import RunInfo, TurnCard
from engine.outbox import MessageRef

if TYPE_CHECKING:
    from engine.api import Engine
    from engine.work import WorkItem

log = logging.getLogger("pipebot.streams")


@dataclass(frozen=True)
class TurnTarget:
    """Where a run lives: its conversation, its status message, who started it."""

    run_id: int
    run: str
    platform: str
    conversation: Conversation
    parent: MessageRef | None
    started_by: str  # the starter's user id on that platform
    info: RunInfo  # for the cards; the outbox writes the run as it is when the card is queued


@dataclass(frozen=True)
class TurnHeader:
    target: TurnTarget
    key: str  # the outbox key of the turn's card: the live message and the final card are one
    execution_id: int
    checkpoint: str
    agent: str
    role: str
    round: int


class TurnWriter(Protocol):
    async def append(self, text: str) -> None: ...

    async def finish(self, card: TurnCard) -> MessageRef | None:
        """Stop showing live text; the message to edit with the final card (None: post it anew)."""
        ...

    async def abort(self) -> None: ...


class TurnSink(Protocol):
    async def open(self, header: TurnHeader) -> TurnWriter | None: ...


def turn_key(execution_id: int, attempt: int, round_: int, agent: str) -> str:
    return f"turn:{execution_id}:{attempt}:{round_}:{agent[:60]}"


class LiveTurns:
    """One attempt's turns: live writers while the model writes, then the final cards."""

    def __init__(self, engine: Engine, sinks: dict[str, TurnSink], item: WorkItem) -> None:
        self.engine, self.sinks, self.item = engine, sinks, item
        self._target: TurnTarget | None = None
        self._writers: dict[tuple[str, int], TurnWriter] = {}

    async def target(self) -> TurnTarget:
        if self._target is None:
            self._target = await asyncio.to_thread(self.engine.turn_target, self.item.execution_id)
        return self._target

    def key(self, agent: str, round_: int) -> str:
        return turn_key(self.item.execution_id, self.item.attempt, round_, agent)

    async def open(self, agent: AgentSpec, round_: int) -> OnDelta | None:
        target = await self.target()
        sink = self.sinks.get(target.platform)
        if sink is None:
            return None
        header = TurnHeader(
            target,
            self.key(agent.name, round_),
            self.item.execution_id,
            self.item.checkpoint.title,
            agent.name,
            agent.role,
            round_,
        )
        try:
            writer = await sink.open(header)
        except Exception:
            log.warning("live turn of %s could not start", agent.name, exc_info=True)
            return None
        if writer is None:
            return None
        self._writers[(agent.name, round_)] = writer

        async def on_delta(text: str) -> None:
            live = self._writers.get((agent.name, round_))
            if live is None:
                return
            try:
                await live.append(text)
            except Exception:  # the turn goes on; its final card is posted by the outbox
                log.warning("live turn of %s stopped", agent.name, exc_info=True)
                self._writers.pop((agent.name, round_), None)
                await _quietly(live.abort())

        return on_delta

    async def finished(self, turn: Turn) -> None:
        """The turn's final card: into the live message when there is one, else a new message."""
        target = await self.target()
        card = TurnCard(
            key=self.key(turn.agent, turn.round),
            run=target.info,
            execution_id=self.item.execution_id,
            checkpoint=self.item.checkpoint.title,
            agent=turn.agent,
            role=turn.role,
            round=turn.round,
            text=turn.text,
            tokens_in=turn.tokens_in,
            tokens_out=turn.tokens_out,
        )
        writer = self._writers.pop((turn.agent, turn.round), None)
        ref = None
        if writer is not None:
            try:
                ref = await writer.finish(card)
            except Exception:
                log.warning("live turn of %s could not finish", turn.agent, exc_info=True)
        await asyncio.to_thread(self.engine.work_turn, self.item.execution_id, card, ref)

    async def close(self) -> None:
        """A failed attempt: live messages of unfinished calls stop where they are."""
        writers, self._writers = list(self._writers.values()), {}
        for writer in writers:
            await _quietly(writer.abort())


async def _quietly(step: object) -> None:
    try:
        await step  # type: ignore[misc]
    except Exception:
        log.debug("live turn cleanup failed", exc_info=True)
