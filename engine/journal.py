"""The inbox's inserts on SQLite, through the driver itself.

The front process is the file's only writer: the engine process reports the rows it handled
back to the front (a line on a pipe) instead of updating them itself, so an insert never waits
for another process's write lock (SQLite's busy handler sleeps 1, 2, 5, 10 … ms between tries,
and a lock held by a process the scheduler has put aside costs an ack tens of ms).

An ack waits for this insert, so it must be short: through an SQLAlchemy session one insert and
commit cost about 1.5 ms of CPU on the 2-core development machine under load, through sqlite3
directly about 0.05 ms. Same table, same storage format for times (SQLAlchemy's SQLite DateTime),
so everything else reads and updates the rows through SQLAlchemy as usual.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime
from typing import Any

from engine.models import InboxRow

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
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        # No checkpoints from here: a checkpoint writes the WAL back and syncs the file (hundreds
        # of ms on a busy disk), and an ack must not wait for it: engine.checkpoints does it.
        pragmas = ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=30000", "wal_autocheckpoint=0")
        for pragma in pragmas:
            self._conn.execute(f"PRAGMA {pragma}")
        self._lock = threading.Lock()

    def insert_many(self, rows: list[dict[str, Any]]) -> list[int | None]:
        """One transaction; each row's id, or None where its dedup key is already there."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                found: list[int | None] = []
                for row in rows:
                    hit = self._conn.execute(_INSERT, [_value(row[c]) for c in _COLUMNS]).fetchone()
                    found.append(int(hit[0]) if hit else None)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            return found

    def finish_many(self, rows: list[tuple[int, datetime, str | None]]) -> None:
        """Mark rows handled (id, when, result), in one transaction."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(
                    "UPDATE inbox SET handled_at = ?, result = ? WHERE id = ?",
                    [(_value(when), result, row_id) for row_id, when, result in rows],
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def prune(self, before: datetime, limit: int = 500) -> int:
        """Delete up to `limit` rows handled before `before` (small steps: an ack may be waiting)."""
        with self._lock:
            done = self._conn.execute(
                "DELETE FROM inbox WHERE id IN"
                " (SELECT id FROM inbox WHERE handled_at < ? ORDER BY id LIMIT ?)",
                (_value(before), limit),
            )
            return done.rowcount

    def close(self) -> None:
        with self._lock:  # not under a statement in flight in another thread (sqlite3 would crash)
            self._conn.close()
