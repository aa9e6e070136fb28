"""Artifact revision history: each content an artifact had stays readable, through revision
requests, edits, promotion, rollbacks and restores (real SQLite file, real workspace)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import select

from engine import artifacts
from engine.api import Engine
from engine.models import ArtifactRevisionRow, ArtifactRow
from engine.store import alembic_config
from engine.tx import Tx
from tests.conftest import HERE, person
from tests.engine.rollback_helpers import import_twins, step

ANA, BOB = person("ana"), person("bob")

SCRIPTED = """
id: scripted
name: Scripted
approvers: [console:ana, console:bob]
checkpoints:
  - id: report
    name: Report
    mode: script
    script: {code: "print(1)"}
    human: {approval_to_complete: true, max_revisions: 3}
    outputs: [{name: report, format: md}]
  - id: after
    name: After
    mode: human_only
    inputs: [{id: text, label: Text, type: text, required: true}]
"""


@pytest.fixture
def scripted(engine: Engine, tmp_path: Path) -> Engine:
    path = tmp_path / "scripted.yaml"
    path.write_text(SCRIPTED)
    engine.import_pipeline(path)
    return engine


def produce(engine: Engine, text: str) -> int:
    """Do what the worker does for one attempt: write the output, report success."""
    item = engine.claim_work("w1", 60)
    assert item is not None
    out = item.workdir / "outputs" / "report.md"
    out.write_text(text)
    assert engine.work_succeeded(item.execution_id, "w1", {"report": ("md", out)}, (0, 0), "")
    return item.execution_id


def revs(engine: Engine, artifact_id: int) -> list[tuple[int, str, str, int, bytes | None]]:
    def q(tx: Tx) -> list[tuple[int, str, str, int, bytes | None]]:
        return [
            (r.number, r.kind, r.author, r.execution_revision, artifacts.revision_bytes(engine.ws, r))
            for r in artifacts.revisions(tx, artifact_id)
        ]

    return engine._read(q)


def the_artifact(engine: Engine, run: str) -> ArtifactRow:
    with engine.store.read() as s:
        row = s.scalars(select(ArtifactRow).where(ArtifactRow.name == "report")).one()
        s.expunge(row)
        return row


def test_a_revision_keeps_the_old_content(scripted: Engine) -> None:
    engine = scripted
    run = engine.start_run("scripted", ANA, HERE).name
    ex = produce(engine, "first draft\n")
    art = the_artifact(engine, run)
    assert revs(engine, art.id) == [(1, "produced", "script", 0, b"first draft\n")]
    engine.request_revision(ex, BOB, "shorter")
    assert produce(engine, "second\n") == ex  # the same execution, its file overwritten
    assert engine.ws.absolute(the_artifact(engine, run).path).read_text() == "second\n"
    assert revs(engine, art.id) == [
        (1, "produced", "script", 0, b"first draft\n"),
        (2, "produced", "script", 1, b"second\n"),
    ]
    # Approval promotes the artifact to runs/v1/report/; the work folder goes, the history stays.
    engine.approve_complete(ex, ANA)
    promoted = the_artifact(engine, run)
    assert promoted.path == "scripted/runs/v1/report/report.md"
    assert not (engine.ws.base / "scripted" / ".temp" / f"exec_{ex}").exists()
    assert [r[4] for r in revs(engine, art.id)] == [b"first draft\n", b"second\n"]
    # The copies are no artifacts: the run still lists one.
    assert [a.name for a in engine.artifacts(run)] == ["report"]
    assert sorted(p.name for p in (engine.ws.base / "scripted" / "runs" / "v1" / "report").iterdir()) == [
        "report.md"
    ]


def test_add_revision_rewrites_the_file_and_credits_the_editor(scripted: Engine) -> None:
    engine = scripted
    run = engine.start_run("scripted", ANA, HERE).name
    produce(engine, "agent text\n")
    art = the_artifact(engine, run)

    def edit(tx: Tx) -> ArtifactRevisionRow:
        row = tx.session.get(ArtifactRow, art.id)
        assert row is not None
        return artifacts.add_revision(tx, engine.ws, row, b"edited text\n", "console:bob", "edited")

    rev = engine._write(edit)
    assert (rev.number, rev.kind, rev.author) == (2, "edited", "console:bob")
    now = the_artifact(engine, run)
    assert engine.ws.absolute(now.path).read_bytes() == b"edited text\n"
    assert (now.size, now.sha256) == (12, hashlib.sha256(b"edited text\n").hexdigest())
    assert [r[4] for r in revs(engine, art.id)] == [b"agent text\n", b"edited text\n"]
    with pytest.raises(ValueError):
        engine._write(lambda tx: artifacts.add_revision(tx, engine.ws, now, b"x", "console:bob", "other"))


def test_a_migrated_revision_that_shares_the_artifact_file_gets_a_copy_before_an_edit(
    scripted: Engine,
) -> None:
    """Artifacts older than the table got a revision 1 naming their own file (the migration)."""
    engine = scripted
    run = engine.start_run("scripted", ANA, HERE).name
    produce(engine, "old text\n")
    art = the_artifact(engine, run)
    with engine.store.write() as s:  # what the migration's backfill leaves
        rev = s.scalars(select(ArtifactRevisionRow)).one()
        rev.path, rev.author = art.path, "script"

    def edit(tx: Tx) -> None:
        row = tx.session.get(ArtifactRow, art.id)
        assert row is not None
        artifacts.add_revision(tx, engine.ws, row, b"new text\n", "console:bob", "edited")

    engine._write(edit)
    assert [r[4] for r in revs(engine, art.id)] == [b"old text\n", b"new text\n"]


def test_rollback_and_restore_keep_revision_files_archived_not_deleted(
    engine: Engine, tmp_path: Path
) -> None:
    import_twins(engine, tmp_path)
    run = engine.start_run("twins", ANA, HERE).name
    first = step(engine, run, ANA, "one", approve=False)
    engine.request_revision(first, BOB, "again")
    step(engine, run, ANA, "two")  # first completed with its second form; promoted
    step(engine, run, ANA, "three", approve=False)
    with engine.store.read() as s:
        doc = s.scalars(
            select(ArtifactRow).where(ArtifactRow.execution_id == first, ArtifactRow.name == "doc")
        ).one()
    history = revs(engine, doc.id)
    assert [(n, author, exrev) for n, _, author, exrev, _ in history] == [
        (1, "console:ana", 0),
        (2, "console:ana", 1),
    ]
    contents = [r[4] for r in history]
    assert all(c is not None for c in contents) and b'"one"' in contents[0]  # type: ignore[operator]
    revision_folder = engine.ws.revisions_dir("twins", first)
    assert revision_folder.is_dir()

    proposal = engine.propose_rollback(run, "first", ANA)
    engine.confirm_rollback(proposal.rollback_id, BOB)
    assert not revision_folder.exists()  # moved, with the execution, into the archive
    [archive] = (engine.ws.base / "twins" / ".archived").iterdir()
    assert (archive / "first" / f"exec_{first}" / "revisions").is_dir()
    with engine.store.read() as s:
        paths = [
            r.path
            for r in s.scalars(select(ArtifactRevisionRow).where(ArtifactRevisionRow.artifact_id == doc.id))
        ]
    assert all(p.startswith(engine.ws.relative(archive)) for p in paths)
    assert [r[4] for r in revs(engine, doc.id)] == contents

    engine.restore(proposal.rollback_id, ANA)
    assert revision_folder.is_dir()
    assert [r[4] for r in revs(engine, doc.id)] == contents


def test_run_level_rollback_moves_the_revisions_with_the_run(engine: Engine, tmp_path: Path) -> None:
    import_twins(engine, tmp_path)
    v1 = engine.start_run("twins", ANA, HERE).name
    step(engine, v1, ANA, "v1")
    v2 = engine.start_run("twins", ANA, HERE).name
    ex = step(engine, v2, ANA, "v2 one", approve=False)
    engine.request_revision(ex, BOB, "again")
    step(engine, v2, ANA, "v2 two")
    with engine.store.read() as s:
        doc = s.scalars(
            select(ArtifactRow).where(ArtifactRow.execution_id == ex, ArtifactRow.name == "doc")
        ).one()
    contents = [r[4] for r in revs(engine, doc.id)]
    assert len(contents) == 2 and None not in contents
    proposal = engine.propose_rollback(v1, None, ANA)
    engine.confirm_rollback(proposal.rollback_id, ANA)
    assert not engine.ws.revisions_dir("twins", ex).exists()
    [archive] = (engine.ws.base / "twins" / ".archived").iterdir()
    assert (archive / "runs" / "v2" / ".revisions" / f"exec_{ex}").is_dir()
    assert [r[4] for r in revs(engine, doc.id)] == contents


def test_the_migration_gives_existing_artifacts_their_revision_1(scripted: Engine) -> None:
    engine = scripted
    run = engine.start_run("scripted", ANA, HERE).name
    produce(engine, "before the table\n")
    art = the_artifact(engine, run)
    command.downgrade(alembic_config(engine.store.url), "0004_i10")  # as if made before it
    command.upgrade(alembic_config(engine.store.url), "head")
    assert revs(engine, art.id) == [(1, "produced", "script", 0, b"before the table\n")]
    with engine.store.read() as s:
        assert s.scalars(select(ArtifactRevisionRow.path)).one() == art.path  # shares the file
