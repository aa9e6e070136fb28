"""WAL checkpoints run off the commit path, in a thread of a Store, and one process can leave them
to another (`pipebot serve`'s front leaves them to its engine process)."""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

from sqlalchemy import text

from engine.store import Store, sqlite_url


def in_main_file(db: Path, tmp: Path) -> int:
    """Rows of `t` in the database file alone (its WAL left out): what checkpoints wrote back."""
    alone = tmp / f"alone-{time.monotonic_ns()}.db"
    shutil.copyfile(db, alone)
    conn = sqlite3.connect(alone)
    try:
        return int(conn.execute("SELECT count(*) FROM t").fetchone()[0])
    except sqlite3.OperationalError:  # the table itself is still only in the WAL
        return 0
    finally:
        conn.close()


def write(store: Store, n: int) -> None:
    with store.write() as s:
        s.execute(text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
        for i in range(n):
            s.execute(text("INSERT INTO t VALUES (:x)"), {"x": i})


def wait_for_rows(db: Path, tmp: Path, n: int, within: float) -> int:
    deadline = time.monotonic() + within
    while (found := in_main_file(db, tmp)) < n and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


def test_a_store_checkpoints_its_wal_within_seconds(tmp_path: Path) -> None:
    store = Store(sqlite_url(tmp_path))
    try:
        write(store, 50)
        assert wait_for_rows(store.sqlite_path(), tmp_path, 50, within=5) == 50
    finally:
        store.dispose()


def test_a_store_can_leave_its_checkpoints_to_another_process(tmp_path: Path) -> None:
    front = Store(sqlite_url(tmp_path))
    front.checkpoint_elsewhere()
    try:
        write(front, 50)
        assert wait_for_rows(front.sqlite_path(), tmp_path, 50, within=2.5) == 0  # nobody wrote it back
        other = Store(sqlite_url(tmp_path))  # the engine process's
        try:
            with other.read() as s:  # any use starts its checkpoints
                s.execute(text("SELECT 1"))
            assert wait_for_rows(front.sqlite_path(), tmp_path, 50, within=5) == 50
        finally:
            other.dispose()
    finally:
        front.dispose()
