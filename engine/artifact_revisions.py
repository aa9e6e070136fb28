"""Every content an artifact had (``artifact_revisions``), each kept in a file of its own.

An artifact's file is overwritten in place by the next attempt of its execution (a revision
request re-runs the same execution), so each revision's bytes are copied to
``{pipeline}/.revisions/exec_{execution}/{artifact}/r{N}-{sha}{suffix}``: outside the work folder
(a sandboxed script cannot reach it, and it outlives the work folder once promoted), inside the
pipeline folder (a rollback moves it into its archive with the execution; engine.rollbacks).
The sha in the name makes two writers of the same number never share a file.

Nothing half-written stays: an edit's new content is written next to the artifact's file under
a name of its own and swapped in (``os.replace``) only once the transaction commits; the
copies a transaction made go if it does not commit (Tx.on_rollback). A process that dies
between the commit and the swap leaves the old file: ``recover``, at the next start, puts the
committed content in place.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, select

from engine.archive_moves import prune
from engine.models import ArtifactRevisionRow, ArtifactRow, ExecutionRow
from engine.tx import Tx
from engine.workspace import Workspace, safe_filename, sha256_of

PRODUCED, EDITED = "produced", "edited"
STAGED = ".new"  # the suffix of content waiting for its commit: .{file name}.{12 hex}.new

log = logging.getLogger("pipebot.engine")

# Called after the commit, before a staged content is swapped in (tests end the process here).
before_swap: Callable[[], None] | None = None


def _slug(row: ArtifactRow) -> str:
    return Path(row.path).parts[0]  # workspace-relative paths start with the pipeline folder


def _store(tx: Tx, ws: Workspace, row: ArtifactRow, number: int, sha: str, write: bytes | Path) -> Path:
    """Write one revision's copy (before the commit that names it: a failed commit removes it;
    a process that dies first leaves an unnamed file, never a named file half-made)."""
    folder = ws.revisions_dir(_slug(row), row.execution_id) / safe_filename(row.name, "artifact")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"r{number}-{sha[:12]}{Path(row.path).suffix}"
    if not path.exists():
        tmp = path.with_name(path.name + ".part")
        tx.on_rollback.append(lambda: _remove(ws, tmp, path))
        if isinstance(write, Path):
            shutil.copyfile(write, tmp)
        else:
            tmp.write_bytes(write)
        os.replace(tmp, path)
    return path


def _remove(ws: Workspace, *paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
    prune(ws, [ws.relative(p) for p in paths])  # and the folders made for them, left empty


def _stage(tx: Tx, ws: Workspace, target: Path, content: bytes) -> None:
    """Write ``content`` beside ``target`` under a new name; it replaces ``target`` once the
    transaction commits and goes if it does not. Until then this transaction reads it through
    ``tx.staged`` (a promotion in the same transaction copies it)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}{STAGED}")
    tx.on_rollback.append(lambda: _remove(ws, staged))
    with staged.open("xb") as f:  # exclusive: never over a file, never through a link
        f.write(content)
    tx.staged[target] = staged
    tx.after_commit.append(lambda: _swap(staged, target))


def _swap(staged: Path, target: Path) -> None:
    if before_swap is not None:
        before_swap()
    try:
        os.replace(staged, target)
    except FileNotFoundError:  # a later writer or recover put it in place first (_settle)
        log.debug("%s: its new content was put in place already", target)
    except OSError as exc:  # the next start puts it in place (recover)
        log.warning("could not put the new content of %s in place: %s", target, exc)


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


def _keep_shared(tx: Tx, ws: Workspace, row: ArtifactRow, revs: list[ArtifactRevisionRow]) -> None:
    """A revision that still points at the artifact's own file gets a copy before it changes."""
    for rev in revs:
        if rev.path == row.path and revision_bytes(ws, rev) is not None:
            rev.path = ws.relative(_store(tx, ws, row, rev.number, rev.sha256, ws.absolute(row.path)))


