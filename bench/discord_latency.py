"""Discord button latency: pipebot's client vs a bare discord.py client, on the same fake Discord.

    python -m bench.discord_latency [--clicks 200] [--concurrent-clicks 160] [--out bench/results/discord.json]

This process plays Discord: it runs the loopback fake (REST + gateway, `tests.fakes.discord_fake`)
and dispatches button clicks (INTERACTION_CREATE) over the websocket. The client under test runs
in its own process, as in production:
  * bare    — a discord.Client (GUILDS intent) whose only handler defers every component click
              (the same ephemeral "thinking" acknowledgement pipebot sends);
  * pipebot — `pipebot serve` itself (bot.serve.serve_async: the Discord client and the outbox
              dispatcher over a real engine on SQLite). Each click approves a distinct checkpoint,
              so the engine transition and the outbox edits happen behind every acknowledgement.

Measured: interaction → first response (the fake receives the interaction callback), p50/p99,
one click at a time and 16 at a time; for pipebot also interaction → its answer (the follow-up).
Both clients click the same approval messages, in one run, on one fake.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.machine import describe, percentile

GUILD = 920000000000000001
CHANNEL = 920000000000000010
TOKEN = "bench-bot-token"
WARMUP = 16
CONCURRENCY = 16
TARGET = 1.5
PIPELINE = """\
id: bench-gate
name: Bench gate
checkpoints:
  - id: gate
    name: Gate
    human: {approval_to_start: true, approval_to_complete: false, max_revisions: 0}
