"""Many people clicking at once, and a second engine on the same database."""

from __future__ import annotations

import threading
from pathlib import Path

from engine.api import Engine
from engine.errors import AlreadyDone
from engine.workspace import Workspace
from tests.conftest import HERE, person
from tests.engine.helpers import count_events, current, interactions


def test_100_concurrent_approve_start_make_one_transition(engine: Engine) -> None:
    info = engine.start_run("blog-post", person("ana"), HERE)
    ex, _ = current(engine, info.name)
    engine.submit_form(ex, person("ana"), {"topic": "t"})
    engine.approve_complete(ex, person("ana"))
    outline, status = current(engine, info.name)
    assert status == "waiting_approval_to_start"
    events_before = count_events(engine, entity_id=outline, entity="execution")
    barrier = threading.Barrier(100)
    results: list[str] = []
    errors: list[BaseException] = []

    def click(i: int) -> None:
        barrier.wait()
        try:
            results.append(engine.approve_start(outline, person(f"user{i}")).message)
        except AlreadyDone as exc:
            results.append(f"already:{exc.by}")
        except BaseException as exc:  # "database is locked" would land here
            errors.append(exc)

    threads = [threading.Thread(target=click, args=(i,)) for i in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    winners = [r for r in results if not r.startswith("already:")]
    assert winners == ["Started Outline."]
    first = {r for r in results if r.startswith("already:")}
    assert len(first) == 1 and len(results) == 100  # everyone else is told the same first actor
    accepted = [i for i in interactions(engine, outline) if i[0] == "approve_start" and i[1] == "accepted"]
    assert len(accepted) == 1 and first == {f"already:{person(accepted[0][2]).name}"}
    # exactly one transition out of waiting_approval_to_start
    assert count_events(engine, entity_id=outline, entity="execution") == events_before + 1
    assert current(engine, info.name) == (outline, "waiting_for_input")


def test_second_engine_continues_a_waiting_run(engine: Engine) -> None:
    info = engine.start_run("blog-post", person("ana"), HERE)
    ex, _ = current(engine, info.name)
    engine.submit_form(ex, person("ana"), {"topic": "t"})
    engine.close()
    restarted = Engine.open(engine.ws.base, clock=engine.clock)
    try:
        restarted.approve_complete(ex, person("bob"))
        assert restarted.run(info.name).info.done == 1
    finally:
        restarted.close()


def test_database_url_selects_another_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    eng = Engine.open(tmp_path / "files", database_url=url)
    try:
        eng.import_pipeline(Path(__file__).parents[2] / "examples" / "blog-post.yaml")
        assert (tmp_path / "elsewhere.db").exists()
        assert not (tmp_path / "files" / "pipebot.db").exists()
    finally:
        eng.close()


def test_concurrent_promotions_point_latest_without_errors(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    errors: list[Exception] = []

    def promote(i: int) -> None:
        try:
            for _ in range(20):
                ws.point_latest("blog-post", i)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=promote, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert (tmp_path / "blog-post" / "runs" / "latest").is_symlink()
