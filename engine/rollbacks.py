"""Rollbacks (to a checkpoint of a run, or of a pipeline to an earlier run) and their restores.

A rollback is proposed first (``propose``: a ``rollback_events`` row in ``proposed`` with what
it would archive, shown with Confirm / Keep buttons), then confirmed in three steps that never
lose a file: ``prepare`` commits the plan of moves (status ``moving``), engine.archive_moves
moves the files, ``apply`` commits the new state. ``recover`` undoes the moves of a plan whose
process died in between. Archives never collide:
``.archived/rollback_{id}_{time}/{checkpoint}/exec_{execution}/…`` and ``…/runs/v{N}/…``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from engine import artifact_revisions, artifacts, flow, messages
from engine.actors import Actor
from engine.archive_moves import Plan, prune
from engine.errors import AlreadyDone, NotFound, Refused, UsageError
from engine.human import Outcome
from engine.models import ArchivedItemRow, ArtifactRow, ExecutionRow, RollbackRow, RunRow
from engine.notifications import Button
from engine.permissions import check_run_control
from engine.runs import RUN_NAME, close_open_card, find_run
from engine.states import EXEC_ACTIVE, move_execution, move_run
from engine.states import ExecStatus as E
from engine.states import RunStatus as R
from engine.tx import Tx
from engine.workspace import Workspace

PROPOSED, MOVING, APPLIED, KEPT, RESTORED, STALE = (
    "proposed",
    "moving",
    "applied",
    "kept",
    "restored",
    "stale",
)
WAITING = (E.WAITING_APPROVAL_TO_START, E.WAITING_APPROVAL_TO_COMPLETE, E.WAITING_FOR_INPUT)


@dataclass(frozen=True)
class Proposal:
    rollback_id: int
    text: str
    buttons: list[Button]


def _archive(run_slug: str, rb: RollbackRow) -> str:
    return f"{run_slug}/.archived/rollback_{rb.id}_{rb.created_at.strftime('%Y%m%dT%H%M%S')}"


def _artifact_paths(tx: Tx, run_ids: list[int]) -> dict[str, int]:
    rows = tx.session.scalars(
        select(ArtifactRow).where(ArtifactRow.run_id.in_(run_ids), ArtifactRow.archived.is_(False))
    )
    return {r.path: r.id for r in rows}


def _executions(tx: Tx, run: RunRow, position: int) -> list[ExecutionRow]:
    return list(
        tx.session.scalars(
            select(ExecutionRow)
            .where(
                ExecutionRow.run_id == run.id,
                ExecutionRow.position >= position,
                ExecutionRow.status != E.ROLLED_BACK,
            )
            .order_by(ExecutionRow.id)
        )
    )


def _archive_executions(
    tx: Tx, ws: Workspace, plan: Plan, run: RunRow, execs: list[ExecutionRow], archive: str
) -> None:
    """Each execution's promoted files and its .temp folder go to {checkpoint}/exec_{id}/."""
    paths = _artifact_paths(tx, [run.id])
    slug = run.pipeline_slug
    for ex in execs:
        base = f"{archive}/{ex.checkpoint_id}/exec_{ex.id}"
        plan.executions.append(ex.id)
        plan.before.setdefault("executions", {})[str(ex.id)] = ex.status
        for art in artifacts.of_execution(tx, ex.id):
            plan.artifacts.append(art.id)
            if art.promoted:
                plan.add(ws, art.path, f"{base}/{art.path.rsplit('/', 1)[-1]}", paths)
        plan.add(ws, f"{slug}/.temp/exec_{ex.id}", f"{base}/temp", paths)
        # Each revision's copy (engine.artifact_revisions) goes too, unlisted: not a file of its own.
        plan.add(ws, ws.relative(ws.revisions_dir(slug, ex.id)), f"{base}/revisions", paths, listed=False)


def _checkpoint_plan(tx: Tx, ws: Workspace, run: RunRow, position: int, archive: str) -> Plan:
    plan = Plan()
    plan.before["runs"] = {str(run.id): _run_state(run)}
    _archive_executions(tx, ws, plan, run, _executions(tx, run, position), archive)
    return plan


