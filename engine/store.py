"""Database connections: SQLite by default (WAL, foreign keys, busy timeout, writes that take
the lock up front), any SQLAlchemy URL otherwise; Alembic migrations applied at start.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from engine import messages
from engine.errors import NotFound

MIGRATIONS = Path(__file__).parent / "migrations"


@contextmanager
def _no_overflow() -> Iterator[None]:
    """A number typed or sent by someone (run#v99999999999999999999) that SQLite cannot bind
    names nothing: answer it like any unknown id, not with a crash (PostgreSQL finds no row)."""
    try:
        yield
    except OverflowError as exc:
        raise NotFound(messages.NUMBER_TOO_LARGE) from exc


def sqlite_url(base_path: Path) -> str:
    return f"sqlite:///{(base_path / 'pipebot.db').resolve()}"


class Store:
    """Sessions for reads and for writes.

    On SQLite, a write transaction starts with BEGIN IMMEDIATE: it waits for the write lock
    (busy_timeout) before reading, so two writers never both read and then fail to upgrade
    ("database is locked"). Reads use a deferred BEGIN and never block writers (WAL).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            self._writer = _sqlite_engine(url, immediate=True)
            self._reader = _sqlite_engine(url, immediate=False)
        else:
            self._writer = self._reader = create_engine(url, pool_pre_ping=True)
        self._write_sessions = sessionmaker(self._writer, expire_on_commit=False)
        self._read_sessions = sessionmaker(self._reader, expire_on_commit=False)

    def migrate(self) -> None:
        upgrade(self.url)

    @contextmanager
    def write(self) -> Iterator[Session]:
        with _no_overflow(), self._write_sessions() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        with _no_overflow(), self._read_sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
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
