"""Queued writes (engine.queued_writes): sent before the next statement, dropped by a rollback."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from engine import queued_writes
from engine.api import Engine
from engine.models import EventRow
from tests.conftest import HERE, person

EVENT = insert(EventRow)


def event(run_id: int, reason: str) -> dict[str, object]:
    return {
        "run_id": run_id,
        "entity": "run",
        "entity_id": run_id,
        "from_state": "a",
        "to_state": "b",
        "actor": None,
        "reason": reason,
        "created_at": datetime(2026, 1, 1),
    }


def reasons(s: Session) -> list[str | None]:
    return list(s.scalars(select(EventRow.reason).where(EventRow.from_state == "a").order_by(EventRow.id)))


@pytest.fixture
def run_id(engine: Engine) -> int:
    return engine.start_run("blog-post", person("ana"), HERE).run_id


def test_a_read_sees_what_was_queued_before_it(engine: Engine, run_id: int) -> None:
    with engine.store.write() as s:
        for n in range(3):
            queued_writes.queue(s.connection(), EVENT, event(run_id, f"e{n}"))
        assert reasons(s) == ["e0", "e1", "e2"]  # sent, in order, before the select ran
        queued_writes.queue(s.connection(), EVENT, event(run_id, "e3"))
    with engine.store.read() as s:
        assert reasons(s) == ["e0", "e1", "e2", "e3"]  # the last one went out with the commit


def test_a_rollback_drops_the_queue(engine: Engine, run_id: int) -> None:
    with pytest.raises(RuntimeError), engine.store.write() as s:
        queued_writes.queue(s.connection(), EVENT, event(run_id, "lost"))
        raise RuntimeError("the command failed")
    with engine.store.write() as s:  # the same pooled connection: nothing of the queue is left on it
        queued_writes.queue(s.connection(), EVENT, event(run_id, "kept"))
    with engine.store.read() as s:
        assert reasons(s) == ["kept"]


def test_a_savepoint_rolled_back_drops_only_its_own(engine: Engine, run_id: int) -> None:
    with engine.store.write() as s:
        queued_writes.queue(s.connection(), EVENT, event(run_id, "before"))
        with pytest.raises(RuntimeError), s.begin_nested():
            queued_writes.queue(s.connection(), EVENT, event(run_id, "inside"))
            raise RuntimeError("one timer of a batch failed")
        queued_writes.queue(s.connection(), EVENT, event(run_id, "after"))
    with engine.store.read() as s:
        assert reasons(s) == ["before", "after"]
        assert s.scalar(select(func.count()).select_from(EventRow).where(EventRow.reason == "inside")) == 0
