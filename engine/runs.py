"""Run-level commands: start (or extend), pause, resume, cancel (rollbacks: engine.rollbacks)."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import artifacts, flow, messages
from engine.actors import Actor, Conversation
from engine.errors import AlreadyDone, NotFound, Refused, UsageError
from engine.human import Outcome
from engine.models import (
    ExecutionRow,
    PipelineRow,
    RunRow,
)
from engine.permissions import check_run_control
from engine.roles import check_start
from engine.states import ExecStatus as E
from engine.states import RunStatus as R
from engine.states import move_execution, move_run
from engine.tx import Tx
from engine.workspace import Workspace

RUN_NAME = re.compile(r"^(?P<slug>[a-z0-9][a-z0-9_-]*)(?:#v?(?P<version>\d+))?$")


def find_run(session: Session, name: str) -> RunRow:
    """``blog-post#v3`` (or ``blog-post#3``); a bare ``blog-post`` is its latest run."""
    m = RUN_NAME.match(name.strip())
    if not m:
        raise UsageError(f"'{name}' is not a run name; runs are named like blog-post#v3.")
    q = select(RunRow).where(RunRow.pipeline_slug == m["slug"])
    q = q.where(RunRow.version == int(m["version"])) if m["version"] else q.order_by(RunRow.version.desc())
    run = session.scalar(q.limit(1))
    if run is None:
        raise NotFound(f"There is no run {name}.")
    return run


def start(
    tx: Tx,
    ws: Workspace,
    slug: str,
    actor: Actor,
    where: Conversation,
    extend: int | None = None,
    scheduled: bool = False,
    finish_hook: str | None = None,
) -> RunRow:
    """Start a run; runners and channels are checked unless the pipeline's own schedule starts it."""
    # The latest version's row is locked (PostgreSQL; SQLite's write lock already serializes) so
    # that concurrent starts of one pipeline take max(version) + 1 one after another.
    row = tx.session.scalar(
        select(PipelineRow)
        .where(PipelineRow.slug == slug)
        .order_by(PipelineRow.version.desc())
        .limit(1)
        .with_for_update(key_share=True)
    )
    if row is None or row.deleted_at is not None:
        raise NotFound(messages.NO_PIPELINE.format(slug=slug))
    if not scheduled:
        check_start(tx.roles, tx.definitions.get(tx.session, row.id), actor, where)
    extends_id = None
    if extend is not None:
        extends_id = find_run(tx.session, f"{slug}#v{extend}").id
    version = (
        tx.session.scalar(select(func.max(RunRow.version)).where(RunRow.pipeline_slug == slug)) or 0
    ) + 1
    now = tx.now()
    run = RunRow(
        pipeline_id=row.id,
        pipeline_slug=slug,
        version=version,
        status=R.NOT_STARTED,
        platform=where.platform,
        channel=where.channel,
        thread=where.thread,
        started_by=actor.key,
        started_by_name=actor.name,
        extends_run_id=extends_id,
        position=0,
        created_at=now,
        updated_at=now,
        finished_at=None,
        finish_hook=finish_hook,
    )
    tx.session.add(run)
    tx.session.flush()
    ws.run_dir(slug, version).mkdir(parents=True, exist_ok=True)
    artifacts.point_latest(tx, ws, slug)  # runs/latest: the newest run not rolled back
    move_run(tx.session, tx.clock, run, R.IN_PROGRESS, actor=actor.key)
    flow.show_run(tx, run)
    extra = f" (extends v{extend})" if extend is not None else ""
    flow.notice(tx, run, f"{run.name} started by {actor.name}{extra}.")
    flow.enter(tx, ws, run, 0)
    return run


def _control(tx: Tx, name: str, actor: Actor) -> RunRow:
    run = find_run(tx.session, name)
    tx.session.refresh(run, with_for_update=True)
    check_run_control(tx.roles, tx.pipeline(run), run, actor)
    return run


def pause(tx: Tx, name: str, actor: Actor) -> Outcome:
    run = _control(tx, name, actor)
    if run.status == R.PAUSED:
        raise AlreadyDone(f"{run.name} is already paused.")
    if run.status != R.IN_PROGRESS:
        raise Refused(messages.RUN_OVER.format(run=run.name, status=run.status))
    move_run(tx.session, tx.clock, run, R.PAUSED, actor=actor.key)
    flow.notice(tx, run, f"{run.name} paused by {actor.name}.", "warning")
    flow.show_run(tx, run)
    return Outcome(f"Paused {run.name}.")


def resume(tx: Tx, ws: Workspace, name: str, actor: Actor) -> Outcome:
    run = _control(tx, name, actor)
    if run.status == R.IN_PROGRESS:
        raise AlreadyDone(f"{run.name} is not paused.")
    if run.status != R.PAUSED:
        raise Refused(messages.RUN_OVER.format(run=run.name, status=run.status))
    move_run(tx.session, tx.clock, run, R.IN_PROGRESS, actor=actor.key)
    flow.notice(tx, run, f"{run.name} resumed by {actor.name}.")
    if flow.active_execution(tx, run) is None and run.position < len(tx.pipeline(run).checkpoints):
        flow.enter(tx, ws, run, run.position)
    flow.show_run(tx, run)
    return Outcome(f"Resumed {run.name}.")


def close_open_card(tx: Tx, run: RunRow, ex: ExecutionRow, text: str) -> None:
    """Replace the buttons of whatever the execution was waiting for with ``text``."""
    cp = flow.checkpoint_of(tx, run, ex)
    if ex.status == E.WAITING_APPROVAL_TO_START:
        tx.notify(run, flow.approval_card(tx, run, ex, cp, "start", decided=text))
    elif ex.status == E.WAITING_APPROVAL_TO_COMPLETE:
        tx.notify(run, flow.approval_card(tx, run, ex, cp, "complete", decided=text))
    elif ex.status == E.WAITING_FOR_INPUT:
        tx.notify(run, flow.form_card(tx, run, ex, cp, decided=text))


def cancel(tx: Tx, name: str, actor: Actor) -> Outcome:
    run = _control(tx, name, actor)
    if run.status == R.CANCELLED:
        raise AlreadyDone(f"{run.name} is already cancelled.")
    if run.status not in (R.IN_PROGRESS, R.PAUSED, R.NOT_STARTED):
        raise Refused(messages.RUN_OVER.format(run=run.name, status=run.status))
    return cancel_run(tx, run, actor)


def cancel_run(tx: Tx, run: RunRow, actor: Actor, decided: str | None = None) -> Outcome:
    """Cancel an active run (the caller checked who may, and locked the run); ``decided`` is the
    open card's new wording (the deadline's)."""
    ex = flow.active_execution(tx, run)
    if ex is not None:
        close_open_card(tx, run, ex, decided or flow.decided_text("Cancelled", actor.name, tx))
        move_execution(tx.session, tx.clock, ex, E.CANCELLED, actor=actor.key)
    move_run(tx.session, tx.clock, run, R.CANCELLED, actor=actor.key)
    flow.notice(tx, run, f"{run.name} cancelled by {actor.name}.", "warning")
    flow.show_run(tx, run)
    return Outcome(f"Cancelled {run.name}.")
