"""What machine a benchmark ran on, recorded next to its figures."""

from __future__ import annotations

import contextlib
import gc
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from bot.scheduling import realtime


def describe() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        load = "unknown"
    probe = "from bot.scheduling import realtime; print(realtime())"
    allowed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    allowed_here = allowed.stdout.strip() == "True"  # SCHED_FIFO (root, CAP_SYS_NICE)
    return {
        "clients_realtime": allowed_here,
        # What the clients' fronts ran as (--realtime, see `choose_realtime`; call that first).
        "realtime": allowed_here and realtime_wanted(),
        "load": load,
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def as_in_production() -> None:
    """The app under test's scheduling policy, set in the child before it runs: the driver (the
    fake platform) is SCHED_BATCH, and a child inherits that, but `pipebot serve` (and any app)
    runs as SCHED_OTHER in production, where it preempts batch work when a request wakes it.
    The benchmark's clients and the fake's helpers stay SCHED_BATCH: they play the platform,
    which is elsewhere too."""
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


def quiet_heap() -> None:
    """No garbage collection from here on in this process (the client, the fake platform: harness,
    not the apps measured). Their full collections took 80-370 ms each, several per level, and
    were timed as the measured app's latency, whichever app it was. Their memory is bounded by the
    run."""
    gc.collect()
    gc.freeze()
    gc.disable()


REALTIME = "PIPEBOT_FRONT_REALTIME"  # the benches hand their --realtime choice to the clients by it


def realtime_wanted() -> bool:
    """In a client process: whether its front should ask for SCHED_FIFO (bench --realtime)."""
    return os.environ.get(REALTIME, "false").lower() in ("1", "true", "yes", "on")


def choose_realtime(choice: str) -> None:
    """In the driver: both clients' fronts as real-time threads (``on``, where the system allows
    it) or as ordinary ones (``off``); the clients, started later, inherit the choice."""
    os.environ[REALTIME] = "true" if choice == "on" else "false"


def bare_front() -> None:
    """In a bare client: the same place in the CPU scheduler as pipebot's front (whose setting
    the driver's choice is)."""
    if realtime_wanted():
        realtime()