def _later_runs(tx: Tx, run: RunRow) -> list[RunRow]:
    return list(
        tx.session.scalars(
            select(RunRow)
            .where(
                RunRow.pipeline_slug == run.pipeline_slug,
                RunRow.version > run.version,
                RunRow.status != R.ROLLED_BACK,
            )
            .order_by(RunRow.version)
        )
    )


def _run_plan(tx: Tx, ws: Workspace, later: list[RunRow], archive: str) -> Plan:
    plan = Plan()
    for run in later:
        plan.runs.append(run.id)
        plan.before.setdefault("runs", {})[str(run.id)] = _run_state(run)
        paths = _artifact_paths(tx, [run.id])
        base = f"{archive}/runs/v{run.version}"
        execs = list(tx.session.scalars(select(ExecutionRow).where(ExecutionRow.run_id == run.id)))
        for art in artifacts.of_runs(tx, [run.id]):
            plan.artifacts.append(art.id)
        plan.add(ws, ws.relative(ws.run_dir(run.pipeline_slug, run.version)), base, paths)
        for ex in execs:
            if ex.status in EXEC_ACTIVE:
                plan.executions.append(ex.id)
                plan.before.setdefault("executions", {})[str(ex.id)] = ex.status
            plan.add(ws, f"{run.pipeline_slug}/.temp/exec_{ex.id}", f"{base}/.temp/exec_{ex.id}", paths)
            revs = ws.relative(ws.revisions_dir(run.pipeline_slug, ex.id))
            plan.add(ws, revs, f"{base}/.revisions/exec_{ex.id}", paths, listed=False)
    return plan


def _run_state(run: RunRow) -> dict[str, object]:
    return {"status": run.status, "position": run.position, "done": run.done}


def _describe(tx: Tx, rb: RollbackRow, plan: Plan) -> str:
    run = tx.session.get(RunRow, rb.run_id)
    assert run is not None
    size = messages.size_text(plan.size)
    if rb.kind == "run":
        names = [r.name for r in (tx.session.get(RunRow, i) for i in plan.runs) if r is not None]
        head = f"Return *{run.pipeline_slug}* to v{run.version}? This archives {', '.join(names)}"
    else:
        head = f"Roll back *{run.name}* to {rb.to_checkpoint_id}? This archives"
        execs = [tx.session.get(ExecutionRow, i) for i in plan.executions]
        head += " " + ", ".join(
            f"{e.checkpoint_id} (exec {e.id}, {e.status.replace('_', ' ')})" for e in execs if e is not None
        )
    lines = [f"{head} — {len(plan.files)} file(s), {size}:"]
    lines += [f"• {f['original']}" for f in plan.files[:15]]
    if len(plan.files) > 15:
        lines.append(f"… and {len(plan.files) - 15} more")
    lines.append(f"Nothing is deleted: they move to {_archive(run.pipeline_slug, rb)}/.")
    return "\n".join(lines)


def propose(tx: Tx, ws: Workspace, target: str, checkpoint_id: str | None, actor: Actor) -> Proposal:
    m = RUN_NAME.match(target.strip())
    if checkpoint_id is None and (m is None or m["version"] is None):
        raise UsageError(
            "Usage: /pipeline rollback <run> <checkpoint>, or <pipeline>#v<N> to return to v<N>."
        )
    run = find_run(tx.session, target)
    now = tx.now()
    rb = RollbackRow(
        run_id=run.id,
        to_checkpoint_id=checkpoint_id or "",
        actor=actor.key,
        actor_name=actor.name,
        archive_path="",
        created_at=now,
        updated_at=now,
        kind="checkpoint" if checkpoint_id else "run",
        status=PROPOSED,
        pipeline_slug=run.pipeline_slug,
        to_version=None if checkpoint_id else run.version,
    )
    plan = _plan(tx, ws, rb, run, actor, flush=True)
    rb.plan_json = json.dumps(plan.to_json())
    rb.file_count, rb.byte_count = len(plan.files), plan.size
    buttons = [
        Button(action="confirm_rollback", execution_id=rb.id, label="Confirm rollback", style="danger"),
        Button(action="keep_rollback", execution_id=rb.id, label="Keep as is"),
    ]
    return Proposal(rb.id, _describe(tx, rb, plan), buttons)


