"""Pipeline management: import (new or replacing version), delete, and the list of pipelines.

Versions are rows that never change once imported (runs point at the one they started with);
deleting marks every version deleted, so the pipeline leaves the list while its runs, their
definitions and their files stay readable. Importing the same id again brings it back.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine import audit, messages, runs
from engine.actors import Actor
from engine.definitions import Pipeline
from engine.errors import NotFound, Refused
from engine.human import Outcome
from engine.models import CheckpointDefinitionRow, PipelineRow, RunRow
from engine.queries import PipelineSummary
from engine.roles import Roles, check_delete, check_import
from engine.states import RunStatus as R
from engine.tx import Tx
from engine.workspace import Workspace

ACTIVE = (R.NOT_STARTED, R.IN_PROGRESS, R.PAUSED)


def latest_row(session: Session, slug: str) -> PipelineRow | None:
    """The newest version of ``slug``, deleted or not."""
    return session.scalar(
        select(PipelineRow).where(PipelineRow.slug == slug).order_by(PipelineRow.version.desc()).limit(1)
    )


def live_row(session: Session, slug: str) -> PipelineRow:
    """The newest version of a pipeline that is not deleted, or NotFound."""
    row = latest_row(session, slug)
    if row is None or row.deleted_at is not None:
        raise NotFound(messages.NO_PIPELINE.format(slug=slug))
    return row


def live_rows(session: Session) -> list[PipelineRow]:
    """The newest version of every pipeline that is not deleted, by id."""
    rows = session.scalars(select(PipelineRow).order_by(PipelineRow.slug, PipelineRow.version.desc())).all()
    latest: dict[str, PipelineRow] = {}
    for row in rows:
        latest.setdefault(row.slug, row)
    return [r for r in latest.values() if r.deleted_at is None]


def summary(row: PipelineRow, pipeline: Pipeline, changed: bool = False) -> PipelineSummary:
    return PipelineSummary(
        slug=row.slug,
        version=row.version,
        title=pipeline.title,
        description=pipeline.description,
        checkpoints=len(pipeline.checkpoints),
        changed=changed,
    )


def import_(
    tx: Tx,
    ws: Workspace,
    roles: Roles,
    pipeline: Pipeline,
    source_dir: Path | None,
    actor: Actor | None,
) -> PipelineSummary:
    """Add ``pipeline`` as its next version (unchanged when identical). ``actor=None``: the CLI."""
    latest = latest_row(tx.session, pipeline.id)
    alive = latest is not None and latest.deleted_at is None
    existing = tx.definitions.get(tx.session, latest.id) if latest is not None and alive else None
    check_import(roles, pipeline, existing, actor)
    body = pipeline.model_dump_json(by_alias=True, exclude_defaults=True)
    checksum = hashlib.sha256(body.encode()).hexdigest()
    if latest is not None and alive and latest.checksum == checksum:
        return summary(latest, pipeline)
    row = PipelineRow(
        slug=pipeline.id,
        version=(latest.version + 1) if latest else 1,
        name=pipeline.title,
        definition_json=body,
        checksum=checksum,
        source_dir=str(source_dir) if source_dir else None,
        created_at=tx.now(),
        imported_by=actor.key if actor else None,
        deleted_at=None,
    )
    tx.session.add(row)
    tx.session.flush()
    tx.session.add_all(
        CheckpointDefinitionRow(
            pipeline_id=row.id,
            position=i,
            checkpoint_id=cp.id,
            mode=cp.mode,
            definition_json=cp.model_dump_json(by_alias=True, exclude_defaults=True),
        )
        for i, cp in enumerate(pipeline.checkpoints)
    )
    audit.record(tx.session, tx.now(), "import", "accepted", actor, pipeline.id, {"version": row.version})
    ws.write_definitions(pipeline)
    tx.logs.append((pipeline.id, f"imported version {row.version} ({checksum[:12]}) by {_who(actor)}"))
    return summary(row, pipeline, changed=True)


def delete(tx: Tx, roles: Roles, slug: str, actor: Actor | None, cancel_runs: bool) -> Outcome:
    """Take a pipeline out of the list; its active runs are refused unless ``cancel_runs``."""
    row = live_row(tx.session, slug)
    check_delete(roles, tx.definitions.get(tx.session, row.id), actor)
    active = list(
        tx.session.scalars(
            select(RunRow).where(RunRow.pipeline_slug == slug, RunRow.status.in_(ACTIVE)).order_by(RunRow.id)
        )
    )
    if active and not cancel_runs:
        raise Refused(messages.ACTIVE_RUNS.format(slug=slug, runs=", ".join(r.name for r in active)))
    for run in active:
        tx.session.refresh(run, with_for_update=True)
        runs.cancel_run(tx, run, actor or audit.OPERATOR)
    tx.session.execute(update(PipelineRow).where(PipelineRow.slug == slug).values(deleted_at=tx.now()))
    cancelled = [r.name for r in active]
    audit.record(tx.session, tx.now(), "delete", "accepted", actor, slug, {"cancelled": cancelled})
    tx.logs.append(
        (slug, f"deleted by {_who(actor)}" + (f"; cancelled {', '.join(cancelled)}" if cancelled else ""))
    )
    extra = f" and cancelled {', '.join(cancelled)}" if cancelled else ""
    return Outcome(f"Deleted pipeline {slug}{extra}; its runs and files stay readable.")


def _who(actor: Actor | None) -> str:
    return actor.key if actor else "the operator (CLI)"
