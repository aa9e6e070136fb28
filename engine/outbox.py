"""Delivery of the outbox: notifications written with each state change, sent after commit.

Rows are delivered in order per run, retried with backoff when the platform fails or rate
limits, and survive restarts because they are rows. The platform's message reference is
stored so a later notification with the same key edits the same message.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, String, cast, func, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite

from engine import logctx, metrics
from engine.actors import Conversation
from engine.batching import GroupCommit
from engine.clock import Clock
from engine.errors import PipebotError
from engine.leases import Leases, process_name
from engine.models import LeaseRow, MessageRefRow, OutboxRow, RunRow
from engine.notifications import NOTIFICATION, Notification
from engine.store import Store

log = logging.getLogger("pipebot.outbox")


@dataclass(frozen=True)
class MessageRef:
    channel: str
    message_id: str
    thread_id: str | None = None
    adopted: bool = field(default=False, compare=False)  # found on the platform, not sent now


@dataclass(frozen=True)
class Delivery:
    note: Notification
    conversation: Conversation
    existing: MessageRef | None  # this key's message: edit it
    parent: MessageRef | None  # the run's status message: post under it (its thread)
    outbox_id: int = 0  # travels in the message (metadata, nonce) so a retry can find it
    # Set when an earlier attempt may have posted it (a crash between the call and the record):
    # the deliverer looks for the message first and adopts it instead of posting again.
    sending_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class Pending:
    """An undelivered outbox row, as delivering it needs it (plain values: a burst claims
    thousands, and ORM objects cost ten times as much to load)."""

    id: int
    run_id: int
    platform: str
    message_key: str
    payload_json: str
    not_before: datetime | None
    attempts: int
    sending_at: datetime | None  # an earlier attempt's mark (as claimed)


_PENDING = tuple(getattr(OutboxRow, f) for f in Pending.__dataclass_fields__)


@dataclass
class Claimed:
    """A leased run's undelivered rows (in order), its conversation and its messages so far.
    The rows were marked sending when claimed, at ``at``."""

    where: Conversation
    at: datetime
    rows: list[Pending] = field(default_factory=list)
    refs: dict[str, MessageRef] = field(default_factory=dict)


@dataclass(frozen=True)
class _Op:
    """One row's bookkeeping: begin (mark sending), delivered, superseded (a later edit replaces
    it), failed, or unsent (marked sending when claimed, never sent: a failure before it)."""

    kind: str
    row: Pending
    ref: MessageRef | None = None
    before: MessageRef | None = None  # the key's message before this delivery
    error: Exception | None = None


class Deliverer(Protocol):
    async def deliver(self, delivery: Delivery) -> MessageRef | None: ...


@functools.cache
def _save_refs(is_sqlite: bool) -> Any:
    """Insert a message reference, or move an existing key's to the new message."""
    stmt = (sqlite if is_sqlite else postgresql).insert(MessageRefRow)
    return stmt.on_conflict_do_update(
        index_elements=["run_id", "message_key"],
        set_={
            "channel": stmt.excluded.channel,
            "message_id": stmt.excluded.message_id,
            "thread_id": stmt.excluded.thread_id,
            "updated_at": stmt.excluded.updated_at,
        },
    )


def lease_name(run_id: int) -> str:
    return f"outbox:{run_id}"


class LeaseLost(PipebotError):
    """Another process took this run's outbox over (ours looked dead): stop delivering it."""


class RetryLater(PipebotError):
    """A deliverer's way to say 'rate limited: try again in retry_after seconds'."""

    def __init__(self, retry_after: float, reason: str = "rate limited") -> None:
        self.retry_after = retry_after
        super().__init__(reason)


