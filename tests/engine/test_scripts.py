"""Script checkpoints as real subprocesses: workspace, limits, environment, process-group kill."""

from __future__ import annotations

import json
import os
import signal
import stat
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from engine.definitions import ScriptConfig
from engine.errors import ScriptProblem
from engine.scripts import TAIL_CHARS, run_script


def code(source: str, **kwargs: object) -> ScriptConfig:
    return ScriptConfig.model_validate({"code": textwrap.dedent(source), **kwargs})


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    source, work = tmp_path / "pipeline", tmp_path / "exec_1"
    source.mkdir()
    return source, work


async def test_inputs_context_and_outputs(dirs: tuple[Path, Path], tmp_path: Path) -> None:
    source, work = dirs
    brief = tmp_path / "brief.json"
    brief.write_text('{"topic": "tea"}')
    script = """
        import json, os, pathlib
        inputs = json.load(open(os.environ["PIPEBOT_INPUTS"]))
        brief = json.loads(pathlib.Path(os.environ["PIPEBOT_CONTEXT"], "brief", "brief.json").read_text())
        out = pathlib.Path(os.environ["PIPEBOT_OUTPUTS"])
        (out / "report.json").write_text(json.dumps({"slug": inputs["slug"], "topic": brief["topic"]}))
        (out / "sub").mkdir()
        (out / "sub" / "notes.txt").write_text("n")
        print("done", os.getcwd())
    """
    result = await run_script(
        code(script), source_dir=source, workdir=work, inputs={"slug": "hello"},
        context_files=[("brief/brief.json", brief)],
    )  # fmt: skip
    assert result.ok, result.log
    assert result.outputs == {
        "report.json": work / "outputs/report.json",
        "sub/notes.txt": work / "outputs/sub/notes.txt",
    }
    assert json.loads(result.outputs["report.json"].read_text()) == {"slug": "hello", "topic": "tea"}
    assert result.stdout_tail == f"done {work}\n" and result.stderr_tail == ""
    assert json.loads((work / "inputs.json").read_text()) == {"slug": "hello"}


async def test_context_is_read_only(dirs: tuple[Path, Path], tmp_path: Path) -> None:
    source, work = dirs
    (tmp_path / "a.md").write_text("original")
    script = """
        try:
            open("context/a.md", "a").write("changed")
            print("written")
        except PermissionError:
            print("denied")
    """
    result = await run_script(
        code(script), source_dir=source, workdir=work, inputs={}, context_files=[("a.md", tmp_path / "a.md")]
    )
    modes = [stat.S_IMODE((work / p).stat().st_mode) for p in ("context", "context/a.md")]
    assert modes == [0o555, 0o444]
    if os.geteuid() != 0:  # root ignores mode bits (see engine.scripts)
        assert result.stdout_tail == "denied\n" and (work / "context/a.md").read_text() == "original"
    # a retry gets a fresh context although the old one is read-only, and no stale outputs
    (work / "outputs/stale.md").write_text("old")
    again = await run_script(code("print(1)"), source_dir=source, workdir=work, inputs={}, context_files=[])
    assert again.ok and again.outputs == {} and list((work / "context").iterdir()) == []


async def test_timeout_kills_the_whole_process_group(dirs: tuple[Path, Path]) -> None:
    source, work = dirs
    script = """
        import signal, subprocess, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        child = "import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        child += "open('grandchild.pid', 'w').write(str(os.getpid())); time.sleep(60)"
        subprocess.Popen([sys.executable, "-c", child])
        print("started", flush=True)
        time.sleep(60)
    """
    started = time.monotonic()
    result = await run_script(
        code(script, timeout_seconds=1),
        source_dir=source,
        workdir=work,
        inputs={},
        context_files=[],
        kill_grace=0.3,
    )
    assert time.monotonic() - started < 5
    assert result.timed_out and not result.ok and result.killed_reason == "timed out after 1s"
    assert result.stdout_tail == "started\n" and "SIGKILL" in result.log
    pid = int((work / "grandchild.pid").read_text())
    assert not _alive(pid)


async def test_a_process_that_left_the_group_does_not_hang_the_run(dirs: tuple[Path, Path]) -> None:
    source, work = dirs
    script = """
        import subprocess, sys
        child = "import os, time; os.setsid(); "
        child += "open('escaped.pid', 'w').write(str(os.getpid())); time.sleep(30)"
        subprocess.Popen([sys.executable, "-c", child])
        import time; time.sleep(0.3)
    """
    started = time.monotonic()
    result = await run_script(
        code(script, timeout_seconds=10), source_dir=source, workdir=work, inputs={}, context_files=[]
    )
    pid = int((work / "escaped.pid").read_text())
    os.kill(pid, signal.SIGKILL)  # out of reach of the group kill: only a separate user or cgroup contains it
    assert result.ok and time.monotonic() - started < 4
    assert "left the process group" in result.log


