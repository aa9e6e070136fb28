"""Edit and approve through the engine: a script's text outputs edited, checked, kept, approved."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.api import Engine
from engine.errors import AlreadyDone, EditInvalid, NotAllowed, Refused
from engine.models import EventRow
from engine.seen import Seen
from tests.conftest import person
from tests.engine.edit_helpers import (
    SCORES,
    SUMMARY,
    artifact_text,
    history,
    waiting,
)
from tests.engine.helpers import current, interactions

ANA, BOB, EVE = person("ana"), person("bob"), person("eve")


def saw(engine: Engine, ex: int) -> Seen:
    """What an Edit and approve dialog opened now shows (the version an edit must name)."""
    spec = engine.edit_spec(ex, ANA)
    return Seen(spec.revision, spec.digest)


async def test_edit_and_approve_keeps_the_original_and_credits_the_editor(
    engine: Engine, tmp_path: Path
) -> None:
    run, ex = await waiting(engine, tmp_path)
    spec = engine.edit_spec(ex, ANA)
    assert {f.filename: f.text for f in spec.files} == {
        "summary.md": SUMMARY, "scores.json": SCORES, "long.txt": "x" * 5000
    }  # fmt: skip
    edited = "# Summary\n\nSecond draft, by Ana."  # chat inputs drop the final newline
    out = engine.edit_and_approve(
        ex, ANA, {"summary": edited, "scores": SCORES}, saw(engine, ex), "Tightened"
    )
    assert out.message == "Edited summary.md. Approved Summary."
    assert engine.run(run).info.status == "completed"
    assert artifact_text(engine, run, "summary") == edited + "\n"
    assert artifact_text(engine, run, "scores") == SCORES
    revs = history(engine, run, "summary")
    assert [(number, kind) for number, kind, _, _ in revs] == [(1, "produced"), (2, "edited")]
    assert revs[1][2] == "console:ana"
    original = revs[0][3]
    mine = revs[1][3]
    assert original == SUMMARY.encode() and mine == (edited + "\n").encode()  # the original is kept
    assert [kind for _, kind, _, _ in history(engine, run, "scores")] == ["produced"]  # unchanged
    kinds = [(k, o, who) for k, o, who in interactions(engine, ex)]
    assert ("edit", "accepted", "ana") in kinds and ("approve_complete", "accepted", "ana") in kinds
    with engine.store.read() as s:
        from sqlalchemy import select

        from engine.models import InteractionRow

        edit = s.scalar(select(InteractionRow).where(InteractionRow.kind == "edit"))
        decision = s.scalar(select(InteractionRow).where(InteractionRow.kind == "approve_complete"))
        assert edit is not None and decision is not None
        assert [(a["name"], a["revision"]) for a in json.loads(edit.data_json or "")["artifacts"]] == [
            ("summary", 2)
        ]
        assert json.loads(decision.data_json or "") == {"comment": "Tightened", "edited": ["summary.md"]}
        event = s.scalar(select(EventRow).where(EventRow.entity_id == ex, EventRow.to_state == "completed"))
        assert event is not None and event.actor == "console:ana" and event.reason == "edited summary.md"
    # The same click again is answered with who decided, as Approve is.
    with pytest.raises(AlreadyDone, match="Already approved by Ana"):
        engine.edit_and_approve(ex, BOB, {"summary": "again"}, Seen(spec.revision, spec.digest))


async def test_invalid_json_is_refused_and_changes_nothing(engine: Engine, tmp_path: Path) -> None:
    run, ex = await waiting(engine, tmp_path)
    shown = engine.run(run).executions[-1]
    version = saw(engine, ex)
    with pytest.raises(EditInvalid) as refused:
        engine.edit_and_approve(ex, ANA, {"summary": "# New", "scores": '{"score": "high"}'}, version)
    assert refused.value.errors == {
        "scores": "The edited scores.json does not match the schema at /score: 'high' is not of type "
        "'integer'. Nothing was changed."
    }
    with pytest.raises(EditInvalid, match=r"The edited scores\.json is not valid JSON: Expecting"):
        engine.edit_and_approve(ex, ANA, {"scores": "{score: 1"}, version)
    assert current(engine, run) == (ex, "waiting_approval_to_complete")
    assert artifact_text(engine, run, "summary") == SUMMARY  # the valid edit beside it is not kept
    assert [kind for _, kind, _, _ in history(engine, run, "summary")] == ["produced"]
    assert engine.run(run).executions[-1] == shown
    assert ("edit_and_approve", "refused", "ana") in interactions(engine, ex)


async def test_permission_and_stale_card_checks_come_first(engine: Engine, tmp_path: Path) -> None:
    run, ex = await waiting(engine, tmp_path)
    with pytest.raises(NotAllowed, match="You may not approve this"):
        engine.edit_spec(ex, EVE)
    version = saw(engine, ex)
    with pytest.raises(NotAllowed, match="You may not approve this"):
        engine.edit_and_approve(ex, EVE, {"summary": "mine"}, version)
    with pytest.raises(Refused, match="This edit does not say which version it changes"):
        engine.edit_and_approve(ex, ANA, {"summary": "mine"})  # replaced text must name what it replaced
    with pytest.raises(Refused, match="This card is out of date"):
        engine.edit_and_approve(ex, ANA, {"summary": "mine"}, Seen(0, "0" * 12))
    with pytest.raises(Refused, match=r"^summary2: not an output of this checkpoint that can be edited"):
        engine.edit_and_approve(ex, ANA, {"summary2": "x", "summary": "z"}, version)
    with pytest.raises(EditInvalid, match=r"is 20,001 characters, at most 20,000 can be edited in chat"):
        engine.edit_and_approve(ex, ANA, {"summary": "y" * 20_001}, version)
    with pytest.raises(EditInvalid, match=r"The edited summary\.md is not UTF-8 text"):
        engine.edit_and_approve(ex, ANA, {"summary": "lone \ud800 surrogate"}, version)
    assert artifact_text(engine, run, "summary") == SUMMARY
    assert current(engine, run) == (ex, "waiting_approval_to_complete")


async def test_approvals_before_an_edit_no_longer_count(engine: Engine, tmp_path: Path) -> None:
    run, ex = await waiting(engine, tmp_path, required=2)
    bob_saw = engine.pending(BOB)[0].buttons[0]
    assert engine.approve_complete(ex, BOB).message == "Approval recorded (1 of 2)."
    out = engine.edit_and_approve(ex, ANA, {"summary": "# Summary\n\nBy Ana."}, saw(engine, ex))
    assert out.message == "Edited summary.md. Approval recorded (1 of 2)."  # Bob approved other text
    assert ("approve_complete", "approval_before_edit", "bob") in interactions(engine, ex)
    with pytest.raises(Refused, match="This card is out of date"):
        engine.approve_complete(ex, BOB, Seen(bob_saw.revision, bob_saw.digest))
    assert engine.approve_complete(ex, BOB).message == "Approved Summary."
    assert engine.run(run).info.status == "completed"