class Dispatcher:
    """Delivers the outbox. With several processes on one database, a run's rows are delivered by
    whichever process holds that run's lease (engine.leases), so they go out once and in order;
    a dead holder's runs are taken over once its lease is stale."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        max_attempts: int = 12,
        batch: int = 1000,
        holder: str | None = None,
        stale_after: float = 30.0,
    ) -> None:
        self.store, self.clock = store, clock
        self.max_attempts, self.batch = max_attempts, batch
        self.parallel_runs = 64
        self.deliverers: dict[str, Deliverer] = {}
        self.leases = Leases(store, clock, holder or process_name(), stale_after)
        self.last_drain: float | None = None  # monotonic time of the last drain (readiness)
        # Tests: die right after the Nth new message reached the platform, before it is recorded.
        self.crash_after_post = int(os.environ.get("PIPEBOT_TEST_CRASH_AFTER_POST", "0"))
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def holder(self) -> str:
        return self.leases.holder

    def register(self, platform: str, deliverer: Deliverer) -> None:
        self.deliverers[platform] = deliverer

    def unregister(self, platform: str) -> None:
        self.deliverers.pop(platform, None)

    def backlog(self) -> tuple[int, datetime | None]:
        """Rows not delivered yet (every process's) and when the oldest was written."""
        with self.store.read() as s:
            count, oldest = s.execute(
                select(func.count(), func.min(OutboxRow.created_at)).where(
                    OutboxRow.delivered_at.is_(None), OutboxRow.dead.is_(False)
                )
            ).one()
        return int(count), oldest

    def wake(self) -> None:
        """Thread-safe: called by the engine after a commit that wrote notifications."""
        if self._loop is not None and self._wake is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self, stop: asyncio.Event, idle_seconds: float = 1.0) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        renew = asyncio.create_task(self._renew(stop))
        try:
            while not stop.is_set():
                self._wake.clear()
                delivered = 0
                try:
                    delivered = await self.drain()
                except Exception:  # keep delivering whatever one bad row did
                    log.exception("outbox drain failed")
                self.last_drain = time.monotonic()
                if delivered:
                    continue  # a backlog (a burst of deadlines): the next rows now, not in a second
                waiter = asyncio.ensure_future(self._wake.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait(
                    {waiter, stopper}, timeout=idle_seconds, return_when=asyncio.FIRST_COMPLETED
                )
                waiter.cancel()
                stopper.cancel()
        finally:
            renew.cancel()

    async def _renew(self, stop: asyncio.Event) -> None:
        """Heartbeat this process's leases while a long delivery (uploads, rate limits) runs."""
        every = max(0.5, self.leases.stale_after / 3)
        while not stop.is_set():
            await asyncio.sleep(every)
            try:
                await asyncio.to_thread(self.leases.renew)
            except Exception:
                log.warning("renewing outbox leases failed", exc_info=True)

    async def drain(self) -> int:
        """Deliver every row that is due now (of the runs this process could lease)."""
        # Database work runs in a worker thread: on the event loop it would hold up every chat
        # interaction (chat platforms want an acknowledgement within 3 seconds) while it commits.
        by_run = await asyncio.to_thread(self._claim)
        if not by_run:
            return 0
        # Each row's bookkeeping ("sending" before the call, "delivered" after it) goes through one
        # group commit: the rows of every run delivered meanwhile share a transaction.
        book: GroupCommit[_Op, object] = GroupCommit(self._apply)
        # A bounded number of runs at a time: each delivery also needs the event loop that answers
        # the platforms' requests, and their acknowledgements must not queue behind a burst.
        limit = asyncio.Semaphore(self.parallel_runs)

        async def one(run_id: int, claimed: Claimed) -> int:
            async with limit:
                with logctx.bound(run=run_id, platform=claimed.rows[0].platform if claimed.rows else None):
                    try:
                        return await self._deliver_run(claimed, book)
                    except LeaseLost:
                        log.warning("outbox lease of run %s was taken over", run_id)
                        return 0

        try:
            # Every run's task ends (and its records commit) before the leases go back.
            tasks = (one(run_id, c) for run_id, c in by_run.items())
            counts = await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            await asyncio.to_thread(self.leases.release, [lease_name(r) for r in by_run])
        for count in counts:
            if isinstance(count, BaseException):
                raise count
        return sum(c for c in counts if isinstance(c, int))

    def _candidates(self) -> list[int]:
        undelivered = (OutboxRow.delivered_at.is_(None), OutboxRow.dead.is_(False))
        # A run whose next row waits (backoff, rate limit) must not fill the batch and starve others.
        waiting = select(OutboxRow.run_id).where(*undelivered, OutboxRow.not_before > self.clock())
        with self.store.read() as s:
            ids = s.scalars(
                select(OutboxRow.run_id)
                .where(
                    *undelivered,
                    OutboxRow.platform.in_(list(self.deliverers)),
                    OutboxRow.run_id.not_in(waiting),
                )
                .order_by(OutboxRow.id)
                .limit(self.batch)
            ).all()
        return list(dict.fromkeys(ids))

    def _claim(self) -> dict[int, Claimed]:
        """Lease the runs with rows due, then read their rows and state in the same transaction
        (after the lease: a previous holder may have delivered some since)."""
        candidates = self._candidates()
        if not candidates:
            return {}
        with self.store.write() as s:
            held = self.leases.acquire([lease_name(r) for r in candidates], s)
            run_ids = [r for r in candidates if lease_name(r) in held]
            if not run_ids:
                return {}
            rows = s.execute(
                select(*_PENDING)
                .where(
                    OutboxRow.run_id.in_(run_ids),
                    OutboxRow.delivered_at.is_(None),
                    OutboxRow.dead.is_(False),
                    OutboxRow.platform.in_(list(self.deliverers)),
                )
                .order_by(OutboxRow.id)
            ).all()
            pending = [Pending(*row) for row in rows]
            runs = {
                r.id: Conversation(r.platform, r.channel, r.thread)
                for r in s.execute(
                    select(RunRow.id, RunRow.platform, RunRow.channel, RunRow.thread).where(
                        RunRow.id.in_(run_ids)
                    )
                )
            }
            refs = s.execute(
                select(
                    MessageRefRow.run_id,
                    MessageRefRow.message_key,
                    MessageRefRow.channel,
                    MessageRefRow.message_id,
                    MessageRefRow.thread_id,
                ).where(MessageRefRow.run_id.in_(run_ids))
            ).all()
            # Every claimed row is marked sending here, under the lease just taken, instead of in a
            # transaction of its own before each call: a burst's deliveries wait for no write.
            now = self.clock()
            if pending:
                s.connection().execute(self._mark_sending([r.id for r in pending], now))
        claimed = {
            run_id: Claimed(runs[run_id], now)
            for run_id in run_ids  # a run with nothing left hands its lease back at the end of the drain
        }
        for ref in refs:
            claimed[ref.run_id].refs[ref.message_key] = MessageRef(ref.channel, ref.message_id, ref.thread_id)
        for row in pending:
            claimed[row.run_id].rows.append(row)
        return claimed

    async def _deliver_run(self, claimed: Claimed, book: GroupCommit[_Op, object]) -> int:
        now = self.clock()
        rows, where, refs = claimed.rows, claimed.where, claimed.refs  # deliveries keep `refs` current
        if not rows or (rows[0].not_before is not None and rows[0].not_before > now):
            return 0  # keep this run's order: nothing overtakes a row that waits
        latest = {row.message_key: row for row in rows}
        sent_early: set[int] = set()
        records: list[asyncio.Future[object]] = []  # committed with the next rows' (awaited at the end)
        done = 0
        try:
            for i, row in enumerate(rows):
                if row.id in sent_early:
                    continue
                newest = latest[row.message_key]
                if newest.id != row.id and row.message_key in refs:
                    records.append(book.enqueue(_Op("superseded", row)))  # a later edit replaces it
                    continue
                # A message's first appearance carries its newest content: one post, no edits.
                note = NOTIFICATION.validate_json(newest.payload_json)
                parent = None if row.message_key == "run" else refs.get("run")
                existing = refs.get(row.message_key)
                # Marked (and the lease checked) before the call: a crash after it leaves the row
                # "sending", and whoever delivers it next looks for the message first. Marked when
                # claimed; the lease checked anew once a slow drain nears the time after which
                # another process may take the run over. `sending_at` is the mark of an attempt
                # before this drain's (then the message may be on the platform already).
                if self.clock() - claimed.at > timedelta(seconds=self.leases.stale_after / 2):
                    lost = await book.submit(_Op("begin", row))
                    if isinstance(lost, LeaseLost):
                        raise lost
                since = row.sending_at if existing is None else None
                delivery = Delivery(note, where, existing, parent, row.id, since)
                try:
                    ref = await self.deliverers[row.platform].deliver(delivery)
                except Exception as exc:
                    outcome = "retry_later" if isinstance(exc, RetryLater) else "failed"
                    metrics.DELIVERIES.labels(outcome).inc()
                    await book.submit(_Op("failed", row, error=exc))
                    # The rows after it were never sent: no lookup before sending them next time.
                    later = [r for r in rows[i + 1 :] if r.id not in sent_early and r.sending_at is None]
                    records.extend(book.enqueue(_Op("unsent", r)) for r in later)
                    break
                if self.crash_after_post and existing is None and not (ref is not None and ref.adopted):
                    self.crash_after_post -= 1
                    if not self.crash_after_post:
                        os._exit(86)  # the platform has the message, the database does not know
                records.append(book.enqueue(_Op("delivered", row, ref, existing)))
                metrics.DELIVERIES.labels("adopted" if ref is not None and ref.adopted else "delivered").inc()
                if ref is not None:
                    refs[row.message_key] = ref
                done += 1
                if newest.id != row.id and not (ref is not None and ref.adopted):
                    # (an adopted message may be older than `newest`: then `newest` is sent as an edit)
                    records.append(book.enqueue(_Op("superseded", newest)))
                    sent_early.add(newest.id)
        finally:
            await asyncio.gather(*records, return_exceptions=True)
        for record in records:
            record.result()  # a failed record: the drain fails (the row stays "sending": adopted later)
        return done

    def _apply(self, ops: list[_Op]) -> list[object]:
        """The bookkeeping of many rows (of any runs) in one transaction and a few statements.

        A run's ops are queued in order and each row has one op of each kind at most, so grouping
        them by kind keeps what matters. A ``begin`` whose run's lease another process took
        returns LeaseLost (nothing written for it)."""
        now = self.clock()
        out: list[object] = [None] * len(ops)
        with self.store.write() as session:
            # Plain statements: an ORM update would look each row up in the session afterwards.
            s = session.connection()
            delivered = [op for op in ops if op.kind == "delivered"]
            moved = {(op.row.run_id, op.row.message_key): op for op in delivered if op.ref != op.before}
            if moved:  # a new message (or one found elsewhere): later rows of its key edit it
                self._save_refs(s, list(moved.values()), now)
            if delivered:
                s.execute(
                    update(OutboxRow)
                    .where(OutboxRow.id.in_([op.row.id for op in delivered]))
                    .values(delivered_at=now, sending_at=None, sending_by=None)
                )
            superseded = [op.row.id for op in ops if op.kind == "superseded"]
            if superseded:
                s.execute(update(OutboxRow).where(OutboxRow.id.in_(superseded)).values(delivered_at=now))
            unsent = [op.row.id for op in ops if op.kind == "unsent"]
            if unsent:
                s.execute(
                    update(OutboxRow)
                    .where(OutboxRow.id.in_(unsent), OutboxRow.sending_by == self.holder)
                    .values(sending_at=None, sending_by=None)
                )
            for op in ops:
                if op.kind == "failed":
                    assert op.error is not None
                    self._failed(s, op.row, op.error)
            begins = [i for i, op in enumerate(ops) if op.kind == "begin"]
            if begins:
                marks = self._begin(s, [ops[i].row for i in begins], now)
                for i, result in zip(begins, marks, strict=True):
                    out[i] = result
        return out

    def _mark_sending(self, ids: list[int], now: datetime, *where: Any) -> Any:
        """Mark rows as sending by this process (an earlier attempt's mark is kept)."""
        return (
            update(OutboxRow)
            .where(OutboxRow.id.in_(ids), *where)
            .values(sending_at=func.coalesce(OutboxRow.sending_at, now), sending_by=self.holder)
        )

    def _begin(self, s: Connection, rows: list[Pending], now: datetime) -> list[LeaseLost | None]:
        """Mark ``rows`` as sending again where this process still holds their run's lease;
        LeaseLost for each of the others."""
        lease = select(LeaseRow.name).where(
            LeaseRow.name == literal("outbox:", String) + cast(OutboxRow.run_id, String),
            LeaseRow.holder == self.holder,
        )
        mark = self._mark_sending([r.id for r in rows], now, OutboxRow.delivered_at.is_(None), lease.exists())
        marked = set(s.scalars(mark.returning(OutboxRow.id)))
        return [None if r.id in marked else LeaseLost(f"run {r.run_id}") for r in rows]

    def _save_refs(self, s: Connection, ops: list[_Op], now: datetime) -> None:
        """Each row's message reference, new or moved (one upsert; one op per key)."""
        values = [
            {
                "run_id": op.row.run_id,
                "message_key": op.row.message_key,
                "platform": op.row.platform,
                "channel": op.ref.channel,
                "message_id": op.ref.message_id,
                "thread_id": op.ref.thread_id,
                "updated_at": now,
            }
            for op in ops
            if op.ref is not None
        ]
        if not values:
            return
        s.execute(_save_refs(self.store.is_sqlite), values)  # executemany: compiled once

    def _failed(self, s: Connection, row: Pending, exc: Exception) -> None:
        attempts = row.attempts + 1
        delay = exc.retry_after if isinstance(exc, RetryLater) else min(2.0**attempts, 300.0)
        dead = attempts >= self.max_attempts and not isinstance(exc, RetryLater)
        (log.error if dead else log.warning)(
            "delivery of outbox row %s failed (attempt %s): %r", row.id, attempts, exc
        )
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