def _append(
    tx: Tx, ws: Workspace, row: ArtifactRow, source: bytes | Path, author: str, kind: str
) -> ArtifactRevisionRow:
    revs = revisions(tx, row.id)
    ex = tx.session.get(ExecutionRow, row.execution_id)
    number = (revs[-1].number if revs else 0) + 1
    sha = sha256_of(source) if isinstance(source, Path) else _sha(source)
    size = source.stat().st_size if isinstance(source, Path) else len(source)
    copy = _store(tx, ws, row, number, sha, source)
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
    """Make `content` the artifact's current content (row size/sha256 updated now, its file
    rewritten once the transaction commits) and record it as the next revision; earlier
    revisions stay readable."""
    if kind not in (PRODUCED, EDITED):
        raise ValueError(f"unknown revision kind: {kind}")
    locked = tx.session.get(ArtifactRow, row.id, with_for_update=True)  # one writer at a time
    row = locked if locked is not None else row
    # An earlier edit's swap still pending (or lost in a crash) happens now, never after ours.
    _settle(tx, ws, row)
    _keep_shared(tx, ws, row, revisions(tx, row.id))
    _stage(tx, ws, ws.absolute(row.path), content)
    row.size, row.sha256 = len(content), _sha(content)
    return _append(tx, ws, row, content, author, kind)


def _sha_of(path: Path) -> str | None:
    try:
        return sha256_of(path)
    except OSError:
        return None


def _settle(tx: Tx, ws: Workspace, row: ArtifactRow) -> bool:
    """Under the row's lock: make the artifact's file hold what its row says if it does not
    (its writer died between the commit and the swap): from its staged file if that is still
    there, else from the newest revision's copy. Staged files left beside it go (a live
    writer stages only under the lock, so they belong to writers that died or committed).
    True if the file was put right."""
    try:
        target = ws.absolute(row.path)
    except ValueError:
        return False
    if target in tx.staged:  # this transaction's own edit: the row says what is not committed
        return False
    pattern = re.compile(rf"\.{re.escape(target.name)}\.[0-9a-f]{{12}}{re.escape(STAGED)}")
    try:
        staged = [p for p in target.parent.iterdir() if pattern.fullmatch(p.name)]
    except OSError:
        staged = []
    fixed = False
    if _sha_of(target) != row.sha256:
        source = next((p for p in staged if _sha_of(p) == row.sha256), None)
        if source is None:
            revs = revisions(tx, row.id)
            data = revision_bytes(ws, revs[-1]) if revs and revs[-1].sha256 == row.sha256 else None
            if data is not None:
                source = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}{STAGED}")
                with source.open("xb") as f:
                    f.write(data)
        if source is not None:
            os.replace(source, target)
            fixed = True
        else:
            log.warning("%s: no copy of its committed content is left", row.path)
    for p in staged:
        p.unlink(missing_ok=True)
    return fixed


def recover(tx: Tx, ws: Workspace) -> list[str]:
    """At start: settle each artifact whose newest revision is an edit (add_revision is the
    only writer that swaps after the commit, so a start hashes a few small text files, not
    the workspace). Returns the paths put right."""
    newest = (
        select(ArtifactRevisionRow.artifact_id, func.max(ArtifactRevisionRow.number).label("number"))
        .group_by(ArtifactRevisionRow.artifact_id)
        .subquery()
    )
    ids = tx.session.scalars(
        select(ArtifactRevisionRow.artifact_id)
        .join(
            newest,
            (newest.c.artifact_id == ArtifactRevisionRow.artifact_id)
            & (newest.c.number == ArtifactRevisionRow.number),
        )
        .where(ArtifactRevisionRow.kind == EDITED)
    ).all()
    repaired = []
    for artifact_id in ids:
        row = tx.session.get(ArtifactRow, artifact_id, with_for_update=True)
        if row is not None and _settle(tx, ws, row):
            repaired.append(row.path)
    return repaired


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
