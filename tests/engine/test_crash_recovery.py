"""Kill the worker process mid-attempt; a new worker takes the stale claim over (attempt + 1)
and the run goes on with nothing lost. Real processes, real SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest

from engine.api import Engine
from engine.sandbox import unavailable
from tests.conftest import EXAMPLES, HERE, person
from tests.engine.helpers import current, interactions
from tests.fakes.openai_server import FakeOpenAI

pytestmark = pytest.mark.slow
ANA = person("ana")
ISSUE = "# Issue\n\n" + "Enough words to pass the size rule of the newsletter example. " * 4


def spawn_worker(base: Path, fake: FakeOpenAI) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "BASE_PIPELINES_PATH": str(base),
        "OPENAI_API_KEY": fake.api_key,
        "OPENAI_BASE_URL": fake.base_url,
        "PIPEBOT_WORKER_STALE_SECONDS": "1",
        "LOG_LEVEL": "WARNING",
        "PIPEBOT_SCRIPT_SANDBOX": "bwrap" if unavailable() is None else "none",
    }
    env.pop("DATABASE_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "worker"],
        env=env,
        cwd=base.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def until(predicate: object, timeout: float = 20) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as f:
        yield f


def kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


async def test_worker_killed_during_agent_call(engine: Engine, fake: FakeOpenAI) -> None:
    engine.import_pipeline(EXAMPLES / "newsletter.yaml")
    info = engine.start_run("newsletter", ANA, HERE)
    brief, _ = current(engine, info.name)
    engine.submit_form(brief, ANA, {"theme": "Crash course"})
    draft, _ = current(engine, info.name)
    engine.approve_start(draft, ANA)
    fake.slow_next(60)  # the first call hangs: the worker dies while waiting for it
    first = spawn_worker(engine.ws.base, fake)
    try:
        await until(lambda: len(fake.requests) == 1)
    finally:
        kill(first)
    fake.script("w", "c", "w", "c", ISSUE)
    second = spawn_worker(engine.ws.base, fake)
    try:
        await until(lambda: current(engine, info.name)[1] == "waiting_approval_to_complete")
    finally:
        second.terminate()
        second.wait(10)
    view = engine.run(info.name).executions[-1]
    assert view.attempt == 2
    assert [k for k, o, _ in interactions(engine, draft) if o == "accepted"] == ["approve_start"]
    assert {a.name for a in engine.artifacts(info.name)} >= {"brief", "issue", "transcript"}


async def test_worker_killed_during_script(engine: Engine, fake: FakeOpenAI, tmp_path: Path) -> None:
    script = tmp_path / "slow.py"
    script.write_text(
        "import os, pathlib, time\n"
        "flag = pathlib.Path(os.environ['PIPEBOT_INPUTS']).parent / 'started'  # kept across attempts\n"
        "first = not flag.exists()\n"
        "flag.write_text('1')\n"
        "if first: time.sleep(60)\n"
        "pathlib.Path(os.environ['PIPEBOT_OUTPUTS'], 'done.txt').write_text('done')\n"
    )
    (tmp_path / "p.yaml").write_text(
        "id: slow\ncheckpoints:\n  - id: work\n    mode: script\n"
        "    script: {path: slow.py, timeout_seconds: 120}\n"
        "    retry: {max_attempts: 2}\n    outputs: [{name: done, format: txt}]\n"
    )
    engine.import_pipeline(tmp_path / "p.yaml")
    info = engine.start_run("slow", ANA, HERE)
    first = spawn_worker(engine.ws.base, fake)
    try:
        await until(lambda: any(engine.ws.base.rglob("started")))
        assert _running(str(script))
    finally:
        kill(first)
    await until(lambda: not _running(str(script)), timeout=10)  # sandboxed or not, it died with its worker
    second = spawn_worker(engine.ws.base, fake)
    try:
        await until(lambda: current(engine, info.name)[1] == "waiting_approval_to_complete")
    finally:
        second.terminate()
        second.wait(10)
    assert engine.run(info.name).executions[-1].attempt == 2
    assert [a.name for a in engine.artifacts(info.name)] == ["done"]


def _running(marker: str) -> bool:
    for proc in psutil.process_iter(["cmdline", "status"]):
        if marker in (proc.info["cmdline"] or []) and proc.info["status"] != psutil.STATUS_ZOMBIE:
            return True
    return False
