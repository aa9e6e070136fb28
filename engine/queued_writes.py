"""Write-only statements queued on a connection and sent together, as one executemany each.

A burst of deadlines writes, per decision, two state events, an interaction and a timer
cancellation: a hundred single-row statements per batch, each paying SQLAlchemy's per-statement
cost. Queued instead, they go out just before the connection's next other statement (a read
included), savepoint, or commit, in the order they were queued; a rollback drops them. Nothing
can observe the difference: every statement after a queued one still runs after it.

Only statements whose order relative to each other does not matter (appends to history tables,
timer cancellations of one execution) may be queued: each statement's rows are sent together.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, Executable, event

_QUEUE = "pipebot_queued_writes"


def queue(conn: Connection, statement: Executable, row: dict[str, Any]) -> None:
    """Run ``statement`` with ``row`` before whatever the connection runs next."""
    queued: dict[Executable, list[dict[str, Any]]] = conn.info.setdefault(_QUEUE, {})
    queued.setdefault(statement, []).append(row)


def send(conn: Connection) -> None:
    queued: dict[Executable, list[dict[str, Any]]] | None = conn.info.pop(_QUEUE, None)
    for statement, rows in (queued or {}).items():
        conn.execute(statement, rows)


def install(engine: Engine) -> None:
    """Send a connection's queue before each statement and at commit; drop it at rollback."""

    @event.listens_for(engine, "before_execute")
    def _before(conn: Connection, *_: Any) -> None:
        if _QUEUE in conn.info:
            send(conn)

    @event.listens_for(engine, "commit")
    def _commit(conn: Connection) -> None:
        send(conn)

    @event.listens_for(engine, "rollback")
    def _rollback(conn: Connection) -> None:
        conn.info.pop(_QUEUE, None)
