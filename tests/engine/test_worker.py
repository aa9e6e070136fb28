"""Agent and script checkpoints end to end through the engine and the worker:
the real openai client against the fake server, real subprocesses, a real SQLite file."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine.api import Engine
from engine.clock import ManualClock
from engine.llm import LLM
from engine.notifications import TurnCard
from engine.sandbox import SandboxConfig, unavailable
from engine.worker import Worker, WorkerConfig
from tests.conftest import EXAMPLES, HERE, person
from tests.engine.helpers import current
from tests.fakes.deliverers import RecordingDeliverer
from tests.fakes.openai_server import FakeOpenAI

ANA = person("ana")
ISSUE = "# Issue\n\n" + "A paragraph about the theme that is long enough to pass validation. " * 4


@pytest.fixture
async def openai_fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def worker(engine: Engine, openai_fake: FakeOpenAI) -> Worker:
    for name in ("newsletter.yaml", "agent-modes.yaml"):
        engine.import_pipeline(EXAMPLES / name)
    return Worker(
        engine,
        lambda: LLM(api_key=openai_fake.api_key, base_url=openai_fake.base_url, max_tokens=200),
        WorkerConfig(heartbeat_seconds=0.2, sandbox=SandboxConfig("none" if unavailable() else "bwrap")),
        name="test-worker",
    )


def start_newsletter(engine: Engine) -> tuple[str, int]:
    info = engine.start_run("newsletter", ANA, HERE)
    brief, _ = current(engine, info.name)
    engine.submit_form(brief, ANA, {"theme": "Release 2.0"})
    draft, status = current(engine, info.name)
    assert status == "waiting_approval_to_start"
    engine.approve_start(draft, ANA)
    return info.name, draft


async def test_newsletter_debate_then_script(engine: Engine, worker: Worker, openai_fake: FakeOpenAI) -> None:
    sink = RecordingDeliverer()
    engine.outbox.register("console", sink)
    openai_fake.script("writer r1", "critic r1", "writer r2", "critic r2", ISSUE)
    run, draft = start_newsletter(engine)
    assert await worker.drain() == 1
    calls = [(r.user.split("\n")[0], r.system.split("\n")[0]) for r in openai_fake.completed]
    assert len(calls) == 5  # 2 rounds x 2 agents + the judge
    judge = openai_fake.completed[-1].user
    assert "writer r2" in judge and "critic r2" in judge
    first = openai_fake.completed[0].user
    assert "Release 2.0" in first and "data" in first.lower()  # the brief, delimited as data
    assert current(engine, run) == (draft, "waiting_approval_to_complete")
    arts = {a.name: a for a in engine.artifacts(run)}
    assert engine.artifact_path(arts["issue"].artifact_id).read_text().startswith("# Issue")
    assert "## critic — round 2" in engine.artifact_path(arts["transcript"].artifact_id).read_text()
    await engine.outbox.drain()
    turns = [d.note for d in sink.deliveries if isinstance(d.note, TurnCard)]
    assert [(t.agent, t.round) for t in turns] == [
        ("writer", 1), ("critic", 1), ("writer", 2), ("critic", 2), ("judge", 3)
    ]
    assert sum(t.tokens_in + t.tokens_out for t in turns) == sum(
        r.prompt_tokens + r.completion_tokens for r in openai_fake.completed
    )
    with engine.store.read() as s:
        from engine.models import ExecutionRow

        ex = s.get(ExecutionRow, draft)
        assert ex is not None and ex.tokens_in > 0 and ex.tokens_out > 0

    engine.approve_complete(draft, ANA)
    package, status = current(engine, run)
    assert status == "waiting_for_input"
    engine.submit_form(package, ANA, {"slug": "release-2"})
    assert await worker.drain() == 1
    assert current(engine, run) == (package, "waiting_approval_to_complete")
    arts = {a.name: a for a in engine.artifacts(run)}
    report = json.loads(engine.artifact_path(arts["report"].artifact_id).read_text())
    assert report == {"slug": "release-2", "words": len(ISSUE.split())}
    assert arts["issue"].format == "html"  # the script's own extra output, named by its file
    assert "<article id='release-2'>" in engine.artifact_path(arts["issue"].artifact_id).read_text()
    engine.approve_complete(package, ANA)
    assert engine.run(run).info.status == "completed"


async def test_revision_feedback_reaches_the_agents(
    engine: Engine, worker: Worker, openai_fake: FakeOpenAI
) -> None:
    openai_fake.script("w", "c", "w", "c", ISSUE)
    run, draft = start_newsletter(engine)
    await worker.drain()
    engine.request_revision(draft, ANA, "Mention the migration guide")
    assert current(engine, run) == (draft, "running")
    openai_fake.script("w", "c", "w", "c", ISSUE + "\nMigration guide.")
    await worker.drain()
    assert all("Mention the migration guide" in r.user for r in openai_fake.completed[5:])
    assert current(engine, run)[1] == "waiting_approval_to_complete"


async def test_invalid_output_is_retried_with_the_error(
    engine: Engine, worker: Worker, openai_fake: FakeOpenAI, clock: ManualClock
) -> None:
    openai_fake.script("w", "c", "w", "c", "too short")
    run, draft = start_newsletter(engine)
    await worker.drain()
    view = engine.run(run).executions[-1]
    assert view.status == "running" and view.attempt == 2 and "issue" in (view.error or "")
    assert await worker.drain() == 0  # backoff: not yet
    clock.advance(2)
    openai_fake.script("w", "c", "w", "c", ISSUE)
    await worker.drain()
    retried = openai_fake.completed[5:]
    assert retried and all("issue.md: is 10 bytes, at least 100 required" in r.user for r in retried)
    assert current(engine, run) == (draft, "waiting_approval_to_complete")


async def test_provider_errors_exhaust_retries_then_retry_button(
    engine: Engine, worker: Worker, openai_fake: FakeOpenAI, clock: ManualClock
) -> None:
    openai_fake.fail_next(status=500, times=3)
    run, draft = start_newsletter(engine)
    await worker.drain()
    clock.advance(2)
    await worker.drain()
    clock.advance(4)
    await worker.drain()
    view = engine.run(run)
    assert view.info.status == "failed" and view.executions[-1].status == "failed"
    errored = list((engine.ws.base / "newsletter" / ".errored").glob(f"exec_{draft}_*"))
    assert len(errored) == 1 and "provider error 500" in (errored[0] / "error.json").read_text()
    openai_fake.script("w", "c", "w", "c", ISSUE)
    engine.retry(draft, ANA)
    assert engine.run(run).info.status == "in_progress"
    await worker.drain()
    assert current(engine, run) == (draft, "waiting_approval_to_complete")


async def test_budget_stops_before_overspending(
    engine: Engine, worker: Worker, openai_fake: FakeOpenAI
) -> None:
    text = (EXAMPLES / "newsletter.yaml").read_text().replace("budget_tokens: 200000", "budget_tokens: 500")
    path = engine.ws.base / "tight.yaml"
    path.write_text(text)
    (engine.ws.base / "scripts").mkdir(exist_ok=True)
    engine.import_pipeline(path)
    run, _draft = start_newsletter(engine)
    await worker.drain()
    view = engine.run(run)
    assert view.info.status == "failed"
    assert "budget" in (view.executions[-1].error or "").lower()
    assert 1 <= len(openai_fake.completed) < 5, [r.prompt_tokens for r in openai_fake.completed]


async def test_meta_team_is_approved_before_it_works(
    engine: Engine, worker: Worker, openai_fake: FakeOpenAI
) -> None:
    info = engine.start_run("agent-modes", ANA, HERE)
    q, _ = current(engine, info.name)
    engine.submit_form(q, ANA, {"question": "Should we rewrite it in Rust?"})
    openai_fake.script("single answer")
    openai_fake.script("draft", "edited")
    openai_fake.script("yes", "no", "merged")
    openai_fake.script("eng take", "design take")
    team = {
        "agents": [
            {"name": "pro", "role": "argues for", "system_prompt": "Argue for."},
            {"name": "con", "role": "argues against", "system_prompt": "Argue against."},
        ]
    }
    openai_fake.script(json.dumps(team))
    await worker.drain()
    arts = {a.name: a for a in engine.artifacts(info.name)}
    assert {"engineer_take", "designer_take"} <= set(arts)
    team_ex, status = current(engine, info.name)
    assert status == "waiting_approval_to_start"
    assert engine.pending(ANA)[-1].stage == "start"
    engine.approve_start(team_ex, ANA)
    openai_fake.script(
        "pro says", "con says", json.dumps({"answer": "Not now.", "summary": {"verdict": "no"}})
    )
    await worker.drain()
    systems = [r.system for r in openai_fake.completed[-3:-1]]
    assert "Argue for." in systems[0] and "Argue against." in systems[1]
    assert current(engine, info.name) == (team_ex, "waiting_approval_to_complete")


async def test_script_failure_is_archived_and_retried(engine: Engine, worker: Worker, tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "flaky.py").write_text(
        "import os, sys, pathlib\n"
        "marker = pathlib.Path(os.environ['PIPEBOT_INPUTS']).parent / 'seen'\n"
        "if not (pathlib.Path(sys.argv[1]) / 'ok').exists():\n"
        "    print('boom', file=sys.stderr); sys.exit(3)\n"
        "pathlib.Path(os.environ['PIPEBOT_OUTPUTS'], 'result.txt').write_text('fine')\n"
    )
    (tmp_path / "s" / "p.yaml").write_text(
        f"id: flaky\ncheckpoints:\n  - id: run\n    mode: script\n"
        f"    script: {{path: flaky.py, args: ['{tmp_path / 's'}']}}\n"  # its folder: seen in the sandbox
        f"    human: {{approval_to_complete: false}}\n    outputs: [{{name: result, format: txt}}]\n"
    )
    engine.import_pipeline(tmp_path / "s" / "p.yaml")
    info = engine.start_run("flaky", ANA, HERE)
    ex, status = current(engine, info.name)
    assert status == "running"
    await worker.drain()
    view = engine.run(info.name)
    assert view.info.status == "failed" and "exit code 3" in (view.executions[0].error or "")
    assert "boom" in (view.executions[0].error or "")
    errored = list((engine.ws.base / "flaky" / ".errored").glob(f"exec_{ex}_*"))
    assert (errored[0] / "inputs.json").exists()
    (tmp_path / "s" / "ok").write_text("")
    engine.retry(ex, ANA)
    await worker.drain()
    assert engine.run(info.name).info.status == "completed"
    assert [a.name for a in engine.artifacts(info.name)] == ["result"]


async def test_without_bubblewrap_a_script_fails_and_says_how_to_fix_it(engine: Engine) -> None:
    no_bwrap = Worker(engine, None, WorkerConfig(sandbox=SandboxConfig(bwrap="no-such-bwrap")))
    (engine.ws.base / "p.yaml").write_text(
        "id: s\ncheckpoints:\n  - id: run\n    mode: script\n    script: {code: 'print(1)'}\n"
    )
    engine.import_pipeline(engine.ws.base / "p.yaml")
    info = engine.start_run("s", ANA, HERE)
    await no_bwrap.drain()
    view = engine.run(info.name)
    error = view.executions[0].error or ""
    assert view.info.status == "failed" and "install the bubblewrap package" in error
    assert "PIPEBOT_SCRIPT_SANDBOX=none" in error
