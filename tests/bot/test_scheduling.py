"""`pipebot serve`'s place in the CPU scheduler: the front asks for short time slices (it
preempts whatever runs when a request arrives), or with PIPEBOT_FRONT_REALTIME is a real-time
thread where the system allows it; the engine process is niced throughput work that yields
within a short slice."""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest

from bot.scheduling import SLICE_NS
from tests.bot.test_serve_crash import free_port, gone, start_serve, wait_healthy, with_blog_post
from tests.fakes.slack_api import FakeSlack

needs_slices = pytest.mark.skipif(
    sys.platform != "linux"
    or platform.machine() not in ("x86_64", "aarch64")
    or "se.slice" not in Path("/proc/self/sched").read_text(),
    reason="the kernel shows no per-task slice (Linux 6.12+, /proc/<pid>/sched)",
)


def slice_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/sched").read_text().splitlines():
        if line.startswith("se.slice"):
            return int(line.split(":")[1])
    raise AssertionError("no se.slice")


async def batch_engine_process(front: int) -> int:
    """The pid of `front`'s engine process, once it has set its own place (SCHED_BATCH)."""
    for _ in range(500):
        children = psutil.Process(front).children()
        if children and os.sched_getscheduler(children[0].pid) == os.SCHED_BATCH:
            return int(children[0].pid)
        await asyncio.sleep(0.02)
    raise AssertionError("the engine process never became SCHED_BATCH")


@needs_slices
def test_latency_first_sets_the_calling_process_slice() -> None:
    code = "from bot.scheduling import latency_first; print(latency_first(234_000))"
    # In a process of its own: the test process keeps its scheduling.
    script = code + "; print(open('/proc/self/sched').read())"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.startswith("True")
    [line] = [x for x in out.splitlines() if x.startswith("se.slice")]
    assert int(line.split(":")[1]) == 234_000  # (not a value it could have inherited)


@contextlib.asynccontextmanager
async def serving(tmp_path: Path, **env: str) -> AsyncIterator[int]:
    """A real `pipebot serve` (Slack, on the fake), healthy; its pid."""
    base = with_blog_post(tmp_path / "pipelines")
    async with FakeSlack() as fake:
        port = free_port()
        serve = start_serve(base, fake, port, hold=0, **env)
        try:
            await wait_healthy(port)
            yield serve.pid
        finally:
            serve.send_signal(signal.SIGTERM)
            await asyncio.to_thread(serve.wait, 30)
        await gone(serve.pid)


@needs_slices
@pytest.mark.slow
async def test_serve_front_has_short_slices_and_its_engine_process_is_batch_work(tmp_path: Path) -> None:
    async with serving(tmp_path) as front:
        assert slice_of(front) == SLICE_NS
        assert os.sched_getscheduler(front) == os.SCHED_OTHER
        engine = await batch_engine_process(front)
        assert os.getpriority(os.PRIO_PROCESS, engine) == 10
        assert slice_of(engine) == SLICE_NS  # short too: it yields to a waking front at once


def _realtime_allowed() -> bool:
    probe = "from bot.scheduling import realtime; print(realtime())"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return out.stdout.strip() == "True"


needs_realtime = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not _realtime_allowed(),
    reason="SCHED_FIFO is not allowed here (no CAP_SYS_NICE, RLIMIT_RTPRIO 0)",
)
# What the real-time thread reports: its own policy, a thread's and a child process's.
REPORT = """
import os, subprocess, sys, threading
from bot.scheduling import realtime
print(realtime())
print(os.sched_getscheduler(0), os.sched_getparam(0).sched_priority)
seen = []
t = threading.Thread(target=lambda: seen.append(os.sched_getscheduler(0)))
t.start(); t.join()
print(seen[0])
code = "import os; print(os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0))"
child = [sys.executable, "-c", code]
print(subprocess.run(child, capture_output=True, text=True, check=True).stdout.strip())
"""


@needs_realtime
def test_realtime_makes_the_thread_fifo_and_what_it_starts_ordinary() -> None:
    out = subprocess.run([sys.executable, "-c", REPORT], capture_output=True, text=True, check=True)
    lines = out.stdout.splitlines()
    assert lines[0] == "True"
    # The lowest real-time priority, reset in what it starts (the flag is part of the policy).
    assert lines[1] == f"{os.SCHED_FIFO | os.SCHED_RESET_ON_FORK} 1"
    assert lines[2] == str(os.SCHED_OTHER)  # its threads (a to_thread worker) are ordinary
    assert lines[3] == f"{os.SCHED_OTHER} 0"  # so is the engine process it starts


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux scheduling")
def test_realtime_refused_without_the_privilege_leaves_the_thread_as_it_was() -> None:
    def no_rtprio() -> None:
        resource.setrlimit(resource.RLIMIT_RTPRIO, (0, 0))

    cmd = [sys.executable, "-c", REPORT]
    if os.geteuid() == 0:  # root: take CAP_SYS_NICE away too
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("setpriv (util-linux) is needed to drop CAP_SYS_NICE")
        cmd = [setpriv, "--inh-caps=-sys_nice", "--bounding-set=-sys_nice", *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, preexec_fn=no_rtprio)
    lines = out.stdout.splitlines()
    assert lines[0] == "False"
    assert lines[1] == f"{os.SCHED_OTHER} 0"


@needs_realtime
@pytest.mark.slow
async def test_serve_front_is_realtime_when_asked_and_its_engine_process_is_not(tmp_path: Path) -> None:
    async with serving(tmp_path, PIPEBOT_FRONT_REALTIME="true") as front:
        assert os.sched_getscheduler(front) == os.SCHED_FIFO | os.SCHED_RESET_ON_FORK
        engine = await batch_engine_process(front)
        assert os.getpriority(os.PRIO_PROCESS, engine) == 10  # not the front's real-time place