def _plan(tx: Tx, ws: Workspace, rb: RollbackRow, run: RunRow, actor: Actor, flush: bool = False) -> Plan:
    """Check who and what, then the moves (the row gets its id first: the archive is named by it)."""
    pipeline = tx.pipeline(run)
    if rb.kind == "checkpoint":
        check_run_control(tx.roles, pipeline, run, actor)
        ids = [cp.id for cp in pipeline.checkpoints]
        if rb.to_checkpoint_id not in ids:
            raise UsageError(
                f"{run.name} has no checkpoint '{rb.to_checkpoint_id}'; it has {', '.join(ids)}."
            )
        if run.status in (R.CANCELLED, R.ROLLED_BACK, R.NOT_STARTED):
            raise Refused(messages.RUN_OVER.format(run=run.name, status=run.status.replace("_", " ")))
        position = ids.index(rb.to_checkpoint_id)
        if position > run.position or not _executions(tx, run, position):
            raise Refused(f"{run.name} has not reached {rb.to_checkpoint_id} yet.")
        if flush:
            tx.session.add(rb)
            tx.session.flush()
        return _checkpoint_plan(tx, ws, run, position, _archive(run.pipeline_slug, rb))
    if run.status == R.ROLLED_BACK:
        raise Refused(f"{run.name} is itself rolled back: restore it first.")
    later = _later_runs(tx, run)
    if not later:
        raise Refused(f"{run.name} is the latest run of {run.pipeline_slug}: there is nothing to roll back.")
    for other in later:
        check_run_control(tx.roles, tx.pipeline(other), other, actor)
    if flush:
        tx.session.add(rb)
        tx.session.flush()
    return _run_plan(tx, ws, later, _archive(run.pipeline_slug, rb))


def _load(tx: Tx, rollback_id: int) -> RollbackRow:
    rb = tx.session.get(RollbackRow, rollback_id, with_for_update=True)
    if rb is None:
        raise NotFound(f"There is no rollback {rollback_id}.")
    return rb


def _settled(rb: RollbackRow) -> None:
    """Refuse a second Confirm / Keep, saying what happened."""
    who = rb.actor_name or rb.actor
    if rb.status == APPLIED:
        raise AlreadyDone(f"Rollback {rb.id} was already confirmed ({who}).", by=who)
    if rb.status == KEPT:
        raise AlreadyDone(f"Rollback {rb.id} was not made: kept as is.")
    if rb.status == RESTORED:
        raise AlreadyDone(f"Rollback {rb.id} was made and later restored.")
    if rb.status == STALE:
        raise Refused(f"Rollback {rb.id} is out of date: the run changed since. Propose it again.")
    if rb.status == MOVING:
        raise Refused(f"Rollback {rb.id} is being made right now.")


def prepare(tx: Tx, ws: Workspace, rollback_id: int, actor: Actor) -> Plan | None:
    """Step 1 of Confirm: check again, and commit the plan of moves before any file moves.

    None: the run changed since the proposal (it is marked stale; a new one must be made)."""
    rb = _load(tx, rollback_id)
    if rb.kind == "restore":
        raise NotFound(f"There is no rollback {rollback_id} to confirm.")
    _settled(rb)
    run = tx.session.get(RunRow, rb.run_id, with_for_update=True)
    assert run is not None
    proposed = Plan.from_json(json.loads(rb.plan_json or "{}"))
    plan = _plan(tx, ws, rb, run, actor)
    if (plan.executions, plan.runs) != (proposed.executions, proposed.runs):
        rb.status = STALE
        return None
    rb.actor, rb.actor_name = actor.key, actor.name  # who confirmed is who rolled back
    rb.status, rb.updated_at = MOVING, tx.now()
    rb.plan_json = json.dumps(plan.to_json())
    rb.archive_path = _archive(run.pipeline_slug, rb)
    return plan