"""
BUTTON = "pb:approve_start:"


# -- the client process ----------------------------------------------------------------------------


async def serve_bare(api_url: str, gateway_url: str) -> None:
    import discord

    from adapters.discord.endpoints import configure_endpoints

    configure_endpoints(api_url, gateway_url)

    class Bare(discord.Client):
        async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
            if interaction.type is discord.InteractionType.component:
                await interaction.response.defer(ephemeral=True, thinking=True)

    client = Bare(intents=discord.Intents(guilds=True))
    async with client:
        runner = asyncio.create_task(client.start(TOKEN))
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the driver closes it
        await client.close()
        await runner


async def serve_pipebot(base: Path, api_url: str, gateway_url: str) -> None:
    from bot.serve import serve_async
    from bot.settings import Settings

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        base_pipelines_path=base,
        discord_token=TOKEN,
        discord_api_url=api_url,
        discord_gateway_url=gateway_url,
    )
    stop = asyncio.Event()
    if os.environ.get("SWITCH"):
        sys.setswitchinterval(float(os.environ["SWITCH"]))
    server = asyncio.create_task(serve_async(settings, stop))
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    stop.set()
    await server


class ClientProcess:
    def __init__(self, kind: str, base: Path, api_url: str, gateway_url: str) -> None:
        self.kind = kind
        cmd = [sys.executable, "-m", "bench.discord_latency", "--serve", kind, "--base", str(base)]
        cmd += ["--api-url", api_url, "--gateway-url", gateway_url]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DISCORD_"))}
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, env={**env, "LOG_LEVEL": "ERROR"})

    async def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        await asyncio.to_thread(self.proc.wait, 30)


# -- the driver (plays Discord) --------------------------------------------------------------------


def prepare_runs(base: Path, n: int) -> None:
    """Start ``n`` runs bound to the bench channel: each posts an approval message with a button."""
    from engine.actors import Actor, Conversation
    from engine.api import Engine

    engine = Engine.open(base)
    engine.import_pipeline_text(PIPELINE, "bench-gate.yaml")
    starter = Actor("discord", "1", "bench")
    for _ in range(n):
        engine.start_run("bench-gate", starter, Conversation("discord", str(CHANNEL)))
    engine.close()


async def click(fake: Any, message: Any, user: Any, answer: bool) -> tuple[float, float | None]:
    """Seconds from the dispatched click to the first response (and to the follow-up answer)."""
    started = time.monotonic()
    interaction_id = await fake.click_button(message.channel_id, message.id, message.custom_ids()[0], user)
    await fake.wait_response(interaction_id, timeout=30)
    first = time.monotonic() - started
    if not answer:
        return first, None
    record = fake.interactions[interaction_id]

    def answered() -> bool:
        original = fake.find_message(record.original_message_id or 0)
        return original is not None and not original.flags & (1 << 7)

    await fake.wait_for(answered, timeout=30)
    done = time.monotonic() - started
    if os.environ.get("SETTLE"):
        await fake.wait_for(lambda: not message.custom_ids(), timeout=30)
        await fake.wait_for(lambda: "completed" in fake.messages_in(message.channel_id)[-1].content, timeout=30)
    return first, done


async def load(
    fake: Any, cards: list[Any], users: list[Any], concurrency: int, answer: bool
) -> list[tuple[float, float | None]]:
    queue = list(reversed(cards))
    times: list[tuple[float, float | None]] = []

    async def worker(user: Any) -> None:
        while queue:
            times.append(await click(fake, queue.pop(), user, answer))

    await asyncio.gather(*(worker(users[i % len(users)]) for i in range(concurrency)))
    return times


def summary(times: list[tuple[float, float | None]]) -> dict[str, Any]:
    first = [t * 1000 for t, _ in times]
    out: dict[str, Any] = {
        "clicks": len(times),
        "p50_ms": round(percentile(first, 50), 2),
        "p99_ms": round(percentile(first, 99), 2),
    }
    answers = [a * 1000 for _, a in times if a is not None]
    if answers:
        out["answer_p50_ms"] = round(percentile(answers, 50), 2)
        out["answer_p99_ms"] = round(percentile(answers, 99), 2)
    return out


async def drive(clicks: int, concurrent_clicks: int, out: Path) -> dict[str, Any]:
    from tests.fakes.discord_fake import FakeChannel, FakeDiscord, FakeUser

    users = [FakeUser(720000000000000000 + i, f"user{i}") for i in range(CONCURRENCY)]
    plan = {"warmup": WARMUP, "sequential": clicks, "concurrent": concurrent_clicks}
    needed = sum(plan.values())
    with tempfile.TemporaryDirectory(prefix="pipebot-bench-") as tmp:
        base = Path(tmp) / "pipelines"
        await asyncio.to_thread(prepare_runs, base, needed)
        async with FakeDiscord(token=TOKEN) as fake:
            fake.add_guild(GUILD, channels=[FakeChannel(CHANNEL, "bench")], members=users)

            def cards() -> list[Any]:
                return [
                    m
                    for t in fake.threads
                    for m in fake.messages_in(t)
                    if any(c.startswith(BUTTON) for c in m.custom_ids())
                ]

            # pipebot posts the approval messages (its outbox), then each client clicks them in turn.
            poster = ClientProcess("pipebot", base, fake.api_url, fake.gateway_url)
            await fake.wait_for(lambda: len(cards()) >= needed, timeout=300)
            await poster.stop()
            targets = sorted(cards(), key=lambda m: m.id)
            batches = {"warmup": targets[:WARMUP], "sequential": targets[WARMUP : WARMUP + clicks]}
            batches["concurrent"] = targets[WARMUP + clicks : needed]

            results: dict[str, Any] = {}
            for kind in ("bare", "pipebot"):
                proc = ClientProcess(kind, base, fake.api_url, fake.gateway_url)
                await fake.wait_for(lambda: fake.connected, timeout=60)
                answer = kind == "pipebot"
                await load(fake, batches["warmup"], users, 1, answer)
                results[kind] = {
                    "sequential": summary(await load(fake, batches["sequential"], users, 1, answer)),
                    f"concurrency_{CONCURRENCY}": summary(
                        await load(fake, batches["concurrent"], users, CONCURRENCY, answer)
                    ),
                }
                await proc.stop()
                await fake.wait_for(lambda: not fake.connected, timeout=30)
            errors = [str(e) for e in fake.errors]
    ratios = {
        level: round(results["pipebot"][level]["p99_ms"] / results["bare"][level]["p99_ms"], 2)
        for level in results["bare"]
    }
    report = {
        "benchmark": "discord interaction -> first response (button clicks)",
        "command": "python -m bench.discord_latency " + " ".join(sys.argv[1:]),
        "machine": describe(),
        "results": results,
        "p99_ratio_pipebot_over_bare": ratios,
        "target_p99_ratio": TARGET,
        "meets_target": all(r <= TARGET for r in ratios.values()),
        "fake_errors": errors,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clicks", type=int, default=200, help="clicks one at a time, per client")
    parser.add_argument("--concurrent-clicks", type=int, default=160, help=f"clicks {CONCURRENCY} at a time")
    parser.add_argument("--out", type=Path, default=Path("bench/results/discord.json"))
    parser.add_argument("--serve", choices=["bare", "pipebot"], help=argparse.SUPPRESS)
    parser.add_argument("--base", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--api-url", help=argparse.SUPPRESS)
    parser.add_argument("--gateway-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    if args.serve == "bare":
        asyncio.run(serve_bare(args.api_url, args.gateway_url))
        return 0
    if args.serve == "pipebot":
        asyncio.run(serve_pipebot(args.base, args.api_url, args.gateway_url))
        return 0
    report = asyncio.run(drive(max(1, args.clicks), max(CONCURRENCY, args.concurrent_clicks), args.out))
    for kind, levels in report["results"].items():
        for level, figures in levels.items():
            print(f"{kind:8} {level:15} " + "  ".join(f"{k}={v}" for k, v in figures.items()))
    print(f"p99 ratio pipebot/bare: {report['p99_ratio_pipebot_over_bare']} (target ≤ {TARGET})")
    if report["fake_errors"]:
        print(f"fake rejected {len(report['fake_errors'])} requests: {report['fake_errors'][:3]}")
    return 0 if report["meets_target"] and not report["fake_errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
