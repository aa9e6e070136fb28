"""A script checkpoint through `pipebot console`: in the sandbox when bubblewrap can run, with a
one-line warning and no sandbox when it cannot; its outputs become artifacts either way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.sandbox import unavailable

pytestmark = pytest.mark.slow
PROBE = """\
id: probe
checkpoints:
  - id: probe
    mode: script
    human: {approval_to_complete: false}
    script:
      code: |
        import json, os, pathlib
        seen = []
        for pid in os.listdir("/proc"):
            try:
                seen.append(open(f"/proc/{pid}/environ", "rb").read().decode(errors="replace"))
            except (OSError, NotADirectoryError):
                pass
        report = {"uid": os.getuid(), "secret seen": any("s3cret" in s for s in seen),
                  "env file": os.path.exists(os.environ["BOT_DIR"] + "/.env")}
        pathlib.Path(os.environ["PIPEBOT_OUTPUTS"], "probe.json").write_text(json.dumps(report))
        print("probe done")
      env: {BOT_DIR: "%s"}
    outputs: [{name: probe, format: json}]
"""


def run_console(tmp_path: Path, path: str) -> tuple[dict[str, object], str, str]:
    (tmp_path / "probe.yaml").write_text(PROBE % tmp_path)
    (tmp_path / ".env").write_text("SLACK_BOT_TOKEN=s3cret-dotenv\n")
    env = {
        **os.environ,
        "BASE_PIPELINES_PATH": str(tmp_path / "pipelines"),
        "SLACK_BOT_TOKEN": "s3cret-token",
        "PATH": path,
    }
    env.pop("DATABASE_URL", None)
    env.pop("PIPEBOT_SCRIPT_SANDBOX", None)
    proc = subprocess.run(
        [sys.executable, "-m", "bot.cli", "console", "--user", "ana", str(tmp_path / "probe.yaml")],
        input="/pipeline run probe\n/pipeline status\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    artifact = tmp_path / "pipelines" / "probe" / "runs" / "v1" / "probe" / "probe.json"
    return json.loads(artifact.read_text()), proc.stdout, proc.stderr


@pytest.mark.skipif(unavailable() is not None, reason=f"bubblewrap cannot run here: {unavailable()}")
def test_console_script_in_the_sandbox(tmp_path: Path) -> None:
    report, out, err = run_console(tmp_path, os.environ.get("PATH", os.defpath))
    assert report == {"uid": 65534, "secret seen": False, "env file": False}
    assert "probe done" in out and "probe.json" in out and "✔ probe#v1 completed." in out
    assert "warning" not in err


def test_console_without_bubblewrap_warns_and_runs_unsandboxed(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    report, out, err = run_console(tmp_path, str(empty))  # no bwrap on PATH
    assert [line for line in err.splitlines() if "warning" in line] == [
        "warning: scripts run without a sandbox (bwrap not found; install the bubblewrap package, "
        "or set PIPEBOT_SCRIPT_SANDBOX=none)"
    ]
    assert report["env file"] is True and "✔ probe#v1 completed." in out  # the operator's own machine
