"""Deadlines and reminders of human decisions: durable timers whose rows are the truth.

A wait (an approval to start, a form, an approval to complete) writes its deadline and first
reminder in the transaction that starts it; whatever ends the wait cancels them in its own
transaction (engine.states). ``fire_due`` claims the open rows that are due, oldest first, and
acts through the same commands as a person, as the actor "the deadline": a timer that fires
after a human decided, or twice, finds nothing waiting and changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from engine import messages
from engine.actors import DEADLINE
from engine.clock import Clock
from engine.definitions import Checkpoint, Pipeline
from engine.errors import FormInvalid, PipebotError
from engine.human import Outcome
from engine.models import ExecutionRow, ExtraApproverRow, InteractionRow, RunRow, TimerRow
from engine.states import STAGE_STATUS
from engine.states import RunStatus as R
from engine.tx import Tx
from engine.workspace import Workspace

log = logging.getLogger("pipebot.timers")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
DEADLINES = ("deadline", "escalation")
# Timers fired per transaction: small enough that the outbox (which needs the write lock too, on
# SQLite) gets its turn often during a burst, so the first decisions reach chat while later ones fire.
FIRE_BATCH = 25


@dataclass(frozen=True)
class Settings:
    """A checkpoint's deadline keys, its own over the pipeline's `human:` block over defaults."""

    deadline: str | None
    on_deadline: str
    remind_every: str | None
    max_reminders: int
    escalate_to: list[str]
    escalation_deadline: str | None
    on_escalation_deadline: str
    on_reject: str | None


def effective(pipeline: Pipeline, cp: Checkpoint) -> Settings:
    mine, base = cp.human, pipeline.human

    def pick(key: str) -> Any:
        value = getattr(mine, key)
        return value if value is not None else getattr(base, key)

    deadline = pick("deadline")
    return Settings(
        deadline=deadline,
        on_deadline=pick("on_deadline") or "fail",
        remind_every=pick("remind_every"),
        max_reminders=3 if pick("max_reminders") is None else pick("max_reminders"),
        escalate_to=list(pick("escalate_to") or []),
        escalation_deadline=pick("escalation_deadline") or deadline,
        on_escalation_deadline=pick("on_escalation_deadline") or "fail",
        on_reject=pick("on_reject"),
    )


def seconds(duration: str) -> int:
    return int(duration[:-1]) * UNITS[duration[-1]]


def _add(tx: Tx, run: RunRow, ex: ExecutionRow, kind: str, stage: str, after: str, number: int = 0) -> None:
    now = tx.now()
    tx.session.add(
        TimerRow(
            run_id=run.id,
            execution_id=ex.id,
            kind=kind,
            stage=stage,
            revision=ex.revision,
            number=number,
            due_at=now + timedelta(seconds=seconds(after)),
            state="open",
            created_at=now,
        )
    )


def start_wait(tx: Tx, run: RunRow, ex: ExecutionRow, cp: Checkpoint, stage: str) -> None:
    """A wait began: write its deadline and first reminder (none without the keys: wait forever)."""
    s = effective(tx.pipeline(run), cp)
    if s.deadline:
        _add(tx, run, ex, "deadline", stage, s.deadline)
    if s.remind_every and s.max_reminders > 0:
        _add(tx, run, ex, "reminder", stage, s.remind_every, 1)


def due_at(tx: Tx, ex: ExecutionRow) -> datetime | None:
    """When the open wait of ``ex`` meets its deadline (None: never)."""
    return tx.session.scalar(
        select(func.min(TimerRow.due_at)).where(
            TimerRow.execution_id == ex.id, TimerRow.state == "open", TimerRow.kind.in_(DEADLINES)
        )
    )


def added_approvers_text(tx: Tx, ex: ExecutionRow) -> str:
    rows = tx.session.scalars(select(ExtraApproverRow).where(ExtraApproverRow.execution_id == ex.id)).all()
    parts = [f"Escalated to {r.name}" if r.reason == "escalation" else f"Handed to {r.name}" for r in rows]
    return " · ".join(parts)


def principal_name(principal: str) -> str:
    return principal.partition(":")[2]


def is_user(principal: str) -> bool:
    who = principal.partition(":")[2]
    return not who.startswith(("@", "role:"))


# -- firing -----------------------------------------------------------------------------------


def _due(now: datetime) -> Any:
    return (
        select(TimerRow)
        .join(RunRow, RunRow.id == TimerRow.run_id)
        # A paused run's timers wait for its resume (they fire then when overdue).
        .where(TimerRow.state == "open", TimerRow.due_at <= now, RunRow.status == R.IN_PROGRESS)
        .order_by(TimerRow.due_at, TimerRow.id)
    )


def next_due(tx: Tx) -> datetime | None:
    """The earliest open timer of a running run (the loop sleeps until then)."""
    return tx.session.scalar(
        select(TimerRow.due_at)
        .join(RunRow, RunRow.id == TimerRow.run_id)
        .where(TimerRow.state == "open", RunRow.status == R.IN_PROGRESS)
        .order_by(TimerRow.due_at)
        .limit(1)
    )


def fire_due(
    tx: Tx, ws: Workspace, limit: int = 100, then: list[Outcome] | None = None, *, isolate: bool = False
) -> int:
    """Fire up to ``limit`` due timers in this transaction, oldest first; return how many fired.

    ``then`` collects what must follow the commit (a rejection's rollback). Without ``isolate``
    the batch is one unit (one flush, no savepoint per timer: a burst of deadlines costs half as
    much) and any failure raises, so that the caller fires the batch again with ``isolate``:
    each timer in a savepoint of its own, a moot or broken one set aside."""
    from engine import human

    stmt = _due(tx.now()).limit(limit)
    if tx.session.get_bind().dialect.name != "sqlite":
        stmt = stmt.with_for_update(skip_locked=True, of=TimerRow)  # several processes share the rows
    rows = list(tx.session.scalars(stmt))
    human.preload(tx, [t.execution_id for t in rows])
    for t in rows:
        if isolate:
            _fire_isolated(tx, ws, t, then)
        else:
            outcome = _fire(tx, ws, t)
            if outcome is not None and outcome.rollback_to and then is not None:
                then.append(outcome)
        if t.state == "open":
            t.state = "fired"
        t.closed_at = tx.now()
    return len(rows)


def _fire_isolated(tx: Tx, ws: Workspace, t: TimerRow, then: list[Outcome] | None) -> None:
    # An earlier timer of this batch may have ended this one's wait: _fire then finds the
    # execution in another state (or revision) and does nothing.
    marks = (len(tx.notes), len(tx.logs), len(tx.after_commit))
    try:
        with tx.session.begin_nested():
            outcome = _fire(tx, ws, t)
        if outcome is not None and outcome.rollback_to and then is not None:
            then.append(outcome)
    except PipebotError as exc:  # the wait ended meanwhile (a person decided): nothing to do
        log.info("timer %s moot: %s", t.id, exc)
        _forget(tx, marks)
    except Exception:
        log.exception("timer %s failed", t.id)
        _forget(tx, marks)
        t.state = "error"


def _forget(tx: Tx, marks: tuple[int, int, int]) -> None:
    del tx.notes[marks[0] :], tx.logs[marks[1] :], tx.after_commit[marks[2] :]


def _fire(tx: Tx, ws: Workspace, t: TimerRow) -> Outcome | None:
    from engine import human

    ex, run, cp = human.load(tx, t.execution_id)
    if STAGE_STATUS[t.stage] != ex.status or ex.revision != t.revision:
        return None  # not this wait any more
    s = effective(tx.pipeline(run), cp)
    if t.kind == "reminder":
        _remind(tx, run, ex, cp, s, t)
        return None
    if t.kind == "deadline":
        return _decide(tx, ws, run, ex, cp, t.stage, s.on_deadline, s.deadline or "0s", s)
    return _decide(tx, ws, run, ex, cp, t.stage, s.on_escalation_deadline, s.escalation_deadline or "0s", s)


def _decide(
    tx: Tx,
    ws: Workspace,
    run: RunRow,
    ex: ExecutionRow,
    cp: Checkpoint,
    stage: str,
    outcome: str,
    duration: str,
    s: Settings,
) -> Outcome | None:
    from engine import flow, human, runs

    if outcome == "escalate":
        _escalate(tx, run, ex, cp, stage, duration, s)
        return None
    if outcome == "approve" and stage == "form":
        # A form "approved" by its deadline is submitted with what it has: its defaults.
        values = {f.id: f.default for f in cp.inputs} | flow.form_values(ex)
        try:
            with tx.session.begin_nested():
                human.submit_form(
                    tx, ws, ex.id, DEADLINE, values, 0, auto=messages.no_decision("approve", duration)
                )
            return None
        except FormInvalid:
            outcome = "fail"
    text = messages.no_decision(outcome, duration)
    if outcome == "approve":
        command = human.approve_start if stage == "start" else human.approve_complete
        command(tx, ws, ex.id, DEADLINE, auto=text)
        flow.notice(tx, run, f"{cp.title}: {text}.", "warning")
        return None
    if outcome == "cancel":
        human._record(tx, run, ex, "deadline", DEADLINE, {"outcome": "cancel"})
        runs.cancel_run(tx, run, DEADLINE, decided=text)
        return None
    else:  # reject (honours on_reject) or fail
        return human.reject(tx, ws, ex.id, DEADLINE, text, auto=text, roll_back=outcome == "reject")
    return None


def _escalate(
    tx: Tx, run: RunRow, ex: ExecutionRow, cp: Checkpoint, stage: str, duration: str, s: Settings
) -> None:
    from engine import flow, human

    now = tx.now()
    known = set(human.extra_approvers(tx, ex))
    added = [p for p in s.escalate_to if p not in known]
    for p in added:
        tx.session.add(
            ExtraApproverRow(
                execution_id=ex.id,
                principal=p,
                name=principal_name(p),
                reason="escalation",
                added_by=DEADLINE.key,
                created_at=now,
            )
        )
    human._record(tx, run, ex, "escalate", DEADLINE, {"to": s.escalate_to})
    _add(tx, run, ex, "escalation", stage, s.escalation_deadline or duration)
    who = ", ".join(principal_name(p) for p in s.escalate_to)
    text = messages.escalated(who, duration)
    card = flow.form_card(tx, run, ex, cp) if stage == "form" else flow.approval_card(tx, run, ex, cp, stage)
    tx.notify(run, card)
    here = [p for p in s.escalate_to if p.startswith(f"{run.platform}:")]
    flow.notice(
        tx, run, f"{cp.title}: {text}.", "warning", mentions=here, direct=[p for p in here if is_user(p)]
    )


def undecided(tx: Tx, run: RunRow, ex: ExecutionRow, stage: str) -> list[str]:
    """The principals who may decide this wait and have not: whom a reminder mentions."""
    from engine import human

    pipeline = tx.pipeline(run)
    if stage == "form":
        candidates = [run.started_by]  # anyone may fill in a form: remind whoever started the run
    else:
        candidates = [*pipeline.approvers, *human.extra_approvers(tx, ex)]
    kind = "approve_start" if stage == "start" else "approve_complete"
    approved = set(
        tx.session.execute(
            select(InteractionRow.actor_platform, InteractionRow.actor_id).where(
                InteractionRow.execution_id == ex.id,
                InteractionRow.kind == kind,
                InteractionRow.revision == ex.revision,
                InteractionRow.outcome == "approval",
            )
        ).all()
    )
    decided = {f"{platform}:{user}" for platform, user in approved}
    out: list[str] = []
    for p in candidates:
        if not p.startswith(f"{run.platform}:") or p in decided or p in out:
            continue
        if stage != "form" and pipeline.prevent_self_approval and p == run.started_by:
            continue
        out.append(p)
    return out


def _remind(tx: Tx, run: RunRow, ex: ExecutionRow, cp: Checkpoint, s: Settings, t: TimerRow) -> None:
    from engine import flow

    who = undecided(tx, run, ex, t.stage)
    what = "the form to be filled in" if t.stage == "form" else "a decision"
    due = due_at(tx, ex)
    when = messages.due_in((due - tx.now()).total_seconds()) if due is not None else None
    text = messages.reminder(t.number, s.max_reminders, cp.title, run.name, what, when)
    flow.notice(tx, run, text, mentions=who, direct=[p for p in who if is_user(p)])
    if t.number < s.max_reminders and s.remind_every:
        _add(tx, run, ex, "reminder", t.stage, s.remind_every, t.number + 1)


# -- the loop ---------------------------------------------------------------------------------


async def run(
    fire: Callable[[], int],
    next_due: Callable[[], datetime | None],
    clock: Clock,
    stop: asyncio.Event,
    *,
    batch: int = FIRE_BATCH,
    idle_max: float = 1.0,
) -> None:
    """Fire due timers until ``stop``; sleep until the next one (at most ``idle_max``, so timers
    written by other processes or while the bot slept are noticed within a second).

    ``fire`` and ``next_due`` are the engine's (Engine.fire_timers, Engine.next_timer_due); their
    database work runs in a thread, never on the event loop.
    """
    while not stop.is_set():
        wait = idle_max
        try:
            if await asyncio.to_thread(fire) >= batch:
                continue  # more are due: no sleep
            nxt = await asyncio.to_thread(next_due)
            if nxt is not None:
                wait = min(idle_max, max(0.0, (nxt - clock()).total_seconds()))
        except Exception:  # a bad tick must not stop the next one
            log.exception("timers failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), wait)
