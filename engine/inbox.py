"""The inbox: every interaction pipebot acknowledges is a row first, and is handled from that row.

An adapter turns a slash command, a click or a form submission into a platform-neutral
`Interaction` and calls `Inbox.accept` before it answers the platform: one short insert. The
row's unique dedup key (what identifies one delivery on the platform) makes a replayed or
retried request a no-op, and a crash after the ack loses nothing: whichever process handles
the inbox claims the rows not yet handled, on start and whenever it is woken, and hands each to
the adapter's handler for its platform. `answer_by` says until when the platform can still be
answered in place (a modal's trigger lasts seconds, an interaction token minutes); past it
the handler tells the person privately what happened instead.

Exactly once: the transaction that commits an interaction's effect also writes an
`inbox_effects` row with the inbox row's key (`Engine._write` calls `mark_applied` while a
handler runs), so a row handled again after a crash between that commit and `handled_at` raises
`AlreadyApplied` instead of acting twice.

On SQLite the rows live in a journal file of their own next to the database (inbox.db): an ack
then never waits for the engine's write lock, which engine transactions hold many times per
second; only the effects' keys are in the main database. On PostgreSQL both are tables of the
one database (row locks, no global write lock).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.actors import Actor, Conversation
from engine.batching import GroupCommit, WhenQuiet
from engine.clock import Clock
from engine.journal import SqliteAppender
from engine.models import InboxEffectRow, InboxRow
from engine.store import Store

log = logging.getLogger("pipebot.inbox")
KEEP = timedelta(days=1)  # handled rows (and their dedup keys) are kept this long
URGENT = timedelta(seconds=10)  # rows to be answered within this long skip the queue


@dataclass(frozen=True)
class Interaction:
    platform: str
    kind: str  # command | click | submission
    actor: Actor
    conversation: Conversation | None
    payload: dict[str, Any]  # what the adapter needs to handle and answer it (its own format)
    dedup_key: str | None = None  # one delivery on the platform (≤ 64 chars); None: a unique one
    answer_within: float | None = None  # seconds the platform accepts an answer in place
    # The payload's JSON text, when the adapter has it already (as it came; else made on
    # recording). One line: the front hands rows to the engine process a line each.
    payload_json: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class InboxItem:
    id: int
    key: str  # the dedup key (given or made up): the effect is recorded under it
    interaction: Interaction
    received_at: datetime
    answer_by: datetime | None
    payload_json: str | None = None  # the payload as recorded (the pipe reuses it: no second encoding)

    def expired(self, now: datetime) -> bool:
        """The platform can no longer be answered in place (trigger id / token too old)."""
        return self.answer_by is not None and now >= self.answer_by


Handler = Callable[[InboxItem], Awaitable[str | None]]


class AlreadyApplied(Exception):
    """An earlier handling of this row committed its effect; this one must not act again."""


@dataclass
class _Applying:
    key: str
    done: bool = False


_APPLYING: ContextVar[_Applying | None] = ContextVar("pipebot_inbox_applying", default=None)


def mark_applied(session: Session, now: datetime) -> _Applying | None:
    """Inside a write transaction: claim the effect of the row being handled (if any, once)."""
    applying = _APPLYING.get()
    if applying is None or applying.done:
        return None
    try:
        with session.begin_nested():
            session.execute(insert(InboxEffectRow).values(dedup_key=applying.key, applied_at=now))
    except IntegrityError:
        raise AlreadyApplied(f"inbox row {applying.key} already took effect") from None
    return applying


def digest(*parts: str) -> str:
    """A fixed-size dedup key (64 hex characters) for any request identity."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Inbox:
    store: Store  # the main database: effects
    clock: Clock
    journal: Store | None = None  # where the rows are (default: the main database)
    owner: str = field(default_factory=_owner)
    # The front process whose rows this one handles at once (others' only once stale).
    partner: str | None = None
    parallel: int = 16
    stale_seconds: float = 30.0  # a claim this old, by a process that stopped, is taken over
    hold_seconds: float = 0.0  # test hook: handling waits this long (a crash can hit in between)
    # Insert on the event loop (a front process whose loop only answers requests), not in a thread.
    inline_records: bool = False
    handlers: dict[str, Handler] = field(default_factory=dict)
    # Called after a row is recorded that another process handles (a cheap cross-process wake-up).
    on_recorded: list[Callable[[InboxItem], None]] = field(default_factory=list)
    # Called with a row's id once its ack reached the platform, for the process that handles it.
    on_acked: list[Callable[[int], None]] = field(default_factory=list)
    _acked: dict[int, asyncio.Event] = field(default_factory=dict)
    _held: dict[int, InboxItem] = field(default_factory=dict)  # accepted, not yet announced
    # The handling side of a front whose journal is a SQLite file (the engine process): rows are
    # only read here, and each handled row is reported to the front, the file's one writer.
    report: Callable[[int, str | None], None] | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _running: set[int] = field(default_factory=set)
    _results: dict[int, asyncio.Future[str | None]] = field(default_factory=dict)
    _wake: asyncio.Event | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _limit: asyncio.Semaphore | None = None
    _recorder: GroupCommit[tuple[Interaction, bool, str | None], InboxItem | None] | None = None
    _finisher: GroupCommit[tuple[int, str | None], None] | None = None
    _later: WhenQuiet[tuple[int, str | None]] | None = None  # the front's "handled" writes
    _reported: dict[int, float] = field(default_factory=dict)  # id -> when, until the front wrote it
    _waiting: dict[int, asyncio.Future[str | None]] = field(default_factory=dict)
    _pruned_at: float = 0.0

    def __post_init__(self) -> None:
        self.started_at = self.clock()
        self.rows: Store = self.journal or self.store
        self._appender = (
            SqliteAppender(self.rows.url.removeprefix("sqlite:///")) if self.rows.is_sqlite else None
        )

    def close(self) -> None:
        if self._later is not None:
            self._later.flush()
        if self._appender is not None:
            self._appender.close()

    def register(self, platform: str, handler: Handler) -> None:
        self.handlers[platform] = handler

    # -- the front: record before the ack ---------------------------------------------------

    async def accept(self, interaction: Interaction, handled: str | None = None) -> int | None:
        """Record `interaction` (before acking it); None when its dedup key was seen: a replay.

        When this process handles the platform, the row is claimed in the same insert and its
        handling starts now; otherwise the handling process is woken. ``handled``: the ack
        itself was the whole answer (the row is recorded as handled, with this result).
        """
        return await self.accept_soon(interaction, handled)

    def accept_soon(
        self, interaction: Interaction, handled: str | None = None, *, announce: bool = True
    ) -> Coroutine[Any, Any, int | None]:
        """`accept`, the row queued now, in call order: a front that takes requests in a loop
        step of its own (a gateway's reader) queues them there, and the insert of all queued in
        that step runs first thing in the next, before the awaiting tasks resume (no loop turns
        between a request and its insert, nor between the insert and the ack).

        ``announce=False``: the handling process hears of the row only when the front calls
        `announce` (once its ack is on the wire: telling the other process wakes it, and the ack
        should not share the CPU with that wake-up). A row never announced is still found by
        that process's next look at the inbox."""
        if self._later is not None:
            self._later.busy()
        local = interaction.platform in self.handlers
        if self._recorder is None:
            self._recorder = GroupCommit(self.record_many, inline=self.inline_records)
        recorded = self._recorder.enqueue((interaction, local, handled))
        return self._accepted(recorded, local, handled, announce)

    async def _accepted(
        self, recorded: asyncio.Future[InboxItem | None], local: bool, handled: str | None, announce: bool
    ) -> int | None:
        item = await recorded
        if item is None:
            return None
        if handled is not None:
            return item.id
        if local:
            self._start(item)
        elif announce:  # woken now: it starts on the row (a transaction, say) while the ack is on its way
            for signal in self.on_recorded:
                signal(item)
        else:
            self._held[item.id] = item
        return item.id

    def announce(self, row_id: int) -> None:
        """Tell the handling process of a row accepted with ``announce=False`` (once; a no-op for
        a row already announced, or handled here)."""
        item = self._held.pop(row_id, None)
        if item is not None:
            for signal in self.on_recorded:
                signal(item)

    def tell_acked(self, row_id: int, platform: str) -> None:
        """The front: row `row_id`'s ack reached the platform (see `until_acked`)."""
        if platform in self.handlers:
            self.acked(row_id)
        else:
            for signal in self.on_acked:
                signal(row_id)

    def acked(self, row_id: int) -> None:
        """Row `row_id`, handled here, was acked: its handler may answer through the ack."""
        if len(self._acked) > 10_000:  # marks nobody waited for (handled before): forget the oldest
            for old in list(self._acked)[:5_000]:
                del self._acked[old]
        self._acked.setdefault(row_id, asyncio.Event()).set()

    async def until_acked(self, item: InboxItem, timeout: float) -> None:
        """For a handler that answers through what the ack opens (a deferred interaction's token):
        wait until the front has acked the row (recorded first, acked right after), at most
        `timeout` seconds. A row recorded before this process started was acked (or not) by a
        front that is gone: nobody will tell, so no wait."""
        if item.received_at < self.started_at:
            return
        event = self._acked.setdefault(item.id, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
        self._acked.pop(item.id, None)

    def record(self, i: Interaction, claim: bool = False, handled: str | None = None) -> InboxItem | None:
        return self.record_many([(i, claim, handled)])[0]

    def record_many(self, batch: list[tuple[Interaction, bool, str | None]]) -> list[InboxItem | None]:
        """One transaction for the batch; None for an item whose dedup key is already there."""
        now = self.clock()
        rows = [self._values(i, claim, handled, now) for i, claim, handled in batch]
        if self._appender is not None:
            ids = self._appender.insert_many(rows)
        else:
            ids = []
            with self.rows.write() as s:
                for values in rows:
                    try:
                        with s.begin_nested():
                            ids.append(
                                s.execute(
                                    insert(InboxRow).values(**values).returning(InboxRow.id)
                                ).scalar_one()
                            )
                    except IntegrityError:
                        ids.append(None)
        # None: the same delivery again (a replay, a retry): its first row is the one that acts.
        return [
            None
            if row_id is None
            else InboxItem(
                row_id, str(values["dedup_key"]), i, now, values["answer_by"], str(values["payload_json"])
            )
            for row_id, values, (i, _, _) in zip(ids, rows, batch, strict=True)
        ]

    def _values(self, i: Interaction, claim: bool, handled: str | None, now: datetime) -> dict[str, Any]:
        return {
            "platform": i.platform,
            "kind": i.kind,
            "actor_id": i.actor.user_id,
            "actor_name": i.actor.name,
            "actor_groups": json.dumps(sorted(i.actor.groups)) if i.actor.groups else None,
            "channel": i.conversation.channel if i.conversation else None,
            "thread": i.conversation.thread if i.conversation else None,
            "payload_json": i.payload_json or json.dumps(i.payload, separators=(",", ":")),
            "dedup_key": i.dedup_key or uuid.uuid4().hex,
            "received_at": now,
            "answer_by": now + timedelta(seconds=i.answer_within) if i.answer_within is not None else None,
            # The recording process's: its own handler (or engine process, `partner`) takes it.
            "claimed_by": self.owner,
            "claimed_at": now,
            "handled_at": now if handled is not None else None,
            "result": handled,
        }

    async def result(self, row_id: int, timeout: float, poll: float = 0.01) -> str | None:
        """The handler's result for `row_id` (a form's answer), or None after `timeout` seconds."""
        future = self._results.get(row_id)
        if future is not None:  # handled in this process
            with contextlib.suppress(TimeoutError):
                return await asyncio.wait_for(asyncio.shield(future), timeout)
            return None
        if self._appender is not None:  # handled by the engine process, which reports it (finished)
            waiter = self._waiting.setdefault(row_id, asyncio.get_running_loop().create_future())
            try:
                with contextlib.suppress(TimeoutError):
                    return await asyncio.wait_for(asyncio.shield(waiter), timeout)
            finally:
                self._waiting.pop(row_id, None)
            found = await asyncio.to_thread(self._result_row, row_id)
            return found[1] if found is not None else None
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            found = await asyncio.to_thread(self._result_row, row_id)
            if found is not None:
                return found[1]
            await asyncio.sleep(poll)
        return None

    def _result_row(self, row_id: int) -> tuple[datetime, str | None] | None:
        with self.rows.read() as s:
            row = s.execute(
                select(InboxRow.handled_at, InboxRow.result).where(InboxRow.id == row_id)
            ).one_or_none()
        return None if row is None or row[0] is None else (row[0], row[1])

    def finished(self, row_id: int, result: str | None) -> None:
        """The front: the engine process handled `row_id` (its report). Answer whoever waits for
        it now; record it (and now and then prune old rows: this process is the journal's
        writer) once the front is between requests. Until then a restart would hand the row
        over again, which its effect's key makes a no-op (`AlreadyApplied`)."""
        waiter = self._waiting.get(row_id)
        if waiter is not None and not waiter.done():
            waiter.set_result(result)
        if self._later is None:
            self._later = WhenQuiet(self._write_finished)
        self._later.add((row_id, result))

    def _write_finished(self, batch: list[tuple[int, str | None]]) -> None:
        self._finish_many(batch)
        if self._appender is not None and time.monotonic() - self._pruned_at > 60:
            self._pruned_at = time.monotonic()
            self._appender.prune(self.clock() - KEEP)

    # -- the handling side -------------------------------------------------------------------

    def wake(self) -> None:
        """Thread-safe: new rows may be waiting."""
        if self._loop is not None and self._wake is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self, stop: asyncio.Event, idle_seconds: float = 0.5) -> None:
        """Handle the rows not yet handled (those left by a crash first), then new ones as they come."""
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        pruned = 0.0
        while not stop.is_set():
            self._wake.clear()
            try:
                for item in await asyncio.to_thread(self.claim):
                    self._start(item)
                if self._loop.time() - pruned > 600:
                    pruned = self._loop.time()
                    await asyncio.to_thread(self.prune)
            except Exception:  # a bad poll must not stop the next one
                log.exception("inbox poll failed")
            waiter = asyncio.ensure_future(self._wake.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({waiter, stopper}, timeout=idle_seconds, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            stopper.cancel()
        await self.idle()

    def claim(self, limit: int = 100) -> list[InboxItem]:
        """Claim the rows recorded by this process's front (`partner`), and rows nobody handles:
        claimed longer ago than `stale_seconds` (a dead replica's), and on SQLite (one machine)
        also those claimed before this process started (by the one it replaces)."""
        if not self.handlers:
            return []
        now = self.clock()
        stale = now - timedelta(seconds=self.stale_seconds)
        if self.rows.is_sqlite:  # one machine: a claim older than this process is its dead predecessor's
            stale = max(stale, self.started_at)
        if self.report is not None:
            return self._read_unhandled(limit, stale)
        with self.rows.write() as s:
            unclaimed = InboxRow.claimed_at.is_(None)
            rows = s.scalars(
                self._unhandled(limit, stale, set(self._running), unclaimed).with_for_update(
                    skip_locked=True  # PostgreSQL: replicas claim disjoint rows
                )
            ).all()
            if not rows:
                return []
            ids = [r.id for r in rows]
            s.execute(
                update(InboxRow).where(InboxRow.id.in_(ids)).values(claimed_by=self.owner, claimed_at=now)
            )
            return [_item(r) for r in rows]

    def _read_unhandled(self, limit: int, stale: datetime) -> list[InboxItem]:
        """`claim` for the reporting side: the front's rows (and its predecessor's), only read.
        One machine, one engine process: nobody else handles them, so no claim is written."""
        skip = set(self._running) | set(self._reported)  # (copies: this runs in a thread)
        with self.rows.read() as s:
            return [_item(r) for r in s.scalars(self._unhandled(limit, stale, skip)).all()]

    def _unhandled(
        self, limit: int, stale: datetime, skip: set[int], *also: ColumnElement[bool]
    ) -> Select[InboxRow]:
        """Rows of this process's platforms not handled yet, recorded by its front or claimed
        before `stale` (or matching `also`), oldest first, except those in `skip`."""
        return (
            select(InboxRow)
            .where(
                InboxRow.handled_at.is_(None),
                InboxRow.platform.in_(list(self.handlers)),
                InboxRow.id.not_in(skip) if skip else InboxRow.id.is_not(None),
                or_(*also, InboxRow.claimed_by == self.partner, InboxRow.claimed_at < stale),
            )
            .order_by(InboxRow.id)
            .limit(limit)
        )

    def prune(self) -> int:
        before = self.clock() - KEEP
        with self.store.write() as s:
            s.execute(delete(InboxEffectRow).where(InboxEffectRow.applied_at < before))
        if self.report is not None:  # the front prunes the rows: it is their file's writer
            return 0
        with self.rows.write() as s:
            done = s.execute(delete(InboxRow).where(InboxRow.handled_at < before))
        return int(getattr(done, "rowcount", 0) or 0)

    def hand_over(self, encoded: str) -> None:
        """The reporting side: a row the front just recorded, sent whole on the pipe (no read of
        the file before it starts; a row lost on the way is found by the next `claim`)."""
        item = decode_item(encoded)
        if item.interaction.platform in self.handlers:
            self._start(item)
        else:
            self.wake()

    def _start(self, item: InboxItem) -> None:
        if item.id in self._running or item.id in self._reported:
            return
        self._running.add(item.id)
        if self._limit is None:
            self._limit = asyncio.Semaphore(self.parallel)
        self._results[item.id] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(self._handle(item), name=f"inbox-{item.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, item: InboxItem) -> None:
        result: str | None = None
        assert self._limit is not None
        # A row that must be answered within seconds (a modal to open) does not queue behind the
        # others: it starts at once, however many are under way.
        urgent = item.answer_by is not None and item.answer_by - item.received_at <= URGENT
        try:
            async with contextlib.nullcontext() if urgent else self._limit:
                if self.hold_seconds:
                    await asyncio.sleep(self.hold_seconds)
                applying = _Applying(item.key)
                _APPLYING.set(applying)  # this task's own context (and the threads it starts)
                try:
                    result = await self.handlers[item.interaction.platform](item)
                except AlreadyApplied:
                    result = "already applied"
                except Exception as exc:
                    log.exception(
                        "inbox row %s (%s %s) failed",
                        item.id,
                        item.interaction.platform,
                        item.interaction.kind,
                    )
                    result = f"failed: {exc!r}"[:2000]
                if self.report is not None:
                    now = time.monotonic()
                    for row_id in [r for r, at in self._reported.items() if at < now - 60]:
                        del self._reported[row_id]  # the front has written those long ago
                    self._reported[item.id] = now
                    self.report(item.id, result)
                else:
                    if self._finisher is None:
                        self._finisher = GroupCommit(self._finish_many, inline=self.inline_records)
                    await self._finisher.submit((item.id, result))
        finally:
            self._running.discard(item.id)
            future = self._results.pop(item.id, None)
            if future is not None and not future.done():
                future.set_result(result)

    def _finish_many(self, batch: list[tuple[int, str | None]]) -> list[None]:
        if self._appender is not None:
            now = self.clock()
            self._appender.finish_many([(row_id, now, result) for row_id, result in batch])
            return [None] * len(batch)
        with self.rows.write() as s:
            for row_id, result in batch:
                s.execute(
                    update(InboxRow)
                    .where(InboxRow.id == row_id)
                    .values(handled_at=self.clock(), result=result)
                )
        return [None] * len(batch)

    async def idle(self, timeout: float = 10.0) -> None:
        """Wait for the handlings under way (shutdown, tests)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    @property
    def busy(self) -> bool:
        return bool(self._tasks)


def encode_item(item: InboxItem) -> str:
    """One line of JSON (for the pipe from the front to the engine process)."""
    i = item.interaction
    head = json.dumps(
        {
            "id": item.id,
            "key": item.key,
            "platform": i.platform,
            "kind": i.kind,
            "actor": [i.actor.user_id, i.actor.name, sorted(i.actor.groups)],
            "where": [i.conversation.channel, i.conversation.thread] if i.conversation else None,
            "received_at": item.received_at.isoformat(),
            "answer_by": item.answer_by.isoformat() if item.answer_by else None,
        },
        separators=(",", ":"),
    )
    payload = item.payload_json or json.dumps(i.payload, separators=(",", ":"))
    return f'{head[:-1]},"payload":{payload}}}'


def decode_item(encoded: str) -> InboxItem:
    d = json.loads(encoded)
    platform, where = d["platform"], d["where"]
    user_id, name, groups = d["actor"]
    interaction = Interaction(
        platform=platform,
        kind=d["kind"],
        actor=Actor(platform, user_id, name, frozenset(groups)),
        conversation=Conversation(platform, where[0], where[1]) if where else None,
        payload=d["payload"],
        dedup_key=d["key"],
    )
    answer_by = datetime.fromisoformat(d["answer_by"]) if d["answer_by"] else None
    return InboxItem(d["id"], d["key"], interaction, datetime.fromisoformat(d["received_at"]), answer_by)


def _item(row: InboxRow) -> InboxItem:
    groups = frozenset(json.loads(row.actor_groups)) if row.actor_groups else frozenset()
    where = Conversation(row.platform, row.channel, row.thread) if row.channel else None
    interaction = Interaction(
        platform=row.platform,
        kind=row.kind,
        actor=Actor(row.platform, row.actor_id, row.actor_name, groups),
        conversation=where,
        payload=json.loads(row.payload_json),
        dedup_key=row.dedup_key,
    )
    return InboxItem(row.id, row.dedup_key, interaction, row.received_at, row.answer_by)
