"""SQLAlchemy 2.0 typed models: the database is the source of truth.

Times are naive UTC. JSON payloads are stored as text so SQLite and PostgreSQL agree.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class PipelineRow(Base):
    """One imported version of a pipeline file; runs point at the version they started with."""

    __tablename__ = "pipelines"
    __table_args__ = (UniqueConstraint("slug", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int]
    name: Mapped[str] = mapped_column(String(200))
    definition_json: Mapped[str] = mapped_column(Text)
    checksum: Mapped[str] = mapped_column(String(64))
    source_dir: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    imported_by: Mapped[str | None] = mapped_column(String(120))  # None: the operator (CLI)
    # Set on every version of a deleted pipeline: it leaves the list, its runs stay readable.
    deleted_at: Mapped[datetime | None]


class ScheduledStartRow(Base):
    """One fire time of a pipeline's schedule; the unique key makes each start happen once,
    however many processes run the scheduler."""

    __tablename__ = "scheduled_starts"
    __table_args__ = (UniqueConstraint("slug", "fire_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64))
    fire_at: Mapped[datetime]
    run_id: Mapped[int | None] = mapped_column(ForeignKey("pipeline_runs.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]


class CheckpointDefinitionRow(Base):
    __tablename__ = "checkpoint_definitions"
    id: Mapped[int] = mapped_column(primary_key=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]
    checkpoint_id: Mapped[str] = mapped_column(String(64))
    mode: Mapped[str] = mapped_column(String(20))
    definition_json: Mapped[str] = mapped_column(Text)


class RunRow(Base):
    __tablename__ = "pipeline_runs"
    __table_args__ = (UniqueConstraint("pipeline_slug", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id"))
    pipeline_slug: Mapped[str] = mapped_column(String(64))
    version: Mapped[int]
    status: Mapped[str] = mapped_column(String(20), index=True)
    platform: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(100))
    thread: Mapped[str | None] = mapped_column(String(100))
    started_by: Mapped[str] = mapped_column(String(120))
    started_by_name: Mapped[str] = mapped_column(String(120))
    extends_run_id: Mapped[int | None] = mapped_column(ForeignKey("pipeline_runs.id"))
    position: Mapped[int] = mapped_column(default=0)
    done: Mapped[int] = mapped_column(default=0)  # completed checkpoints, kept with each transition
    tokens_in: Mapped[int] = mapped_column(default=0)
    tokens_out: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    # Opaque to the engine: set by the adapter that started the run for someone who waits for its
    # end (a chat workflow step), shown to that adapter with the run so it can answer when it ends.
    finish_hook: Mapped[str | None] = mapped_column(String(200))

    @property
    def name(self) -> str:
        return f"{self.pipeline_slug}#v{self.version}"


class ExecutionRow(Base):
    __tablename__ = "checkpoint_executions"
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("pipeline_runs.id", ondelete="CASCADE"), index=True)
    checkpoint_id: Mapped[str] = mapped_column(String(64))
    position: Mapped[int]
    mode: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(40), index=True)
    attempt: Mapped[int] = mapped_column(default=1)
    revision: Mapped[int] = mapped_column(default=0)
    form_json: Mapped[str | None] = mapped_column(Text)
    feedback: Mapped[str | None] = mapped_column(Text)
    state_json: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    heartbeat_at: Mapped[datetime | None]
    not_before: Mapped[datetime | None]
    tokens_in: Mapped[int] = mapped_column(default=0)
    tokens_out: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class ExecutionLogRow(Base):
    __tablename__ = "execution_logs"
    id: Mapped[int] = mapped_column(primary_key=True)
    execution_id: Mapped[int] = mapped_column(
        ForeignKey("checkpoint_executions.id", ondelete="CASCADE"), index=True
    )
    level: Mapped[str] = mapped_column(String(10))
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class InteractionRow(Base):
    """Every human command, accepted or refused (the audit trail)."""

    __tablename__ = "human_interactions"
    __table_args__ = (Index("ix_interactions_exec_kind", "execution_id", "kind", "revision"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("pipeline_runs.id", ondelete="CASCADE"), index=True)
    execution_id: Mapped[int | None] = mapped_column(
        ForeignKey("checkpoint_executions.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(30))
    outcome: Mapped[str] = mapped_column(String(20))
    actor_platform: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[str] = mapped_column(String(100))
    actor_name: Mapped[str] = mapped_column(String(120))
    revision: Mapped[int] = mapped_column(default=0)
    data_json: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


class TimerRow(Base):
    """A deadline or a reminder of one wait (execution, stage, revision): the row is the timer.

    Written with the state that starts the wait, closed (``state``) by the decision that ends it
    or by firing; the timer loop claims open rows whose ``due_at`` has passed.
    """

    __tablename__ = "timers"
    __table_args__ = (Index("ix_timers_open_due", "state", "due_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("pipeline_runs.id", ondelete="CASCADE"), index=True)
    execution_id: Mapped[int] = mapped_column(
        ForeignKey("checkpoint_executions.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(20))  # deadline | escalation | reminder
    stage: Mapped[str] = mapped_column(String(10))  # start | form | complete
    revision: Mapped[int]
    number: Mapped[int] = mapped_column(default=0)  # the reminder's count
    due_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(10), default="open")  # open | fired | cancelled
    closed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class ExtraApproverRow(Base):
    """A principal who may decide one execution only: added by an escalation or a reassignment."""

    __tablename__ = "extra_approvers"
    id: Mapped[int] = mapped_column(primary_key=True)
    execution_id: Mapped[int] = mapped_column(
        ForeignKey("checkpoint_executions.id", ondelete="CASCADE"), index=True
    )
    principal: Mapped[str] = mapped_column(String(120))
    name: Mapped[str] = mapped_column(String(120))
    reason: Mapped[str] = mapped_column(String(20))  # escalation | reassign
    added_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime]


class AuditRow(Base):
    """Commands about pipelines themselves (import, delete) and refusals that have no run."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))
    outcome: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str | None] = mapped_column(String(200))  # a pipeline id or run name
    actor_platform: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[str] = mapped_column(String(100))
    actor_name: Mapped[str] = mapped_column(String(120))
    data_json: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(index=True)


