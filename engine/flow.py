"""How a run moves through its checkpoints: enter, begin, work done, complete, advance.

These functions run inside a write transaction (``Tx``); the transitions themselves are made
by engine.states, and each step writes the notifications chat should show.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import select

from engine import artifacts, edits, messages, seen, timers
from engine.definitions import Checkpoint
from engine.models import ExecutionRow, RunRow
from engine.notifications import (
    Action,
    ApprovalCard,
    ArtifactsCard,
    Button,
    Field_,
    FormCard,
    NoticeCard,
    RunStatusCard,
    Style,
)
from engine.states import EXEC_ACTIVE, move_execution, move_run
from engine.states import ExecStatus as E
from engine.states import RunStatus as R
from engine.tx import Tx
from engine.workspace import Workspace


def checkpoint_of(tx: Tx, run: RunRow, ex: ExecutionRow) -> Checkpoint:
    return tx.pipeline(run).checkpoint(ex.checkpoint_id)


def may_have_artifacts(cp: Checkpoint) -> bool:
    """Only forms and work produce files: a pure approval gate has none to look up."""
    return bool(cp.inputs) or cp.mode != "human_only"


def show_run(tx: Tx, run: RunRow) -> None:
    tx.notify(run, RunStatusCard(key="run", run=tx.run_info(run)))
    tx.session.info.setdefault("moved_runs", {})[run.id] = run  # its run_info.json too (engine.tx)


def notice(
    tx: Tx,
    run: RunRow,
    text: str,
    level: str = "info",
    buttons: list[Button] | None = None,
    *,
    mentions: list[str] | None = None,
    direct: list[str] | None = None,
) -> None:
    tx.log(run, text.splitlines()[0] if text else text)
    tx.notify(
        run,
        NoticeCard(
            key=f"note:{uuid.uuid4().hex[:16]}",
            run=tx.run_info(run),
            text=text,
            level=level,  # type: ignore[arg-type]
            buttons=buttons or [],
            mentions=mentions or [],
            direct=direct or [],
        ),
    )


def active_execution(tx: Tx, run: RunRow) -> ExecutionRow | None:
    return tx.session.scalar(
        select(ExecutionRow)
        .where(ExecutionRow.run_id == run.id, ExecutionRow.status.in_(EXEC_ACTIVE))
        .order_by(ExecutionRow.id.desc())
        .limit(1)
    )


def enter(tx: Tx, ws: Workspace, run: RunRow, position: int) -> ExecutionRow:
    pipeline = tx.pipeline(run)
    cp = pipeline.checkpoints[position]
    now = tx.now()
    ex = ExecutionRow(
        run_id=run.id,
        checkpoint_id=cp.id,
        position=position,
        mode=cp.mode,
        status=E.PENDING,
        created_at=now,
        updated_at=now,
    )
    tx.session.add(ex)
    run.position = position
    tx.session.flush()
    ws.temp_dir(run.pipeline_slug, ex.id)
    # Without auto_advance, a human starts every checkpoint after the first.
    # A meta agent's approval to start is asked once it has proposed its team (engine.work).
    meta = cp.agent is not None and cp.agent.mode == "meta"
    if (cp.human.approval_to_start and not meta) or (position > 0 and not pipeline.auto_advance):
        move_execution(tx.session, tx.clock, ex, E.WAITING_APPROVAL_TO_START)
        timers.start_wait(tx, run, ex, cp, "start")
        tx.notify(run, approval_card(tx, run, ex, cp, "start"))
    else:
        begin(tx, ws, run, ex)
    show_run(tx, run)
    return ex


def begin(tx: Tx, ws: Workspace, run: RunRow, ex: ExecutionRow, actor: str | None = None) -> None:
    cp = checkpoint_of(tx, run, ex)
    # Agents re-run a revision with the feedback; forms and scripts ask for their inputs again.
    if cp.inputs and (cp.mode != "agent" or ex.form_json is None):
        move_execution(tx.session, tx.clock, ex, E.WAITING_FOR_INPUT, actor=actor)
        timers.start_wait(tx, run, ex, cp, "form")
        tx.notify(run, form_card(tx, run, ex, cp))
    elif cp.mode == "human_only":
        # Nothing to fill in: the checkpoint is a pure approval gate.
        work_done(tx, ws, run, ex, actor=actor)
    else:
        move_execution(tx.session, tx.clock, ex, E.RUNNING, actor=actor)
        ex.not_before = None


def work_done(tx: Tx, ws: Workspace, run: RunRow, ex: ExecutionRow, actor: str | None = None) -> None:
    """The form is in or the work produced its outputs: ask for approval or complete."""
    cp = checkpoint_of(tx, run, ex)
    rows = artifacts.of_execution(tx, ex.id) if may_have_artifacts(cp) else []
    if rows:
        tx.notify(
            run,
            ArtifactsCard(
                key=f"exec:{ex.id}:artifacts:{ex.revision}",
                run=tx.run_info(run),
                execution_id=ex.id,
                checkpoint=cp.title,
                artifacts=[artifacts.info(ws, r) for r in rows],
            ),
        )
    if cp.human.approval_to_complete:
        move_execution(tx.session, tx.clock, ex, E.WAITING_APPROVAL_TO_COMPLETE, actor=actor)
        timers.start_wait(tx, run, ex, cp, "complete")
        tx.notify(run, approval_card(tx, run, ex, cp, "complete"))
    else:
        complete(tx, ws, run, ex, actor=actor)


def complete(
    tx: Tx,
    ws: Workspace,
    run: RunRow,
    ex: ExecutionRow,
    actor: str | None = None,
    *,
    rule: str | None = None,
    reason: str | None = None,
) -> None:
    move_execution(tx.session, tx.clock, ex, E.COMPLETED, actor=actor, rule=rule, reason=reason)
    run.done += 1
    if may_have_artifacts(checkpoint_of(tx, run, ex)):
        artifacts.promote(tx, ws, run, ex)
    # Its artifacts are promoted: the work folder goes once this commits (a failure keeps it).
    slug, ex_id = run.pipeline_slug, ex.id
    tx.after_commit.append(lambda: ws.drop_temp(slug, ex_id))
    advance(tx, ws, run)


def advance(tx: Tx, ws: Workspace, run: RunRow) -> None:
    """Enter the next checkpoint, finish the run, or wait for a resume when paused."""
    total = len(tx.pipeline(run).checkpoints)
    nxt = run.position + 1
    if nxt >= total:
        run.position = total
        move_run(tx.session, tx.clock, run, R.COMPLETED)
        notice(tx, run, f"{run.name} completed.", "success")
        show_run(tx, run)
        return
    if run.status == R.PAUSED:
        run.position = nxt  # resume enters it
        show_run(tx, run)
        return
    enter(tx, ws, run, nxt)


def form_values(ex: ExecutionRow) -> dict[str, Any]:
    return dict(json.loads(ex.form_json)) if ex.form_json else {}


def _value_text(value: Any) -> str:
    if isinstance(value, dict) and "file" in value:
        return f"{value['file']} ({value['size']} bytes)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "—" if value is None or value == "" else str(value)


def _button(action: Action, label: str, style: Style | None, ex: ExecutionRow, shown: seen.Seen) -> Button:
    """A decision button that carries what its card shows (engine.seen)."""
    return Button(
        action=action,
        execution_id=ex.id,
        label=label,
        style=style,
        revision=shown.revision,
        digest=shown.digest,
    )


def approval_card(
    tx: Tx,
    run: RunRow,
    ex: ExecutionRow,
    cp: Checkpoint,
    stage: str,
    approvals: int = 0,
    decided: str | None = None,
) -> ApprovalCard:
    pipeline = tx.pipeline(run)
    buttons: list[Button] = []
    due_at, extra = None, ""
    if decided is None:
        shown = seen.of(tx, ex)
        if stage == "start":
            buttons.append(_button("approve_start", "Approve start", "primary", ex, shown))
        else:
            buttons.append(_button("approve_complete", "Approve", "primary", ex, shown))
            if ex.revision < cp.human.max_revisions:
                buttons.append(_button("request_revision", "Request revision", "danger", ex, shown))
            buttons.append(_button("approve_with_comment", "Approve with comment", None, ex, shown))
            if edits.editable(tx, cp, ex):
                buttons.append(_button("edit_and_approve", "Edit and approve", None, ex, shown))
            if ex.revision > 0 or run.extends_run_id is not None:  # see engine.changes.available
                buttons.append(_button("show_changes", "Show changes", None, ex, shown))
        buttons.append(_button("reject", "Reject", "danger", ex, shown))
        if pipeline.approvers:
            buttons.append(Button(action="reassign", execution_id=ex.id, label="Reassign"))
        due_at = timers.due_at(tx, ex)
        extra = timers.added_approvers_text(tx, ex)
    labels = {f.id: f.label for f in cp.inputs}
    fields = [Field_(label=labels.get(k, k), value=_value_text(v)) for k, v in form_values(ex).items()]
    text = (
        f"Approve starting *{cp.title}*?"
        if stage == "start"
        else f"*{cp.title}* is ready for review." + (f" (revision {ex.revision})" if ex.revision else "")
    )
    if stage == "start" and cp.description:
        text += f"\n{cp.description}"
    if extra:
        text += f"\n{extra}"
    return ApprovalCard(
        key=f"exec:{ex.id}:{stage}:{ex.revision if stage == 'complete' else 0}",
        run=tx.run_info(run),
        execution_id=ex.id,
        stage=stage,  # type: ignore[arg-type]
        checkpoint=cp.title,
        text=text,
        fields=fields if stage == "complete" else [],
        approvals=approvals,
        required=pipeline.required_approvals,
        buttons=buttons,
        decided=decided,
        due_at=due_at,
    )


def form_card(tx: Tx, run: RunRow, ex: ExecutionRow, cp: Checkpoint, decided: str | None = None) -> FormCard:
    buttons = [] if decided else [_button("open_form", "Open form", "primary", ex, seen.of(tx, ex))]
    text = f"*{cp.title}*: please fill in the form." + (f"\n{cp.instructions}" if cp.instructions else "")
    return FormCard(
        key=f"exec:{ex.id}:form:{ex.revision}",
        run=tx.run_info(run),
        execution_id=ex.id,
        checkpoint=cp.title,
        text=text,
        feedback=ex.feedback if ex.revision else None,
        buttons=buttons,
        decided=decided,
        due_at=None if decided else timers.due_at(tx, ex),
    )


def decided_text(verb: str, who: str, tx: Tx) -> str:
    return messages.decided(verb, who, tx.now())
