"""Where `pipebot serve`'s two processes stand in the CPU scheduler (Linux; elsewhere a no-op).

The front answers the platforms and must run the moment a request arrives; the engine process
does the work after the ack and may wait. Both processes share the machine's cores with each
other and with whatever else runs there.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import struct
import sys

SLICE_NS = 100_000  # 0.1 ms: the front's work per request is about that long
# sched_setattr(2) has no wrapper in Python's os module; its number per architecture.
_SCHED_SETATTR = {"x86_64": 314, "aarch64": 274}
_SCHED_ATTR = struct.Struct("IIQiIQQQ")  # struct sched_attr, version 0 (48 bytes)


def throughput_only(slice_ns: int = SLICE_NS) -> None:
    """Tell the kernel this process is throughput work (SCHED_BATCH): it never preempts a process
    that wakes up, so the front answers a request the moment it arrives, and it still gets its
    full share of the CPU (unlike a high nice value, which starves it on a busy box). Its slices
    are short too (see `latency_first`): a waking front waits at most that long for it to yield
    (measured: with both short, clicks sent back to back were acked faster than with either
    alone)."""
    if not _set_attr(getattr(os, "SCHED_BATCH", 3), slice_ns):
        with contextlib.suppress(AttributeError, OSError):
            os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))


def latency_first(slice_ns: int = SLICE_NS) -> bool:
    """Ask for short time slices (sched_attr.sched_runtime of a SCHED_OTHER thread: the EEVDF
    scheduler's slice request, Linux 6.12+; no privilege needed). A waking thread with a shorter
    slice than the running one preempts it at once, where one with the default slice (about
    1.4 ms here) may wait for the running one's slice to end: that wait was the tail of the
    front's acks while the engine process and other programs kept the cores busy. Threads and
    processes started later inherit it. False where the kernel has no such call (older kernels
    ignore the slice)."""
    if not hasattr(os, "sched_getscheduler") or os.sched_getscheduler(0) != os.SCHED_OTHER:
        return False  # a policy chosen by whoever started us: keep it
    return _set_attr(os.SCHED_OTHER, slice_ns)


def realtime(priority: int = 1) -> bool:
    """Make the calling thread SCHED_FIFO at `priority` (1, the lowest real-time priority), reset
    to SCHED_OTHER in every thread and process it starts. No ordinary thread then takes the core
    from it while it answers a request: with short slices alone, a front that has just used its
    slice loses the core to whatever else is runnable there (the engine process, the platform's
    own programs on a test machine) until that one sleeps or the next scheduler tick, 4 ms at
    HZ=250; measured, that wait was most of the front's time on clicks sent back to back. The
    front only answers requests (its work per request is well under a millisecond) and the
    kernel keeps 5 % of each second for others (sched_rt_runtime_us), so it cannot lock a core
    up. Needs CAP_SYS_NICE or an RLIMIT_RTPRIO of at least `priority`; False where refused."""
    policy = getattr(os, "SCHED_FIFO", None)
    if policy is None or not sys.platform.startswith("linux"):
        return False
    try:
        os.sched_setscheduler(0, policy | os.SCHED_RESET_ON_FORK, os.sched_param(priority))
    except OSError:
        return False
    return True


def _set_attr(policy: int, slice_ns: int) -> bool:
    """sched_setattr(2) for this thread: `policy`, the current nice value, and `slice_ns` (0: the
    kernel's default slice)."""
    number = _SCHED_SETATTR.get(platform.machine())
    if number is None or not sys.platform.startswith("linux"):
        return False
    nice = os.getpriority(os.PRIO_PROCESS, 0)
    attr = ctypes.create_string_buffer(_SCHED_ATTR.pack(_SCHED_ATTR.size, policy, 0, nice, 0, slice_ns, 0, 0))
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.syscall(number, 0, attr, 0) == 0)
