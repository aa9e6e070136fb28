"""Several `pipebot serve` processes on one database: every message once, runs finished when a
replica dies, one schedule start per fire time, a crash between a post and its record."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.api import Engine
from engine.models import LeaseRow, MessageRefRow, OutboxRow, RunRow
from tests.bot.replicas import (
    CHANNEL,
    PIPELINE,
    SECRET,
    Driver,
    Replicas,
    bot_posts,
    button,
    duplicates,
    until,
)
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_signing import SlackClientSim
from tests.pg import fresh_database, needs_postgres

pytestmark = pytest.mark.slow


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(trigger_ttl=30.0) as server:
        yield server


@pytest.fixture
def pg() -> Iterator[str]:
    with fresh_database() as url:
        yield url


def prepare(tmp_path: Path, url: str | None) -> Path:
    base = tmp_path / "pipelines"
    base.mkdir()
    (tmp_path / "pair.yaml").write_text(PIPELINE)
    engine = Engine.open(base, url)
    engine.import_pipeline(tmp_path / "pair.yaml")
    engine.close()
    return base


def pending(engine: Engine) -> int:
    with engine.store.read() as s:
        return int(s.scalar(select(func.count()).where(OutboxRow.delivered_at.is_(None))) or 0)


async def check_exactly_once(fake: FakeSlack, url: str | None, base: Path, runs: int) -> None:
    engine = Engine.open(base, url)
    try:
        deadline = time.monotonic() + 60
        while pending(engine) and time.monotonic() < deadline:  # the last notices are on their way
            await asyncio.sleep(0.05)
        assert pending(engine) == 0
        with engine.store.read() as s:
            statuses = s.scalars(select(RunRow.status)).all()
            refs = s.scalar(select(func.count()).select_from(MessageRefRow))
    finally:
        engine.close()
    assert sorted(statuses) == ["completed"] * runs
    assert duplicates(fake) == []
    posts = bot_posts(fake)
    shares = [m for m in posts if m.files]
    assert len(shares) == runs  # one brief.json per run
    assert len(posts) - len(shares) == refs  # every other message is one key's, posted once
    assert len(fake.messages_in(CHANNEL)) == runs  # one status message per run
    live = [
        m.ts for m in posts if any(button(m, a) for a in ("open_form", "approve_start", "approve_complete"))
    ]
    assert live == []  # no orphan card keeps buttons
    fake.assert_all_ok()


async def drive(replicas: Replicas, runs: int, concurrency: int = 10) -> Driver:
    async with SlackClientSim(SECRET, replicas.fake) as sim:
        driver = Driver(replicas, sim)
        limit = asyncio.Semaphore(concurrency)

        async def one(i: int) -> str:
            async with limit:
                return await driver.run_one(f"U0R{i:03d}")

        await asyncio.gather(*(one(i) for i in range(runs)))
        return driver


async def test_one_replica_on_sqlite(tmp_path: Path, fake: FakeSlack) -> None:
    base = prepare(tmp_path, None)
    replicas = Replicas(base, None, fake)
    try:
        replicas.start(1)
        await replicas.ready()
        await drive(replicas, 3)
        await check_exactly_once(fake, None, base, 3)
    finally:
        replicas.stop()


@needs_postgres
async def test_three_replicas_every_message_once(tmp_path: Path, fake: FakeSlack, pg: str) -> None:
    base = prepare(tmp_path, pg)
    replicas = Replicas(base, pg, fake)
    try:
        replicas.start(3)
        await replicas.ready()
        started = time.monotonic()
        driver = await drive(replicas, RUNS, CONCURRENCY)
        await check_exactly_once(fake, pg, base, RUNS)
        lat = sorted(driver.latencies)
        print(
            f"\n{RUNS} runs on 3 replicas in {time.monotonic() - started:.1f} s; click → edit "
            f"p50 {lat[len(lat) // 2] * 1000:.0f} ms, p99 {lat[int(len(lat) * 0.99)] * 1000:.0f} ms"
        )
    finally:
        replicas.stop()


@needs_postgres
async def test_a_killed_replica_s_runs_are_finished_by_the_others(
    tmp_path: Path, fake: FakeSlack, pg: str
) -> None:
    base = prepare(tmp_path, pg)
    replicas = Replicas(base, pg, fake, stale_seconds=3.0)
    try:
        victim, *_ = replicas.start(3)
        await replicas.ready()
        fake.latency = 0.05  # deliveries take a while: the victim dies holding some
        hold = asyncio.Event()
        async with SlackClientSim(SECRET, fake) as sim:
            driver = Driver(replicas, sim)
            # Every run waits at its form until the victim is gone; the victim holds the outbox
            # leases of whatever it was delivering when it died.
            tasks = [asyncio.create_task(driver.run_one(f"U0K{i:03d}", hold)) for i in range(KILLED_RUNS)]
            engine = Engine.open(base, pg)
            try:
                await until_rows(engine, KILLED_RUNS)
                await asyncio.sleep(1.0)  # every run at its form
                hold.set()
                await asyncio.sleep(0.7)  # in full swing: clicks, commits, deliveries
                held = leases_of(engine, victim.proc.pid)
                killed_at = replicas.kill(victim)
                before = written_before(engine)
                while not delivered(engine, before):
                    await asyncio.sleep(0.05)
                takeover = time.monotonic() - killed_at
            finally:
                engine.close()
            await asyncio.gather(*tasks)
        await check_exactly_once(fake, pg, base, KILLED_RUNS)
        print(
            f"\nkill -9 of one of 3 replicas holding {held} outbox leases: everything written before "
            f"the kill was delivered {takeover:.1f} s later (stale after {replicas.stale_seconds} s)"
        )
        assert takeover < 3.0 + 10  # the stale period plus delivery
    finally:
        replicas.stop()


RUNS = 30  # the issue measured 50; 30 keeps the suite short (bench.replicas runs more)
CONCURRENCY = 10
KILLED_RUNS = 20


async def until_rows(engine: Engine, runs: int) -> None:
    """Wait until every run exists (the victim has had its share of commands)."""
    deadline = time.monotonic() + 60
    while True:
        with engine.store.read() as s:
            if (s.scalar(select(func.count()).select_from(RunRow)) or 0) >= runs:
                return
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)


def leases_of(engine: Engine, pid: int) -> int:
    with engine.store.read() as s:
        return int(s.scalar(select(func.count()).where(LeaseRow.holder.like(f"%:{pid}:%"))) or 0)


def written_before(engine: Engine) -> int:
    with engine.store.read() as s:
        return int(s.scalar(select(func.max(OutboxRow.id))) or 0)


def delivered(engine: Engine, upto: int) -> bool:
    with engine.store.read() as s:
        left = s.scalar(select(func.count()).where(OutboxRow.id <= upto, OutboxRow.delivered_at.is_(None)))
    return not left


async def test_crash_between_post_and_record_leaves_one_message(tmp_path: Path, fake: FakeSlack) -> None:
    """Killed right after Slack took a message, before pipebot recorded it: whoever delivers next
    finds the message by its metadata and adopts it (the status message in the channel, then the
    form card in the thread), so each exists once."""
    base = prepare(tmp_path, None)
    replicas = Replicas(base, None, fake)
    try:
        [first] = replicas.start(1, PIPEBOT_TEST_CRASH_AFTER_POST="1")
        await replicas.ready()
        async with SlackClientSim(SECRET, fake) as sim:
            resp = await sim.slash_command(first.url, text="run pair", user_id="U0ANA", channel_id=CHANNEL)
            assert resp.status == 200
        await until(lambda: first.proc.poll() is not None, 30, "the crash after the status message")
        assert first.proc.returncode == 86
        [status] = fake.messages_in(CHANNEL)
        [second] = replicas.start(1, PIPEBOT_TEST_CRASH_AFTER_POST="1")
        await until(lambda: second.proc.poll() is not None, 30, "the crash after the form card")
        assert second.proc.returncode == 86
        [in_thread] = fake.messages_in(CHANNEL, thread_ts=status.ts)  # its first post in the thread
        replicas.start(1)

        def form() -> bool:
            return any(button(m, "open_form") for m in fake.messages_in(CHANNEL, thread_ts=status.ts))

        await until(form, 30, "the form card")
        assert [m.ts for m in fake.messages_in(CHANNEL)] == [status.ts]
        thread = fake.messages_in(CHANNEL, thread_ts=status.ts)
        assert thread[0].ts == in_thread.ts and len({m.text for m in thread}) == len(thread)
        assert duplicates(fake) == []
        assert fake.calls_to("conversations.history") and fake.calls_to("conversations.replies")
        fake.assert_all_ok()
    finally:
        replicas.stop()
