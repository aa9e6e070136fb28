"""Delivery of the outbox: notifications written with each state change, sent after commit.

Rows are delivered in order per run, retried with backoff when the platform fails or rate
limits, and survive restarts because they are rows. The platform's message reference is
stored so a later notification with the same key edits the same message.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from sqlalchemy import select, update

from engine import logctx
from engine.actors import Conversation
from engine.clock import Clock
from engine.errors import PipebotError
from engine.models import MessageRefRow, OutboxRow, RunRow
from engine.notifications import NOTIFICATION, Notification
from engine.store import Store

log = logging.getLogger("pipebot.outbox")


@dataclass(frozen=True)
class MessageRef:
    channel: str
    message_id: str
    thread_id: str | None = None


@dataclass(frozen=True)
class Delivery:
    note: Notification
    conversation: Conversation
    existing: MessageRef | None  # this key's message: edit it
    parent: MessageRef | None  # the run's status message: post under it (its thread)


class Deliverer(Protocol):
    async def deliver(self, delivery: Delivery) -> MessageRef | None: ...


class RetryLater(PipebotError):
    """A deliverer's way to say 'rate limited: try again in retry_after seconds'."""

    def __init__(self, retry_after: float, reason: str = "rate limited") -> None:
        self.retry_after = retry_after
        super().__init__(reason)


class Dispatcher:
    def __init__(self, store: Store, clock: Clock, *, max_attempts: int = 12, batch: int = 200) -> None:
        self.store, self.clock = store, clock
        self.max_attempts, self.batch = max_attempts, batch
        self.parallel_runs = 4
        self.deliverers: dict[str, Deliverer] = {}
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def register(self, platform: str, deliverer: Deliverer) -> None:
        self.deliverers[platform] = deliverer

    def wake(self) -> None:
        """Thread-safe: called by the engine after a commit that wrote notifications."""
        if self._loop is not None and self._wake is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self, stop: asyncio.Event, idle_seconds: float = 1.0) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        while not stop.is_set():
            self._wake.clear()
            try:
                await self.drain()
            except Exception:  # keep delivering whatever one bad row did
                log.exception("outbox drain failed")
            waiter = asyncio.ensure_future(self._wake.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({waiter, stopper}, timeout=idle_seconds, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            stopper.cancel()

    async def drain(self) -> int:
        """Deliver every row that is due now; return how many were delivered."""
        # Database work runs in a worker thread: on the event loop it would hold up every chat
        # interaction (chat platforms want an acknowledgement within 3 seconds) while it commits.
        by_run = await asyncio.to_thread(self._pending)
        if not by_run:
            return 0
        # A few runs at a time: each delivery also needs the event loop that answers the
        # platforms' requests, and their acknowledgements must not queue behind a burst.
        limit = asyncio.Semaphore(self.parallel_runs)

        async def one(rows: list[OutboxRow]) -> int:
            async with limit:
                with logctx.bound(run=rows[0].run_id, platform=rows[0].platform):
                    return await self._deliver_run(rows)

        counts = await asyncio.gather(*(one(rows) for rows in by_run.values()))
        return sum(counts)

    def _pending(self) -> dict[int, list[OutboxRow]]:
        undelivered = (OutboxRow.delivered_at.is_(None), OutboxRow.dead.is_(False))
        # A run whose next row waits (backoff, rate limit) must not fill the batch and starve others.
        waiting = select(OutboxRow.run_id).where(*undelivered, OutboxRow.not_before > self.clock())
        with self.store.read() as s:
            rows = s.scalars(
                select(OutboxRow)
                .where(
                    *undelivered,
                    OutboxRow.platform.in_(list(self.deliverers)),
                    OutboxRow.run_id.not_in(waiting),
                )
                .order_by(OutboxRow.id)
                .limit(self.batch)
            ).all()
        by_run: dict[int, list[OutboxRow]] = defaultdict(list)
        for row in rows:
            by_run[row.run_id].append(row)
        return by_run

    async def _deliver_run(self, rows: list[OutboxRow]) -> int:
        now = self.clock()
        if rows[0].not_before is not None and rows[0].not_before > now:
            return 0  # keep this run's order: nothing overtakes a row that waits
        # The run's conversation and its messages so far, read once; deliveries keep `refs` current.
        where, refs = await asyncio.to_thread(self._run_state, rows[0].run_id)
        latest = {row.message_key: row for row in rows}
        sent_early: set[int] = set()
        done = 0
        for row in rows:
            if row.id in sent_early:
                continue
            newest = latest[row.message_key]
            if newest.id != row.id and row.message_key in refs:
                await asyncio.to_thread(self._mark_delivered, [row.id])  # a later edit replaces it
                continue
            # A message's first appearance carries its newest content: one post, no edits.
            note = NOTIFICATION.validate_json(newest.payload_json)
            parent = None if row.message_key == "run" else refs.get("run")
            try:
                ref = await self.deliverers[row.platform].deliver(
                    Delivery(note, where, refs.get(row.message_key), parent)
                )
            except Exception as exc:
                await asyncio.to_thread(self._failed, row, exc)
                break
            await asyncio.to_thread(self._delivered, row, ref)
            if ref is not None:
                refs[row.message_key] = ref
            done += 1
            if newest.id != row.id:
                await asyncio.to_thread(self._mark_delivered, [newest.id])
                sent_early.add(newest.id)
        return done

    def _run_state(self, run_id: int) -> tuple[Conversation, dict[str, MessageRef]]:
        with self.store.read() as s:
            run = s.get(RunRow, run_id)
            assert run is not None
            refs = s.scalars(select(MessageRefRow).where(MessageRefRow.run_id == run_id)).all()
            return Conversation(run.platform, run.channel, run.thread), {
                r.message_key: MessageRef(r.channel, r.message_id, r.thread_id) for r in refs
            }

    def _mark_delivered(self, ids: list[int]) -> None:
        with self.store.write() as s:
            s.execute(update(OutboxRow).where(OutboxRow.id.in_(ids)).values(delivered_at=self.clock()))

    def _delivered(self, row: OutboxRow, ref: MessageRef | None) -> None:
        with self.store.write() as s:
            if ref is not None:
                current = s.scalar(
                    select(MessageRefRow).where(
                        MessageRefRow.run_id == row.run_id, MessageRefRow.message_key == row.message_key
                    )
                )
                if current is None:
                    s.add(
                        MessageRefRow(
                            run_id=row.run_id,
                            message_key=row.message_key,
                            platform=row.platform,
                            channel=ref.channel,
                            message_id=ref.message_id,
                            thread_id=ref.thread_id,
                            updated_at=self.clock(),
                        )
                    )
                else:
                    current.channel, current.message_id = ref.channel, ref.message_id
                    current.thread_id, current.updated_at = ref.thread_id, self.clock()
            s.execute(update(OutboxRow).where(OutboxRow.id == row.id).values(delivered_at=self.clock()))

    def _failed(self, row: OutboxRow, exc: Exception) -> None:
        attempts = row.attempts + 1
        delay = exc.retry_after if isinstance(exc, RetryLater) else min(2.0**attempts, 300.0)
        dead = attempts >= self.max_attempts and not isinstance(exc, RetryLater)
        (log.error if dead else log.warning)(
            "delivery of outbox row %s failed (attempt %s): %r", row.id, attempts, exc
        )
        with self.store.write() as s:
            s.execute(
                update(OutboxRow)
                .where(OutboxRow.id == row.id)
                .values(
                    attempts=attempts,
                    last_error=repr(exc)[:2000],
                    dead=dead,
                    not_before=self.clock() + timedelta(seconds=delay),
                )
            )
