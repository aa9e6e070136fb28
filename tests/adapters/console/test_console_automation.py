"""Agent and script checkpoints through a chat adapter: `pipebot console` in a subprocess, its
worker calling a fake OpenAI-compatible server with the real openai client, a real script."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES
from tests.fakes.openai_server import FakeOpenAI

pytestmark = pytest.mark.slow
ISSUE = "# Release 2.0\n\n" + "What changed, why it matters and how to upgrade, in plain words. " * 4


async def test_newsletter_with_agents_and_a_script(tmp_path: Path) -> None:
    async with FakeOpenAI() as fake:
        fake.script("writer opens", "critic objects", "writer answers", "critic agrees", ISSUE)
        env = {
            **os.environ,
            "BASE_PIPELINES_PATH": str(tmp_path / "pipelines"),
            "OPENAI_API_KEY": fake.api_key,
            "OPENAI_BASE_URL": fake.base_url,
        }
        env.pop("DATABASE_URL", None)
        script = (
            "\n".join(
                [
                    "/pipeline run newsletter",
                    "f1",
                    "Release 2.0",
                    "",
                    "s2",
                    "a2",
                    "f3",
                    "release-2",
                    "a3",
                    "/pipeline status",
                ]
            )
            + "\n"
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "console",
            "--user",
            "ana",
            str(EXAMPLES / "newsletter.yaml"),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=tmp_path,
        )
        out_b, err_b = await asyncio.wait_for(proc.communicate(script.encode()), 60)
    out = out_b.decode()
    assert proc.returncode == 0, err_b.decode()
    assert len(fake.completed) == 5
    assert "writer (round 1" in out and "critic (round 2" in out  # the discussion, turn by turn
    assert "Draft done: 5 calls" in out
    assert "issue.md" in out and "| # Release 2.0" in out  # the artifact with its preview
    assert "packaging release-2:" in out  # the script's output tail
    assert "report.json" in out and '"slug": "release-2"' in out
    assert "✔ newsletter#v1 completed." in out
    # The log shares the terminal: no library narrates its HTTP requests at the default level.
    assert "HTTP Request" not in err_b.decode() and "httpx" not in err_b.decode()
    html = tmp_path / "pipelines" / "newsletter" / "runs" / "v1" / "package" / "issue.html"
    assert "<article id='release-2'>" in html.read_text()
