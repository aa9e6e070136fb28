"""Deadlines, reminders, escalation, reject and reassign through the console, the clock moved by hand."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.console.app import Console
from engine.api import Engine
from engine.clock import ManualClock
from tests.engine.helpers import current, interactions

GATE = """\
id: gate
approvers: [console:alice, console:bob]
required_approvals: {required}
human: {{deadline: 2d, on_deadline: {outcome}, remind_every: 4h, max_reminders: 2{extra}}}
checkpoints:
  - id: draft
    inputs: [{{id: title, label: Title, type: text, default: Untitled}}]
    human: {{approval_to_complete: false}}
  - id: review
    human: {{max_revisions: 1}}
"""


class Chat:
    """One console user typing lines; one engine (and clock), one room's output for everyone."""

    def __init__(self, engine: Engine, user: str, out: io.StringIO) -> None:
        self.out = out
        self.console = Console(engine, user, io.StringIO(), out)

    def type(self, *lines: str) -> str:
        start = self.out.tell()
        c = self.console
        c.inp = io.StringIO("".join(f"{line}\n" for line in lines))
        c.flush_outbox()  # what came due since the last line
        while (line := c.ask("> ")) is not None:
            c.handle(line.strip())
            c.flush_outbox()
        self.out.seek(0, io.SEEK_END)
        return self.out.getvalue()[start:]

    def tick(self) -> str:
        return self.type()


@pytest.fixture
def chats(engine: Engine) -> Iterator[dict[str, Chat]]:
    room = io.StringIO()
    chats = {name: Chat(engine, name, room) for name in ("carol", "alice", "bob", "lead")}
    yield chats
    for chat in chats.values():
        chat.console.loop.close()


def gate(engine: Engine, tmp_path: Path, outcome: str, required: int = 1, extra: str = "") -> None:
    path = tmp_path / "gate.yaml"
    path.write_text(GATE.format(outcome=outcome, required=required, extra=extra))
    engine.import_pipeline(path)


def start(chats: dict[str, Chat], engine: Engine) -> int:
    out = chats["carol"].type("/pipeline run gate", "f1", "Launch")
    assert "Started gate#v1." in out
    ex, status = current(engine, "gate#v1")
    assert status == "waiting_approval_to_complete"
    return ex


@pytest.mark.parametrize(
    ("outcome", "status", "text"),
    [
        ("approve", "completed", "Approved automatically: no decision within 2 days"),
        ("reject", "failed", "Rejected automatically: no decision within 2 days"),
        ("fail", "failed", "Failed automatically: no decision within 2 days"),
        ("cancel", "cancelled", "Cancelled automatically: no decision within 2 days"),
    ],
)
def test_each_deadline_outcome(
    engine: Engine,
    tmp_path: Path,
    clock: ManualClock,
    chats: dict[str, Chat],
    outcome: str,
    status: str,
    text: str,
) -> None:
    gate(engine, tmp_path, outcome)
    ex = start(chats, engine)
    card = chats["carol"].out.getvalue()
    assert "Due 2026-01-03T09:00" in card or "Due 2026-01-03" in card  # two days on, the reader's zone
    clock.advance(2 * 86400 - 1)
    chats["carol"].tick()
    assert current(engine, "gate#v1")[1] == "waiting_approval_to_complete"
    clock.advance(1)
    out = chats["carol"].tick()
    assert f"→ {text}" in out  # the card is edited
    assert engine.run("gate#v1").info.status == status
    assert ("deadline", "the deadline") in [(k, n) for k, _, n in _named(engine, ex)] or outcome == "approve"
    # Too late for a person: the decision was taken, and says by whom.
    late = chats["alice"].type(f"a{ex}")
    assert "the deadline" in late or "is " in late


def _named(engine: Engine, ex: int) -> list[tuple[str, str, str]]:
    return [(k, o, "the deadline" if a == "deadline" else a) for k, o, a in interactions(engine, ex)]


def test_reminders_mention_exactly_the_undecided_and_stop(
    engine: Engine, tmp_path: Path, clock: ManualClock, chats: dict[str, Chat]
) -> None:
    gate(engine, tmp_path, "fail", required=2)
    ex = start(chats, engine)
    assert "Approval recorded (1 of 2)" in chats["alice"].type(f"a{ex}")
    clock.advance(4 * 3600)
    out = chats["carol"].tick()
    assert "@bob Reminder (1 of 2): Review in gate#v1 waits for a decision (due in 2 days)" in out
    assert "@alice" not in out and "✉ to bob" in out and "✉ to alice" not in out
    clock.advance(4 * 3600)
    assert "Reminder (2 of 2)" in chats["carol"].tick()
    clock.advance(20 * 3600)
    assert "Reminder" not in chats["carol"].tick()  # max_reminders reached


