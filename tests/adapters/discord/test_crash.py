"""kill -9 of a real `pipebot serve` the moment Discord receives its deferral of a command: the
inbox row was written before the deferral left, so after the restart the command takes effect
once and its answer replaces the "thinking" message through the interaction token."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from engine.api import Engine
from tests.adapters.discord.helpers import ALICE, CHANNEL, GUILD, answer_of, sync_to_guild
from tests.bot.test_serve_crash import effects, free_port, rows
from tests.conftest import EXAMPLES
from tests.fakes.discord_fake import FakeDiscord, InteractionRecord

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[3]


def start_serve(base: Path, fake: FakeDiscord, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DISCORD_", "PIPEBOT_"))}
    env.update(
        BASE_PIPELINES_PATH=str(base),
        DISCORD_TOKEN=fake.token,
        DISCORD_API_URL=fake.api_url,
        DISCORD_GATEWAY_URL=fake.gateway_url,
        PIPEBOT_HTTP_PORT=str(port),
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
    )
    cmd = [sys.executable, "-m", "bot.cli", "serve"]
    return subprocess.Popen(cmd, cwd=base.parent, env=env, start_new_session=True)


async def test_kill_9_as_the_deferral_arrives_then_the_command_takes_effect_once(
    tmp_path: Path, fake: FakeDiscord
) -> None:
    base = tmp_path / "pipelines"
    engine = Engine.open(base)
    engine.import_pipeline(EXAMPLES / "blog-post.yaml")
    engine.close()
    await sync_to_guild(fake)
    port = free_port()
    serve = start_serve(base, fake, port)
    killed: list[int] = []

    def crash(record: InteractionRecord) -> None:  # before the deferral is answered
        if not killed:
            killed.append(record.id)
            os.killpg(serve.pid, signal.SIGKILL)  # the front and its engine process

    fake.rest.on_callback = crash
    try:
        await fake.wait_for(lambda: fake.connected, timeout=60)
        options = {"pipeline": "blog-post"}
        asked = await fake.send_slash_command(GUILD, CHANNEL, ALICE, "pipeline run", options)
        await fake.wait_for(lambda: killed or None, timeout=30)
    finally:
        fake.rest.on_callback = None
        if not killed:
            serve.kill()
        serve.wait(30)
    assert fake.interactions[asked].response_type == 5  # deferred: "thinking"
    [row] = rows(base)
    assert row.handled_at is None  # recorded before the deferral, not handled

    serve = start_serve(base, fake, port)
    try:
        started = await fake.wait_for(lambda: answer_of(fake, asked), timeout=60)
        assert started.content == "Started blog-post#v1."
        await fake.wait_for(lambda: all(r.handled_at for r in rows(base)) or None, timeout=30)
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(30)
    engine = Engine.open(base)
    try:
        assert len(engine.runs(limit=10)) == 1
    finally:
        engine.close()
    assert effects(base) == {row.dedup_key}
    fake.assert_no_errors()
