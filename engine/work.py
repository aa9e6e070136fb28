"""Automated work in the database: claim, heartbeat, progress, success, retry, failure.

Executions in ``running`` are claimed by a worker (``claimed_by``, ``heartbeat_at``). A claim
whose heartbeat went stale belongs to a worker that died: the next claim takes it over as a
new attempt, or fails the execution when no attempt is left. Nothing here runs the work
(see engine.worker), so any number of workers can share one database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select

from engine import artifacts, flow, timers
from engine.actors import Actor, Conversation
from engine.agent_prompts import ContextArtifact
from engine.definitions import AgentSpec, Checkpoint
from engine.errors import Refused
from engine.human import Outcome, load
from engine.models import (
    ArtifactRow,
    ExecutionLogRow,
    ExecutionRow,
    InteractionRow,
    MessageRefRow,
    PipelineRow,
    RunRow,
)
from engine.notifications import Button, TurnCard
from engine.outbox import MessageRef
from engine.permissions import check_approval
from engine.states import ExecStatus as E
from engine.states import RunStatus as R
from engine.states import move_execution, move_run
from engine.streams import TurnTarget
from engine.tx import Tx
from engine.workspace import Workspace

TEXT_FORMATS = {"md", "txt", "json", "csv", "yaml", "html", "py"}
CONTEXT_CHARS = 20_000


@dataclass
class WorkItem:
    """Everything a worker needs to run one attempt, read in the claiming transaction."""

    execution_id: int
    run_name: str
    pipeline_title: str
    checkpoint: Checkpoint
    attempt: int
    workdir: Path
    source_dir: Path | None
    form: dict[str, Any]
    earlier_forms: dict[str, dict[str, Any]]
    context: list[ContextArtifact]
    context_files: list[tuple[str, Path]]
    previous_versions: list[ContextArtifact]
    feedback: list[str]
    validation_error: str | None
    team: list[AgentSpec] | None
    phase: str  # "work", or "propose" for a meta agent's team before approval
    budget_left: int | None
    state: dict[str, Any] = field(default_factory=dict)


def _state(ex: ExecutionRow) -> dict[str, Any]:
    return dict(json.loads(ex.state_json)) if ex.state_json else {}


def log(tx: Tx, ex: ExecutionRow, message: str, level: str = "info") -> None:
    tx.session.add(
        ExecutionLogRow(execution_id=ex.id, level=level, message=message[-20_000:], created_at=tx.now())
    )


def claim(tx: Tx, ws: Workspace, worker: str, stale_after: float) -> WorkItem | None:
    now = tx.now()
    stale = now - timedelta(seconds=stale_after)
    row = tx.session.execute(
        select(ExecutionRow, RunRow)
        .join(RunRow, RunRow.id == ExecutionRow.run_id)
        .where(
            ExecutionRow.status == E.RUNNING,
            RunRow.status.in_([R.IN_PROGRESS, R.PAUSED]),
            or_(ExecutionRow.claimed_by.is_(None), ExecutionRow.heartbeat_at < stale),
            or_(ExecutionRow.not_before.is_(None), ExecutionRow.not_before <= now),
        )
        .order_by(ExecutionRow.id)
        .limit(1)
        # Other workers skip a claim in progress instead of queueing behind it (PostgreSQL).
        .with_for_update(skip_locked=True, of=ExecutionRow)
    ).first()
    if row is None:
        return None
    ex, run = row
    cp = flow.checkpoint_of(tx, run, ex)
    if ex.claimed_by is not None:  # its worker stopped heartbeating: it died mid-attempt
        log(tx, ex, f"attempt {ex.attempt} was interrupted (worker {ex.claimed_by} went silent)", "warning")
        if ex.attempt >= cp.retry.max_attempts:
            fail(
                tx, ws, ex, run, f"interrupted on the last attempt ({ex.attempt} of {cp.retry.max_attempts})"
            )
            return claim(tx, ws, worker, stale_after)
        ex.attempt += 1
    ex.claimed_by, ex.heartbeat_at = worker, now
    return _item(tx, ws, ex, run, cp)


def _item(tx: Tx, ws: Workspace, ex: ExecutionRow, run: RunRow, cp: Checkpoint) -> WorkItem:
    pipeline = tx.pipeline(run)
    source = tx.session.get(PipelineRow, run.pipeline_id)
    done = tx.session.scalars(
        select(ExecutionRow).where(ExecutionRow.run_id == run.id, ExecutionRow.status == E.COMPLETED)
    ).all()
    earlier_forms = {e.checkpoint_id: flow.form_values(e) for e in done if e.form_json}
    wanted = set(cp.agent.context.checkpoints) if cp.agent else {e.checkpoint_id for e in done}
    own_run = artifacts.of_runs(tx, [run.id])
    context = [_text(ws, a) for a in own_run if a.checkpoint_id in wanted and a.execution_id != ex.id]
    files = [
        (f"{a.checkpoint_id}/{Path(a.path).name}", ws.absolute(a.path))
        for a in own_run
        if a.execution_id != ex.id
    ]
    previous: list[ContextArtifact] = []
    use_previous = bool(cp.agent and cp.agent.context.previous_versions) or run.extends_run_id is not None
    prev_id = run.extends_run_id or _previous_run(tx, run)
    if use_previous and prev_id is not None:
        prev_rows = artifacts.of_runs(tx, [prev_id])
        previous = [_text(ws, a) for a in prev_rows]
        files += [(f"previous/{a.checkpoint_id}/{Path(a.path).name}", ws.absolute(a.path)) for a in prev_rows]
    feedback = [
        json.loads(i.data_json or "{}").get("feedback", "")
        for i in tx.session.scalars(
            select(InteractionRow)
            .where(
                InteractionRow.execution_id == ex.id,
                InteractionRow.kind == "request_revision",
                InteractionRow.outcome == "accepted",
            )
            .order_by(InteractionRow.id)
        )
    ]
    state = _state(ex)
    team = [AgentSpec.model_validate(a) for a in state["team"]] if "team" in state else None
    meta = cp.agent is not None and cp.agent.mode == "meta"
    budget = pipeline.budget_tokens - (run.tokens_in + run.tokens_out) if pipeline.budget_tokens else None
    return WorkItem(
        execution_id=ex.id,
        run_name=run.name,
        pipeline_title=pipeline.title,
        checkpoint=cp,
        attempt=ex.attempt,
        workdir=ws.temp_dir(run.pipeline_slug, ex.id),
        source_dir=Path(source.source_dir) if source and source.source_dir else None,
        form=flow.form_values(ex),
        earlier_forms=earlier_forms,
        context=context,
        context_files=files,
        previous_versions=previous,
        feedback=feedback,
        validation_error=state.get("validation_error"),
        team=team,
        phase="propose" if meta and team is None else "work",
        budget_left=budget,
        state=state,
    )


def _previous_run(tx: Tx, run: RunRow) -> int | None:
    return tx.session.scalar(
        select(RunRow.id)
        .where(RunRow.pipeline_slug == run.pipeline_slug, RunRow.version < run.version)
        .order_by(RunRow.version.desc())
        .limit(1)
    )


def _text(ws: Workspace, a: ArtifactRow) -> ContextArtifact:
    path = ws.absolute(a.path)
    if a.format not in TEXT_FORMATS or not path.exists():
        return ContextArtifact(a.checkpoint_id, a.name, f"(binary file {path.name}, {a.size} bytes)")
    return ContextArtifact(a.checkpoint_id, a.name, path.read_text(errors="replace")[:CONTEXT_CHARS])


def _mine(tx: Tx, execution_id: int, worker: str) -> tuple[ExecutionRow, RunRow, Checkpoint] | None:
    ex, run, cp = load(tx, execution_id)
    if ex.status != E.RUNNING or ex.claimed_by != worker:
        return None  # cancelled, rolled back or taken over meanwhile: drop the result
    return ex, run, cp


def heartbeat(tx: Tx, execution_id: int, worker: str) -> bool:
    mine = _mine(tx, execution_id, worker)
    if mine is not None:
        mine[0].heartbeat_at = tx.now()
    return mine is not None


def progress(tx: Tx, execution_id: int, text: str) -> None:
    _ex, run, _ = load(tx, execution_id)
    flow.notice(tx, run, text)


def turn_target(tx: Tx, execution_id: int) -> TurnTarget:
    _ex, run, _ = load(tx, execution_id)
    parent = tx.session.scalar(
        select(MessageRefRow).where(MessageRefRow.run_id == run.id, MessageRefRow.message_key == "run")
    )
    return TurnTarget(
        run.id,
        run.name,
        run.platform,
        Conversation(run.platform, run.channel, run.thread),
        MessageRef(parent.channel, parent.message_id, parent.thread_id) if parent else None,
        run.started_by,
        tx.run_info(run),
    )


def turn(tx: Tx, execution_id: int, card: TurnCard, live: MessageRef | None) -> None:
    """An agent's finished turn: logged, and its card queued; a live message becomes the card's."""
    ex, run, _ = load(tx, execution_id)
    log(tx, ex, f"{card.agent} (round {card.round}): {card.tokens_in}+{card.tokens_out} tokens")
    if live is not None:
        tx.session.add(
            MessageRefRow(
                run_id=run.id,
                message_key=card.key,
                platform=run.platform,
                channel=live.channel,
                message_id=live.message_id,
                thread_id=live.thread_id,
                updated_at=tx.now(),
            )
        )
    tx.notify(run, card)


def succeed(
    tx: Tx,
    ws: Workspace,
    execution_id: int,
    worker: str,
    files: dict[str, tuple[str, Path]],
    tokens: tuple[int, int],
    log_text: str,
) -> bool:
    """Record the outputs (name -> (format, file)) as artifacts and move on to review."""
    mine = _mine(tx, execution_id, worker)
    if mine is None:
        return False
    ex, run, cp = mine
    author = _producer(cp, _state(ex))
    for name, (fmt, path) in files.items():
        artifacts.record(tx, ws, run, ex, name, fmt, path, author=author)
    _usage(ex, run, tokens)
    if log_text:
        log(tx, ex, log_text)
    state = _state(ex)
    state.pop("validation_error", None)
    ex.state_json = json.dumps(state)
    ex.claimed_by = ex.heartbeat_at = None
    if cp.mode == "agent":
        total = f"run so far: {run.tokens_in} in / {run.tokens_out} out"
        flow.notice(tx, run, f"{cp.title} done: {log_text} ({total}).", "success")
    flow.work_done(tx, ws, run, ex)
    flow.show_run(tx, run)
    return True


def _producer(cp: Checkpoint, state: dict[str, Any]) -> str:
    """Who an output's revision is credited to: ``script``, or ``agent:<name>[+<name>…]``."""
    if cp.mode != "agent":
        return "script"
    names = [str(a["name"]) for a in state.get("team", [])]
    names = names or ([a.name for a in cp.agent.agents] if cp.agent else [])
    return "agent:" + ("+".join(names) or cp.id)


