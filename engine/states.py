"""The state machines of runs and checkpoint executions: the only place states change.

Each rule names the states it leaves FROM and the states it may go TO; a transition no rule
allows raises ``IllegalTransition``. Every transition writes an ``events`` row in the caller's
transaction, so the state and its history commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import bindparam, insert, update
from sqlalchemy.orm import Session

from engine import queued_writes
from engine.clock import Clock
from engine.errors import IllegalTransition
from engine.models import EventRow, ExecutionRow, RunRow, TimerRow


class RunStatus(StrEnum):
    NOT_STARTED = "not_started"
    IN_PROGRESS = "in_progress"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    ROLLED_BACK = "rolled_back"  # archived by a run-level rollback; readable, never continued


class ExecStatus(StrEnum):
    PENDING = "pending"
    WAITING_APPROVAL_TO_START = "waiting_approval_to_start"
    RUNNING = "running"
    WAITING_FOR_INPUT = "waiting_for_input"
    WAITING_APPROVAL_TO_COMPLETE = "waiting_approval_to_complete"
    REVISION_REQUESTED = "revision_requested"
    COMPLETED = "completed"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    CANCELLED = "cancelled"


R, E = RunStatus, ExecStatus
RUN_FINAL = frozenset({R.COMPLETED, R.FAILED, R.CANCELLED, R.ROLLED_BACK})
EXEC_FINAL = frozenset({E.COMPLETED, E.FAILED, E.ROLLED_BACK, E.CANCELLED})
EXEC_ACTIVE = frozenset(set(E) - EXEC_FINAL)
# The states in which a person must act; deadlines and reminders (engine.timers) watch them.
WAITING = frozenset({E.WAITING_APPROVAL_TO_START, E.WAITING_FOR_INPUT, E.WAITING_APPROVAL_TO_COMPLETE})
STAGE_STATUS = {
    "start": E.WAITING_APPROVAL_TO_START,
    "form": E.WAITING_FOR_INPUT,
    "complete": E.WAITING_APPROVAL_TO_COMPLETE,
}


@dataclass(frozen=True)
class Rule:
    name: str
    from_states: frozenset[str]
    to_states: frozenset[str]

    def allows(self, from_state: str, to_state: str) -> bool:
        return from_state in self.from_states and to_state in self.to_states


def _rule(name: str, frm: Iterable[str], to: Iterable[str]) -> Rule:
    return Rule(name, frozenset(frm), frozenset(to))


RUN_POLICY: tuple[Rule, ...] = (
    _rule("start", {R.NOT_STARTED}, {R.IN_PROGRESS}),
    _rule("pause", {R.IN_PROGRESS}, {R.PAUSED}),
    _rule("resume", {R.PAUSED}, {R.IN_PROGRESS}),
    _rule("finish", {R.IN_PROGRESS}, {R.COMPLETED, R.FAILED}),
    _rule("cancel", {R.NOT_STARTED, R.IN_PROGRESS, R.PAUSED}, {R.CANCELLED}),
    # A rollback or a retry brings a run that stopped back to work at an earlier checkpoint.
    _rule("reopen", {R.COMPLETED, R.FAILED, R.PAUSED}, {R.IN_PROGRESS}),
    # A run-level rollback archives later runs (an active one is cancelled first).
    _rule("roll_back", {R.COMPLETED, R.FAILED, R.CANCELLED}, {R.ROLLED_BACK}),
    # Undoing a rollback returns the run to the state it left (engine.rollbacks).
    _rule("restore", {R.ROLLED_BACK}, {R.IN_PROGRESS, R.PAUSED, R.COMPLETED, R.FAILED, R.CANCELLED}),
)

EXEC_POLICY: tuple[Rule, ...] = (
    _rule("ask_to_start", {E.PENDING}, {E.WAITING_APPROVAL_TO_START}),
    _rule(
        "begin",
        {E.PENDING, E.WAITING_APPROVAL_TO_START, E.REVISION_REQUESTED},
        {E.RUNNING, E.WAITING_FOR_INPUT},
    ),
    _rule("form_to_work", {E.WAITING_FOR_INPUT}, {E.RUNNING}),
    # A meta agent proposes its team while running; a human approves it before the team works.
    _rule("propose_team", {E.RUNNING}, {E.WAITING_APPROVAL_TO_START}),
    _rule("retry", {E.RUNNING, E.FAILED}, {E.RUNNING}),
    _rule(
        "ask_to_complete",
        # A checkpoint with nothing to fill in or run goes straight from its start to review.
        {E.PENDING, E.WAITING_APPROVAL_TO_START, E.RUNNING, E.WAITING_FOR_INPUT, E.REVISION_REQUESTED},
        {E.WAITING_APPROVAL_TO_COMPLETE},
    ),
    _rule("revise", {E.WAITING_APPROVAL_TO_COMPLETE}, {E.REVISION_REQUESTED}),
    # An approver edits a result's text artifacts (a new revision of each) and approves it.
    _rule("edit_and_approve", {E.WAITING_APPROVAL_TO_COMPLETE}, {E.COMPLETED}),
    _rule(
        "complete",
        {
            E.PENDING,
            E.WAITING_APPROVAL_TO_START,
            E.RUNNING,
            E.WAITING_FOR_INPUT,
            E.WAITING_APPROVAL_TO_COMPLETE,
            E.REVISION_REQUESTED,
        },
        {E.COMPLETED},
    ),
    _rule("fail", {E.RUNNING, E.WAITING_APPROVAL_TO_START}, {E.FAILED}),
    # A human (or a deadline) rejects what waits for a decision: the checkpoint fails.
    _rule("reject", set(WAITING), {E.FAILED}),
    _rule("cancel", set(EXEC_ACTIVE), {E.CANCELLED}),
    _rule("roll_back", set(E) - {E.ROLLED_BACK}, {E.ROLLED_BACK}),
    # A restore brings an archived execution back to where it stood.
    _rule("restore", {E.ROLLED_BACK}, set(E) - {E.ROLLED_BACK}),
)


def _check(
    policy: tuple[Rule, ...], entity: str, entity_id: int, frm: str, to: str, name: str | None = None
) -> Rule:
    for rule in policy:
        if (name is None or rule.name == name) and rule.allows(frm, to):
            return rule
    raise IllegalTransition(entity, entity_id, frm, to)


def _event(
    session: Session,
    run_id: int,
    entity: str,
    entity_id: int,
    frm: str,
    to: str,
    actor: str | None,
    reason: str | None,
    now: datetime,
) -> None:
    # A plain table insert: events are history, never loaded back into the session. Queued: a
    # burst's events go out as one statement (engine.queued_writes).
    queued_writes.queue(
        session.connection(),
        _EVENTS,
        {
            "run_id": run_id,
            "entity": entity,
            "entity_id": entity_id,
            "from_state": frm,
            "to_state": to,
            "actor": actor,
            "reason": reason,
            "created_at": now,
        },
    )


_EVENTS = insert(EventRow)
_CANCEL_TIMERS = (
    update(TimerRow)
    .where(TimerRow.execution_id == bindparam("execution"), TimerRow.state == "open")
    .values(state="cancelled", closed_at=bindparam("now"))
)


def move_run(
    session: Session,
    clock: Clock,
    run: RunRow,
    to: RunStatus,
    *,
    actor: str | None = None,
    reason: str | None = None,
) -> None:
    _check(RUN_POLICY, "run", run.id, run.status, to)
    now = clock()
    _event(session, run.id, "run", run.id, run.status, to, actor, reason, now)
    # The transaction writes the run's run_info.json once it commits (engine.tx, engine.api).
    session.info.setdefault("moved_runs", {})[run.id] = run
    run.status = to
    run.updated_at = now
    if to in RUN_FINAL:
        run.finished_at = now


def move_execution(
    session: Session,
    clock: Clock,
    ex: ExecutionRow,
    to: ExecStatus,
    *,
    actor: str | None = None,
    reason: str | None = None,
    rule: str | None = None,
) -> None:
    """``rule``: the transition must be one this named rule allows (a decision narrower than
    the generic ones, e.g. edit_and_approve)."""
    _check(EXEC_POLICY, "execution", ex.id, ex.status, to, rule)
    now = clock()
    _event(session, ex.run_id, "execution", ex.id, ex.status, to, actor, reason, now)
    if ex.status in WAITING:
        # Whatever ends a wait makes its deadline and reminders moot, in the same transaction.
        queued_writes.queue(session.connection(), _CANCEL_TIMERS, {"execution": ex.id, "now": now})
    ex.status = to
    ex.updated_at = now
    if to in EXEC_FINAL:
        ex.finished_at = now
