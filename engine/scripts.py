"""Script checkpoints: run a Python script in its workspace, bounded in time, memory and output.

Layout of ``workdir`` (the execution's temp workspace, kept across retries):
``inputs.json`` (the form values), ``context/`` (earlier artifacts, read-only), ``outputs/``
(emptied before each attempt: what the script writes there becomes artifacts), ``tmp/``.

Isolation: with a SandboxConfig enabled (what the worker passes unless the operator chose
"none") the script runs in a bubblewrap sandbox as nobody, without network unless
``network: true``, and sees nothing of the host but the system, its interpreter and its
workspace (engine.sandbox). Without it (``sandbox=None``: tests of the limits, and the
operator's explicit "none") read-only context and the environment allow-list guard against
mistakes only: the script can read what the bot's user can.

Limits (set in the child before exec):
- wall clock ``timeout_seconds``: then, in the sandbox, SIGKILL to the sandbox's pid 1, which
  ends its PID namespace and everything in it; without it SIGTERM to the process group, SIGKILL
  after a grace; members of the group still alive when the script ends are killed too.
- RLIMIT_AS from ``memory_mb`` (virtual memory: a big allocation fails with MemoryError).
- RLIMIT_CPU = timeout x CPUs + 5 s: only a backstop for a process that left the group, never
  earlier than the wall clock, even for multi-threaded scripts.
- RLIMIT_FSIZE (``max_file_bytes``) and no core dumps.
- RLIMIT_NPROC from ``max_processes`` in the sandbox only (set inside it, see engine.sandbox):
  it counts every process and thread of a real uid, so unsandboxed it would count the bot's
  too (and does not bind root).
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import ctypes
import json
import math
import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import sandbox as box
from engine.definitions import ScriptConfig
from engine.errors import ScriptProblem
from engine.sandbox import SandboxConfig
from engine.script_support import BoundedText, collect_outputs, prepare_workspace, script_env

TAIL_CHARS = 16 * 1024
LOG_CHARS = 64 * 1024
MAX_LINE_CHARS = 2000
MAX_FILE_BYTES = 1 << 30
KILL_GRACE_SECONDS = 2.0
DRAIN_SECONDS = 1.0  # reading what is left in the pipes once the script has ended
OnOutput = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class ScriptResult:
    exit_code: int  # negative: killed by that signal
    timed_out: bool
    killed_reason: str | None
    stdout_tail: str
    stderr_tail: str
    log: str  # command, interleaved output and what the engine did; bounded
    outputs: dict[str, Path]  # path relative to outputs/ ("report.json") -> file
    duration_s: float

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


async def run_script(
    config: ScriptConfig,
    *,
    source_dir: Path,
    workdir: Path,
    inputs: dict[str, Any],
    context_files: list[tuple[str, Path]],
    on_output: OnOutput | None = None,
    secret_env: Collection[str] = (),
    max_file_bytes: int = MAX_FILE_BYTES,
    kill_grace: float = KILL_GRACE_SECONDS,
    sandbox: SandboxConfig | None = None,
    read_only: Collection[Path] = (),
) -> ScriptResult:
    """Run one attempt. ``on_output`` gets each output line (stdout and stderr); keep it quick.

    ``secret_env`` names variables never passed even if ``allow_env`` asks (secret-looking
    names are refused anyway). ``read_only``: more files the sandbox shows (file inputs).
    Raises ScriptProblem when the script cannot start (or the sandbox cannot run).
    """
    workdir = workdir.resolve()
    sandboxed = sandbox is not None and sandbox.enabled
    bwrap = box.check(sandbox) if sandbox is not None and sandboxed else ""
    # an attempt whose worker died left the workspace to the sandbox's user: take it back first
    early = box.take_back(workdir) if sandboxed and workdir.is_dir() else []
    paths = prepare_workspace(workdir, inputs, context_files)
    env, notes = script_env(config, workdir, paths, secret_env)
    notes = early + notes
    command = _command(config, source_dir, workdir, env["PATH"])
    log = BoundedText(LOG_CHARS)
    log.add("".join(f"[pipebot] {n}\n" for n in notes))
    if sandboxed:
        log.add(
            f"[pipebot] sandbox: bwrap as nobody, network {'on' if config.network else 'off'}, "
            f"at most {config.max_processes} processes\n"
        )
    log.add(f"$ {shlex.join(command)}\n")
    limits = _limits(config, max_file_bytes)
    info_r, info_w = os.pipe() if sandboxed else (-1, -1)
    spawn = command
    if sandboxed:
        extra = [*read_only]
        if config.path is not None:
            extra += box.script_dir_binds(Path(command[1]), Path.cwd())
        spawn = box.command(
            bwrap,
            command,
            workdir=workdir,
            network=config.network,
            read_only=extra,
            info_fd=info_w,
            max_processes=config.max_processes,
        )
        box.hand_over(workdir)
    start = time.monotonic()
    try:
        proc = await asyncio.create_subprocess_exec(
            *spawn,
            cwd=workdir,
            env=env,  # bwrap passes on only this: the allow-list
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group: one killpg reaches grandchildren
            preexec_fn=lambda: _apply(limits),
            pass_fds=(info_w,) if sandboxed else (),
        )
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        if sandboxed:
            os.close(info_r)
            os.close(info_w)
            box.take_back(workdir)
        raise ScriptProblem(f"cannot start {spawn[0]}: {exc}") from exc
    pid1 = None
    if sandboxed:
        os.close(info_w)
        pid1 = asyncio.create_task(asyncio.to_thread(_read_child_pid, info_r))
    assert proc.stdout is not None and proc.stderr is not None
    out, err = BoundedText(TAIL_CHARS), BoundedText(TAIL_CHARS)
    pumps = [
        asyncio.create_task(_pump(proc.stdout, out, log, on_output)),
        asyncio.create_task(_pump(proc.stderr, err, log, on_output)),
    ]
    timed_out = False
    try:
        if not await _exited(proc, config.timeout_seconds):
            timed_out = True
            if pid1 is not None:
                log.add(f"\n[pipebot] timed out after {config.timeout_seconds:g}s: ending the sandbox\n")
                await _end_namespace(proc, pid1)
            else:
                log.add(
                    f"\n[pipebot] timed out after {config.timeout_seconds:g}s: stopping the process group\n"
                )
                _killpg(proc.pid, signal.SIGTERM)
            if not await _exited(proc, kill_grace):
                log.add("[pipebot] still running: SIGKILL\n")
    finally:  # also on cancellation: nothing of the script outlives its attempt
        if pid1 is not None:
            await _end_namespace(proc, pid1)
        _killpg(proc.pid, signal.SIGKILL)
        await _exited(proc, 5)
        _, pending = await asyncio.wait(pumps, timeout=DRAIN_SECONDS)
        for task in pending:
            task.cancel()
        if pending:
            # asyncio has no public way to let go of the pipes; closing the transport does it
            transport = getattr(proc, "_transport", None)
            if transport is not None:
                transport.close()
            log.add(
                "[pipebot] a process that left the process group holds the output open: stopped reading\n"
            )
    code = proc.returncode if proc.returncode is not None else -signal.SIGKILL
    if sandboxed and 128 < code < 128 + 65:  # bwrap reports a signal as 128 + its number
        code = 128 - code
    duration = time.monotonic() - start
    if sandboxed:
        for note in box.take_back(workdir):
            log.add(f"[pipebot] {note}\n")
    reason = _killed_reason(config, code, timed_out, err.text())
    log.add(f"\n[pipebot] exit code {code} after {duration:.1f}s" + (f" ({reason})" if reason else "") + "\n")
    outputs = collect_outputs(paths["outputs"], log)
    return ScriptResult(code, timed_out, reason, out.text(), err.text(), log.text(), outputs, duration)


def _command(config: ScriptConfig, source_dir: Path, workdir: Path, search_path: str) -> list[str]:
    if config.code is not None:
        script = workdir / "script.py"
        script.write_text(config.code, encoding="utf-8")
    elif config.path is not None:
        base = source_dir.resolve()
        script = (base / config.path).resolve()
        if not script.is_relative_to(base):
            raise ScriptProblem(f"script {config.path} is outside the pipeline's folder")
        if not script.is_file():
            raise ScriptProblem(f"script {config.path} not found in {base}")
    else:
        raise ScriptProblem("a script checkpoint needs a path or code")
    interpreter = config.interpreter or sys.executable
    found = shutil.which(interpreter, path=search_path) if os.sep not in interpreter else interpreter
    if not found or not os.access(found, os.X_OK):
        raise ScriptProblem(f"interpreter {interpreter} not found")
    return [found, str(script), *config.args]


def _limits(config: ScriptConfig, max_file_bytes: int) -> list[tuple[int, tuple[int, int]]]:
    """Computed in the parent: the child only calls setrlimit (little work between fork and exec)."""
    cpu = math.ceil(config.timeout_seconds * (os.cpu_count() or 1)) + 5
    wanted = [(resource.RLIMIT_CPU, cpu, cpu + 5), (resource.RLIMIT_FSIZE, max_file_bytes, max_file_bytes)]
    wanted.append((resource.RLIMIT_CORE, 0, 0))
    if config.memory_mb is not None:
        size = config.memory_mb * 1024 * 1024
        wanted.append((resource.RLIMIT_AS, size, size))
    out = []
    for which, soft, hard in wanted:
        _, current_hard = resource.getrlimit(which)
        if current_hard != resource.RLIM_INFINITY:  # without privilege a limit can only go down
            soft, hard = min(soft, current_hard), min(hard, current_hard)
        out.append((which, (soft, hard)))
    return out


async def _pump(
    stream: asyncio.StreamReader, tail: BoundedText, log: BoundedText, on_output: OnOutput | None
) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    pending = ""
    while True:
        chunk = await stream.read(65536)
        text = decoder.decode(chunk, final=not chunk)
        tail.add(text)
        log.add(text)
        if on_output is not None:
            *lines, pending = (pending + text).split("\n")
            if not chunk and pending:
                lines.append(pending)
            for line in lines:
                try:
                    await on_output(line[:MAX_LINE_CHARS])
                except Exception as exc:  # best effort: a chat hiccup must not fail the script
                    log.add(f"\n[pipebot] output forwarding stopped: {exc!r}\n")
                    on_output = None
                    break
            pending = pending[-MAX_LINE_CHARS:]
        if not chunk:
            return


async def _exited(proc: asyncio.subprocess.Process, timeout: float) -> bool:
    """Whether the process itself ended within ``timeout``.

    Not ``wait_for(proc.wait())``: asyncio's wait also waits for the pipes to close, and a
    process that left the group (setsid) may keep them open forever.
    """
    waiter = asyncio.ensure_future(proc.wait())
    deadline = time.monotonic() + timeout
    try:
        while proc.returncode is None:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            await asyncio.wait([waiter], timeout=min(0.05, left))
        return True
    finally:
        waiter.cancel()


def _read_child_pid(fd: int) -> int | None:
    """bwrap's info fd: JSON with the host pid of the sandbox's pid 1, then EOF."""
    data = b""
    try:
        while chunk := os.read(fd, 4096):
            data += chunk
            with contextlib.suppress(ValueError):
                return int(json.loads(data)["child-pid"])
    finally:
        os.close(fd)
    return None


async def _end_namespace(proc: asyncio.subprocess.Process, pid1: asyncio.Task[int | None]) -> None:
    """SIGKILL the sandbox's pid 1: the kernel kills the rest of its PID namespace before bwrap
    (its parent) can reap it, so once bwrap has exited nothing of the script is left."""
    try:
        pid = await asyncio.wait_for(asyncio.shield(pid1), 2)
    except (TimeoutError, OSError):
        pid = None
    if pid is not None and proc.returncode is None:  # not yet reaped: the pid is still its own
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    else:
        _killpg(proc.pid, signal.SIGKILL)  # bwrap's --die-with-parent then ends the namespace


def _apply(limits: list[tuple[int, tuple[int, int]]]) -> None:
    for which, value in limits:
        resource.setrlimit(which, value)
    _die_with_parent()


def _die_with_parent() -> None:
    """Linux: SIGKILL the script if the worker dies, so a re-claimed attempt never runs twice."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the stale claim is still retried
        pass


PR_SET_PDEATHSIG = 1


def _killpg(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone already
        os.killpg(pgid, sig)


def _killed_reason(config: ScriptConfig, code: int, timed_out: bool, stderr: str) -> str | None:
    if timed_out:
        return f"timed out after {config.timeout_seconds:g}s"
    if code < 0:
        known = {signal.SIGXCPU: "CPU time limit", signal.SIGXFSZ: "file size limit"}
        try:
            sig = signal.Signals(-code)
        except ValueError:
            return f"killed by signal {-code}"
        return known.get(sig, f"killed by {sig.name}")
    if code != 0 and config.memory_mb is not None and "MemoryError" in stderr[-2000:]:
        return f"out of memory (limit {config.memory_mb} MB)"
    return None