class ArtifactRow(Base):
    __tablename__ = "artifacts"
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("pipeline_runs.id", ondelete="CASCADE"), index=True)
    execution_id: Mapped[int] = mapped_column(
        ForeignKey("checkpoint_executions.id", ondelete="CASCADE"), index=True
    )
    checkpoint_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    format: Mapped[str] = mapped_column(String(20))
    path: Mapped[str] = mapped_column(Text)
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    promoted: Mapped[bool] = mapped_column(default=False)
    archived: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]


class ArtifactRevisionRow(Base):
    """One content of an artifact: what a (re-)run produced or a person edited, oldest first.

    ``path`` is a copy kept under ``{pipeline}/.revisions/exec_{id}/`` (rollbacks move it with the
    execution), so the next attempt overwriting the artifact's file does not lose it.
    """

    __tablename__ = "artifact_revisions"
    __table_args__ = (UniqueConstraint("artifact_id", "number"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id", ondelete="CASCADE"), index=True)
    number: Mapped[int]
    execution_revision: Mapped[int]
    path: Mapped[str] = mapped_column(Text)
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    author: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(10))  # produced | edited
    created_at: Mapped[datetime]


class RollbackRow(Base):
    """A rollback (kind ``checkpoint`` or ``run``) or a restore of one, from its proposal on.

    status: proposed (waiting for Confirm) -> moving (plan written, files moving) -> applied,
    or kept (Keep clicked); an applied one becomes restored. ``plan_json`` holds the moves, so
    a crash while ``moving`` is undone on the next start (engine.rollbacks.recover).
    """

    __tablename__ = "rollback_events"
    __table_args__ = (Index("ix_rollback_events_slug", "pipeline_slug"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("pipeline_runs.id", ondelete="CASCADE"), index=True)
    to_checkpoint_id: Mapped[str] = mapped_column(String(64))  # "" for a run-level rollback
    actor: Mapped[str] = mapped_column(String(120))
    archive_path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(20), default="checkpoint", server_default="checkpoint")
    status: Mapped[str] = mapped_column(String(20), default="applied", server_default="applied")
    pipeline_slug: Mapped[str | None] = mapped_column(String(64))
    to_version: Mapped[int | None]
    actor_name: Mapped[str | None] = mapped_column(String(120))
    plan_json: Mapped[str | None] = mapped_column(Text)
    file_count: Mapped[int] = mapped_column(default=0, server_default="0")
    byte_count: Mapped[int] = mapped_column(default=0, server_default="0")
    execution_count: Mapped[int] = mapped_column(default=0, server_default="0")
    updated_at: Mapped[datetime | None]
    restores_id: Mapped[int | None]
    restored_by_id: Mapped[int | None]


class ArchivedItemRow(Base):
    __tablename__ = "archived_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    rollback_id: Mapped[int] = mapped_column(ForeignKey("rollback_events.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    item_id: Mapped[int]  # the execution, run or artifact (0: a file no artifact row names)
    path: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    original_path: Mapped[str | None] = mapped_column(Text)
    archived_path: Mapped[str | None] = mapped_column(Text)
    checksum: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int | None]