def keep(tx: Tx, rollback_id: int, actor: Actor) -> Outcome:
    rb = _load(tx, rollback_id)
    _settled(rb)
    run = tx.session.get(RunRow, rb.run_id)
    assert run is not None
    check_run_control(tx.roles, tx.pipeline(run), run, actor)
    rb.status, rb.updated_at = KEPT, tx.now()
    return Outcome(f"Kept {run.name} as it is: nothing was rolled back.")


def reset(tx: Tx, rollback_id: int) -> None:
    """After the moves were undone: the proposal stands again (a restore is dropped)."""
    rb = _load(tx, rollback_id)
    if rb.status == MOVING:
        rb.status = PROPOSED if rb.kind != "restore" else STALE
        rb.updated_at = tx.now()


def recover(tx: Tx, grace: timedelta) -> list[tuple[int, Plan]]:
    """Plans left ``moving`` by a process that died: their moves are to be undone."""
    stale = tx.now() - grace
    rows = tx.session.scalars(
        select(RollbackRow).where(RollbackRow.status == MOVING, RollbackRow.updated_at <= stale)
    )
    return [(rb.id, Plan.from_json(json.loads(rb.plan_json or "{}"))) for rb in rows]


def _record_files(tx: Tx, rb: RollbackRow, plan: Plan) -> None:
    now = tx.now()
    for f in plan.files:
        tx.session.add(
            ArchivedItemRow(
                rollback_id=rb.id,
                kind="artifact" if f.get("artifact_id") else "file",
                item_id=int(f.get("artifact_id") or 0),
                path=f["archived"],
                original_path=f["original"],
                archived_path=f["archived"],
                checksum=f["sha256"],
                size=int(f["size"]),
                created_at=now,
            )
        )


def _move_artifacts(tx: Tx, plan: Plan, archived: bool) -> None:
    for art_id in plan.artifacts:
        art = tx.session.get(ArtifactRow, art_id)
        assert art is not None
        new = plan.new_path(art.path)
        if new is not None:
            art.path = new
        art.archived = archived
    artifact_revisions.relocate(tx, plan.artifacts, plan.new_path)


def _check_unchanged(tx: Tx, plan: Plan, run_ids: list[int]) -> None:
    """The files moved as planned; refuse (and so undo them) if the run moved on meanwhile."""
    rows = tx.session.scalars(
        select(ArtifactRow.id).where(
            ArtifactRow.run_id.in_(run_ids),
            ArtifactRow.archived.is_(False),
            ArtifactRow.execution_id.in_(plan.executions)
            if not plan.runs
            else ArtifactRow.run_id.in_(plan.runs),
        )
    )
    if sorted(rows) != sorted(plan.artifacts):
        raise Refused("The run changed while the rollback was made; nothing was rolled back. Try again.")