def propose(tx: Tx, execution_id: int, worker: str, team: list[AgentSpec], tokens: tuple[int, int]) -> bool:
    """Keep a meta agent's team; with approval_to_start a human approves it before it works."""
    mine = _mine(tx, execution_id, worker)
    if mine is None:
        return False
    ex, run, cp = mine
    _usage(ex, run, tokens)
    ex.state_json = json.dumps({**_state(ex), "team": [a.model_dump() for a in team]})
    ex.claimed_by = ex.heartbeat_at = None
    lines = "\n".join(f"• *{a.name}* — {a.role}" for a in team)
    if cp.human.approval_to_start:
        move_execution(tx.session, tx.clock, ex, E.WAITING_APPROVAL_TO_START, reason="team proposed")
        timers.start_wait(tx, run, ex, cp, "start")
        card = flow.approval_card(tx, run, ex, cp, "start")
        tx.notify(run, card.model_copy(update={"text": f"Approve this team for *{cp.title}*?\n{lines}"}))
    else:
        flow.notice(tx, run, f"Team for {cp.title}:\n{lines}")
    return True


def retry_later(
    tx: Tx,
    execution_id: int,
    worker: str,
    error: str,
    delay: float,
    tokens: tuple[int, int],
    log_text: str,
    validation_error: str | None,
) -> bool:
    mine = _mine(tx, execution_id, worker)
    if mine is None:
        return False
    ex, run, cp = mine
    _usage(ex, run, tokens)
    log(tx, ex, f"attempt {ex.attempt} failed: {error}\n{log_text}".strip(), "warning")
    state = _state(ex)
    if validation_error:
        state["validation_error"] = validation_error
    ex.state_json = json.dumps(state)
    ex.error = error
    ex.attempt += 1
    ex.claimed_by = ex.heartbeat_at = None
    ex.not_before = tx.now() + timedelta(seconds=delay)
    flow.notice(
        tx,
        run,
        f"{cp.title}: attempt {ex.attempt - 1} of {cp.retry.max_attempts} failed ({error}); "
        f"trying again in {delay:g}s.",
        "warning",
    )
    return True


