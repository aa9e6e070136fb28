"""The engine's read side: what a run, a form and a person's pending work look like.

Plain functions over a read transaction (``Tx``); ``engine.api.Engine`` exposes them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, select

from engine import drafts, flow, history, human, messages, runs, timers
from engine.actors import Actor
from engine.definitions import InputField
from engine.errors import NotFound, Refused
from engine.models import ExecutionRow, RunRow, TimerRow
from engine.notifications import Button, RunInfo
from engine.permissions import is_approver
from engine.states import ExecStatus as E
from engine.states import RunStatus as R
from engine.tx import Tx
from engine.workspace import Workspace


class PipelineSummary(BaseModel):
    slug: str
    version: int
    title: str
    description: str
    checkpoints: int
    changed: bool = False


class ExecutionView(BaseModel):
    execution_id: int
    checkpoint_id: str
    title: str
    mode: str
    status: str
    attempt: int
    revision: int
    error: str | None = None


class RunView(BaseModel):
    info: RunInfo
    extends: str | None
    executions: list[ExecutionView]
    rolled_back: str | None = None  # "rolled back by Ana at …" (a run-level rollback archived it)


class FormSpec(BaseModel):
    execution_id: int
    run: str
    checkpoint: str
    instructions: str
    feedback: str | None
    inputs: list[InputField]
    values: dict[str, Any]


class PendingItem(BaseModel):
    execution_id: int
    run: str
    checkpoint: str
    stage: str
    buttons: list[Button]
    due_at: datetime | None = None  # naive UTC
    due: str | None = None  # "due in 3 h" / "overdue by 5 min", by the engine's clock

    @property
    def overdue(self) -> bool:
        return bool(self.due and self.due.startswith("overdue"))


def run_view(tx: Tx, name: str) -> RunView:
    run = runs.find_run(tx.session, name)
    pipeline = tx.pipeline(run)
    titles = {cp.id: cp.title for cp in pipeline.checkpoints}
    execs = tx.session.scalars(
        select(ExecutionRow).where(ExecutionRow.run_id == run.id).order_by(ExecutionRow.id)
    ).all()
    extends = tx.session.get(RunRow, run.extends_run_id) if run.extends_run_id else None
    return RunView(
        info=tx.run_info(run),
        extends=extends.name if extends else None,
        rolled_back=history.rolled_back_note(tx, run),
        executions=[
            ExecutionView(
                execution_id=e.id,
                checkpoint_id=e.checkpoint_id,
                title=titles[e.checkpoint_id],
                mode=e.mode,
                status=e.status,
                attempt=e.attempt,
                revision=e.revision,
                error=e.error,
            )
            for e in execs
        ],
    )


def form_spec(tx: Tx, ws: Workspace, execution_id: int, actor: Actor | None) -> FormSpec:
    ex = tx.session.get(ExecutionRow, execution_id)
    if ex is None:
        raise NotFound(f"There is no checkpoint execution {execution_id}.")
    run = tx.session.get(RunRow, ex.run_id)
    assert run is not None
    cp = flow.checkpoint_of(tx, run, ex)
    if ex.status != E.WAITING_FOR_INPUT:
        raise Refused(f"The form of {cp.title} is not open (it is {ex.status.replace('_', ' ')}).")
    values = {k: v for k, v in flow.form_values(ex).items() if not isinstance(v, dict)}
    if actor is not None:
        values.update(drafts.load(tx, ws, ex, actor))
    return FormSpec(
        execution_id=ex.id,
        run=run.name,
        checkpoint=cp.title,
        instructions=cp.instructions,
        feedback=ex.feedback if ex.revision else None,
        inputs=list(cp.inputs),
        values=values,
    )


def pending(tx: Tx, actor: Actor, limit: int) -> list[PendingItem]:
    """What waits for ``actor``, the nearest deadline first; what has none after, oldest first."""
    due = (
        select(TimerRow.execution_id, func.min(TimerRow.due_at).label("due_at"))
        .where(TimerRow.state == "open", TimerRow.kind.in_(timers.DEADLINES))
        .group_by(TimerRow.execution_id)
        .subquery()
    )
    stmt = (
        select(ExecutionRow, RunRow, due.c.due_at)
        .join(RunRow, RunRow.id == ExecutionRow.run_id)
        .outerjoin(due, due.c.execution_id == ExecutionRow.id)
        .where(
            RunRow.platform == actor.platform,
            RunRow.status == R.IN_PROGRESS,
            ExecutionRow.status.in_(
                [E.WAITING_APPROVAL_TO_START, E.WAITING_FOR_INPUT, E.WAITING_APPROVAL_TO_COMPLETE]
            ),
        )
        .order_by(due.c.due_at.is_(None), due.c.due_at, ExecutionRow.id)
        .limit(limit * 4)
    )
    items: list[PendingItem] = []
    for ex, run, due_at in tx.session.execute(stmt):
        pipeline = tx.pipeline(run)
        cp = pipeline.checkpoint(ex.checkpoint_id)
        if ex.status == E.WAITING_FOR_INPUT:
            card = flow.form_card(tx, run, ex, cp)
            stage, buttons = "form", card.buttons
        else:
            extra = human.extra_approvers(tx, ex)
            may = is_approver(pipeline, actor, extra) and not (
                pipeline.prevent_self_approval and run.started_by == actor.key
            )
            if not may:
                continue
            stage = "start" if ex.status == E.WAITING_APPROVAL_TO_START else "complete"
            buttons = flow.approval_card(tx, run, ex, cp, stage).buttons
        items.append(
            PendingItem(
                execution_id=ex.id,
                run=run.name,
                checkpoint=cp.title,
                stage=stage,
                buttons=buttons,
                due_at=due_at,
                due=messages.due_in((due_at - tx.now()).total_seconds()) if due_at else None,
            )
        )
    return items[:limit]
