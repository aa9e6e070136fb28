"""WAL checkpoints of a SQLite file, off the paths that wait for commits.

SQLite's default runs a checkpoint inside the commit that takes the log past 1,000 pages: that
commit returns only after the pages are written back and the file synced, hundreds of ms on a
busy disk, and whatever waits for the commit (a click's next message, an ack) waits with it.
Here every connection has auto-checkpoints off, and a thread of the Store's checkpoints the log
once a second when it has changed (by any process: the file's size and time tell).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import weakref
from pathlib import Path
from typing import Any

log = logging.getLogger("pipebot.store")
EVERY = 1.0  # seconds between looks at the log


class Checkpointer:
    def __init__(self, path: Path, owner: Any, every: float = EVERY) -> None:
        self.path, self.every = path, every
        self._wal = Path(str(path) + "-wal")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._owner = weakref.ref(owner)  # a Store nobody holds any more stops its thread too

    def start(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        seen: tuple[int, int] | None = None
        conn: sqlite3.Connection | None = None
        try:
            while not self._stop.wait(self.every) and self._owner() is not None:
                try:
                    st = os.stat(self._wal)
                except FileNotFoundError:
                    continue
                if (st.st_size, st.st_mtime_ns) == seen or st.st_size == 0:
                    continue
                try:
                    if conn is None:
                        conn = sqlite3.connect(self.path, timeout=5, check_same_thread=False)
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    seen = (st.st_size, st.st_mtime_ns)
                except sqlite3.Error as exc:  # busy or gone: the next look tries again
                    log.debug("checkpoint of %s: %r", self.path, exc)
        finally:
            if conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
