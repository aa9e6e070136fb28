"""Timer benchmark: 10,000 open approvals with deadlines and reminders on a SQLite file.

- idle cost: the CPU the timer loop (engine.timers.run, as `pipebot serve` runs it) uses per
  second of wall time while nothing is due;
- lag: 1,000 deadlines come due at the same instant; from that instant to the moment the outbox
  hands each approval card's edit ("Approved automatically: ...") to the platform deliverer.

    python -m bench.timers [--open 10000] [--due 1000] [--out bench/results/timers.json]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select, text, update

from bench.machine import describe, percentile
from bot.serve import freeze_heap
from engine import runs, timers
from engine.actors import Actor, Conversation
from engine.api import Engine
from engine.clock import utcnow
from engine.models import ExecutionRow, TimerRow
from engine.notifications import ApprovalCard
from engine.outbox import Delivery, MessageRef
from engine.tx import Tx

PIPELINE = """\
id: gate
name: Approval gate
approvers: [bench:u1, bench:u2]
human: {deadline: 2d, on_deadline: approve, remind_every: 4h, max_reminders: 3}
checkpoints:
  - id: review
"""
FILL_BATCH = 250
WHO = Actor("bench", "u0", "Bench")
WHERE = Conversation("bench", "c1")


class Recorder:
    """A platform that answers at once and notes when each approval card was edited as decided."""

    def __init__(self) -> None:
        self.edited: dict[int, float] = {}

    async def deliver(self, delivery: Delivery) -> MessageRef:
        note = delivery.note
        if isinstance(note, ApprovalCard) and note.decided and delivery.existing is not None:
            self.edited.setdefault(note.execution_id, time.monotonic())
        return delivery.existing or MessageRef(WHERE.channel, note.key)


def fill(engine: Engine, n: int) -> list[int]:
    """n runs waiting for approval (each with a deadline and a reminder row), delivered as if posted."""

    # Setup, not measured: the engine's start command, many runs per transaction (one commit per
    # run made the fill take minutes on a loaded machine).
    def start(tx: Tx, count: int) -> None:
        for _ in range(count):
            runs.start(tx, engine.ws, "gate", WHO, WHERE)

    for first in range(0, n, FILL_BATCH):
        engine._write(functools.partial(start, count=min(FILL_BATCH, n - first)))
    with engine.store.write() as s:
        # What the outbox would have done posting the first messages: a reference per message key.
        s.execute(
            text(
                "INSERT INTO message_refs (run_id, message_key, platform, channel, message_id, updated_at)"
                " SELECT DISTINCT run_id, message_key, platform, 'c1', message_key, :now FROM outbox"
            ),
            {"now": utcnow()},
        )
        s.execute(text("UPDATE outbox SET delivered_at = :now"), {"now": utcnow()})
        return list(s.scalars(select(ExecutionRow.id).order_by(ExecutionRow.id)))


async def idle_cost(engine: Engine, seconds: float) -> dict[str, float]:
    stop = asyncio.Event()
    loop = asyncio.create_task(timers.run(engine.fire_timers, engine.next_timer_due, engine.clock, stop))
    await asyncio.sleep(1.0)  # past the first (start-up) tick
    cpu, wall = time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    used, elapsed = time.process_time() - cpu, time.monotonic() - wall
    stop.set()
    await loop
    return {"seconds": round(elapsed, 1), "cpu_percent_of_a_core": round(100 * used / elapsed, 3)}


async def lag(engine: Engine, executions: list[int], due: int) -> dict[str, float]:
    recorder = Recorder()
    engine.outbox.register("bench", recorder)
    chosen = executions[:due]
    at = utcnow() + timedelta(seconds=2)
    with engine.store.write() as s:  # these deadlines fall due together, two seconds from now
        s.execute(
            update(TimerRow)
            .where(TimerRow.execution_id.in_(chosen), TimerRow.kind == "deadline")
            .values(due_at=at)
        )
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(timers.run(engine.fire_timers, engine.next_timer_due, engine.clock, stop)),
        asyncio.create_task(engine.outbox.run(stop)),
    ]
    engine.listeners.append(engine.outbox.wake)
    due_mono = time.monotonic() + (at - utcnow()).total_seconds()
    limit = time.monotonic() + 120
    while len(recorder.edited) < due and time.monotonic() < limit:
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.gather(*tasks)
    lags = [recorder.edited[ex] - due_mono for ex in chosen if ex in recorder.edited]
    return {
        "cards_edited": len(lags),
        "p50_s": round(percentile(lags, 50), 3),
        "p99_s": round(percentile(lags, 99), 3),
        "max_s": round(max(lags), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--open", type=int, default=10_000)
    parser.add_argument("--due", type=int, default=1_000)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds to measure the idle loop")
    parser.add_argument("--out", type=Path, default=Path("bench/results/timers.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "gate.yaml").write_text(PIPELINE)
        engine = Engine.open(base / "pipelines")
        engine.import_pipeline(base / "gate.yaml")
        started = time.perf_counter()
        executions = fill(engine, args.open)
        fill_s = time.perf_counter() - started
        with engine.store.read() as s:
            open_timers = s.scalar(text("SELECT count(*) FROM timers WHERE state = 'open'"))
        # What `pipebot serve` does once started (bot.serve.freeze_startup_objects): without it,
        # each full collection walks every module's objects (100 ms here) in the middle of a burst.
        freeze_heap()
        idle = asyncio.run(idle_cost(engine, args.idle))
        burst = asyncio.run(lag(engine, executions, args.due))
        engine.close()
    results = {
        "machine": describe(),
        "when": datetime.now().isoformat(timespec="seconds"),
        "open_approvals": args.open,
        "open_timers": open_timers,
        "fill_seconds": round(fill_s, 1),
        "idle": idle,
        "burst": {"due_at_once": args.due, **burst},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
