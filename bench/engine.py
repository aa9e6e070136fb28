"""Engine benchmark: human commands per second on SQLite, latency at 100 vs 10,000 open runs,
resident memory with 10,000 runs waiting for a human.

    python -m bench.engine [--open 10000] [--out bench/results/engine.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

from bench.machine import describe, percentile
from engine.actors import Actor, Conversation
from engine.api import Engine

PIPELINE = """\
id: gate
name: Approval gate
checkpoints:
  - id: review
    human: {approval_to_start: true, approval_to_complete: true}
"""
WHO = Actor("bench", "u1", "Bench")
WHERE = Conversation("bench", "c1")


def waiting_runs(engine: Engine, n: int) -> list[int]:
    """Start n runs; each waits for an approval to start. Returns their execution ids."""
    ids = []
    for _ in range(n):
        info = engine.start_run("gate", WHO, WHERE)
        ids.append(info.run_id)  # one execution per run, created with the run: same id order
    with engine.store.read() as s:
        from sqlalchemy import select

        from engine.models import ExecutionRow

        rows = s.execute(
            select(ExecutionRow.id).where(ExecutionRow.run_id.in_(ids)).order_by(ExecutionRow.id)
        )
        return [r[0] for r in rows]


def latency(engine: Engine, sample: list[int]) -> dict[str, float]:
    times = []
    for ex in sample:
        t = time.perf_counter()
        engine.approve_start(ex, WHO)
        times.append((time.perf_counter() - t) * 1000)
    return {"p50_ms": round(percentile(times, 50), 3), "p99_ms": round(percentile(times, 99), 3)}


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--open", type=int, default=10_000)
    ap.add_argument("--commands", type=int, default=2_000)
    ap.add_argument("--sample", type=int, default=200)
    ap.add_argument("--out", default="bench/results/engine.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine.open(Path(tmp))
        src = Path(tmp) / "gate.yaml"
        src.write_text(PIPELINE)
        engine.import_pipeline(src)

        # Throughput: approve start then approve completion, each a full command (one transaction).
        execs = waiting_runs(engine, args.commands // 2)
        t = time.perf_counter()
        for ex in execs:
            engine.approve_start(ex, WHO)
        for ex in execs:
            engine.approve_complete(ex, WHO)
        per_second = len(execs) * 2 / (time.perf_counter() - t)

        # Latency while 100, then 10,000 other runs wait for a human (the background stays open;
        # each measured command acts on a run of its own sample).
        waiting_runs(engine, 100)
        at_100 = latency(engine, waiting_runs(engine, args.sample))
        t = time.perf_counter()
        waiting_runs(engine, args.open - 100)
        fill_s = time.perf_counter() - t
        at_many = latency(engine, waiting_runs(engine, args.sample))
        rss = rss_mb()
        engine.close()
    result = {
        "machine": describe(),
        "human_commands_per_second": round(per_second, 1),
        "latency_at_100_open_runs": at_100,
        f"latency_at_{args.open}_open_runs": at_many,
        "latency_ratio_p50": round(at_many["p50_ms"] / at_100["p50_ms"], 3),
        "max_rss_mb_with_open_runs": round(rss, 1),
        "open_runs_created_per_second": round((args.open - 100) / fill_s, 1),
        "command": "python -m bench.engine",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