def test_escalation_adds_approvers_and_its_deadline_fires(
    engine: Engine, tmp_path: Path, clock: ManualClock, chats: dict[str, Chat]
) -> None:
    gate(engine, tmp_path, "escalate", extra=", escalate_to: [console:lead], escalation_deadline: 1d")
    ex = start(chats, engine)
    assert "not one of this pipeline's approvers" in chats["lead"].type(f"a{ex}")
    clock.advance(2 * 86400)
    out = chats["carol"].tick()
    assert "@lead Review: Escalated to lead: no decision within 2 days." in out
    assert current(engine, "gate#v1") == (ex, "waiting_approval_to_complete")
    clock.advance(86400)
    out = chats["carol"].tick()
    assert "→ Failed automatically: no decision within 1 day" in out
    assert engine.run("gate#v1").info.status == "failed"


def test_the_escalated_approver_may_decide(
    engine: Engine, tmp_path: Path, clock: ManualClock, chats: dict[str, Chat]
) -> None:
    gate(engine, tmp_path, "escalate", extra=", escalate_to: [console:lead]")
    ex = start(chats, engine)
    clock.advance(2 * 86400)
    chats["carol"].tick()
    assert "Approved Review." in chats["lead"].type(f"a{ex}")
    clock.advance(2 * 86400)
    chats["carol"].tick()
    assert engine.run("gate#v1").info.status == "completed"


def test_reject_with_reason(engine: Engine, tmp_path: Path, chats: dict[str, Chat]) -> None:
    gate(engine, tmp_path, "approve")
    ex = start(chats, engine)
    assert f"[x{ex}] Reject" in chats["carol"].out.getvalue()
    out = chats["alice"].type(f"x{ex}", "   ")
    assert "Say why: the reason is empty." in out
    out = chats["alice"].type(f"x{ex}", "Numbers are wrong")
    assert "→ Rejected by Alice at 09:00: Numbers are wrong" in out or "Rejected by alice" in out
    assert "gate#v1 failed: Review rejected by alice: Numbers are wrong" in out
    assert engine.run("gate#v1").info.status == "failed"
    assert ("reject", "accepted", "alice") in interactions(engine, ex)


def test_reject_rolls_back_with_on_reject(
    engine: Engine, tmp_path: Path, clock: ManualClock, chats: dict[str, Chat]
) -> None:
    gate(engine, tmp_path, "approve", extra=", on_reject: 'rollback:draft'")
    ex = start(chats, engine)
    out = chats["bob"].type(f"x{ex}", "Wrong title")
    assert "rolled back to draft" in out
    view = engine.run("gate#v1")
    assert view.info.status == "in_progress"
    assert view.executions[-1].checkpoint_id == "draft" and view.executions[-1].status == "waiting_for_input"
    # The rolled-back wait's deadline is gone; the new form has its own.
    clock.advance(2 * 86400)
    chats["carol"].tick()
    assert engine.run("gate#v1").executions[-1].status in ("completed", "waiting_approval_to_complete")


def test_approve_with_comment(engine: Engine, tmp_path: Path, chats: dict[str, Chat]) -> None:
    gate(engine, tmp_path, "fail")
    ex = start(chats, engine)
    out = chats["bob"].type(f"w{ex}", "Ship it")
    assert "Approved by bob at 09:00: “Ship it”" in out.replace("Bob", "bob")
    assert engine.run("gate#v1").info.status == "completed"


def test_reassign(engine: Engine, tmp_path: Path, chats: dict[str, Chat]) -> None:
    gate(engine, tmp_path, "fail")
    ex = start(chats, engine)
    assert "✖" in chats["lead"].type(f"reassign {ex} dave")  # only an approver may hand it on
    out = chats["alice"].type(f"reassign g{ex} lead")
    assert "lead may now decide Review." in out
    assert "@lead alice handed the decision on Review to lead." in out
    assert "Approved Review." in chats["lead"].type(f"a{ex}")
    assert ("reassign", "accepted", "alice") in interactions(engine, ex)


def test_a_form_deadline_submits_its_defaults(
    engine: Engine, tmp_path: Path, clock: ManualClock, chats: dict[str, Chat]
) -> None:
    gate(engine, tmp_path, "approve")
    chats["carol"].type("/pipeline run gate")
    ex, status = current(engine, "gate#v1")
    assert status == "waiting_for_input"
    clock.advance(4 * 3600)
    assert (
        "@carol Reminder (1 of 2): Draft in gate#v1 waits for the form to be filled in"
        in chats["carol"].tick()
    )
    clock.advance(2 * 86400)
    out = chats["carol"].tick()
    assert "→ Approved automatically: no decision within 2 days" in out
    assert current(engine, "gate#v1")[1] == "waiting_approval_to_complete"
    assert engine.run("gate#v1").executions[0].execution_id == ex