def apply(tx: Tx, ws: Workspace, rollback_id: int, actor: Actor) -> Outcome:
    """Step 3 of Confirm: the files are in the archive; commit the state that matches them."""
    rb = _load(tx, rollback_id)
    if rb.status != MOVING:
        raise Refused(f"Rollback {rollback_id} is {rb.status}.")
    plan = Plan.from_json(json.loads(rb.plan_json or "{}"))
    run = tx.session.get(RunRow, rb.run_id, with_for_update=True)
    assert run is not None
    reason = f"rollback {rb.id}"
    now = tx.now()
    _check_unchanged(tx, plan, [run.id, *plan.runs])
    for ex_id in plan.executions:
        ex = tx.session.get(ExecutionRow, ex_id)
        assert ex is not None
        owner = run if ex.run_id == run.id else tx.session.get(RunRow, ex.run_id)
        assert owner is not None
        if ex.status in WAITING:
            close_open_card(tx, owner, ex, flow.decided_text("Rolled back", actor.name, tx))
        move_execution(tx.session, tx.clock, ex, E.ROLLED_BACK, actor=actor.key, reason=reason)
        ex.claimed_by = ex.heartbeat_at = None
        tx.session.add(ArchivedItemRow(rollback_id=rb.id, kind="execution", item_id=ex.id, created_at=now))
    _move_artifacts(tx, plan, archived=True)
    _record_files(tx, rb, plan)
    rb.status, rb.updated_at = APPLIED, now
    rb.file_count, rb.byte_count, rb.execution_count = len(plan.files), plan.size, len(plan.executions)
    size = messages.size_text(plan.size)
    if rb.kind == "checkpoint":
        position = [cp.id for cp in tx.pipeline(run).checkpoints].index(rb.to_checkpoint_id)
        undone = sum(1 for s in plan.before.get("executions", {}).values() if s == E.COMPLETED)
        if run.status in (R.COMPLETED, R.FAILED):
            move_run(tx.session, tx.clock, run, R.IN_PROGRESS, actor=actor.key, reason=reason)
            run.finished_at = None
        run.position, run.done = position, max(0, run.done - undone)
        flow.notice(
            tx,
            run,
            f"{run.name} rolled back to {rb.to_checkpoint_id} by {actor.name} (rollback {rb.id}: "
            f"{len(plan.executions)} execution(s), {len(plan.files)} file(s), {size} archived).",
            "warning",
        )
        if run.status == R.IN_PROGRESS:
            flow.enter(tx, ws, run, position)
        flow.show_run(tx, run)
        text = f"Rolled back {run.name} to {rb.to_checkpoint_id} (rollback {rb.id})."
    else:
        for other_id in plan.runs:
            other = tx.session.get(RunRow, other_id, with_for_update=True)
            assert other is not None
            if other.status in (R.IN_PROGRESS, R.PAUSED, R.NOT_STARTED):
                move_run(tx.session, tx.clock, other, R.CANCELLED, actor=actor.key, reason=reason)
            move_run(tx.session, tx.clock, other, R.ROLLED_BACK, actor=actor.key, reason=reason)
            tx.session.add(ArchivedItemRow(rollback_id=rb.id, kind="run", item_id=other.id, created_at=now))
            flow.notice(
                tx,
                other,
                f"{other.name} rolled back by {actor.name}: {run.pipeline_slug} returns to v{run.version} "
                f"(rollback {rb.id}).",
                "warning",
            )
            flow.show_run(tx, other)
        tx.log(run, f"{run.pipeline_slug} returned to {run.name} by {actor.name} (rollback {rb.id}, {size})")
        count = len(plan.runs)
        text = f"Returned {run.pipeline_slug} to {run.name} (rollback {rb.id}: {count} run(s) archived)."
    _after(tx, ws, run.pipeline_slug, plan)
    return Outcome(text)


def _after(tx: Tx, ws: Workspace, slug: str, plan: Plan) -> None:
    tx.after_commit.append(lambda: prune(ws, [src for src, _ in plan.moves]))
    artifacts.point_latest(tx, ws, slug)


# -- restore -------------------------------------------------------------------------------


_NOT_APPLIED = {
    PROPOSED: "it was never confirmed",
    KEPT: "it was kept as is (never made)",
    STALE: "it was never made (the run changed)",
    MOVING: "it is being made right now",
    "purged": "its archive was purged",
}


