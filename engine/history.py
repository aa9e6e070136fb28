"""A run's audit trail, read from ``events``, ``human_interactions`` and ``rollback_events``."""

from __future__ import annotations

import json
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import or_, select

from engine import runs
from engine.models import EventRow, ExecutionRow, InteractionRow, RollbackRow, RunRow
from engine.tx import Tx

PAGE_SIZE = 20

INTERACTIONS = {
    "submit_form": "submitted the form",
    "approve_start": "approved the start",
    "approve_complete": "approved the result",
    "request_revision": "asked for a revision",
    "pause": "pause",
    "resume": "resume",
    "cancel": "cancel",
    "rollback": "rollback",
    "confirm_rollback": "confirm a rollback",
    "restore": "restore",
    "retry": "retry",
    "show_changes": "showed the changes",
}
RUN_EVENTS = {
    ("not_started", "in_progress"): "started the run",
    ("in_progress", "paused"): "paused the run",
    ("paused", "in_progress"): "resumed the run",
    ("in_progress", "completed"): "run completed",
    ("in_progress", "failed"): "run failed",
    ("in_progress", "cancelled"): "cancelled the run",
    ("paused", "cancelled"): "cancelled the run",
    ("not_started", "cancelled"): "cancelled the run",
}


class HistoryEntry(BaseModel):
    at: datetime
    actor: str | None
    checkpoint: str | None
    what: str

    def line(self) -> str:
        who = f" · {self.actor}" if self.actor else ""
        where = f" · {self.checkpoint}" if self.checkpoint else ""
        return f"{self.at.strftime('%Y-%m-%d %H:%M:%S')}{who}{where} — {self.what}"


class HistoryPage(BaseModel):
    run: str
    run_id: int
    status: str
    rolled_back: str | None  # "rolled back by Ana at …" for a run-level rolled-back run
    page: int
    pages: int
    entries: list[HistoryEntry]


def _name(key: str | None, names: dict[str, str]) -> str | None:
    if key is None:
        return None
    return names.get(key, key.partition(":")[2] or key)


def entries(tx: Tx, run: RunRow) -> list[HistoryEntry]:
    """Every event of the run, oldest first."""
    s = tx.session
    rows = s.execute(select(ExecutionRow.id, ExecutionRow.checkpoint_id).where(ExecutionRow.run_id == run.id))
    checkpoints: dict[int, str] = {ex_id: cp for ex_id, cp in rows}
    inter = list(
        s.scalars(select(InteractionRow).where(InteractionRow.run_id == run.id).order_by(InteractionRow.id))
    )
    names = {f"{i.actor_platform}:{i.actor_id}": i.actor_name for i in inter}
    names[run.started_by] = run.started_by_name
    rbs = list(
        s.scalars(select(RollbackRow).where(or_(RollbackRow.run_id == run.id)).order_by(RollbackRow.id))
    )
    names.update({rb.actor: rb.actor_name for rb in rbs if rb.actor_name})
    out: list[tuple[datetime, int, HistoryEntry]] = []
    for i in inter:
        data = json.loads(i.data_json) if i.data_json else {}
        what = INTERACTIONS.get(i.kind, i.kind.replace("_", " "))
        if i.outcome == "refused":
            what = f"refused: {what} ({data.get('reason', '')})"
        elif i.outcome == "approval":
            what = f"{what} (one of the approvals needed)"
        elif i.kind == "request_revision":
            what += f": {data.get('feedback', '')}"
        out.append(
            (
                i.created_at,
                1,
                HistoryEntry(
                    at=i.created_at,
                    actor=i.actor_name,
                    checkpoint=checkpoints.get(i.execution_id or 0),
                    what=what,
                ),
            )
        )
    for e in s.scalars(select(EventRow).where(EventRow.run_id == run.id).order_by(EventRow.id)):
        reason = f" ({e.reason})" if e.reason else ""
        if e.entity == "run":
            what = RUN_EVENTS.get(
                (e.from_state, e.to_state),
                f"run {e.from_state.replace('_', ' ')} → {e.to_state.replace('_', ' ')}",
            )
            if e.reason and (e.reason.startswith(("rollback", "restore", "retry"))):
                what = f"run {e.to_state.replace('_', ' ')}"
            out.append(
                (
                    e.created_at,
                    0,
                    HistoryEntry(
                        at=e.created_at, actor=_name(e.actor, names), checkpoint=None, what=what + reason
                    ),
                )
            )
        elif e.to_state in ("completed", "failed", "rolled_back", "cancelled") or (e.reason or "").startswith(
            ("retry", "restore")
        ):
            what = f"{e.to_state.replace('_', ' ')}{reason}"
            out.append(
                (
                    e.created_at,
                    2,
                    HistoryEntry(
                        at=e.created_at,
                        actor=_name(e.actor, names),
                        checkpoint=checkpoints.get(e.entity_id),
                        what=what,
                    ),
                )
            )
    for rb in rbs:
        if rb.status not in ("applied", "restored"):
            continue
        at = rb.updated_at or rb.created_at
        if rb.kind == "restore":
            what = f"restored rollback {rb.restores_id} (restore {rb.id})"
        elif rb.kind == "run":
            what = f"rollback {rb.id}: {run.pipeline_slug} returned to v{rb.to_version}"
        else:
            what = (
                f"rollback {rb.id} to {rb.to_checkpoint_id}: {rb.execution_count} execution(s), "
                f"{rb.file_count} file(s) archived to {rb.archive_path}"
            )
        out.append(
            (
                at,
                -1,  # before what it caused at the same moment
                HistoryEntry(at=at, actor=rb.actor_name, checkpoint=rb.to_checkpoint_id or None, what=what),
            )
        )
    out += _rolled_back_by(tx, run)
    out.sort(key=lambda t: (t[0], t[1]))
    return [e for _, _, e in out]


