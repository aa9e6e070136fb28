"""Rollback history and the disk side of archive management (list, purge)."""

from __future__ import annotations

import functools
import json
import re
import shutil
from datetime import datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import select

from engine import messages, runs
from engine.archive_moves import folder_size
from engine.errors import NotFound
from engine.models import PipelineRow, RollbackRow, RunRow
from engine.tx import Tx
from engine.workspace import Workspace

FOLDER = re.compile(r"^rollback_(\d+)_")
DURATION = re.compile(r"^(\d+)([dhm])$")


class RollbackInfo(BaseModel):
    rollback_id: int
    kind: str  # checkpoint, run or restore
    status: str
    at: datetime
    actor: str
    run: str
    to: str
    executions: int
    runs: int  # runs a run-level rollback archived
    files: int
    size: int
    archive_path: str
    restored_by: int | None = None
    restores: int | None = None


class ArchiveFolder(BaseModel):
    pipeline: str
    path: str
    rollback_id: int | None
    created_at: datetime
    files: int
    size: int


def rollbacks(tx: Tx, target: str) -> list[RollbackInfo]:
    """The rollbacks of a run (``blog-post#v2``) or of a pipeline (``blog-post``), newest first."""
    stmt = select(RollbackRow, RunRow).join(RunRow, RunRow.id == RollbackRow.run_id)
    if "#" in target:
        stmt = stmt.where(RollbackRow.run_id == runs.find_run(tx.session, target).id)
    else:
        slug = target.strip()
        if tx.session.scalar(select(PipelineRow.id).where(PipelineRow.slug == slug).limit(1)) is None:
            raise NotFound(messages.NO_PIPELINE.format(slug=slug))  # not "no rollbacks" for a typo
        stmt = stmt.where(RollbackRow.pipeline_slug == slug)
    stmt = stmt.where(RollbackRow.status.in_(["applied", "restored", "purged"]))
    out = []
    for rb, run in tx.session.execute(stmt.order_by(RollbackRow.id.desc())).all():
        to = f"v{rb.to_version}" if rb.kind == "run" else rb.to_checkpoint_id
        out.append(
            RollbackInfo(
                rollback_id=rb.id,
                kind=rb.kind,
                status=rb.status,
                at=rb.updated_at or rb.created_at,
                actor=rb.actor_name or rb.actor,
                run=run.name,
                to=to if rb.kind != "restore" else f"rollback {rb.restores_id}",
                executions=rb.execution_count,
                runs=len(json.loads(rb.plan_json or "{}").get("runs", [])),
                files=rb.file_count,
                size=rb.byte_count,
                archive_path=rb.archive_path,
                restored_by=rb.restored_by_id,
                restores=rb.restores_id,
            )
        )
    return out


def folders(tx: Tx, ws: Workspace) -> list[ArchiveFolder]:
    """Every folder under {pipeline}/.archived/, with its rollback's time when it has one."""
    out = []
    for archived in sorted(ws.base.glob("*/.archived")):
        for path in sorted(p for p in archived.iterdir() if p.is_dir()):
            m = FOLDER.match(path.name)
            rb = tx.session.get(RollbackRow, int(m[1])) if m else None
            when = rb.created_at if rb else datetime.fromtimestamp(path.stat().st_mtime)
            files, size = folder_size(path)
            out.append(
                ArchiveFolder(
                    pipeline=archived.parent.name,
                    path=ws.relative(path),
                    rollback_id=rb.id if rb else None,
                    created_at=when,
                    files=files,
                    size=size,
                )
            )
    return out


def parse_age(text: str) -> timedelta:
    m = DURATION.match(text.strip())
    if not m:
        raise ValueError(f"'{text}' is not an age like 90d, 12h or 30m")
    unit = {"d": "days", "h": "hours", "m": "minutes"}[m[2]]
    try:
        return timedelta(**{unit: int(m[1])})
    except OverflowError:
        raise ValueError(f"'{text}' is too long an age") from None


def purge(tx: Tx, ws: Workspace, older_than: timedelta, act: bool) -> list[ArchiveFolder]:
    """The archive folders older than ``older_than``; removed (and their rollbacks marked
    purged, so no restore is attempted) only when ``act``."""
    try:
        cutoff = tx.now() - older_than
    except OverflowError:  # older than the calendar: nothing is
        return []
    old = [f for f in folders(tx, ws) if f.created_at < cutoff]
    if act:
        for f in old:
            if f.rollback_id is not None:
                rb = tx.session.get(RollbackRow, f.rollback_id)
                if rb is not None and rb.status == "applied":
                    rb.status = "purged"
            path = ws.absolute(f.path)
            tx.after_commit.append(functools.partial(shutil.rmtree, path, ignore_errors=True))
    return old
