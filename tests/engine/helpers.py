"""Small readers of engine state for tests (queries only, never shortcuts around commands)."""

from __future__ import annotations

from sqlalchemy import func, select

from engine.api import Engine
from engine.models import EventRow, InteractionRow, OutboxRow


def current(engine: Engine, run: str) -> tuple[int, str]:
    """The newest execution of a run: (id, status)."""
    last = engine.run(run).executions[-1]
    return last.execution_id, last.status


def count_events(engine: Engine, **where: object) -> int:
    with engine.store.read() as s:
        q = select(func.count()).select_from(EventRow)
        for k, v in where.items():
            q = q.where(getattr(EventRow, k) == v)
        return s.scalar(q) or 0


def interactions(engine: Engine, execution_id: int | None = None) -> list[tuple[str, str, str]]:
    with engine.store.read() as s:
        q = select(InteractionRow).order_by(InteractionRow.id)
        if execution_id is not None:
            q = q.where(InteractionRow.execution_id == execution_id)
        return [(r.kind, r.outcome, r.actor_id) for r in s.scalars(q)]


def outbox_kinds(engine: Engine) -> list[str]:
    with engine.store.read() as s:
        return [
            r.message_key.split(":")[0] if r.message_key != "run" else "run"
            for r in s.scalars(select(OutboxRow).order_by(OutboxRow.id))
        ]
