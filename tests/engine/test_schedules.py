"""Runs started by a pipeline's schedule, with the clock moved by hand."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from engine.api import Engine
from engine.clock import ManualClock
from engine.definitions import parse_pipeline
from engine.errors import DefinitionProblem

DAILY = """\
id: standup
schedule: {cron: "0 9 * * *", platform: console, channel: team-room}
checkpoints:
  - id: notes
    inputs: [{id: notes, label: Notes, type: text}]
"""


@pytest.fixture
def standup(engine: Engine, tmp_path: Path, clock: ManualClock) -> Engine:
    clock.now = datetime(2026, 3, 2, 8, 0)
    path = tmp_path / "standup.yaml"
    path.write_text(DAILY)
    engine.import_pipeline(path)
    return engine


def test_a_schedule_starts_one_run_when_due(standup: Engine, clock: ManualClock) -> None:
    clock.now = datetime(2026, 3, 2, 8, 59, 30)
    assert standup.start_scheduled() == []
    clock.now = datetime(2026, 3, 2, 9, 0, 10)
    started = standup.start_scheduled()
    assert [r.name for r in started] == ["standup#v1"]
    assert standup.start_scheduled() == []  # once per fire time
    view = standup.run("standup#v1")
    assert view.info.started_by == "the schedule" and view.executions[0].status == "waiting_for_input"
    assert standup.runs(channel="team-room")[0].name == "standup#v1"


def test_missed_fire_times_start_one_run(standup: Engine, clock: ManualClock) -> None:
    clock.now = datetime(2026, 3, 5, 12, 0)  # three 9:00s went by while the bot was down
    assert [r.name for r in standup.start_scheduled()] == ["standup#v1"]
    clock.now = datetime(2026, 3, 6, 9, 0)
    assert [r.name for r in standup.start_scheduled()] == ["standup#v2"]


def test_a_second_engine_does_not_start_it_twice(standup: Engine, clock: ManualClock) -> None:
    other = Engine.open(standup.ws.base, clock=clock)
    try:
        clock.now = datetime(2026, 3, 2, 9, 0, 5)
        assert len(standup.start_scheduled()) + len(other.start_scheduled()) == 1
    finally:
        other.close()


def test_a_bad_cron_is_reported_with_its_line() -> None:
    with pytest.raises(DefinitionProblem, match=r"x.yaml:2: schedule.cron: not a valid schedule"):
        parse_pipeline(DAILY.replace('"0 9 * * *"', '"61 9 * * *"'), "x.yaml")
    with pytest.raises(DefinitionProblem, match=r"schedule.cron: not a valid schedule"):
        mars = DAILY.replace("channel: team-room}", "channel: team-room, timezone: Mars/Base}")
        parse_pipeline(mars, "x.yaml")


def test_a_deleted_pipeline_no_longer_starts_and_runners_do_not_stop_the_schedule(
    standup: Engine, tmp_path: Path, clock: ManualClock
) -> None:
    # The schedule is the pipeline's own: runners and channels limit people, not its clock.
    path = tmp_path / "standup.yaml"
    path.write_text(
        DAILY.replace("checkpoints:", "runners: [console:nobody]\nchannels: [console:x]\ncheckpoints:")
    )
    standup.import_pipeline(path)
    clock.now = datetime(2026, 3, 2, 9, 0, 10)
    assert [r.name for r in standup.start_scheduled()] == ["standup#v1"]
    standup.delete_pipeline("standup", None, cancel_runs=True)
    clock.now = datetime(2026, 3, 3, 9, 0, 10)
    assert standup.start_scheduled() == []
