"""Scripts in the bubblewrap sandbox: real scripts try each way out and each is stopped."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import pytest

from engine.definitions import ScriptConfig
from engine.errors import ScriptProblem
from engine.sandbox import SandboxConfig, unavailable
from engine.scripts import ScriptResult, run_script

WHY = unavailable()
needs_bwrap = pytest.mark.skipif(WHY is not None, reason=f"bubblewrap cannot run here: {WHY}")
SECRETS = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "OPENAI_API_KEY", "DATABASE_URL", "DISCORD_TOKEN")


async def sandboxed(
    tmp_path: Path, source: str, inputs: dict[str, object] | None = None, **cfg: object
) -> ScriptResult:
    config = ScriptConfig.model_validate({"code": textwrap.dedent(source), "timeout_seconds": 20, **cfg})
    (tmp_path / "pipeline").mkdir(exist_ok=True)
    return await run_script(
        config,
        source_dir=tmp_path / "pipeline",
        workdir=tmp_path / "pipelines" / "p" / ".tmp" / "exec_1",
        inputs=inputs or {},
        context_files=[],
        sandbox=SandboxConfig(),
        kill_grace=0.5,
    )


def attempts(result: ScriptResult) -> dict[str, Any]:
    assert result.ok, result.log
    return dict(json.loads(result.stdout_tail.strip().splitlines()[-1]))


TRY = """
    import json, os, sys
    inputs = json.load(open(os.environ["PIPEBOT_INPUTS"]))
    found = {}
    def attempt(name, fn):
        try:
            found[name] = "ALLOWED: " + str(fn())[:200]
        except Exception as exc:
            found[name] = "stopped: " + type(exc).__name__
