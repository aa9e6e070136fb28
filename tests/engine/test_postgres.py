"""The engine on PostgreSQL (DATABASE_URL), when a server is at hand: .ci/run starts one and sets
PIPEBOT_TEST_POSTGRES_URL to an account that may create databases."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from engine.api import Engine
from engine.clock import ManualClock
from engine.errors import AlreadyDone
from tests.conftest import EXAMPLES, HERE, person
from tests.engine.helpers import count_events, current

ADMIN_URL = os.environ.get("PIPEBOT_TEST_POSTGRES_URL")
pytestmark = pytest.mark.skipif(not ADMIN_URL, reason="PIPEBOT_TEST_POSTGRES_URL is not set")


@pytest.fixture
def pg_url() -> Iterator[str]:
    assert ADMIN_URL is not None
    name = f"pipebot_{uuid.uuid4().hex[:10]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def test_runs_and_concurrent_clicks_on_postgres(pg_url: str, tmp_path: Path) -> None:
    engine = Engine.open(tmp_path, pg_url)
    try:
        engine.import_pipeline(EXAMPLES / "blog-post.yaml")
        info = engine.start_run("blog-post", person("ana"), HERE)
        ex, _ = current(engine, info.name)
        engine.submit_form(ex, person("ana"), {"topic": "t"})
        engine.approve_complete(ex, person("bob"))
        outline, status = current(engine, info.name)
        assert status == "waiting_approval_to_start"
        before = count_events(engine, entity="execution", entity_id=outline)
        results: list[str] = []

        def click(i: int) -> None:
            try:
                results.append(engine.approve_start(outline, person(f"u{i}")).message)
            except AlreadyDone:
                results.append("already")

        threads = [threading.Thread(target=click, args=(i,)) for i in range(30)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert (
            sorted(set(results)) == ["Started Outline.", "already"] and results.count("Started Outline.") == 1
        )
        assert count_events(engine, entity="execution", entity_id=outline) == before + 1
    finally:
        engine.close()
    again = Engine.open(tmp_path, pg_url)  # a restart on the same database
    try:
        assert again.run(info.name).info.done == 1
    finally:
        again.close()


def test_concurrent_starts_of_one_pipeline_get_distinct_versions(pg_url: str, tmp_path: Path) -> None:
    engine = Engine.open(tmp_path, pg_url)
    try:
        engine.import_pipeline(EXAMPLES / "blog-post.yaml")
        names: list[str] = []
        errors: list[Exception] = []

        def start(i: int) -> None:
            try:
                names.append(engine.start_run("blog-post", person(f"u{i}"), HERE).name)
            except Exception as exc:
                errors.append(exc)

        threads = [threading.Thread(target=start, args=(i,)) for i in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert sorted(names) == sorted(f"blog-post#v{i}" for i in range(1, 41))
    finally:
        engine.close()


SCHEDULED = """\
id: standup
schedule: {cron: "0 9 * * *", platform: console, channel: team-room}
checkpoints:
  - id: notes
    inputs: [{id: notes, label: Notes, type: text}]
"""


def test_three_schedulers_start_once_per_fire_time(pg_url: str, tmp_path: Path) -> None:
    clock = ManualClock()
    clock.now = datetime(2026, 3, 2, 8, 0)
    (tmp_path / "standup.yaml").write_text(SCHEDULED)
    engines = [Engine.open(tmp_path / "base", pg_url, clock=clock) for _ in range(3)]
    try:
        engines[0].import_pipeline(tmp_path / "standup.yaml")
        for day in (2, 3, 4):
            clock.now = datetime(2026, 3, day, 9, 0, 5)
            started: list[str] = []
            errors: list[Exception] = []
            gate = threading.Barrier(3)
            threads = [threading.Thread(target=tick, args=(e, gate, started, errors)) for e in engines]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert errors == [] and len(started) == 1, (errors, started)
        assert [r.name for r in engines[0].runs()] == ["standup#v3", "standup#v2", "standup#v1"]
    finally:
        for e in engines:
            e.close()


def tick(engine: Engine, gate: threading.Barrier, started: list[str], errors: list[Exception]) -> None:
    gate.wait()  # the three schedulers at the same moment
    try:
        started.extend(r.name for r in engine.start_scheduled())
    except Exception as exc:
        errors.append(exc)


TICK = """\
import os, pathlib, sys, time
with open(sys.argv[1], "a") as log:
    log.write(os.environ["PIPEBOT_INPUTS"] + "\\n")
time.sleep(0.1)
pathlib.Path(os.environ["PIPEBOT_OUTPUTS"], "done.txt").write_text("ok")
"""


@pytest.mark.slow
async def test_thirty_scripts_three_workers_each_runs_once(pg_url: str, tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "tick.py").write_text(TICK)
    ran = tmp_path / "ran.log"
    (source / "tick.yaml").write_text(
        "id: tick\ncheckpoints:\n  - id: run\n    mode: script\n"
        f"    script: {{path: tick.py, args: ['{ran}']}}\n"
        "    human: {approval_to_complete: false}\n    outputs: [{name: done, format: txt}]\n"
    )
    base = tmp_path / "base"
    engine = Engine.open(base, pg_url)
    try:
        engine.import_pipeline(source / "tick.yaml")
        names = [engine.start_run("tick", person(f"u{i}"), HERE).name for i in range(30)]
        env = {**os.environ, "BASE_PIPELINES_PATH": str(base), "DATABASE_URL": pg_url, "LOG_LEVEL": "WARNING"}
        env["PIPEBOT_SCRIPT_SANDBOX"] = "none"  # the script writes its log outside its workspace
        workers = [
            subprocess.Popen([sys.executable, "-m", "bot.cli", "worker"], env=env, cwd=tmp_path)
            for _ in range(3)
        ]
        try:
            deadline = time.monotonic() + 90
            while any(engine.run(n).info.status != "completed" for n in names):
                assert time.monotonic() < deadline, "the scripts did not all finish"
                await asyncio.sleep(0.2)
        finally:
            for w in workers:
                w.terminate()
            for w in workers:
                w.wait(15)
        lines = ran.read_text().splitlines()
        assert len(lines) == 30 and len(set(lines)) == 30  # each execution's script ran once
    finally:
        engine.close()