def _alive(pid: int) -> bool:
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:  # dead, awaiting its reaper
                return False
        except psutil.NoSuchProcess:
            return False
        time.sleep(0.02)
    return True


async def test_memory_limit_makes_a_big_allocation_fail(dirs: tuple[Path, Path]) -> None:
    source, work = dirs
    script = "data = bytearray(1024 * 1024 * 1024)\nprint('allocated')"
    result = await run_script(
        code(script, memory_mb=200), source_dir=source, workdir=work, inputs={}, context_files=[]
    )
    assert result.exit_code == 1 and "MemoryError" in result.stderr_tail
    assert result.killed_reason == "out of memory (limit 200 MB)"


async def test_environment_has_no_secrets(dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    source, work = dirs
    for name in ("SLACK_BOT_TOKEN", "OPENAI_API_KEY", "DATABASE_URL", "DISCORD_TOKEN", "CUSTOM_SECRET_NAME"):
        monkeypatch.setenv(name, "s3cret")
    monkeypatch.setenv("REPORT_BUCKET", "bucket-1")
    config = code(
        "import json, os\nprint(json.dumps(dict(os.environ)))",
        env={"MODE": "test"},
        allow_env=["REPORT_BUCKET", "OPENAI_API_KEY", "DATABASE_URL", "CUSTOM_SECRET_NAME", "UNSET_VAR"],
    )
    result = await run_script(
        config,
        source_dir=source,
        workdir=work,
        inputs={},
        context_files=[],
        secret_env=["CUSTOM_SECRET_NAME"],
    )
    env = json.loads(result.stdout_tail)
    assert "s3cret" not in result.stdout_tail
    assert env["REPORT_BUCKET"] == "bucket-1" and env["MODE"] == "test"
    assert env["HOME"] == str(work) and env["PIPEBOT_OUTPUTS"] == str(work / "outputs")
    assert env["PIPEBOT_INPUTS"] == str(work / "inputs.json") and env["PIPEBOT_CONTEXT"] == str(
        work / "context"
    )
    assert "not passing OPENAI_API_KEY" in result.log and "UNSET_VAR is not set" in result.log


async def test_failure_reports_exit_code_and_stderr_tail(dirs: tuple[Path, Path]) -> None:
    source, work = dirs
    (source / "scripts").mkdir()
    (source / "scripts" / "publish.py").write_text(
        "import sys\nprint('to', sys.argv[1:])\nsys.exit('boom: no network')"
    )
    lines: list[str] = []

    async def on_output(line: str) -> None:
        lines.append(line)

    config = ScriptConfig(path="scripts/publish.py", args=["--dry-run"])
    result = await run_script(
        config, source_dir=source, workdir=work, inputs={}, context_files=[], on_output=on_output
    )
    assert (result.exit_code, result.timed_out, result.killed_reason) == (1, False, None)
    assert result.stderr_tail == "boom: no network\n" and sorted(lines) == [
        "boom: no network",
        "to ['--dry-run']",
    ]
    assert "exit code 1" in result.log


async def test_output_is_bounded(dirs: tuple[Path, Path]) -> None:
    source, work = dirs
    script = "import sys\nfor i in range(20000): print(f'line {i:05d} ' + 'x' * 20)\n"
    script += "sys.stderr.write('e' * 100000)"
    result = await run_script(code(script), source_dir=source, workdir=work, inputs={}, context_files=[])
    assert result.ok and len(result.stdout_tail) < TAIL_CHARS + 100 and len(result.log) < 70 * 1024
    assert (
        result.stdout_tail.endswith("line 19999 " + "x" * 20 + "\n")
        and "characters omitted" in result.stdout_tail
    )
    assert len(result.stderr_tail) < TAIL_CHARS + 100


async def test_symlinked_outputs_are_ignored(dirs: tuple[Path, Path]) -> None:
    source, work = dirs
    script = (
        "import os\nos.symlink('/etc/passwd', 'outputs/passwd.txt')\nopen('outputs/ok.txt', 'w').write('ok')"
    )
    result = await run_script(code(script), source_dir=source, workdir=work, inputs={}, context_files=[])
    assert list(result.outputs) == ["ok.txt"] and "ignored symlink outputs/passwd.txt" in result.log


async def test_scripts_that_cannot_start(dirs: tuple[Path, Path], tmp_path: Path) -> None:
    source, work = dirs
    (tmp_path / "outside.py").write_text("print(1)")
    for config, problem in [
        (ScriptConfig(path="../outside.py"), "outside the pipeline"),
        (ScriptConfig(path="missing.py"), "not found"),
        (ScriptConfig(code="print(1)", interpreter="no-such-python"), "interpreter"),
    ]:
        with pytest.raises(ScriptProblem, match=problem):
            await run_script(config, source_dir=source, workdir=work, inputs={}, context_files=[])
    with pytest.raises(ScriptProblem, match="relative path"):
        await run_script(
            ScriptConfig(code="1"),
            source_dir=source,
            workdir=work,
            inputs={},
            context_files=[("../x", tmp_path)],
        )
