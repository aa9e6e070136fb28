"""Replicas: human decisions per second and click → next message with 1 replica on SQLite, 1 on
PostgreSQL and 3 on PostgreSQL, then takeover times after kill -9.

    PIPEBOT_TEST_POSTGRES_URL=postgresql+psycopg://… python -m bench.replicas [--runs 64] [--concurrency 32]

Each setup runs real `pipebot serve` processes (tests/bot/replicas.py) against the loopback Slack
fake held by this process, which also plays Slack's clients: per run a slash command, the form
(open, submit) and three approvals, every request to the next replica round-robin. A decision is
a form submission or an approval (4 per run); click → next message is an approval click → the
fake receiving the edit of the clicked card, one click at a time ("alone") and while `--concurrency`
runs proceed at once ("loaded", where decisions/s is measured). Takeover: the schedule
leadership (advisory lock) after kill -9 of its holder.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.machine import describe, percentile
from engine.api import Engine
from tests.bot.replicas import PIPELINE, SECRET, Driver, Replicas, duplicates
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_signing import SlackClientSim
from tests.pg import ADMIN_URL, fresh_database

DECISIONS_PER_RUN = 4
LATENCY_RUNS = 10  # 30 approval clicks, one at a time


def prepare(tmp: Path, url: str | None) -> Path:
    base = tmp / "pipelines"
    base.mkdir()
    (tmp / "pair.yaml").write_text(PIPELINE)
    engine = Engine.open(base, url)
    engine.import_pipeline(tmp / "pair.yaml")
    engine.close()
    return base


async def throughput(label: str, n: int, url: str | None, runs: int, concurrency: int) -> dict[str, Any]:
    async with FakeSlack(trigger_ttl=30.0) as fake:
        with tempfile.TemporaryDirectory() as d:
            replicas = Replicas(prepare(Path(d), url), url, fake)
            try:
                replicas.start(n)
                await replicas.ready()
                async with SlackClientSim(SECRET, fake) as sim:
                    driver = Driver(replicas, sim)
                    limit = asyncio.Semaphore(concurrency)

                    async def one(i: int) -> None:
                        async with limit:
                            await driver.run_one(f"U0B{i:03d}")

                    await one(999)  # warm-up
                    driver.latencies.clear()
                    for i in range(LATENCY_RUNS):  # one click at a time
                        await one(500 + i)
                    alone = list(driver.latencies)
                    driver.latencies.clear()
                    started = time.monotonic()
                    await asyncio.gather(*(one(i) for i in range(runs)))
                    elapsed = time.monotonic() - started
                lat = driver.latencies
                row = {
                    "setup": label,
                    "runs": runs,
                    "seconds": round(elapsed, 2),
                    "decisions_per_s": round(runs * DECISIONS_PER_RUN / elapsed, 1),
                    "alone_click_to_message_p50_ms": round(percentile(alone, 50) * 1000, 1),
                    "alone_click_to_message_p99_ms": round(percentile(alone, 99) * 1000, 1),
                    "loaded_click_to_message_p50_ms": round(percentile(lat, 50) * 1000, 1),
                    "loaded_click_to_message_p99_ms": round(percentile(lat, 99) * 1000, 1),
                    "duplicates": len(duplicates(fake)),
                }
                print(json.dumps(row), flush=True)
                return row
            finally:
                replicas.stop()


async def takeover(url: str) -> dict[str, Any]:
    """kill -9 of the schedule leader: how long until another replica leads."""
    async with FakeSlack(trigger_ttl=30.0) as fake:
        with tempfile.TemporaryDirectory() as d:
            replicas = Replicas(prepare(Path(d), url), url, fake)
            try:
                replicas.start(3)
                await replicas.ready()
                leader = None
                while leader is None:
                    leader = await replicas.leader("schedule")
                killed = replicas.kill(leader)
                while await replicas.leader("schedule") is None:
                    await asyncio.sleep(0.02)
                row = {"schedule_leader_takeover_s": round(time.monotonic() - killed, 2)}
                print(json.dumps(row), flush=True)
                return row
            finally:
                replicas.stop()


async def main(runs: int, concurrency: int, out: Path) -> None:
    if not ADMIN_URL:
        raise SystemExit("set PIPEBOT_TEST_POSTGRES_URL (a PostgreSQL account that may create databases)")
    results: dict[str, Any] = {"machine": describe(), "runs": runs, "concurrency": concurrency, "rows": []}
    results["rows"].append(await throughput("1 replica, SQLite", 1, None, runs, concurrency))
    for n in (1, 3):
        with fresh_database() as url:
            results["rows"].append(await throughput(f"{n} replica(s), PostgreSQL", n, url, runs, concurrency))
    with fresh_database() as url:
        results["takeover"] = await takeover(url)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--out", type=Path, default=Path("bench/results/replicas.json"))
    args = parser.parse_args()
    os.environ.setdefault("PYTHONPATH", str(Path(__file__).resolve().parents[1]))
    asyncio.run(main(args.runs, args.concurrency, args.out))
