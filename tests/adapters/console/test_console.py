"""`pipebot console` end to end: a real subprocess fed a script on stdin."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES

pytestmark = pytest.mark.slow


def console(tmp_path: Path, script: str, user: str = "alice", *extra: str) -> str:
    env = {**os.environ, "BASE_PIPELINES_PATH": str(tmp_path / "pipelines")}
    env.pop("DATABASE_URL", None)
    proc = subprocess.run(
        [sys.executable, "-m", "bot.cli", "console", "--user", user, str(EXAMPLES), *extra],
        input=script,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_blog_post_end_to_end(tmp_path: Path) -> None:
    ref = tmp_path / "ref.txt"
    ref.write_text("reference material")
    script = (
        "\n".join(
            [
                "/pipeline list",
                "/pipeline run blog-post",
                "f1",
                "",
                "Launch day",
                "50",
                "900",
                "line one\\nline two",
                "yes",
                "loud",
                "formal",
                str(ref),
                "r1",
                "Shorter please",
                "f1",
                "Launch",
                "",
                "",
                "",
                "",
                "",
                "a1",
                "a1",
                "s2",
                "f2",
                "Intro\\nBody",
                "a2",
                "a3",
                "/pipeline status blog-post#v1",
                "/pipeline artifacts blog-post#v1",
                "/pipeline frobnicate",
            ]
        )
        + "\n"
    )
    out = console(tmp_path, script)
    assert "• blog-post (v1) — Blog post" in out
    assert "Started blog-post#v1." in out
    assert "✖ is required" in out  # empty topic re-asked
    assert "✖ must be at least 100" in out  # 50 words re-asked
    assert "✖ must be one of formal, casual" in out
    assert "[a1] Approve   [r1] Request revision" in out
    assert "Feedback: Shorter please" in out
    assert "Topic (text, required, max 200 chars, now: Launch day)" in out
    assert "✖ Already approved by alice at" in out
    assert "✔ blog-post#v1 completed." in out
    assert "completed ▰▰▰▰▰▰▰▰▰▰ 3/3" in out
    assert "reference_ref.txt" in out and "| reference material" in out
    assert "✖ Unknown subcommand 'frobnicate'" in out
    brief = tmp_path / "pipelines" / "blog-post" / "runs" / "v1" / "brief" / "brief.json"
    assert '"topic": "Launch"' in brief.read_text()
    assert '"notes": "line one\\nline two"' in brief.read_text()


def test_buttons_work_after_a_restart_and_users_are_checked(tmp_path: Path) -> None:
    first = console(tmp_path, "/pipeline run release\nf1\n1.4\nlow\n\nrevert\nyes\n\n", "carol")
    assert "[a1] Approve" in first
    refused = console(tmp_path, "a1\n", "carol")
    assert "✖ You may not approve this" in refused
    partial = console(tmp_path, "a1\n", "alice")
    assert "Approval recorded (1 of 2)." in partial
    done = console(tmp_path, "a1\n/pipeline pending\n", "bob")
    assert "Approved Change request." in done
    assert "release#v1 · Go / no-go: approve start" in done
    assert "[s2] Approve start" in done


def test_a_five_megabyte_answer_is_refused_and_not_printed_whole(tmp_path: Path) -> None:
    huge = "x" * 5_000_000
    script = ["/pipeline run blog-post", "f1", huge, "ok", "", "", "", "", "", ""]
    out = console(tmp_path, "\n".join(script) + "\n")
    assert "✖ must be at most 200 characters (got 5,000,000)" in out
    assert "… (5,000,000 characters)" in out and len(out) < 20_000
    assert "Topic: ok" in out
    assert "Notes (text, \\n for a new line): " in out  # how to type a multi-line answer