"""


@needs_bwrap
async def test_the_bots_process_environment_and_files_are_out_of_reach(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in SECRETS:
        monkeypatch.setenv(name, f"s3cret-{name}")
    (tmp_path / ".env").write_text("SLACK_BOT_TOKEN=s3cret-dotenv\n")
    monkeypatch.chdir(tmp_path)  # the bot's working directory, with its .env
    db = tmp_path / "pipelines" / "pipebot.db"
    db.parent.mkdir()
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE runs (id INTEGER)")
    script = (
        TRY
        + """
    import glob, sqlite3
    ppid, host = os.getppid(), inputs["bot_pid"]
    attempt("parent environ", lambda: open(f"/proc/{ppid}/environ", "rb").read())
    attempt("parent cwd", lambda: os.listdir(f"/proc/{ppid}/cwd"))
    attempt("bot environ", lambda: open(f"/proc/{host}/environ", "rb").read())
    attempt("bot cwd .env", lambda: open(f"/proc/{host}/cwd/.env").read())
    attempt(".env by path", lambda: open(inputs["dotenv"]).read())
    attempt("database file", lambda: open(inputs["db"], "rb").read(16))
    def write_db():
        with sqlite3.connect(f"file:{inputs['db']}?mode=rw", uri=True) as c:
            c.execute("CREATE TABLE stolen (x TEXT)")
    attempt("database write", write_db)
    found["bot cwd listing"] = os.listdir(inputs["cwd"])  # only the folders above the workspace
    found["pipelines listing"] = os.listdir(os.path.dirname(inputs["db"]))
    seen = []
    for path in glob.glob("/proc/*/environ") + glob.glob("/proc/*/cmdline"):
        try:
            seen.append(open(path, "rb").read().decode(errors="replace"))
        except OSError:
            pass
    found["secrets seen"] = [s for s in seen + [json.dumps(dict(os.environ))] if "s3cret" in s]
    found["processes"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    found["uid"] = os.getuid()
    print(json.dumps(found))
    """
    )
    inputs = {"bot_pid": os.getpid(), "dotenv": str(tmp_path / ".env"), "db": str(db), "cwd": str(tmp_path)}
    result = await sandboxed(tmp_path, script, inputs)
    found = attempts(result)
    for name in ("parent environ", "parent cwd", "bot environ", "bot cwd .env", ".env by path"):
        assert found[name].startswith("stopped"), (name, found[name])
    for name in ("database file", "database write"):
        assert found[name].startswith("stopped"), (name, found[name])
    assert found["bot cwd listing"] == ["pipelines"] and found["pipelines listing"] == ["p"]
    assert found["secrets seen"] == [] and "s3cret" not in result.log
    assert found["processes"] == [1, 2] and found["uid"] == 65534  # bwrap's init and the script
    with sqlite3.connect(db) as conn:
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["runs"]


@needs_bwrap
async def test_writes_stay_in_the_workspace_and_context_is_read_only(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("original")
    script = (
        TRY
        + """
    def write(path):
        with open(path, "w") as f:
            f.write("x")
        return path
    attempt("up two", lambda: write("../../x"))
    attempt("absolute", lambda: write(inputs["outside"]))
    attempt("context", lambda: write("context/a.md"))
    attempt("system", lambda: write("/usr/x"))
    attempt("outputs", lambda: write("outputs/ok.txt"))
    attempt("tmp", lambda: write("/tmp/scratch"))
    os.symlink("/etc/passwd", "error.json")  # the bot later writes error.json here
    print(json.dumps(found))
    """
    )
    workdir = tmp_path / "pipelines" / "p" / ".tmp" / "exec_1"
    config = ScriptConfig(code=textwrap.dedent(script))
    (tmp_path / "pipeline").mkdir()
    result = await run_script(
        config, source_dir=tmp_path / "pipeline", workdir=workdir,
        inputs={"outside": str(tmp_path / "outside.txt")},
        context_files=[("a.md", tmp_path / "a.md")], sandbox=SandboxConfig(),
    )  # fmt: skip
    found = attempts(result)
    assert [k for k, v in found.items() if v.startswith("ALLOWED")] == ["outputs", "tmp"]
    assert not (workdir.parent.parent / "x").exists()
    assert not (tmp_path / "outside.txt").exists()
    assert (workdir / "context/a.md").read_text() == "original"
    assert list(result.outputs) == ["ok.txt"]
    assert not (workdir / "error.json").is_symlink() and "ignored symlink error.json" in result.log
    assert os.stat(workdir).st_uid == os.getuid() == os.stat(workdir / "outputs/ok.txt").st_uid


@needs_bwrap
async def test_network_is_off_unless_the_checkpoint_turns_it_on(tmp_path: Path) -> None:
    connections: list[bytes] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(await reader.read(100))
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    script = (
        TRY
        + """
    import socket
    def connect():
        with socket.create_connection(("127.0.0.1", inputs["port"]), timeout=5) as s:
            s.sendall(b"hello")
        return "connected"
    attempt("loopback", connect)
    print(json.dumps(found))
    """
    )
    async with server:
        off = attempts(await sandboxed(tmp_path, script, {"port": port}))
        on = attempts(await sandboxed(tmp_path, script, {"port": port}, network=True))
        await asyncio.sleep(0.1)
    assert off["loopback"] == "stopped: ConnectionRefusedError"
    assert on["loopback"] == "ALLOWED: connected" and connections == [b"hello"]


def marked(marker: str, grace: float = 5.0) -> list[psutil.Process]:
    """The live processes whose command line holds ``marker``.

    The kernel's SIGKILL of a PID namespace's last processes is delivered asynchronously, so a
    process may still be listed for a moment after the sandbox ended: wait up to ``grace``.
    """
    deadline = time.monotonic() + grace
    while True:
        found = []
        for proc in psutil.process_iter(["cmdline"]):
            try:
                if marker in " ".join(proc.info["cmdline"] or []) and proc.status() != psutil.STATUS_ZOMBIE:
                    found.append(proc)
            except psutil.NoSuchProcess:
                continue
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


@needs_bwrap
async def test_timeout_ends_every_process_setsid_or_not(tmp_path: Path) -> None:
    marker = f"pipebot-marker-{uuid.uuid4().hex}"
    script = f"""
        import os, signal, subprocess, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        child = "import os, time; os.setsid(); os.fork(); time.sleep(60)  # {marker}"
        subprocess.Popen([sys.executable, "-c", child])
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)  # {marker}"])
        time.sleep(0.5)
        print("started", flush=True)
        time.sleep(60)
    """
    started = time.monotonic()
    result = await sandboxed(tmp_path, script, timeout_seconds=1.5)
    assert result.timed_out and result.killed_reason == "timed out after 1.5s"
    assert "ending the sandbox" in result.log and result.stdout_tail == "started\n"
    assert time.monotonic() - started < 5
    assert marked(marker) == []  # setsid grandchild alive after timeout: 0


@needs_bwrap
async def test_processes_left_behind_end_with_the_script(tmp_path: Path) -> None:
    marker = f"pipebot-marker-{uuid.uuid4().hex}"
    script = f"""
        import subprocess, sys
        child = "import os, time; os.setsid(); time.sleep(60)  # {marker}"
        subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    """
    result = await sandboxed(tmp_path, script)
    assert result.ok, result.log
    assert marked(marker) == []


@needs_bwrap
async def test_process_count_is_bounded(tmp_path: Path) -> None:
    script = """
        import os, time
        started = 0
        for _ in range(200):
            try:
                if os.fork() == 0:
                    time.sleep(30)
                    os._exit(0)
                started += 1
            except OSError:
                pass
        print(started)
    """
    result = await sandboxed(tmp_path, script)
    assert result.ok, result.log
    started = int(result.stdout_tail)
    assert 10 <= started < 64  # max_processes: 64 with the script itself
    fewer = await sandboxed(tmp_path, script, max_processes=8)
    assert int(fewer.stdout_tail) < 8


@needs_bwrap
async def test_memory_limit_holds_in_the_sandbox(tmp_path: Path) -> None:
    script = "data = bytearray(1024 * 1024 * 1024)\nprint('allocated')"
    result = await sandboxed(tmp_path, script, memory_mb=200)
    assert result.exit_code == 1 and "MemoryError" in result.stderr_tail
    assert result.killed_reason == "out of memory (limit 200 MB)"


@needs_bwrap
async def test_a_path_script_runs_with_its_own_modules(tmp_path: Path) -> None:
    source = tmp_path / "pipeline"
    (source / "scripts").mkdir(parents=True)
    (source / "scripts" / "helper.py").write_text("WORD = 'hello'\n")
    (source / "scripts" / "main.py").write_text(
        "import os, pathlib, helper\n"
        "pathlib.Path(os.environ['PIPEBOT_OUTPUTS'], 'w.txt').write_text(helper.WORD)"
    )
    result = await run_script(
        ScriptConfig(path="scripts/main.py"), source_dir=source, workdir=tmp_path / "exec_1",
        inputs={}, context_files=[], sandbox=SandboxConfig(),
    )  # fmt: skip
    assert result.ok, result.log
    assert result.outputs["w.txt"].read_text() == "hello"


async def test_without_bwrap_the_script_fails_naming_the_package_and_setting(tmp_path: Path) -> None:
    with pytest.raises(ScriptProblem) as caught:
        await run_script(
            ScriptConfig(code="print(1)"),
            source_dir=tmp_path,
            workdir=tmp_path / "exec_1",
            inputs={},
            context_files=[],
            sandbox=SandboxConfig(bwrap="no-such-bwrap"),
        )
    assert "bubblewrap" in str(caught.value) and "PIPEBOT_SCRIPT_SANDBOX=none" in str(caught.value)
    assert not (tmp_path / "exec_1").exists()  # nothing ran


@needs_bwrap
async def test_a_retry_may_rewrite_its_files_but_never_the_uploads(tmp_path: Path) -> None:
    workdir = tmp_path / "pipelines" / "p" / ".tmp" / "exec_1"
    (workdir / "form").mkdir(parents=True)
    (workdir / "form" / "doc_a.txt").write_text("uploaded")
    script = (
        TRY
        + """
    attempt("state", lambda: open("state.txt", "a").write("x"))
    attempt("upload", lambda: open("form/doc_a.txt", "w").write("forged"))
    attempt("rename form", lambda: os.rename("form", "old_form"))
    print(json.dumps(found))
    """
    )
    for _ in range(2):  # the second attempt finds the first one's files
        found = attempts(await sandboxed(tmp_path, script))
    assert found["state"] == "ALLOWED: 1" and (workdir / "state.txt").read_text() == "xx"
    assert found["upload"].startswith("stopped") and found["rename form"].startswith("stopped")
    assert (workdir / "form" / "doc_a.txt").read_text() == "uploaded"
