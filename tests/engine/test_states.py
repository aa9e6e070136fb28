"""Every transition of both state machines, legal and illegal, against a table written out here."""

from __future__ import annotations

from itertools import product

import pytest
from sqlalchemy import select

from engine.api import Engine
from engine.errors import IllegalTransition
from engine.models import EventRow, ExecutionRow, RunRow
from engine.states import ExecStatus, RunStatus, move_execution, move_run
from tests.conftest import HERE, person

RUN_LEGAL = {
    ("not_started", "in_progress"),
    ("in_progress", "paused"),
    ("paused", "in_progress"),
    ("in_progress", "completed"),
    ("in_progress", "failed"),
    ("not_started", "cancelled"),
    ("in_progress", "cancelled"),
    ("paused", "cancelled"),
    ("completed", "in_progress"),
    ("failed", "in_progress"),
    # A run-level rollback archives a finished (or first cancelled) run; a restore undoes it.
    *{(f, "rolled_back") for f in ("completed", "failed", "cancelled")},
    *{("rolled_back", t) for t in ("in_progress", "paused", "completed", "failed", "cancelled")},
}
ACTIVE = [
    "pending",
    "waiting_approval_to_start",
    "running",
    "waiting_for_input",
    "waiting_approval_to_complete",
    "revision_requested",
]
EXEC_LEGAL = {
    ("pending", "waiting_approval_to_start"),
    *{
        (f, t)
        for f in ("pending", "waiting_approval_to_start", "revision_requested")
        for t in ("running", "waiting_for_input")
    },
    ("waiting_for_input", "running"),
    # reject: a person or a deadline fails what waits for them
    ("waiting_for_input", "failed"),
    ("waiting_approval_to_complete", "failed"),
    ("running", "waiting_approval_to_start"),
    ("running", "running"),
    ("failed", "running"),
    *{
        (f, "waiting_approval_to_complete")
        for f in (
            "pending",
            "waiting_approval_to_start",
            "running",
            "waiting_for_input",
            "revision_requested",
        )
    },
    ("waiting_approval_to_complete", "revision_requested"),
    *{
        (f, "completed")
        for f in (
            "pending",
            "waiting_approval_to_start",
            "running",
            "waiting_for_input",
            "waiting_approval_to_complete",
            "revision_requested",
        )
    },
    ("running", "failed"),
    ("waiting_approval_to_start", "failed"),
    *{(f, "cancelled") for f in ACTIVE},
    *{(f, "rolled_back") for f in ExecStatus if f != "rolled_back"},
    *{("rolled_back", t) for t in ExecStatus if t != "rolled_back"},  # a restore
}


@pytest.fixture
def rows(engine: Engine) -> tuple[int, int]:
    info = engine.start_run("blog-post", person("ana"), HERE)
    with engine.store.read() as s:
        ex = s.scalars(select(ExecutionRow).where(ExecutionRow.run_id == info.run_id)).one()
        return info.run_id, ex.id


@pytest.mark.parametrize(("frm", "to"), list(product(RunStatus, RunStatus)))
def test_run_transitions(engine: Engine, rows: tuple[int, int], frm: RunStatus, to: RunStatus) -> None:
    run_id, _ = rows
    with engine.store.write() as s:
        run = s.get(RunRow, run_id)
        assert run is not None
        run.status = frm
        before = len(s.scalars(select(EventRow)).all())
        if (frm, to) in RUN_LEGAL:
            move_run(s, engine.clock, run, to, actor="console:ana")
            assert run.status == to
            s.flush()
            event = s.scalars(select(EventRow).order_by(EventRow.id.desc())).first()
            assert event is not None and (event.from_state, event.to_state) == (frm, to)
            assert len(s.scalars(select(EventRow)).all()) == before + 1
        else:
            with pytest.raises(IllegalTransition):
                move_run(s, engine.clock, run, to)
            assert run.status == frm


@pytest.mark.parametrize(("frm", "to"), list(product(ExecStatus, ExecStatus)))
def test_execution_transitions(
    engine: Engine, rows: tuple[int, int], frm: ExecStatus, to: ExecStatus
) -> None:
    _, ex_id = rows
    with engine.store.write() as s:
        ex = s.get(ExecutionRow, ex_id)
        assert ex is not None
        ex.status = frm
        if (frm, to) in EXEC_LEGAL:
            move_execution(s, engine.clock, ex, to)
            assert ex.status == to
            s.flush()
            event = s.scalars(select(EventRow).order_by(EventRow.id.desc())).first()
            assert event is not None and (event.entity, event.from_state, event.to_state) == (
                "execution",
                frm,
                to,
            )
        else:
            with pytest.raises(IllegalTransition) as err:
                move_execution(s, engine.clock, ex, to)
            assert err.value.from_state == frm and err.value.to_state == to
            assert ex.status == frm


def test_event_rows_commit_with_the_state(engine: Engine) -> None:
    info = engine.start_run("blog-post", person("ana"), HERE)
    with engine.store.read() as s:
        events = s.scalars(select(EventRow).where(EventRow.run_id == info.run_id).order_by(EventRow.id)).all()
    assert [(e.entity, e.from_state, e.to_state) for e in events] == [
        ("run", "not_started", "in_progress"),
        ("execution", "pending", "waiting_for_input"),
    ]