def _rolled_back_by(tx: Tx, run: RunRow) -> list[tuple[datetime, int, HistoryEntry]]:
    """A run archived by a run-level rollback made from another run's name."""
    items = tx.session.execute(
        select(RollbackRow).where(
            RollbackRow.kind == "run",
            RollbackRow.pipeline_slug == run.pipeline_slug,
            RollbackRow.run_id != run.id,
        )
    ).scalars()
    out = []
    for rb in items:
        if rb.status in ("applied", "restored") and run.id in json.loads(rb.plan_json or "{}").get(
            "runs", []
        ):
            at = rb.updated_at or rb.created_at
            what = f"archived by rollback {rb.id} ({run.pipeline_slug} returned to v{rb.to_version})"
            out.append((at, -1, HistoryEntry(at=at, actor=rb.actor_name, checkpoint=None, what=what)))
    return out


def rolled_back_note(tx: Tx, run: RunRow) -> str | None:
    """ "rolled back by Ana at 2026-01-01 09:00 (rollback 3: blog-post returned to v1)"."""
    if run.status != "rolled_back":
        return None
    event = tx.session.scalar(
        select(EventRow)
        .where(EventRow.run_id == run.id, EventRow.entity == "run", EventRow.to_state == "rolled_back")
        .order_by(EventRow.id.desc())
        .limit(1)
    )
    if event is None:
        return "rolled back"
    rb_id = int((event.reason or "rollback 0").split()[-1])
    rb = tx.session.get(RollbackRow, rb_id)
    who = rb.actor_name if rb and rb.actor_name else _name(event.actor, {})
    where = f": {run.pipeline_slug} returned to v{rb.to_version}" if rb else ""
    return f"rolled back by {who} at {event.created_at.strftime('%Y-%m-%d %H:%M')} (rollback {rb_id}{where})"


def page(tx: Tx, name: str, number: int = 1, size: int = PAGE_SIZE) -> HistoryPage:
    run = runs.find_run(tx.session, name)
    items = entries(tx, run)
    pages = max(1, -(-len(items) // size))
    number = min(max(1, number), pages)
    return HistoryPage(
        run=run.name,
        run_id=run.id,
        status=run.status,
        rolled_back=rolled_back_note(tx, run),
        page=number,
        pages=pages,
        entries=items[(number - 1) * size : number * size],
    )


def page_of_run(tx: Tx, run_id: int, number: int) -> HistoryPage:
    run = tx.session.get(RunRow, run_id)
    if run is None:
        return page(tx, f"#{run_id}", number)
    return page(tx, run.name, number)
