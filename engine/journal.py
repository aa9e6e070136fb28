"""The inbox's inserts on SQLite, through the driver itself.

An ack waits for this insert, so it must be short: through an SQLAlchemy session one insert and
commit cost about 1.5 ms of CPU on the 2-core development machine under load, through sqlite3
directly about 0.05 ms. Same table, same storage format for times (SQLAlchemy's SQLite DateTime),
so everything else reads and updates the rows through SQLAlchemy as usual.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from engine.models import InboxRow

T = TypeVar("T")

_COLUMNS = [c.name for c in InboxRow.__table__.columns if c.name != "id"]
_INSERT = (
    f"INSERT INTO inbox ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})"
    " ON CONFLICT (dedup_key) DO NOTHING RETURNING id"
)


def _value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")  # as SQLAlchemy stores it on SQLite
    return value


class SqliteAppender:
    def __init__(self, path: str) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=0)
        # No checkpoints from here: a checkpoint writes the WAL back and syncs the file (hundreds
        # of ms on a busy disk), and an ack must not wait for it. The handling side's connections
        # (SQLAlchemy's, default autocheckpoint) do it instead.
        # No busy timeout: `_retry` waits for the write lock instead (see there).
        pragmas = ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=0", "wal_autocheckpoint=0")
        for pragma in pragmas:
            _retry(functools.partial(self._conn.execute, f"PRAGMA {pragma}"))
        self._lock = threading.Lock()

    def insert_many(self, rows: list[dict[str, Any]]) -> list[int | None]:
        """One transaction; each row's id, or None where its dedup key is already there."""
        with self._lock:
            return _retry(lambda: self._insert(rows))

    def _insert(self, rows: list[dict[str, Any]]) -> list[int | None]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            found: list[int | None] = []
            for row in rows:
                hit = self._conn.execute(_INSERT, [_value(row[c]) for c in _COLUMNS]).fetchone()
                found.append(int(hit[0]) if hit else None)
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise
        return found

    def close(self) -> None:
        self._conn.close()


def _retry(attempt: Callable[[], T], timeout: float = 30.0) -> T:
    """`attempt()`, again every 0.2 ms while the database is locked. The lock's other holder is
    the handling side, whose transactions on this file are short; SQLite's own busy handler
    would sleep 1, 2, 5, 10... ms between tries, far longer than they hold it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return attempt()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(0.0002)
