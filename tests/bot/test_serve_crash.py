"""kill -9 of a real `pipebot serve` after it acked 20 commands and before it handled them:
after the restart each takes effect exactly once, and a replay of one acked earlier none."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from engine.api import Engine
from engine.models import InboxEffectRow, InboxRow
from engine.store import Store, sqlite_url
from tests.bot.replicas import sample_value
from tests.conftest import EXAMPLES
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_signing import SlackClientSim

pytestmark = pytest.mark.slow
SECRET = "crash-test-signing-secret"
CHANNEL = "C0CRASH"
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_serve(
    base: Path, fake: FakeSlack, port: int, hold: float, **extra: str
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DISCORD_", "PIPEBOT_"))}
    env.update(
        BASE_PIPELINES_PATH=str(base),
        SLACK_BOT_TOKEN=fake.token,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=fake.api_url,
        PIPEBOT_HTTP_PORT=str(port),
        PIPEBOT_INBOX_HOLD_SECONDS=str(hold),
        LOG_LEVEL="WARNING",
        **extra,
    )
    cmd = [sys.executable, "-m", "bot.cli", "serve"]
    return subprocess.Popen(
        cmd, cwd=base.parent, env={**env, "PYTHONPATH": str(ROOT)}, start_new_session=True
    )


async def wait_healthy(port: int) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(500):
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.02)
    pytest.fail("pipebot serve did not come up")


async def gone(pgid: int) -> None:
    for _ in range(500):
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        await asyncio.sleep(0.02)
    os.killpg(pgid, signal.SIGKILL)
    pytest.fail("the engine process outlived the front")


@asynccontextmanager
async def serving(base: Path, fake: FakeSlack, port: int, hold: float = 0) -> AsyncIterator[None]:
    """`pipebot serve` up and healthy for the block; then stopped with SIGTERM (a clean stop), and
    gone, engine process included."""
    serve = start_serve(base, fake, port, hold)
    try:
        await wait_healthy(port)
        yield
    finally:
        serve.send_signal(signal.SIGTERM)
        # Waited for off the loop: the fake Slack on this loop must answer the calls that
        # pipebot finishes while it stops.
        await asyncio.to_thread(serve.wait, 30)
    await gone(serve.pid)


def effects(base: Path) -> set[str]:
    store = Store(sqlite_url(base))  # no migration: the file is serve's
    try:
        with store.read() as s:
            return set(s.scalars(select(InboxEffectRow.dedup_key)))
    finally:
        store.dispose()


def rows(base: Path) -> list[InboxRow]:
    store = Store(sqlite_url(base, "inbox.db"))  # the inbox's journal next to the database
    try:
        with store.read() as s:
            return list(s.query(InboxRow).order_by(InboxRow.id))
    finally:
        store.dispose()


def with_blog_post(base: Path) -> Path:
    engine = Engine.open(base)
    engine.import_pipeline(EXAMPLES / "blog-post.yaml")
    engine.close()
    return base


async def test_kill_9_after_20_acks_then_each_takes_effect_once(tmp_path: Path) -> None:
    base = with_blog_post(tmp_path / "pipelines")
    async with FakeSlack() as fake, SlackClientSim(SECRET, fake) as sim:
        port = free_port()
        url = f"http://127.0.0.1:{port}/slack/events"
        serve = start_serve(base, fake, port, hold=60)
        try:
            await wait_healthy(port)
            for i in range(20):
                resp = await sim.slash_command(
                    url, text="run blog-post", user_id=f"U0P{i:02}", channel_id=CHANNEL
                )
                assert resp.status == 200
            replay = sim.sent[0]
            async with (
                aiohttp.ClientSession() as session,
                session.post(replay.url, data=replay.body, headers=replay.headers) as again,
            ):
                assert again.status == 200  # acked, and recorded nowhere: its first copy acts
        finally:
            serve.kill()  # kill -9 of the front; its engine process follows when its pipe closes
            serve.wait()
        await gone(serve.pid)
        acked = rows(base)
        assert len(acked) == 20 and all(r.handled_at is None for r in acked)

        async with serving(base, fake, port):
            await fake.wait_for(
                lambda: len(fake.messages_in(CHANNEL)) >= 20 or None, timeout=30, what="20 run messages"
            )
            await fake.wait_for(
                lambda: all(r.handled_at for r in rows(base)) or None, timeout=30, what="handled"
            )
            await asyncio.sleep(0.3)  # anything extra would show now
    done = rows(base)
    assert len(done) == 20 and effects(base) == {r.dedup_key for r in done}
    engine = Engine.open(base)
    try:
        assert len(engine.runs(limit=100)) == 20
    finally:
        engine.close()
    assert len(fake.messages_in(CHANNEL)) == 20  # one run message each
    started = sorted(e.text for e in fake.ephemerals)
    assert started == sorted(f"Started blog-post#v{n}." for n in range(1, 21))
    fake.assert_all_ok()


async def test_metrics_show_the_engine_process_counters(tmp_path: Path) -> None:
    """/metrics is served by the front, but decisions and deliveries happen in the engine process:
    both processes' samples are there, each labelled with its process."""
    base = with_blog_post(tmp_path / "pipelines")
    async with FakeSlack() as fake, SlackClientSim(SECRET, fake) as sim:
        port = free_port()
        url = f"http://127.0.0.1:{port}/slack/events"
        async with serving(base, fake, port):
            resp = await sim.slash_command(url, text="run blog-post", user_id="U0METRIC", channel_id=CHANNEL)
            assert resp.status == 200
            await fake.wait_for(lambda: fake.messages_in(CHANNEL) or None, timeout=30, what="the run message")

            async def scrape() -> str:
                async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as r:
                    assert r.status == 200
                    return await r.text()

            async def delivered() -> float | None:
                value = sample_value(await scrape(), 'pipebot_deliveries_total{process="engine"}')
                return value if value else None

            for _ in range(100):
                if await delivered():
                    break
                await asyncio.sleep(0.1)
            text = await scrape()
            # Scrapes at the same time share one question to the engine process; each gets its samples.
            many = await asyncio.gather(*(scrape() for _ in range(20)))
    assert (sample_value(text, 'pipebot_deliveries_total{process="engine",result="delivered"}') or 0) >= 1
    assert sample_value(text, 'pipebot_deliveries_total{process="front"}') is None  # none delivered there
    assert sample_value(text, 'process_cpu_seconds_total{process="engine"}') is not None
    assert all(sample_value(t, 'process_cpu_seconds_total{process="engine"}') is not None for t in many)
    assert sample_value(text, 'process_cpu_seconds_total{process="front"}') is not None
    families = [line for line in text.splitlines() if line.startswith("# TYPE pipebot_deliveries_total")]
    assert len(families) <= 1  # one family, both processes' samples in it
