"""A write transaction with what the domain functions need: session, clock, files, definitions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.clock import Clock
from engine.definitions import Pipeline, pipeline_from_json
from engine.models import ExecutionRow, OutboxRow, PipelineRow, RunRow
from engine.notifications import NOTIFICATION, Notification, RunInfo
from engine.states import ExecStatus


class Definitions:
    """Parsed pipeline versions by row id. Rows never change once imported, so caching is safe."""

    def __init__(self) -> None:
        self._get = lru_cache(maxsize=256)(self._load)
        self._session: Session | None = None

    def get(self, session: Session, pipeline_row_id: int) -> Pipeline:
        self._session = session
        return self._get(pipeline_row_id)

    def _load(self, pipeline_row_id: int) -> Pipeline:
        assert self._session is not None
        row = self._session.get(PipelineRow, pipeline_row_id)
        assert row is not None
        return pipeline_from_json(row.definition_json)


@dataclass
class Tx:
    session: Session
    clock: Clock
    definitions: Definitions
    notified: list[int] = field(default_factory=list)
    after_commit: list[Callable[[], object]] = field(default_factory=list)

    def now(self) -> datetime:
        return self.clock()

    def pipeline(self, run: RunRow) -> Pipeline:
        return self.definitions.get(self.session, run.pipeline_id)

    def notify(self, run: RunRow, note: Notification) -> None:
        self.session.add(
            OutboxRow(
                run_id=run.id,
                platform=run.platform,
                message_key=note.key,
                payload_json=NOTIFICATION.dump_json(note).decode(),
                created_at=self.now(),
            )
        )
        self.notified.append(run.id)

    def run_info(self, run: RunRow) -> RunInfo:
        pipeline = self.pipeline(run)
        done = (
            self.session.scalar(
                select(func.count()).where(
                    ExecutionRow.run_id == run.id, ExecutionRow.status == ExecStatus.COMPLETED
                )
            )
            or 0
        )
        current = (
            pipeline.checkpoints[run.position].title if run.position < len(pipeline.checkpoints) else None
        )
        return RunInfo(
            run_id=run.id,
            name=run.name,
            pipeline_title=pipeline.title,
            status=run.status,
            done=done,
            total=len(pipeline.checkpoints),
            current=current,
            started_by=run.started_by_name,
        )
