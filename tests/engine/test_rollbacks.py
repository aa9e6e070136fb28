"""Rollbacks keep everything: per-execution archive folders, restores, refusals, history."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from engine import history
from engine.api import Engine
from engine.clock import ManualClock, utcnow
from engine.errors import AlreadyDone, NotAllowed, Refused
from engine.models import ArchivedItemRow, ArtifactRow
from tests.conftest import HERE, ROOT, person
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
            "revisions",  # each revision's copy (engine.artifact_revisions)
        ]
    assert (archive / "third" / "exec_3" / "temp" / "form" / "doc.json").is_file()
    with engine.store.read() as s:
        items = s.scalars(select(ArchivedItemRow).where(ArchivedItemRow.kind.in_(["artifact", "file"]))).all()
        rows = {r.id: r for r in s.scalars(select(ArtifactRow))}
    assert len({i.archived_path for i in items}) == len(items) == 6
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


def test_a_rollback_to_a_run_does_not_block_restoring_its_checkpoints(twins: Engine) -> None:
    engine = twins
    v1 = twins_run(engine, ANA, 2)
    engine.rollback(v1, "second", ANA)  # 1
    twins_run(engine, ANA, 1)
    engine.rollback("twins#v1", None, ANA)  # 2: v2 archived; v1's checkpoints untouched
    assert engine.restore(1, ANA).message.startswith("Restored rollback 1")
    assert engine.run(v1).info.done == 2
    engine.rollback(v1, "second", ANA)  # 4
    engine.rollback(v1, "first", ANA)  # 5
    with pytest.raises(Refused, match="rollback 5 came after it"):
        engine.restore(4, ANA)


def test_history_lists_every_event(twins: Engine, clock: ManualClock) -> None:
    engine = twins
    run = engine.start_run("twins", ANA, HERE).name
    ex, _ = current(engine, run)
    clock.advance(60)
    engine.submit_form(ex, ANA, {"text": "draft"})
    with pytest.raises(NotAllowed):
        engine.approve_complete(ex, EVE)
    engine.request_revision(ex, BOB, "More detail please")
    engine.submit_form(ex, ANA, {"text": "detailed"})
    engine.approve_complete(ex, BOB)
    engine.pause(run, ANA)
    engine.resume(run, ANA)
    engine.rollback(run, "first", BOB)
    engine.restore(1, ANA)
    page = engine.history(run)
    lines = [e.line() for e in page.entries]
    text = "\n".join(lines)
    for wanted in (
        "Ana — started the run",
        "Ana · first — submitted the form",
        "Eve · first — refused: approved the result (You may not approve this",
        "Bob · first — asked for a revision: More detail please",
        "Bob · first — approved the result",
        "Ana — paused the run",
        "Ana — resumed the run",
        "Bob · first — rollback 1 to first: 2 execution(s)",
        "Ana · first — restored rollback 1 (restore 2)",
    ):
        assert wanted in text, text
    assert lines[0].startswith("2026-01-01 09:00:00 · Ana — started the run")
    assert page.pages == 1
    small = engine._read(lambda tx: history.page(tx, run, 2, size=5))
    assert small.page == 2 and small.pages > 2 and len(small.entries) == 5
    log = (engine.ws.base / "twins" / ".pipeline_system" / "logs" / "system.log").read_text()
    for wanted in (
        "submit_form by Ana on first",
        "request_revision by Bob on first",
        "approve_complete by Eve refused",
        "paused by Ana",
        "resumed by Ana",
        "rolled back to first by Bob",
        "rollback 1 restored by Ana",
    ):
        assert wanted in log, log
    info = json.loads(
        (engine.ws.base / "twins" / ".pipeline_system" / "runs" / "v1" / "run_info.json").read_text()
    )
    assert info["status"] == "in_progress" and info["version"] == 1
    assert info["current_checkpoint"] == "Second" and info["paused_at"] and info["last_resumed_at"]


def test_crash_between_moving_and_committing(twins: Engine, tmp_path: Path) -> None:
    engine = twins
    run = twins_run(engine, ANA, 2)
    proposal = engine.propose_rollback(run, "first", ANA)
    before = {a.artifact_id: a.sha256 for a in engine.artifacts(run)}
    files = sorted(p for p in (engine.ws.base / "twins").rglob("*") if p.is_file() and "logs" not in p.parts)
    digests = {p: sha(p) for p in files}
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from engine import archive_moves\n"
        "from engine.actors import Actor\n"
        "from engine.api import Engine\n"
        "engine = Engine.open(Path(sys.argv[1]))\n"
        "archive_moves.after_moves = lambda: os.kill(os.getpid(), signal.SIGKILL)\n"
        "engine.confirm_rollback(int(sys.argv[2]), Actor('console', 'ana', 'Ana'))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(engine.ws.base), str(proposal.rollback_id)],
        cwd=ROOT, capture_output=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    moved = [p for p in files if not p.exists()]
    assert moved  # the files were moved, the database did not commit
    # The next start puts them back: the old state, every file where it was.
    again = Engine.open(engine.ws.base, clock=ManualClock(utcnow() + timedelta(hours=1)))
    try:
        assert all(sha(p) == d for p, d in digests.items())
        assert not list((engine.ws.base / "twins" / ".archived").rglob("*.json"))
        assert {
            a.artifact_id: sha(again.artifact_path(a.artifact_id)) for a in again.artifacts(run)
        } == before
        out = again.confirm_rollback(proposal.rollback_id, ANA)  # the proposal stands again
        assert out.message.startswith(f"Rolled back {run} to first")
        for art_id, digest in before.items():
            assert sha(again.artifact_path(art_id)) == digest
    finally:
        again.close()
