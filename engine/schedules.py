"""Runs started by the clock: a pipeline's ``schedule`` (crontab) fires in its conversation.

Missed fire times (the bot was down) start one run, not one per missed time. Each start is a row
of ``scheduled_starts`` written with the run, unique per pipeline and fire time, so several
processes may run the scheduler against one database.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import func, select

from engine import metrics, runs
from engine.actors import Actor, Conversation
from engine.definitions import Schedule
from engine.errors import PipebotError
from engine.models import PipelineRow, ScheduledStartRow
from engine.notifications import RunInfo
from engine.tx import Tx
from engine.workspace import Workspace

SCHEDULER_ID, SCHEDULER_NAME = "pipebot-scheduler", "the schedule"


def trigger(schedule: Schedule) -> CronTrigger:
    return CronTrigger.from_crontab(schedule.cron, timezone=schedule.timezone)


def next_fire(schedule: Schedule, after: datetime) -> datetime | None:
    """The first fire time strictly after ``after`` (naive UTC in, naive UTC out)."""
    start = (after + timedelta(seconds=1)).replace(tzinfo=UTC)
    fire = trigger(schedule).get_next_fire_time(None, start)
    return fire.astimezone(UTC).replace(tzinfo=None) if fire else None


def start_due(tx: Tx, ws: Workspace) -> list[RunInfo]:
    """Start every scheduled run that is due now; return what was started."""
    now = tx.now()
    latest = (
        select(PipelineRow.slug, func.max(PipelineRow.version).label("version"))
        .group_by(PipelineRow.slug)
        .subquery()
    )
    rows = tx.session.scalars(
        select(PipelineRow)
        .join(latest, (PipelineRow.slug == latest.c.slug) & (PipelineRow.version == latest.c.version))
        .order_by(PipelineRow.slug)  # one locking order for every process
    ).all()
    started: list[RunInfo] = []
    for row in rows:
        if row.deleted_at is not None:
            continue
        schedule = tx.definitions.get(tx.session, row.id).schedule
        if schedule is None:
            continue
        # Processes that tick at once queue here; the next one then sees this fire time taken.
        tx.session.execute(
            select(PipelineRow.id).where(PipelineRow.id == row.id).with_for_update(key_share=True)
        )
        last = tx.session.scalar(
            select(func.max(ScheduledStartRow.fire_at)).where(ScheduledStartRow.slug == row.slug)
        )
        due = _latest_due(schedule, last or row.created_at, now)
        if due is None:
            continue
        metrics.TIMER_LAG.labels("schedule").observe((now - due).total_seconds())
        who = Actor(schedule.platform, SCHEDULER_ID, SCHEDULER_NAME)
        where = Conversation(schedule.platform, schedule.channel, schedule.thread)
        try:
            run = runs.start(tx, ws, row.slug, who, where, scheduled=True)
        except PipebotError:  # the pipeline's definition cannot start: keep the fire time anyway
            run = None
        tx.session.add(
            ScheduledStartRow(slug=row.slug, fire_at=due, run_id=run.id if run else None, created_at=now)
        )
        if run is not None:
            started.append(tx.run_info(run))
    return started


def _latest_due(schedule: Schedule, after: datetime, now: datetime) -> datetime | None:
    """The latest fire time in (after, now]: missed times coalesce into one start.

    Looks back a day first (a per-minute schedule has 1,440 fire times in it), then, for rare
    schedules, up to a year, never walking more than a few thousand fire times.
    """
    for window in (timedelta(days=1), timedelta(days=400)):
        due, fire, steps = None, next_fire(schedule, max(after, now - window)), 0
        while fire is not None and fire <= now and steps < MAX_STEPS:
            due, fire, steps = fire, next_fire(schedule, fire), steps + 1
        if due is not None or after >= now - window:
            return due
    return None


MAX_STEPS = 2000