def restore(tx: Tx, ws: Workspace, rollback_id: int, actor: Actor) -> tuple[int, Plan]:
    """Step 1 of a restore: check, then commit a plan that archives what the rollback's redo
    made and moves the archived files back."""
    orig = _load(tx, rollback_id)
    if orig.status == RESTORED:
        raise AlreadyDone(f"Rollback {orig.id} was already restored.")
    if orig.status != APPLIED or orig.kind == "restore":
        why = _NOT_APPLIED.get(orig.status, orig.status)
        why = "it is itself a restore" if orig.kind == "restore" else why
        raise Refused(f"Rollback {orig.id} has nothing to restore: {why}.")
    run = tx.session.get(RunRow, orig.run_id, with_for_update=True)
    assert run is not None
    done = Plan.from_json(json.loads(orig.plan_json or "{}"))
    now = tx.now()
    rb = RollbackRow(
        run_id=run.id,
        to_checkpoint_id=orig.to_checkpoint_id,
        actor=actor.key,
        actor_name=actor.name,
        archive_path="",
        created_at=now,
        updated_at=now,
        kind="restore",
        status=MOVING,
        pipeline_slug=run.pipeline_slug,
        to_version=orig.to_version,
        restores_id=orig.id,
    )
    if orig.kind == "checkpoint":
        check_run_control(tx.roles, tx.pipeline(run), run, actor)
        if run.status in (R.CANCELLED, R.ROLLED_BACK):
            raise Refused(f"Cannot restore rollback {orig.id}: {run.name} is {run.status.replace('_', ' ')}.")
        newer = _newer_rollback(tx, orig, [run.id])
        position = [cp.id for cp in tx.pipeline(run).checkpoints].index(orig.to_checkpoint_id)
        redo = [e for e in _executions(tx, run, position) if e.id not in done.executions]
        finished = [e for e in redo if e.status == E.COMPLETED]
        if newer is not None:
            raise Refused(
                f"Cannot restore rollback {orig.id}: rollback {newer.id} came after it. Restore that first."
            )
        if finished:
            raise Refused(
                f"Cannot restore rollback {orig.id}: {finished[0].checkpoint_id} was completed again since "
                f"(exec {finished[0].id}); restoring would overwrite newer work."
            )
        tx.session.add(rb)
        tx.session.flush()
        plan = Plan()
        _archive_executions(tx, ws, plan, run, redo, _archive(run.pipeline_slug, rb))
    else:
        runs = [r for r in (tx.session.get(RunRow, i) for i in done.runs) if r is not None]
        for other in runs:
            check_run_control(tx.roles, tx.pipeline(other), other, actor)
        started = tx.session.scalars(
            select(RunRow).where(
                RunRow.pipeline_slug == run.pipeline_slug,
                RunRow.id.not_in(done.runs),
                RunRow.version > max(r.version for r in runs),
            )
        ).first()
        if started is not None:
            raise Refused(
                f"Cannot restore rollback {orig.id}: {started.name} was started after it, and the "
                "restored runs would come before it."
            )
        newer = _newer_rollback(tx, orig, done.runs)
        if newer is not None:
            raise Refused(
                f"Cannot restore rollback {orig.id}: rollback {newer.id} came after it. Restore that first."
            )
        tx.session.add(rb)
        tx.session.flush()
        plan = Plan()
    for src, dst in reversed(done.moves):
        if ws.absolute(src).exists():
            raise Refused(f"Cannot restore rollback {orig.id}: {src} exists again; nothing is overwritten.")
        plan.moves.append((dst, src))
    plan.before["restores"] = orig.id
    rb.plan_json = json.dumps(plan.to_json())
    rb.archive_path = _archive(run.pipeline_slug, rb)
    return rb.id, plan


def _newer_rollback(tx: Tx, orig: RollbackRow, run_ids: list[int]) -> RollbackRow | None:
    """A later rollback of the same checkpoints (the same run) or, for a run-level one, of the
    same pipeline's runs; a run-level rollback *to* a run does not touch that run's checkpoints."""
    same = (
        RollbackRow.run_id.in_(run_ids) & (RollbackRow.kind == "checkpoint")
        if orig.kind == "checkpoint"
        else (RollbackRow.pipeline_slug == orig.pipeline_slug) & (RollbackRow.kind == "run")
    )
    return tx.session.scalar(
        select(RollbackRow).where(same, RollbackRow.id > orig.id, RollbackRow.status == APPLIED).limit(1)
    )


