"""A write transaction with what the domain functions need: session, clock, files, definitions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import insert, or_, select
from sqlalchemy.orm import Session

from engine.clock import Clock
from engine.definitions import Pipeline, pipeline_from_json
from engine.models import EventRow, OutboxRow, PipelineRow, RunRow
from engine.notifications import NOTIFICATION, Notification, RunInfo
from engine.roles import Roles


class Definitions:
    """Parsed pipeline versions by row id. Rows never change once imported, so caching is safe;
    commands run in several threads, so each lookup uses the caller's own session."""

    def __init__(self) -> None:
        self._cache: dict[int, Pipeline] = {}

    def get(self, session: Session, pipeline_row_id: int) -> Pipeline:
        pipeline = self._cache.get(pipeline_row_id)
        if pipeline is None:
            row = session.get(PipelineRow, pipeline_row_id)
            assert row is not None
            # Two threads may parse the same row at once: both results are equal, either may stay.
            pipeline = self._cache[pipeline_row_id] = pipeline_from_json(row.definition_json)
        return pipeline


_OUTBOX = insert(OutboxRow)


def _dump(note: Notification, info: RunInfo) -> str:
    return NOTIFICATION.dump_json(note.model_copy(update={"run": info})).decode()


@dataclass
class Tx:
    session: Session
    clock: Clock
    definitions: Definitions
    notified: list[int] = field(default_factory=list)
    notes: list[tuple[RunRow, Notification]] = field(default_factory=list)
    logs: list[tuple[str, str]] = field(default_factory=list)
    after_commit: list[Callable[[], object]] = field(default_factory=list)
    # Undo files written for this transaction if it does not commit (run by Engine._write).
    on_rollback: list[Callable[[], object]] = field(default_factory=list)
    # Artifact file -> its new content, swapped in after the commit (engine.artifact_revisions).
    staged: dict[Path, Path] = field(default_factory=dict)
    run_files: list[tuple[str, int, dict[str, object]]] = field(default_factory=list)
    roles: Roles = field(default_factory=Roles)  # the deployment's admins (engine.roles)

    def now(self) -> datetime:
        return self.clock()

    def pipeline(self, run: RunRow) -> Pipeline:
        return self.definitions.get(self.session, run.pipeline_id)

    def log(self, run: RunRow, text: str) -> None:
        """A line for the pipeline's logs/system.log, written once the transaction commits."""
        self.logs.append((run.pipeline_slug, text if run.name in text else f"{run.name}: {text}"))

    def notify(self, run: RunRow, note: Notification) -> None:
        """Queue a notification; ``finish`` writes the queue to the outbox before commit."""
        self.notes.append((run, note))

    def finish(self) -> None:
        """Write queued notifications, each showing the run as the transaction leaves it;
        read the run_info.json of each run whose state changed."""
        moved: dict[int, RunRow] = self.session.info.pop("moved_runs", {})
        pauses = pause_times(self.session, list(moved))
        self.run_files = [
            run_info_file(self.session, self._run_info(run), run, pauses.get(run.id, (None, None)))
            for run in moved.values()
        ]
        if not self.notes:
            return
        # A message shown twice in one transaction (a run's status card after each of its moves)
        # is written once: where it first appeared, as it was last shown (what the outbox would
        # deliver of the two rows anyway).
        latest: dict[tuple[int, str], tuple[RunRow, Notification]] = {}
        for run, note in self.notes:
            latest[(run.id, note.key)] = (run, note)
        infos = {run.id: self._run_info(run) for run, _ in self.notes}
        now = self.now()
        rows = [
            {
                "run_id": run.id,
                "platform": run.platform,
                "message_key": note.key,
                "payload_json": NOTIFICATION.dump_json(
                    note.model_copy(update={"run": infos[run.id]})
                ).decode(),
                "created_at": now,
            }
            for run, note in latest.values()
        ]
        self.session.connection().execute(_OUTBOX, rows)
        self.notified = [run.id for run, _ in self.notes]
        self.notes.clear()

    def run_info(self, run: RunRow) -> RunInfo:
        return self._run_info(run)

    def _run_info(self, run: RunRow) -> RunInfo:
        pipeline = self.pipeline(run)
        current = (
            pipeline.checkpoints[run.position].title if run.position < len(pipeline.checkpoints) else None
        )
        return RunInfo(
            run_id=run.id,
            name=run.name,
            pipeline_title=pipeline.title,
            status=run.status,
            done=run.done,
            total=len(pipeline.checkpoints),
            current=current,
            started_by=run.started_by_name,
            finish_hook=run.finish_hook,
        )


def pause_times(session: Session, run_ids: list[int]) -> dict[int, tuple[str | None, str | None]]:
    """Per run, its latest pause and resume (ISO times): one query for many runs, since a
    burst of deadlines finishes many runs in one transaction (and a run pauses rarely)."""
    out: dict[int, tuple[str | None, str | None]] = {}
    if not run_ids:
        return out
    for run_id, to_state, from_state, at in session.execute(
        select(EventRow.run_id, EventRow.to_state, EventRow.from_state, EventRow.created_at)
        .where(
            EventRow.run_id.in_(run_ids),
            EventRow.entity == "run",
            or_(EventRow.to_state == "paused", EventRow.from_state == "paused"),
        )
        .order_by(EventRow.id.desc())
    ):
        paused_at, resumed_at = out.get(run_id, (None, None))
        if to_state == "paused" and paused_at is None:
            paused_at = at.isoformat(timespec="seconds")
        if from_state == "paused" and to_state == "in_progress" and resumed_at is None:
            resumed_at = at.isoformat(timespec="seconds")
        out[run_id] = (paused_at, resumed_at)
    return out


def run_info_file(
    session: Session, info: RunInfo, run: RunRow, pauses: tuple[str | None, str | None]
) -> tuple[str, int, dict[str, object]]:
    """(slug, version, content) of .pipeline_system/runs/v{N}/run_info.json; ``pauses``: the
    run's latest pause and resume (pause_times)."""
    paused_at, resumed_at = pauses
    extends = session.get(RunRow, run.extends_run_id) if run.extends_run_id else None
    return (
        run.pipeline_slug,
        run.version,
        {
            "run": run.name,
            "version": run.version,
            "status": run.status,
            "current_checkpoint": info.current if run.status in ("in_progress", "paused") else None,
            "position": run.position,
            "done": run.done,
            "total": info.total,
            "started_by": run.started_by_name,
            "created_at": run.created_at.isoformat(timespec="seconds"),
            "updated_at": run.updated_at.isoformat(timespec="seconds"),
            "finished_at": run.finished_at.isoformat(timespec="seconds") if run.finished_at else None,
            "paused_at": paused_at,
            "last_resumed_at": resumed_at,
            "extends": extends.name if extends else None,
        },
    )
