"""Artifact rows and the files behind them."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

# The revision history, re-exported: callers know one module for artifacts.
from engine.artifact_revisions import add_revision as add_revision
from engine.artifact_revisions import produced as _produced
from engine.artifact_revisions import revision_bytes as revision_bytes
from engine.artifact_revisions import revisions as revisions
from engine.models import ArtifactRow, ExecutionRow, RunRow
from engine.notifications import ArtifactInfo
from engine.states import RunStatus
from engine.tx import Tx
from engine.workspace import Workspace, sha256_of

PREVIEW_FORMATS = {"md", "txt", "json", "csv", "yaml", "html", "py"}
PREVIEW_CHARS = 1500


def record(
    tx: Tx,
    ws: Workspace,
    run: RunRow,
    ex: ExecutionRow,
    name: str,
    fmt: str,
    path: Path,
    author: str = "unknown",
) -> ArtifactRow:
    """Add or replace (on a revision) the artifact ``name`` of an execution; its content is
    also kept as the artifact's next revision (``author``: who produced it)."""
    row = tx.session.scalar(
        select(ArtifactRow).where(ArtifactRow.execution_id == ex.id, ArtifactRow.name == name)
    )
    if row is None:
        row = ArtifactRow(
            run_id=run.id,
            execution_id=ex.id,
            checkpoint_id=ex.checkpoint_id,
            name=name,
            format=fmt,
            path="",
            size=0,
            sha256="",
            created_at=tx.now(),
        )
        tx.session.add(row)
    row.format, row.path = fmt, ws.relative(path)
    row.size, row.sha256 = path.stat().st_size, sha256_of(path)
    row.promoted, row.archived = False, False
    tx.session.flush()
    _produced(tx, ws, row, author)
    return row


def of_execution(tx: Tx, execution_id: int) -> list[ArtifactRow]:
    return list(
        tx.session.scalars(
            select(ArtifactRow)
            .where(ArtifactRow.execution_id == execution_id, ArtifactRow.archived.is_(False))
            .order_by(ArtifactRow.id)
        )
    )


def of_runs(
    tx: Tx, run_ids: list[int], execution_id: int | None = None, archived: bool = False
) -> list[ArtifactRow]:
    """The current (with ``archived``: also the archived) artifacts of some runs, oldest first."""
    stmt = select(ArtifactRow).where(ArtifactRow.run_id.in_(run_ids))
    if not archived:
        stmt = stmt.where(ArtifactRow.archived.is_(False))
    if execution_id is not None:
        stmt = stmt.where(ArtifactRow.execution_id == execution_id)
    return list(tx.session.scalars(stmt.order_by(ArtifactRow.id)))


def promote(tx: Tx, ws: Workspace, run: RunRow, ex: ExecutionRow) -> list[ArtifactRow]:
    rows = of_execution(tx, ex.id)
    files = [ws.absolute(r.path) for r in rows]
    moved = {}
    for row, dst in zip(
        rows, ws.promote(run.pipeline_slug, run.version, ex.checkpoint_id, files, tx.staged), strict=True
    ):
        moved[row.path] = ws.relative(dst)
        row.path, row.promoted = moved[row.path], True
    if ex.form_json:  # the form's file values name the promoted copy (.temp goes away)
        form = json.loads(ex.form_json)
        for value in form.values():
            if isinstance(value, dict) and value.get("path") in moved:
                value["path"] = moved[value["path"]]
        ex.form_json = json.dumps(form)
    point_latest(tx, ws, run.pipeline_slug)
    return rows


def point_latest(tx: Tx, ws: Workspace, slug: str) -> None:
    """After commit, runs/latest -> the newest run that is not rolled back and has a folder."""
    newest = (
        select(RunRow.version)
        .where(RunRow.pipeline_slug == slug, RunRow.status != RunStatus.ROLLED_BACK)
        .order_by(RunRow.version.desc())
    )
    # Nearly always one of the newest few has a folder: read those before every version there is.
    for query in (newest.limit(10), newest.offset(10)):
        for version in tx.session.scalars(query):
            if ws.run_dir(slug, version).is_dir():
                tx.after_commit.append(lambda v=version: ws.point_latest(slug, v))  # type: ignore[misc]
                return
    tx.after_commit.append(lambda: ws.unpoint_latest(slug))


def info(ws: Workspace, row: ArtifactRow, preview_chars: int = PREVIEW_CHARS) -> ArtifactInfo:
    preview = None
    if row.format in PREVIEW_FORMATS:
        path = ws.absolute(row.path)
        if path.exists():
            with path.open("rb") as f:
                head = f.read(preview_chars + 1)
            text = head.decode("utf-8", errors="replace")
            preview = text[:preview_chars] + ("…" if len(text) > preview_chars else "")
    return ArtifactInfo(
        artifact_id=row.id,
        name=row.name,
        format=row.format,
        size=row.size,
        path=row.path,
        sha256=row.sha256,
        preview=preview,
        archived=row.archived,
    )
