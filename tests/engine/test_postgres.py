"""The engine on PostgreSQL (DATABASE_URL), when a server is at hand: .ci/run starts one and sets
PIPEBOT_TEST_POSTGRES_URL to an account that may create databases."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from engine.api import Engine
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

