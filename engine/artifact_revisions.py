"""Every content an artifact had (``artifact_revisions``), each kept in a file of its own.

An artifact's file is overwritten in place by the next attempt of its execution (a revision
request re-runs the same execution), so each revision's bytes are copied to
``{pipeline}/.revisions/exec_{execution}/{artifact}/r{N}-{sha}{suffix}``: outside the work folder
(a sandboxed script cannot reach it, and it outlives the work folder once promoted), inside the
pipeline folder (a rollback moves it into its archive with the execution; engine.rollbacks).
The sha in the name makes two writers of the same number never share a file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from engine.models import ArtifactRevisionRow, ArtifactRow, ExecutionRow
from engine.tx import Tx
from engine.workspace import Workspace, safe_filename, sha256_of

PRODUCED, EDITED = "produced", "edited"


def _slug(row: ArtifactRow) -> str:
    return Path(row.path).parts[0]  # workspace-relative paths start with the pipeline folder


def _store(ws: Workspace, row: ArtifactRow, number: int, sha: str, write: bytes | Path) -> Path:
    """Write one revision's copy (before the commit that names it: a failed commit leaves an
    unnamed file, never a named file half-made)."""
    folder = ws.revisions_dir(_slug(row), row.execution_id) / safe_filename(row.name, "artifact")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"r{number}-{sha[:12]}{Path(row.path).suffix}"
    if not path.exists():
        tmp = path.with_name(path.name + ".part")
        if isinstance(write, Path):
            shutil.copyfile(write, tmp)
        else:
            tmp.write_bytes(write)
        os.replace(tmp, path)
    return path


def revisions(tx: Tx, artifact_id: int) -> list[ArtifactRevisionRow]:
    """An artifact's revisions, oldest first (artifacts older than the table have their
    revision 1 from the migration)."""
    return list(
        tx.session.scalars(
            select(ArtifactRevisionRow)
            .where(ArtifactRevisionRow.artifact_id == artifact_id)
            .order_by(ArtifactRevisionRow.number)
        )
    )


def revision_bytes(ws: Workspace, rev: ArtifactRevisionRow) -> bytes | None:
    """The revision's content; None if its file is gone or no longer holds it (a revision 1
    from the migration shares the artifact's file, which a later attempt may have overwritten)."""
    try:
        data = ws.absolute(rev.path).read_bytes()
    except (OSError, ValueError):
        return None
    return data if hashlib.sha256(data).hexdigest() == rev.sha256 else None


def _keep_shared(ws: Workspace, row: ArtifactRow, revs: list[ArtifactRevisionRow]) -> None:
    """A revision that still points at the artifact's own file gets a copy before it changes."""
    for rev in revs:
        if rev.path == row.path and revision_bytes(ws, rev) is not None:
            rev.path = ws.relative(_store(ws, row, rev.number, rev.sha256, ws.absolute(row.path)))


def _append(
    tx: Tx, ws: Workspace, row: ArtifactRow, source: bytes | Path, author: str, kind: str
) -> ArtifactRevisionRow:
    revs = revisions(tx, row.id)
    ex = tx.session.get(ExecutionRow, row.execution_id)
    number = (revs[-1].number if revs else 0) + 1
    sha = sha256_of(source) if isinstance(source, Path) else _sha(source)
    size = source.stat().st_size if isinstance(source, Path) else len(source)
    copy = _store(ws, row, number, sha, source)
    rev = ArtifactRevisionRow(
        artifact_id=row.id,
        number=number,
        execution_revision=ex.revision if ex is not None else 0,
        path=ws.relative(copy),
        size=size,
        sha256=sha,
        author=author[:120],
        kind=kind,
        created_at=tx.now(),
    )
    tx.session.add(rev)
    tx.session.flush()
    return rev


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def produced(tx: Tx, ws: Workspace, row: ArtifactRow, author: str) -> ArtifactRevisionRow:
    """The artifact's file was just (re)written by its producer: that content is the next revision.
    (Earlier revisions have their copies already, except a migrated revision 1 whose shared
    file the new attempt overwrote: revision_bytes says None for it.)"""
    return _append(tx, ws, row, ws.absolute(row.path), author, PRODUCED)


def add_revision(
    tx: Tx, ws: Workspace, row: ArtifactRow, content: bytes, author: str, kind: str
) -> ArtifactRevisionRow:
    """Make `content` the artifact's current content (its file rewritten, row size/sha256
    updated) and record it as the next revision; earlier revisions stay readable."""
    if kind not in (PRODUCED, EDITED):
        raise ValueError(f"unknown revision kind: {kind}")
    locked = tx.session.get(ArtifactRow, row.id, with_for_update=True)  # one writer at a time
    row = locked if locked is not None else row
    _keep_shared(ws, row, revisions(tx, row.id))
    path = ws.absolute(row.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.unlink(missing_ok=True)  # never write through a link a sandboxed script left there
    tmp.write_bytes(content)
    os.replace(tmp, path)
    row.size, row.sha256 = len(content), _sha(content)
    return _append(tx, ws, row, content, author, kind)


def relocate(tx: Tx, artifact_ids: list[int], where: Callable[[str], str | None]) -> None:
    """Files moved (a rollback, a restore): revision rows follow, as artifact rows do."""
    if not artifact_ids:
        return
    rows = tx.session.scalars(
        select(ArtifactRevisionRow).where(ArtifactRevisionRow.artifact_id.in_(artifact_ids))
    )
    for rev in rows:
        new = where(rev.path)
        if new is not None:
            rev.path = new
