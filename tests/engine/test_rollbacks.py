"""Rollbacks keep everything: per-execution archive folders, restores, refusals, history."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.api import Engine
from engine.errors import AlreadyDone, NotAllowed, Refused
from engine.models import ArchivedItemRow, ArtifactRow
from tests.conftest import HERE, person
from tests.engine.helpers import current
from tests.engine.rollback_helpers import import_twins, step, twins_run

ANA, BOB, EVE = person("ana"), person("bob"), person("eve")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def latest(engine: Engine, slug: str) -> str:
    return (engine.ws.base / slug / "runs" / "latest").readlink().name


@pytest.fixture
def twins(engine: Engine, tmp_path: Path) -> Engine:
    import_twins(engine, tmp_path)
    return engine


def test_checkpoint_rollback_keeps_every_same_named_file(twins: Engine) -> None:
    engine = twins
    run = twins_run(engine, ANA, 2)  # first and second done (doc.json, attachment_notes.md each)
    third = step(engine, run, ANA, "third", approve=False)  # waits for review
    before = {a.artifact_id: (a.path, a.sha256) for a in engine.artifacts(run)}
    assert len(before) == 6
    runs_dir = engine.ws.base / "twins" / "runs" / "v1"
    assert sorted(p.name for p in (runs_dir / "first").iterdir()) == ["attachment_notes.md", "doc.json"]

    proposal = engine.propose_rollback(run, "first", ANA)
    assert "first (exec 1, completed), second (exec 2, completed), third (exec 3" in proposal.text
    assert "twins/runs/v1/first/doc.json" in proposal.text
    assert [b.action for b in proposal.buttons] == ["confirm_rollback", "keep_rollback"]
    assert current(engine, run)[0] == third  # nothing happened yet
    out = engine.confirm_rollback(proposal.rollback_id, BOB)
    assert out.message == f"Rolled back {run} to first (rollback 1)."
    with pytest.raises(AlreadyDone):
        engine.confirm_rollback(proposal.rollback_id, BOB)

    [archive] = (engine.ws.base / "twins" / ".archived").iterdir()
    assert archive.name.startswith("rollback_1_")
    for cp, ex in (("first", 1), ("second", 2)):
        assert sorted(p.name for p in (archive / cp / f"exec_{ex}").iterdir()) == [
            "attachment_notes.md",
            "doc.json",
            "temp",
        ]
    assert (archive / "third" / "exec_3" / "temp" / "form" / "doc.json").is_file()
    with engine.store.read() as s:
        items = s.scalars(select(ArchivedItemRow).where(ArchivedItemRow.kind.in_(["artifact", "file"]))).all()
        rows = {r.id: r for r in s.scalars(select(ArtifactRow))}
    assert len({i.archived_path for i in items}) == len(items) > 6
    for item in items:  # every archived file is byte-identical to what it was
        assert item.archived_path and item.original_path
        assert sha(engine.ws.absolute(item.archived_path)) == item.checksum
    for art_id, (_, digest) in before.items():  # each artifact row points at its own bytes
        assert rows[art_id].archived
        assert sha(engine.artifact_path(art_id)) == digest
    docs = {engine.artifact_path(i).read_text() for i in before if rows[i].name == "doc"}
    assert len(docs) == 3  # three different doc.json, none overwritten
    assert not (runs_dir / "first").exists() and not (runs_dir / "second").exists()  # no empty folders
    assert not (engine.ws.base / "twins" / ".temp" / "exec_1").exists()
    new_ex, status = current(engine, run)
    assert new_ex == 4 and status == "waiting_for_input"
    assert engine.run(run).info.done == 0


def test_keep_and_refusals(twins: Engine) -> None:
    engine = twins
    run = twins_run(engine, ANA, 1)
    with pytest.raises(NotAllowed):
        engine.propose_rollback(run, "first", EVE)  # neither the starter nor an approver
    with pytest.raises(Refused, match="has not reached third"):
        engine.propose_rollback(run, "third", ANA)
    with pytest.raises(Refused, match="latest run of twins"):
        engine.propose_rollback(run, None, ANA)
    p = engine.propose_rollback(run, "first", ANA)
    with pytest.raises(NotAllowed):
        engine.keep_rollback(p.rollback_id, EVE)
    assert engine.keep_rollback(p.rollback_id, BOB).message.startswith("Kept twins#v1")
    with pytest.raises(AlreadyDone):
        engine.confirm_rollback(p.rollback_id, ANA)
    assert current(engine, run)[1] == "waiting_for_input"
    with pytest.raises(Refused, match="nothing to restore"):
        engine.restore(p.rollback_id, ANA)


def test_paused_run_stays_paused_and_restore_returns_it(twins: Engine) -> None:
    engine = twins
    run = twins_run(engine, ANA, 2)
    engine.pause(run, ANA)
    engine.rollback(run, "second", ANA)
    assert engine.run(run).info.status == "paused"
    assert [e.status for e in engine.run(run).executions] == ["completed", "rolled_back", "rolled_back"]
    engine.resume(run, ANA)
    assert current(engine, run)[1] == "waiting_for_input"
    engine.pause(run, ANA)
    out = engine.restore(1, BOB)
    assert out.message.startswith("Restored rollback 1 (restore 2")
    view = engine.run(run)
    assert view.info.status == "paused" and view.info.done == 2
    assert [e.status for e in view.executions] == [
        "completed",
        "completed",
        "waiting_for_input",
        "rolled_back",
    ]
    for a in engine.artifacts(run):
        assert sha(engine.artifact_path(a.artifact_id)) == a.sha256
    assert (engine.ws.base / "twins" / "runs" / "v1" / "second" / "doc.json").is_file()
    with pytest.raises(AlreadyDone):
        engine.restore(1, BOB)


def test_restore_refused_after_newer_work(twins: Engine) -> None:
    engine = twins
    run = twins_run(engine, ANA, 2)
    engine.rollback(run, "second", ANA)
    step(engine, run, ANA, "redone second")
    with pytest.raises(Refused, match="second was completed again since"):
        engine.restore(1, ANA)
    assert engine.rollbacks(run)[0].status == "applied"


def test_run_level_rollback_and_restore(twins: Engine) -> None:
    engine = twins
    v1 = twins_run(engine, ANA, 3)
    v2 = twins_run(engine, ANA, 3)
    v3 = twins_run(engine, ANA, 1)  # active, waits in second
    assert latest(engine, "twins") == "v3"
    p = engine.propose_rollback("twins#v1", None, BOB)
    assert p.text.startswith("Return *twins* to v1? This archives twins#v2, twins#v3")
    assert engine.confirm_rollback(p.rollback_id, BOB).message == (
        "Returned twins to twins#v1 (rollback 1: 2 run(s) archived)."
    )
    base = engine.ws.base / "twins"
    [archive] = (base / ".archived").iterdir()
    assert (archive / "runs" / "v2" / "third" / "doc.json").is_file()
    assert (archive / "runs" / "v3" / "first" / "doc.json").is_file()
    assert not (base / "runs" / "v2").exists() and not (base / "runs" / "v3").exists()
    assert latest(engine, "twins") == "v1"
    for name in (v2, v3):
        view = engine.run(name)
        assert view.info.status == "rolled_back"
        assert view.rolled_back and view.rolled_back.startswith("rolled back by Bob at")
        for a in engine.artifacts(name):
            assert sha(engine.artifact_path(a.artifact_id)) == a.sha256
    assert [e.status for e in engine.run(v3).executions] == ["completed", "rolled_back"]
    assert engine.start_run("twins", ANA, HERE).name == "twins#v4"
    with pytest.raises(Refused, match="twins#v4 was started after it"):
        engine.restore(1, ANA)
    engine.cancel("twins#v4", ANA)
    engine.rollback("twins#v1", None, ANA)  # v4 too
    assert engine.restore(2, ANA).message.startswith("Restored rollback 2")
    assert engine.run("twins#v4").info.status == "cancelled"
    assert engine.run(v1).info.status == "completed"


def test_restore_after_run_level_rollback(twins: Engine) -> None:
    engine = twins
    twins_run(engine, ANA, 3)
    twins_run(engine, ANA, 3)
    v3 = twins_run(engine, ANA, 1)
    engine.rollback("twins#v1", None, ANA)
    engine.restore(1, ANA)
    view = engine.run(v3)
    assert view.info.status == "in_progress" and view.rolled_back is None
    assert [e.status for e in view.executions] == ["completed", "waiting_for_input"]
    assert latest(engine, "twins") == "v3"
    for a in engine.artifacts(v3):
        assert sha(engine.artifact_path(a.artifact_id)) == a.sha256
    step(engine, v3, ANA, "goes on")  # the restored form works
    assert engine.run(v3).info.done == 2
    [r2, r1] = engine.rollbacks("twins")
    assert (r2.kind, r1.kind, r1.status, r1.restored_by) == ("restore", "run", "restored", 2)
