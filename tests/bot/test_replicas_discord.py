"""Discord with several `pipebot serve` processes: one gateway connection, handed over when its
holder dies; a crash between a post and its record leaves one message (the nonce)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from engine.actors import Actor, Conversation
from engine.api import Engine
from tests.bot.replicas import PIPELINE, Replicas, until
from tests.fakes.discord_fake import FakeChannel, FakeDiscord
from tests.pg import ADMIN_URL, fresh_database

pytestmark = pytest.mark.slow
GUILD = 910000000000000001
CHANNEL = 910000000000000010


@pytest.fixture
async def discord_fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        server.add_guild(GUILD, channels=[FakeChannel(CHANNEL, "pipelines")])
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
    elif not ADMIN_URL:
        pytest.skip("PIPEBOT_TEST_POSTGRES_URL is not set")
    else:
        with fresh_database() as url:
            yield url


def discord_replicas(tmp_path: Path, url: str | None, fake: FakeDiscord) -> Replicas:
    base = tmp_path / "pipelines"
    base.mkdir()
    (tmp_path / "pair.yaml").write_text(PIPELINE)
    engine = Engine.open(base, url)
    engine.import_pipeline(tmp_path / "pair.yaml")
    engine.close()
    env = {
        "DISCORD_TOKEN": fake.token,
        "DISCORD_API_URL": fake.api_url,
        "DISCORD_GATEWAY_URL": fake.gateway_url,
    }
    return Replicas(base, url, None, extra_env=env)


async def test_one_gateway_connection_and_failover(
    tmp_path: Path, discord_fake: FakeDiscord, database: str | None
) -> None:
    replicas = discord_replicas(tmp_path, database, discord_fake)
    try:
        replicas.start(2)
        await replicas.ready()
        await until(lambda: discord_fake.gateway.live == 1, 30, "a gateway connection")
        await asyncio.sleep(3)  # the other replica keeps away (it retries the lock every second)
        assert discord_fake.gateway.live == 1 and len(discord_fake.identifies) == 1
        leader = await replicas.leader("discord-gateway")
        assert leader is not None
        killed_at = replicas.kill(leader)
        await until(
            lambda: len(discord_fake.identifies) == 2 and discord_fake.gateway.live == 1, 30, "takeover"
        )
        takeover = time.monotonic() - killed_at
        where = "postgresql" if database else "sqlite"
        print(f"\nDiscord gateway taken over {takeover:.1f} s after kill -9 of its holder ({where})")
        assert takeover < 15
    finally:
        replicas.stop()


async def test_crash_between_post_and_record_leaves_one_message(
    tmp_path: Path, discord_fake: FakeDiscord
) -> None:
    replicas = discord_replicas(tmp_path, None, discord_fake)
    try:
        [crasher] = replicas.start(1, PIPEBOT_TEST_CRASH_AFTER_POST="1")
        await replicas.ready()
        engine = Engine.open(replicas.base)
        try:
            run = engine.start_run(
                "pair", Actor("discord", "710000000000000001", "Alice"), Conversation("discord", str(CHANNEL))
            )
        finally:
            engine.close()
        await until(lambda: crasher.proc.poll() is not None, 30, "the crash after the post")
        assert crasher.proc.returncode == 86
        [status] = discord_fake.messages_in(CHANNEL)
        assert status.payload["nonce"].startswith("pb")
        replicas.start(1)  # takes the run's outbox over once the dead holder's lease is stale
        await until(
            lambda: discord_fake.threads and discord_fake.messages_in(next(iter(discord_fake.threads))),
            30,
            "the thread",
        )
        thread = next(iter(discord_fake.threads))
        await until(
            lambda: any("open" in c for m in discord_fake.messages_in(thread) for c in m.custom_ids()),
            30,
            "the form card",
        )
        assert [m.id for m in discord_fake.messages_in(CHANNEL)] == [status.id]  # adopted, not posted again
        assert run.name in discord_fake.threads[thread]["name"]
        # The crashed attempt had started the thread too: the retry is told so, and uses it.
        assert all("160004" in str(e) for e in discord_fake.errors), discord_fake.errors
    finally:
        replicas.stop()