class EventRow(Base):
    """One row per state transition, written in the transaction that made it."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("pipeline_runs.id", ondelete="CASCADE"), index=True)
    entity: Mapped[str] = mapped_column(String(20))
    entity_id: Mapped[int]
    from_state: Mapped[str] = mapped_column(String(40))
    to_state: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str | None] = mapped_column(String(120))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


class OutboxRow(Base):
    """A notification for chat, written with the state change, delivered after commit."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "delivered_at", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("pipeline_runs.id", ondelete="CASCADE"), index=True)
    platform: Mapped[str] = mapped_column(String(20))
    message_key: Mapped[str] = mapped_column(String(120))
    payload_json: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    not_before: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None]
    dead: Mapped[bool] = mapped_column(default=False)
    # Set before the platform call: a row found sending after a crash may have been posted already.
    sending_at: Mapped[datetime | None]
    sending_by: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[datetime]


class LeaseRow(Base):
    """Who does something that only one process may do at a time (e.g. deliver one run's outbox).

    The holder renews ``heartbeat_at``; a lease not renewed for the stale period is taken over.
    """

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(120), primary_key=True)
    holder: Mapped[str] = mapped_column(String(120))
    heartbeat_at: Mapped[datetime]
    acquired_at: Mapped[datetime]


class MessageRefRow(Base):
    """Where a notification landed on the platform, so later ones edit the same message."""

    __tablename__ = "message_refs"
    __table_args__ = (UniqueConstraint("run_id", "message_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("pipeline_runs.id", ondelete="CASCADE"))
    message_key: Mapped[str] = mapped_column(String(120))
    platform: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(100))
    message_id: Mapped[str] = mapped_column(String(100))
    thread_id: Mapped[str | None] = mapped_column(String(100))
    updated_at: Mapped[datetime]


class InboxRow(Base):
    """An interaction pipebot acknowledged (command, click, form submission), written before the
    ack and handled from the row: a crash after the ack loses nothing, and the unique dedup key
    makes a replayed request take effect once (see engine.inbox)."""

    __tablename__ = "inbox"
    __table_args__ = (Index("ix_inbox_pending", "handled_at", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(20))  # command | click | submission
    actor_id: Mapped[str] = mapped_column(String(100))
    actor_name: Mapped[str] = mapped_column(String(120))
    actor_groups: Mapped[str | None] = mapped_column(Text)  # JSON list
    channel: Mapped[str | None] = mapped_column(String(100))
    thread: Mapped[str | None] = mapped_column(String(100))
    payload_json: Mapped[str] = mapped_column(Text)
    dedup_key: Mapped[str] = mapped_column(String(64), unique=True)
    received_at: Mapped[datetime]
    answer_by: Mapped[datetime | None]  # after this the platform can no longer be answered in place
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_at: Mapped[datetime | None]
    handled_at: Mapped[datetime | None]
    result: Mapped[str | None] = mapped_column(Text)


class InboxEffectRow(Base):
    """An inbox row's effect, written in the transaction that commits it: handled again after a
    crash, the row finds this and does not act twice. Always in the main database."""

    __tablename__ = "inbox_effects"
    dedup_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    applied_at: Mapped[datetime] = mapped_column(index=True)
