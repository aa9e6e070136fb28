"""Leases and leadership: what only one process may do at a time, with takeover when it dies.

* ``Leases``: named rows (holder, heartbeat). A lease is taken when free, when its holder is us, or
  when its heartbeat is older than the stale period (the holder died); one upsert decides, so two
  processes never both get it. The outbox holds one per run while it delivers that run.
* ``Leadership``: one holder per name for a loop that must run once (the schedule, timers, a
  chat gateway connection). On PostgreSQL it is a session advisory lock on a connection of its own: the
  server frees it the moment the holder's connection closes (a killed process), and the others
  retry every few seconds. On SQLite it is an flock on a file next to the database, which the
  kernel frees likewise.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import hashlib
import logging
import os
import socket
import uuid
from collections.abc import Callable, Collection, Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Connection, bindparam, create_engine, delete, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from engine import metrics
from engine.clock import Clock
from engine.models import LeaseRow
from engine.store import Store

log = logging.getLogger("pipebot.leases")


def process_name() -> str:
    """Who holds a lease: host, pid and a random part (pids repeat across restarts and hosts)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Leases:
    def __init__(self, store: Store, clock: Clock, holder: str, stale_after: float) -> None:
        self.store, self.clock, self.holder, self.stale_after = store, clock, holder, stale_after

    def acquire(self, names: Collection[str], session: Session | None = None) -> set[str]:
        """Take or renew the given leases where possible; return those now held by us.

        In ``session`` when given (its transaction commits them), else in a transaction of its own.
        """
        if not names:
            return set()
        if session is None:
            with self.store.write() as s:
                return self.acquire(names, s)
        now = self.clock()
        stale = now - timedelta(seconds=self.stale_after)
        params = [
            {"name": n, "holder": self.holder, "heartbeat_at": now, "acquired_at": now, "stale": stale}
            for n in sorted(names)  # one locking order for every process
        ]
        # One statement for any number of names (executemany with RETURNING): compiled once, where
        # a VALUES list of its own for each count of names compiled anew at every claim.
        stmt = _upsert(self.store.is_sqlite)
        rows = session.connection().execute(stmt, params).all()
        fresh = sum(1 for r in rows if r.acquired_at == now)
        if fresh:
            metrics.LEASE_CHANGES.inc(fresh)
        return {r.name for r in rows}

    def renew(self) -> None:
        """Heartbeat every lease we hold (a long delivery must not look like a dead holder)."""
        with self.store.write() as s:
            s.execute(
                update(LeaseRow).where(LeaseRow.holder == self.holder).values(heartbeat_at=self.clock())
            )

    def release(self, names: Collection[str]) -> None:
        if names:
            with self.store.write() as s:
                s.execute(
                    delete(LeaseRow).where(LeaseRow.name.in_(list(names)), LeaseRow.holder == self.holder)
                )


@functools.cache
def _upsert(is_sqlite: bool) -> Any:
    """Take a lease that is free, ours, or stale (its holder died)."""
    stmt = (sqlite if is_sqlite else postgresql).insert(LeaseRow)
    table = LeaseRow.__table__.c
    return stmt.on_conflict_do_update(
        index_elements=["name"],
        set_={
            "holder": stmt.excluded.holder,
            "heartbeat_at": stmt.excluded.heartbeat_at,
            # acquired_at only moves when the lease changes hands
            "acquired_at": text(
                "CASE WHEN leases.holder = excluded.holder"
                " THEN leases.acquired_at ELSE excluded.acquired_at END"
            ),
        },
        where=(table.holder == stmt.excluded.holder) | (table.heartbeat_at < bindparam("stale")),
    ).returning(LeaseRow.name, LeaseRow.acquired_at)


class _Lock(Protocol):
    def try_acquire(self) -> bool: ...
    def alive(self) -> bool: ...
    def release(self) -> None: ...


def lock_key(name: str) -> int:
    """A signed 64-bit advisory lock key for a name."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


class _AdvisoryLock:
    """pg_try_advisory_lock on a connection of its own, kept open while held."""

    def __init__(self, url: str, name: str) -> None:
        self.engine = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        self.key = lock_key(f"pipebot:{name}")
        self.conn: Connection | None = None

    def try_acquire(self) -> bool:
        if self.conn is None:
            self.conn = self.engine.connect()
        got = bool(self.conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar())
        if not got:
            self.release()  # no idle connection per waiting replica
        return got

    def alive(self) -> bool:
        try:
            assert self.conn is not None
            self.conn.execute(text("SELECT 1"))
            return True
        except Exception:
            log.warning("the leader connection failed: giving the role up", exc_info=True)
            return False

    def release(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()  # closing the session frees its advisory locks
            self.conn = None


class _FileLock:
    """flock on a file next to the SQLite database: freed by the kernel when the process dies."""

    def __init__(self, path: Path) -> None:
        self.path, self.fd = path, -1

    def try_acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def alive(self) -> bool:
        return True

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _lock_for(store: Store, name: str) -> _Lock:
    if store.is_sqlite:
        db = store.sqlite_path()
        return _FileLock(db.with_name(f"{db.name}.{name}.lock"))
    return _AdvisoryLock(store.url, name)


Body = Callable[[asyncio.Event], Coroutine[Any, Any, Any]]


class Leadership:
    """Run ``body`` while this process holds the role ``name``; hand it over when it stops."""

    def __init__(self, store: Store, name: str, *, retry_seconds: float = 1.0, check_seconds: float = 2.0):
        self.store, self.name = store, name
        self.retry_seconds, self.check_seconds = retry_seconds, check_seconds
        self.leading = False
        self.since: float | None = None  # loop time we became leader

    async def run(self, stop: asyncio.Event, body: Body) -> None:
        lock = _lock_for(self.store, self.name)
        try:
            while not stop.is_set():
                got = False
                with contextlib.suppress(Exception):
                    got = await asyncio.to_thread(lock.try_acquire)
                if not got:
                    await _wait(stop, self.retry_seconds)
                    continue
                await self._lead(stop, lock, body)
        finally:
            await asyncio.to_thread(lock.release)

    async def _lead(self, stop: asyncio.Event, lock: _Lock, body: Body) -> None:
        log.info("%s: this process leads now", self.name)
        metrics.LEADER_CHANGES.labels(self.name).inc()
        metrics.LEADER.labels(self.name).set(1)
        self.leading, self.since = True, asyncio.get_running_loop().time()
        inner = asyncio.Event()
        task = asyncio.create_task(body(inner), name=f"leader:{self.name}")
        try:
            while not stop.is_set() and not task.done():
                await asyncio.wait(
                    {task, asyncio.ensure_future(_wait(stop, self.check_seconds))},
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if not task.done() and not await asyncio.to_thread(lock.alive):
                    break
        finally:
            inner.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(task), 10)
            if not task.done():
                task.cancel()
            with contextlib.suppress(BaseException):
                await task
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.error("%s stopped: %r", self.name, task.exception())
            await asyncio.to_thread(lock.release)
            self.leading = False
            metrics.LEADER.labels(self.name).set(0)
            log.info("%s: this process no longer leads", self.name)
        if not stop.is_set():
            await _wait(stop, self.retry_seconds)  # let another process take it


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
