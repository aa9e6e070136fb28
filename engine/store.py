"""Database connections: SQLite by default (WAL, foreign keys, busy timeout, writes that take
the lock up front), any SQLAlchemy URL otherwise; Alembic migrations applied at start.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, Table, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from engine import messages, queued_writes
from engine.checkpoints import Checkpointer
from engine.errors import NotFound
from engine.models import Base

MIGRATIONS = Path(__file__).parent / "migrations"
CHANNEL = "pipebot"  # LISTEN/NOTIFY channel: new work or notifications were committed
log = logging.getLogger("pipebot.store")


@contextmanager
def _no_overflow() -> Iterator[None]:
    """A number typed or sent by someone (run#v99999999999999999999) that SQLite cannot bind
    names nothing: answer it like any unknown id, not with a crash (PostgreSQL finds no row)."""
    try:
        yield
    except OverflowError as exc:
        raise NotFound(messages.NUMBER_TOO_LARGE) from exc


def sqlite_url(base_path: Path, name: str = "pipebot.db") -> str:
    return f"sqlite:///{(base_path / name).resolve()}"


class Store:
    """Sessions for reads and for writes.

    On SQLite, a write transaction starts with BEGIN IMMEDIATE: it waits for the write lock
    (busy_timeout) before reading, so two writers never both read and then fail to upgrade
    ("database is locked"). Reads use a deferred BEGIN and never block writers (WAL).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self._checkpoints: Checkpointer | None = None
        if self.is_sqlite:
            self._writer = _sqlite_engine(url, immediate=True)
            self._reader = _sqlite_engine(url, immediate=False)
            self._checkpoints = Checkpointer(self.sqlite_path(), self)
        else:
            self._writer = self._reader = create_engine(url, pool_pre_ping=True)
        queued_writes.install(self._writer)
        self._write_sessions = sessionmaker(self._writer, expire_on_commit=False)
        # SQLite: this process's writers queue on a lock, woken when it is released, instead of in
        # SQLite's busy handler, which sleeps and polls: there a thread that writes again at once
        # (the timer loop firing a burst) can keep the database from every other writer.
        self._write_lock = threading.RLock() if self.is_sqlite else None
        self._read_sessions = sessionmaker(self._reader, expire_on_commit=False)

    def migrate(self) -> None:
        upgrade(self.url)

    def create(self, *tables: Table) -> None:
        """Tables of a side file that is not the source of truth (the SQLite inbox journal)."""
        Base.metadata.create_all(self._writer, tables=list(tables))

    @contextmanager
    def write(self) -> Iterator[Session]:
        if self._checkpoints is not None:
            self._checkpoints.start()
        with (
            self._write_lock or contextlib.nullcontext(),
            _no_overflow(),
            self._write_sessions() as session,
            session.begin(),
        ):
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        if self._checkpoints is not None:
            self._checkpoints.start()
        with _no_overflow(), self._read_sessions() as session, session.begin():
            yield session

    def checkpoint_elsewhere(self) -> None:
        """Leave this file's WAL checkpoints to another process (`pipebot serve`'s front leaves
        them to its engine process: its only work is answering requests)."""
        if self._checkpoints is not None:
            self._checkpoints.stop()
            self._checkpoints = None

    def sqlite_path(self) -> Path:
        return Path(make_url(self.url).database or "pipebot.db").resolve()

    def notify(self, session: Session) -> None:
        """Wake every process listening (PostgreSQL): sent by the server when ``session`` commits."""
        if not self.is_sqlite:
            session.execute(text("SELECT pg_notify(:c, '')"), {"c": CHANNEL})

    def listen(self, wake: Callable[[], None], stop: threading.Event) -> None:
        """Call ``wake`` on every notification until ``stop`` (PostgreSQL; blocks: run it in a thread).

        A connection of its own with LISTEN; reconnects after errors (the poll covers the gap).
        """
        import psycopg

        conninfo = make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)
        while not stop.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    wake()  # anything committed while not listening
                    while not stop.is_set():
                        for _ in conn.notifies(timeout=0.5):
                            wake()
            except Exception:
                log.warning("LISTEN connection failed; reconnecting", exc_info=True)
                stop.wait(1.0)

    def migrations_current(self) -> bool:
        """Whether the database is at the migrations' head (readiness)."""
        heads = set(ScriptDirectory.from_config(alembic_config(self.url)).get_heads())
        with self._reader.connect() as conn:
            return set(MigrationContext.configure(conn).get_current_heads()) == heads

    def ping(self) -> None:
        with self._reader.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        if self._checkpoints is not None:
            self._checkpoints.stop()
        self._writer.dispose()
        self._reader.dispose()


def _sqlite_engine(url: str, *, immediate: bool) -> Engine:
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own is deferred).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA wal_autocheckpoint=0")  # engine.checkpoints does it, off the commit path
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str) -> None:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), "head")
