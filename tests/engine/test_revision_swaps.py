"""An edit's new content reaches the artifact's file only once its transaction commits: a
transaction that fails leaves every file as it was, a process that dies between the commit and
the swap is put right at the next start (real SQLite file, real workspace, real subprocess)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from engine import artifact_revisions, artifacts
from engine.api import Engine
from engine.clock import ManualClock, utcnow
from engine.models import ArtifactRevisionRow, ArtifactRow
from engine.seen import Seen
from engine.tx import Tx
from engine.workspace import sha256_of
from tests.conftest import person
from tests.engine.edit_helpers import SUMMARY, artifact_text, history, waiting

ANA, BOB, EVE = person("ana"), person("bob"), person("eve")
ROOT = Path(__file__).resolve().parents[2]


def files(engine: Engine) -> dict[str, bytes]:
    """Every file of the pipeline folder but its logs, by path: what must not change."""
    folder = engine.ws.base / "digest"
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "logs" not in p.parts
    }


def summary_row(engine: Engine) -> ArtifactRow:
    with engine.store.read() as s:
        row = s.scalars(select(ArtifactRow).where(ArtifactRow.name == "summary")).one()
        s.expunge(row)
        return row


class Boom(Exception):
    pass


async def test_a_transaction_that_fails_after_add_revision_leaves_every_file_as_it_was(
    engine: Engine, tmp_path: Path
) -> None:
    run, _ = await waiting(engine, tmp_path)
    row = summary_row(engine)
    before, dirs = files(engine), sorted((engine.ws.base / "digest").rglob("*"))

    def edit_then_fail(tx: Tx) -> None:
        locked = tx.session.get(ArtifactRow, row.id)
        assert locked is not None
        artifacts.add_revision(tx, engine.ws, locked, b"edited\n", "console:bob", "edited")
        artifacts.add_revision(tx, engine.ws, locked, b"edited twice\n", "console:bob", "edited")
        raise Boom  # e.g. a refusal found later in the same transaction

    with pytest.raises(Boom):
        engine._write(edit_then_fail)
    assert files(engine) == before  # the file, the revision copies; no staged file, no .part
    assert sorted((engine.ws.base / "digest").rglob("*")) == dirs  # no folder made for them either
    assert summary_row(engine).sha256 == row.sha256
    assert [n for n, *_ in history(engine, run, "summary")] == [1]
    assert artifact_text(engine, run, "summary") == SUMMARY


async def test_a_migrated_revision_copy_made_for_a_failed_edit_goes_too(
    engine: Engine, tmp_path: Path
) -> None:
    """A revision 1 that shares the artifact's file (the migration) gets a copy before an edit:
    that copy is part of the transaction as well."""
    await waiting(engine, tmp_path)
    row = summary_row(engine)
    with engine.store.write() as s:
        rev = s.scalars(select(ArtifactRevisionRow).where(ArtifactRevisionRow.artifact_id == row.id)).one()
        shared = rev.path
        rev.path = row.path
    engine.ws.absolute(shared).unlink()
    before = files(engine)

    def edit_then_fail(tx: Tx) -> None:
        locked = tx.session.get(ArtifactRow, row.id)
        assert locked is not None
        artifacts.add_revision(tx, engine.ws, locked, b"edited\n", "console:bob", "edited")
        raise Boom

    with pytest.raises(Boom):
        engine._write(edit_then_fail)
    assert files(engine) == before


async def test_the_normal_path_swaps_in_at_commit_and_promotes_the_edited_text(
    engine: Engine, tmp_path: Path
) -> None:
    run, ex = await waiting(engine, tmp_path)
    spec = engine.edit_spec(ex, ANA)
    engine.edit_and_approve(ex, ANA, {"summary": "# Summary\n\nBy Ana."}, Seen(spec.revision, spec.digest))
    assert engine.run(run).info.status == "completed"
    assert artifact_text(engine, run, "summary") == "# Summary\n\nBy Ana.\n"  # the promoted copy
    assert not [p for p in (engine.ws.base / "digest").rglob("*") if p.name.endswith(".new")]


def edit_in_a_process_that_dies_before_the_swap(engine: Engine, ex: int, text: str) -> None:
    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from engine import artifact_revisions\n"
        "from engine.actors import Actor\n"
        "from engine.api import Engine\n"
        "engine = Engine.open(Path(sys.argv[1]))\n"
        "artifact_revisions.before_swap = lambda: os._exit(87)\n"
        "bob = Actor('console', 'bob', 'Bob')\n"
        "from engine.seen import Seen\n"
        "spec = engine.edit_spec(int(sys.argv[2]), bob)\n"
        "shown = Seen(spec.revision, spec.digest)\n"
        "engine.edit_and_approve(int(sys.argv[2]), bob, {'summary': sys.argv[3]}, shown)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(engine.ws.base), str(ex), text],
        cwd=ROOT, capture_output=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 87, proc.stderr


@pytest.fixture
def restarted() -> Iterator[list[Engine]]:
    opened: list[Engine] = []
    yield opened
    for engine in opened:
        engine.close()


async def test_a_crash_between_commit_and_swap_is_put_right_at_the_next_start(
    engine: Engine, tmp_path: Path, restarted: list[Engine]
) -> None:
    run, ex = await waiting(engine, tmp_path, required=2)  # Bob's edit approves 1 of 2: no promotion
    row = summary_row(engine)
    path = engine.ws.absolute(row.path)
    edit_in_a_process_that_dies_before_the_swap(engine, ex, "# Summary\n\nBy Bob.")
    # Committed (the row and revision 2 say Bob's text), but the file still holds the script's.
    now = summary_row(engine)
    assert now.path == row.path and now.sha256 != row.sha256
    assert path.read_text() == SUMMARY
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".new")]
    assert [kind for _, kind, _, _ in history(engine, run, "summary")] == ["produced", "edited"]

    again = Engine.open(engine.ws.base, clock=ManualClock(utcnow() + timedelta(hours=1)))
    restarted.append(again)
    assert path.read_text() == "# Summary\n\nBy Bob.\n"
    assert sha256_of(path) == now.sha256
    assert not [p.name for p in path.parent.iterdir() if p.name.startswith(".")]
    assert [c for _, _, _, c in history(again, run, "summary")] == [
        SUMMARY.encode(), b"# Summary\n\nBy Bob.\n"
    ]  # fmt: skip
    assert again.recover_artifacts() == 0  # nothing left to do: a second start changes nothing
    again.approve_complete(ex, ANA)
    assert again.run(run).info.status == "completed"
    assert artifact_text(again, run, "summary") == "# Summary\n\nBy Bob.\n"


async def test_without_its_staged_file_the_content_comes_from_the_newest_revision_copy(
    engine: Engine, tmp_path: Path, restarted: list[Engine]
) -> None:
    _, ex = await waiting(engine, tmp_path, required=2)
    path = engine.ws.absolute(summary_row(engine).path)
    edit_in_a_process_that_dies_before_the_swap(engine, ex, "# Summary\n\nBy Bob.")
    for staged in path.parent.glob(".*.new"):
        staged.unlink()
    again = Engine.open(engine.ws.base, clock=ManualClock(utcnow() + timedelta(hours=1)))
    restarted.append(again)
    assert path.read_text() == "# Summary\n\nBy Bob.\n"


async def test_a_later_edit_puts_a_pending_swap_in_place_first_and_is_not_overwritten_by_it(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ana's edit committed and her swap is late: Bob's edit runs in between (its transaction
    puts Ana's content in place before staging his); Ana's swap then finds nothing to do."""
    run, _ = await waiting(engine, tmp_path, required=3)
    row = summary_row(engine)
    path = engine.ws.absolute(row.path)

    def edit(text: bytes, who: str) -> None:
        def fn(tx: Tx) -> None:
            locked = tx.session.get(ArtifactRow, row.id)
            assert locked is not None
            artifacts.add_revision(tx, engine.ws, locked, text, who, "edited")

        engine._write(fn)

    def bob_first() -> None:
        monkeypatch.setattr(artifact_revisions, "before_swap", None)
        assert path.read_bytes() == SUMMARY.encode()  # Ana's commit is in, her file not yet
        edit(b"bob\n", "console:bob")

    monkeypatch.setattr(artifact_revisions, "before_swap", bob_first)
    edit(b"ana\n", "console:ana")
    assert path.read_bytes() == b"bob\n"
    assert [c for _, _, _, c in history(engine, run, "summary")] == [SUMMARY.encode(), b"ana\n", b"bob\n"]
    assert not [p.name for p in path.parent.iterdir() if p.name.startswith(".")]
