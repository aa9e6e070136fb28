"""Automated checkpoints: engine overhead per agent turn against calling the openai client
directly on the same fake server, and script checkpoint start-up against a bare subprocess,
in the bubblewrap sandbox and without it (PIPEBOT_SCRIPT_SANDBOX=none).

    python -m bench.agents [--checkpoints 40] [--out bench/results/agents.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import openai

from bench.machine import describe, percentile
from engine.actors import Actor, Conversation
from engine.api import Engine
from engine.llm import LLM
from engine.sandbox import SandboxConfig, unavailable
from engine.worker import Worker, WorkerConfig
from tests.fakes.openai_server import FakeOpenAI

AGENTS = 4
PIPELINE = f"""\
id: turns
checkpoints:
  - id: work
    mode: agent
    human: {{approval_to_complete: false}}
    agent:
      mode: predefined
      discussion: sequential
      agents: [{", ".join(f"{{name: a{i}, role: helper}}" for i in range(AGENTS))}]
    outputs: [{{name: out, format: md}}]
"""
SCRIPT = "import os, pathlib\npathlib.Path(os.environ['PIPEBOT_OUTPUTS'], 'out.txt').write_text('ok')\n"
SCRIPT_PIPELINE = """\
id: script
checkpoints:
  - id: work
    mode: script
    human: {approval_to_complete: false}
    script: {path: bench_script.py}
    outputs: [{name: out, format: txt}]
"""
WHO, WHERE = Actor("bench", "u", "Bench"), Conversation("bench", "c")


async def direct_calls(fake: FakeOpenAI, n: int) -> list[float]:
    client = openai.AsyncOpenAI(api_key=fake.api_key, base_url=fake.base_url, max_retries=0)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        await client.chat.completions.create(
            model="gpt-4o", max_tokens=100, messages=[{"role": "user", "content": "hello"}]
        )
        times.append(time.perf_counter() - t)
    await client.close()
    return times


async def through_worker(engine: Engine, worker: Worker, pipeline: str, n: int) -> list[float]:
    """Start n runs of a one-checkpoint pipeline; time the worker's attempt on each."""
    times = []
    for _ in range(n):
        engine.start_run(pipeline, WHO, WHERE)
        t = time.perf_counter()
        assert await worker.run_once()
        times.append(time.perf_counter() - t)
    return times


async def bare_scripts(path: Path, n: int, workdir: Path) -> list[float]:
    times = []
    for _ in range(n):
        (workdir / "outputs").mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(path), cwd=workdir, env={"PIPEBOT_OUTPUTS": str(workdir / "outputs")}
        )
        await proc.wait()
        times.append(time.perf_counter() - t)
    return times


def ms(values: list[float], q: float = 50) -> float:
    return round(percentile(values, q) * 1000, 3)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoints", type=int, default=40)
    ap.add_argument("--out", default="bench/results/agents.json")
    args = ap.parse_args()
    n = args.checkpoints
    async with FakeOpenAI(default=lambda body: "an answer") as fake:
        with tempfile.TemporaryDirectory() as tmp:
            base = Path(tmp)
            engine = Engine.open(base / "pipelines")
            (base / "turns.yaml").write_text(PIPELINE)
            (base / "script.yaml").write_text(SCRIPT_PIPELINE)
            (base / "bench_script.py").write_text(SCRIPT)
            engine.import_pipeline(base / "turns.yaml")
            engine.import_pipeline(base / "script.yaml")
            worker = Worker(engine, lambda: LLM(api_key=fake.api_key, base_url=fake.base_url, max_tokens=100))
            await direct_calls(fake, 5)  # warm both paths up
            await through_worker(engine, worker, "turns", 2)
            direct = await direct_calls(fake, n * AGENTS)
            through_engine = await through_worker(engine, worker, "turns", n)
            per_turn_engine = [t / AGENTS for t in through_engine]
            overhead_ms = ms(per_turn_engine) - ms(direct)

            plain = Worker(engine, None, WorkerConfig(sandbox=SandboxConfig("none")))
            sandboxed = Worker(engine, None, WorkerConfig(sandbox=SandboxConfig("bwrap")))
            can_box = unavailable() is None
            scripts, boxed, bare = [], [], []
            await through_worker(engine, plain, "script", 2)
            if can_box:
                await through_worker(engine, sandboxed, "script", 2)
            for _ in range(n):  # interleaved: a busy moment of the machine hits all three alike
                scripts += await through_worker(engine, plain, "script", 1)
                if can_box:
                    boxed += await through_worker(engine, sandboxed, "script", 1)
                bare += await bare_scripts(base / "bench_script.py", 1, base / "bare")
            engine.close()
    result = {
        "machine": describe(),
        "agent_turns": n * AGENTS,
        "direct_openai_call_p50_ms": ms(direct),
        "engine_turn_p50_ms": ms(per_turn_engine),
        "engine_overhead_per_turn_ms": round(overhead_ms, 3),
        "script_checkpoint_p50_ms": ms(scripts),
        "bare_subprocess_p50_ms": ms(bare),
        "script_overhead_ms": round(ms(scripts) - ms(bare), 3),
        "script_ratio": round(ms(scripts) / ms(bare), 3),
        "sandboxed_script_checkpoint_p50_ms": ms(boxed) if boxed else unavailable(),
        "sandboxed_script_checkpoint_p90_ms": ms(boxed, 90) if boxed else None,
        "sandbox_overhead_ms": round(ms(boxed) - ms(scripts), 3) if boxed else None,
        # the fastest of each: the least disturbed by other work on the machine
        "script_checkpoint_min_ms": round(min(scripts) * 1000, 3),
        "sandboxed_script_checkpoint_min_ms": round(min(boxed) * 1000, 3) if boxed else None,
        "load_average_1min": round(os.getloadavg()[0], 2),
        "command": "python -m bench.agents",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
