"""Durable timers: deadlines racing people, a bot stopped across a deadline, the YAML keys."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import pytest
from sqlalchemy import select, update

from engine.api import Engine
from engine.clock import ManualClock
from engine.definitions import parse_pipeline
from engine.errors import DefinitionProblem, PipebotError
from engine.models import ExecutionRow, InteractionRow, OutboxRow, RunRow, TimerRow
from tests.conftest import HERE, person
from tests.engine.helpers import current

ALICE, CAROL = person("alice"), person("carol")
GATE = """\
id: gate
approvers: [console:alice, console:bob]
human: {deadline: 30s, on_deadline: reject, remind_every: 10s, max_reminders: 3}
checkpoints:
  - id: review
"""
DECISIONS = ("approve_complete", "reject", "deadline", "request_revision")


@pytest.fixture
def gated(engine: Engine, tmp_path: Path) -> Engine:
    path = tmp_path / "gate.yaml"
    path.write_text(GATE)
    engine.import_pipeline(path)
    return engine


def timers(engine: Engine) -> list[tuple[str, int, str]]:
    with engine.store.read() as s:
        return [(t.kind, t.number, t.state) for t in s.scalars(select(TimerRow).order_by(TimerRow.id))]


def decisions(engine: Engine, ex: int) -> list[str]:
    with engine.store.read() as s:
        return list(
            s.scalars(
                select(InteractionRow.kind).where(
                    InteractionRow.execution_id == ex,
                    InteractionRow.kind.in_(DECISIONS),
                    InteractionRow.outcome == "accepted",
                )
            )
        )


def test_a_decision_cancels_its_timers(gated: Engine, clock: ManualClock) -> None:
    info = gated.start_run("gate", CAROL, HERE)
    ex, _ = current(gated, info.name)
    assert timers(gated) == [("deadline", 0, "open"), ("reminder", 1, "open")]
    gated.approve_complete(ex, ALICE)
    assert timers(gated) == [("deadline", 0, "cancelled"), ("reminder", 1, "cancelled")]
    clock.advance(60)
    assert gated.fire_timers() == 0 and gated.next_timer_due() is None
    assert gated.run(info.name).info.status == "completed"


@pytest.mark.slow
def test_a_person_racing_the_deadline_gives_one_outcome(gated: Engine, clock: ManualClock) -> None:
    outcomes = {"completed": 0, "failed": 0}
    for _ in range(100):
        info = gated.start_run("gate", CAROL, HERE)
        ex, _ = current(gated, info.name)
        clock.advance(30)
        barrier = threading.Barrier(2)

        def person(ex: int = ex, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            with contextlib.suppress(PipebotError):  # "Already decided by the deadline"
                gated.approve_complete(ex, ALICE)

        def deadline(barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            gated.fire_timers()

        threads = [threading.Thread(target=person), threading.Thread(target=deadline)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert gated.fire_timers() == 0  # nothing left to fire, whoever won
        made = decisions(gated, ex)
        assert len(made) == 1, made
        outcomes[gated.run(info.name).info.status] += 1
    assert sum(outcomes.values()) == 100


def test_a_bot_stopped_across_the_deadline_acts_once_in_order(
    gated: Engine, clock: ManualClock, tmp_path: Path
) -> None:
    info = gated.start_run("gate", CAROL, HERE)
    ex, _ = current(gated, info.name)
    base = gated.ws.base
    gated.close()
    clock.advance(3600)  # down for an hour: three reminders and the deadline went by
    again = Engine.open(base, clock=clock)
    try:
        assert again.fire_timers() == 2  # the first reminder, then the deadline
        assert again.fire_timers() == 0
        assert again.run(info.name).info.status == "failed"
        assert decisions(again, ex) == ["deadline"]
        with again.store.read() as s:
            texts = [r.payload_json for r in s.scalars(select(OutboxRow).order_by(OutboxRow.id))]
        reminder = next(i for i, t in enumerate(texts) if "Reminder (1 of 3)" in t)
        rejected = next(i for i, t in enumerate(texts) if "Rejected automatically" in t)
        assert reminder < rejected
        assert not any("Reminder (2 of 3)" in t for t in texts)
    finally:
        again.close()


def test_a_paused_run_keeps_its_deadline_until_resumed(gated: Engine, clock: ManualClock) -> None:
    info = gated.start_run("gate", CAROL, HERE)
    gated.pause(info.name, CAROL)
    clock.advance(60)
    assert gated.fire_timers() == 0 and gated.next_timer_due() is None
    gated.resume(info.name, CAROL)
    assert gated.fire_timers() == 2
    assert gated.run(info.name).info.status == "failed"


def test_the_yaml_keys_are_checked() -> None:
    with pytest.raises(DefinitionProblem, match=r"human\.deadline"):
        parse_pipeline(GATE.replace("30s", "30 seconds"), "x.yaml")
    with pytest.raises(DefinitionProblem, match="on_deadline escalate needs escalate_to"):
        parse_pipeline(GATE.replace("on_deadline: reject", "on_deadline: escalate"), "x.yaml")
    with pytest.raises(DefinitionProblem, match="'later' is not this or an earlier checkpoint"):
        parse_pipeline(GATE.replace("max_reminders: 3", "on_reject: 'rollback:later'"), "x.yaml")
    p = parse_pipeline(GATE.replace("  - id: review\n", "  - id: review\n    human: {deadline: 2d}\n"))
    from engine.timers import effective

    s = effective(p, p.checkpoints[0])
    assert (s.deadline, s.on_deadline, s.remind_every, s.max_reminders) == ("2d", "reject", "10s", 3)
    assert s.escalation_deadline == "2d" and s.on_escalation_deadline == "fail"


def test_pending_shows_deadlines_nearest_first(gated: Engine, clock: ManualClock, tmp_path: Path) -> None:
    path = tmp_path / "later.yaml"
    path.write_text(GATE.replace("id: gate", "id: later").replace("deadline: 30s", "deadline: 2h"))
    gated.import_pipeline(path)
    gated.start_run("later", CAROL, HERE)
    gated.start_run("gate", CAROL, HERE)
    clock.advance(20)
    items = gated.pending(ALICE)
    assert [(i.run, i.due) for i in items] == [("gate#v1", "due in 10 s"), ("later#v1", "due in 2 h")]
    clock.advance(20)
    gated.pause("gate#v1", CAROL)  # its deadline waits; pending lists in-progress runs only
    assert [i.run for i in gated.pending(ALICE)] == ["later#v1"]
    gated.resume("gate#v1", CAROL)
    first = gated.pending(ALICE)[0]
    assert first.run == "gate#v1" and first.overdue and first.due == "overdue by 10 s"


def test_a_broken_timer_in_a_burst_holds_up_none_of_the_others(gated: Engine, clock: ManualClock) -> None:
    # A burst fires as one unit; when one of it fails, the batch is fired again timer by timer.
    names = [gated.start_run("gate", CAROL, HERE).name for _ in range(3)]
    executions = [current(gated, name)[0] for name in names]
    with gated.store.write() as s:  # the middle run's checkpoint left its pipeline
        s.execute(update(ExecutionRow).where(ExecutionRow.id == executions[1]).values(checkpoint_id="gone"))
        s.execute(update(TimerRow).where(TimerRow.kind == "reminder").values(state="cancelled"))
    clock.advance(30)
    assert gated.fire_timers() == 3
    with gated.store.read() as s:
        statuses = list(s.scalars(select(RunRow.status).order_by(RunRow.id)))
        states = dict(
            s.execute(select(TimerRow.execution_id, TimerRow.state).where(TimerRow.kind == "deadline")).all()
        )
        automatic = list(
            s.scalars(
                select(OutboxRow.run_id).where(OutboxRow.payload_json.contains("Rejected automatically"))
            )
        )
    assert statuses == ["failed", "in_progress", "failed"]
    assert [decisions(gated, ex) for ex in executions] == [["deadline"], [], ["deadline"]]
    assert states == {executions[0]: "fired", executions[1]: "error", executions[2]: "fired"}
    assert sorted(set(automatic)) == [1, 3]  # the broken one's half-made messages were dropped
    assert gated.fire_timers() == 0