def finish_restore(tx: Tx, ws: Workspace, restore_id: int, actor: Actor) -> Outcome:
    """Step 3 of a restore: the files are back; commit the state they had."""
    rb = _load(tx, restore_id)
    if rb.status != MOVING:
        raise Refused(f"Restore {restore_id} is {rb.status}.")
    plan = Plan.from_json(json.loads(rb.plan_json or "{}"))
    orig = _load(tx, int(plan.before["restores"]))
    done = Plan.from_json(json.loads(orig.plan_json or "{}"))
    run = tx.session.get(RunRow, rb.run_id, with_for_update=True)
    assert run is not None
    now, reason = tx.now(), f"restore of rollback {orig.id}"
    # What the rollback's redo made goes to this restore's own archive.
    for ex_id in plan.executions:
        ex = tx.session.get(ExecutionRow, ex_id)
        assert ex is not None
        if ex.status in WAITING:
            close_open_card(tx, run, ex, flow.decided_text("Restored away", actor.name, tx))
        move_execution(tx.session, tx.clock, ex, E.ROLLED_BACK, actor=actor.key, reason=reason)
        ex.claimed_by = ex.heartbeat_at = None
        tx.session.add(ArchivedItemRow(rollback_id=rb.id, kind="execution", item_id=ex.id, created_at=now))
    archive_moves = Plan(moves=plan.moves[: len(plan.moves) - len(done.moves)], artifacts=plan.artifacts)
    _move_artifacts(tx, archive_moves, archived=True)
    _record_files(tx, rb, plan)
    # The archived files and executions come back.
    back = {f["archived"]: f["original"] for f in done.files}
    for art_id in done.artifacts:
        art = tx.session.get(ArtifactRow, art_id)
        assert art is not None
        art.path = back.get(art.path, art.path)
        art.archived = False
    undone = Plan(moves=[(dst, src) for src, dst in done.moves])  # revision copies are unlisted
    artifact_revisions.relocate(tx, done.artifacts, undone.new_path)
    before = done.before.get("executions", {})
    for ex_id in done.executions:
        ex = tx.session.get(ExecutionRow, ex_id)
        assert ex is not None
        owner = tx.session.get(RunRow, ex.run_id)
        assert owner is not None
        move_execution(tx.session, tx.clock, ex, E(before[str(ex_id)]), actor=actor.key, reason=reason)
        ex.finished_at = None if ex.status != E.COMPLETED else ex.finished_at
        ex.claimed_by = ex.heartbeat_at = None
        _reopen_card(tx, owner, ex)
    for run_id, state in done.before.get("runs", {}).items():
        other = tx.session.get(RunRow, int(run_id), with_for_update=True)
        assert other is not None
        _return_run(tx, other, R(state["status"]), actor, reason)
        other.position, other.done = int(state["position"]), int(state["done"])
        flow.notice(tx, other, f"{other.name}: rollback {orig.id} restored by {actor.name}.", "success")
        flow.show_run(tx, other)
    orig.status, orig.restored_by_id = RESTORED, rb.id  # updated_at stays: when it was applied
    rb.status, rb.updated_at = APPLIED, now
    rb.file_count, rb.byte_count, rb.execution_count = len(plan.files), plan.size, len(plan.executions)
    _after(tx, ws, run.pipeline_slug, plan)
    return Outcome(
        f"Restored rollback {orig.id} (restore {rb.id}; {len(plan.files)} newer file(s) archived)."
    )


def _return_run(tx: Tx, run: RunRow, target: R, actor: Actor, reason: str) -> None:
    if run.status == target:
        return
    if run.status == R.PAUSED and target in (R.COMPLETED, R.FAILED):
        move_run(tx.session, tx.clock, run, R.IN_PROGRESS, actor=actor.key, reason=reason)
    move_run(tx.session, tx.clock, run, target, actor=actor.key, reason=reason)
    if target in (R.IN_PROGRESS, R.PAUSED):
        run.finished_at = None


def _reopen_card(tx: Tx, run: RunRow, ex: ExecutionRow) -> None:
    """A restored execution that waits for someone shows its buttons again."""
    cp = flow.checkpoint_of(tx, run, ex)
    if ex.status == E.WAITING_APPROVAL_TO_START:
        card = flow.approval_card(tx, run, ex, cp, "start")
        tx.notify(run, card.model_copy(update={"key": card.key + ":r"}))
    elif ex.status == E.WAITING_APPROVAL_TO_COMPLETE:
        card = flow.approval_card(tx, run, ex, cp, "complete")
        tx.notify(run, card.model_copy(update={"key": card.key + ":r"}))
    elif ex.status == E.WAITING_FOR_INPUT:
        form = flow.form_card(tx, run, ex, cp)
        tx.notify(run, form.model_copy(update={"key": form.key + ":r"}))


def run_name(tx: Tx, rollback_id: int) -> str:
    rb = tx.session.get(RollbackRow, rollback_id)
    run = tx.session.get(RunRow, rb.run_id) if rb is not None else None
    if rb is None or run is None:
        raise NotFound(f"There is no rollback {rollback_id}.")
    return run.name