def give_up(
    tx: Tx, ws: Workspace, execution_id: int, worker: str, error: str, tokens: tuple[int, int], log_text: str
) -> bool:
    mine = _mine(tx, execution_id, worker)
    if mine is None:
        return False
    ex, run, _ = mine
    _usage(ex, run, tokens)
    if log_text:
        log(tx, ex, log_text, "error")
    fail(tx, ws, ex, run, error)
    return True


def fail(tx: Tx, ws: Workspace, ex: ExecutionRow, run: RunRow, error: str) -> None:
    """The last attempt failed: keep its files in .errored/, fail the run, offer a Retry."""
    cp = flow.checkpoint_of(tx, run, ex)
    ex.error, ex.claimed_by, ex.heartbeat_at = error, None, None
    move_execution(tx.session, tx.clock, ex, E.FAILED, reason=error)
    if run.status == R.PAUSED:
        move_run(tx.session, tx.clock, run, R.IN_PROGRESS, reason="failure while paused")
    move_run(tx.session, tx.clock, run, R.FAILED, reason=f"{cp.id}: {error}")
    name = f"exec_{ex.id}_{tx.now().strftime('%Y%m%dT%H%M%S')}"
    logs = [
        r.message
        for r in tx.session.scalars(
            select(ExecutionLogRow).where(ExecutionLogRow.execution_id == ex.id).order_by(ExecutionLogRow.id)
        )
    ]
    temp = ws.temp_dir(run.pipeline_slug, ex.id)
    ws.write_json(temp / "error.json", {"error": error, "attempt": ex.attempt, "logs": logs})
    dest = ws.pipeline_dir(run.pipeline_slug) / ".errored" / name
    tx.after_commit.append(lambda: ws.copy_tree(temp, dest))
    retry = Button(action="retry", execution_id=ex.id, label="Retry", style="primary")
    flow.notice(
        tx,
        run,
        f"{cp.title} failed after {ex.attempt} attempt(s): {error}\n"
        f"Files and logs: {ws.relative(ws.pipeline_dir(run.pipeline_slug))}/.errored/{name}",
        "error",
        [retry],
    )
    flow.show_run(tx, run)


def retry(tx: Tx, execution_id: int, actor: Actor) -> Outcome:
    """A human asks a failed execution to run again, with a fresh set of attempts."""
    ex, run, cp = load(tx, execution_id)
    if ex.status != E.FAILED:
        raise Refused(f"{cp.title} has not failed (it is {ex.status.replace('_', ' ')}).")
    check_approval(tx.pipeline(run), run, actor)
    move_run(tx.session, tx.clock, run, R.IN_PROGRESS, actor=actor.key, reason="retry")
    move_execution(tx.session, tx.clock, ex, E.RUNNING, actor=actor.key, reason="retry")
    ex.attempt, ex.not_before, ex.error = 1, None, None
    flow.notice(tx, run, f"Retry of {cp.title} requested by {actor.name}.")
    flow.show_run(tx, run)
    return Outcome(f"Retrying {cp.title}.")


def _usage(ex: ExecutionRow, run: RunRow, tokens: tuple[int, int]) -> None:
    ex.tokens_in += tokens[0]
    ex.tokens_out += tokens[1]
    run.tokens_in += tokens[0]
    run.tokens_out += tokens[1]
