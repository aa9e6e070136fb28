"""`pipebot console`: the local user is who you are, and the admin unless PIPEBOT_ADMINS says otherwise."""

from __future__ import annotations

import getpass
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine import messages
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.slow

SCRIPTED = '/pipeline import {id: tool, checkpoints: [{id: go, mode: script, script: {code: "print(1)"}}]}'


def console(tmp_path: Path, script: str, **env: str) -> str:
    full = {**os.environ, "BASE_PIPELINES_PATH": str(tmp_path / "pipelines"), **env}
    full.pop("DATABASE_URL", None)
    if "PIPEBOT_ADMINS" not in env:
        full.pop("PIPEBOT_ADMINS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "bot.cli", "console", str(EXAMPLES)],
        input=script,
        capture_output=True,
        text=True,
        env=full,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_the_os_user_is_the_console_admin(tmp_path: Path) -> None:
    out = console(tmp_path, f"{SCRIPTED}\n/pipeline delete tool\n/pipeline list\n")
    assert f"you are {getpass.getuser()}." in out
    assert "Pipeline tool imported as version 1." in out
    assert "Deleted pipeline tool; its runs and files stay readable." in out
    assert "• tool" not in out and "• blog-post (v1)" in out  # the examples still load


def test_with_pipebot_admins_set_the_console_user_is_not_admin(tmp_path: Path) -> None:
    out = console(tmp_path, f"{SCRIPTED}\n/pipeline delete blog-post\n", PIPEBOT_ADMINS="slack:U0BOSS")
    assert f"✖ {messages.NOT_IMPORTER}" in out
    assert f"✖ {messages.NOT_DELETER}" in out
