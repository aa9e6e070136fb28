"""Discord button latency: pipebot's client vs a bare discord.py client, on the same fake Discord.

    python -m bench.discord_latency [--isolated 100] [--back-to-back 200] [--burst 160] [--rounds 2]
                                    [--out bench/results/discord.json]

This process plays Discord: it runs the loopback fake (REST + gateway, `tests.fakes.discord_fake`)
and dispatches button clicks (INTERACTION_CREATE) over the websocket. The client under test runs
in its own process, as in production:
  * bare    — a discord.Client (GUILDS intent) whose only handler defers every component click
              (the same ephemeral "thinking" acknowledgement pipebot sends);
  * pipebot — `pipebot serve` itself (bot.serve.serve_async: the Discord client and the outbox
              dispatcher over a real engine on SQLite). Each click approves a distinct checkpoint,
              so the engine transition and the outbox edits happen behind every acknowledgement.

Measured: interaction → first response (the fake receives the interaction callback), p50/p99, for
clicks that meet an idle bot ("isolated": the next click once the previous one's effects are all
shown), clicks one right after the other ("back_to_back"), and 16 in flight at once ("burst_16");
for pipebot also interaction → its answer (the follow-up). Both clients click the same approval
messages, in one run, on one fake.
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
IDLE_GAP = 0.05
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
    engine.import_pipeline_text(PIPELINE, "bench-gate.yaml", actor=None)
    starter = Actor("discord", "1", "bench")
    for _ in range(n):
        engine.start_run("bench-gate", starter, Conversation("discord", str(CHANNEL)))
    engine.close()


async def click(fake: Any, message: Any, user: Any, answer: bool, settle: bool) -> tuple[float, float | None]:
    """Seconds from the dispatched click to the first response (and to the follow-up answer).

    ``settle``: first leave the client idle for a moment (as between people's clicks), and after
    the answer wait for everything the click causes (the approval message edited, the run's status
    message showing it completed).
    """
    if settle:
        await asyncio.sleep(IDLE_GAP)  # the outbox's last bookkeeping after the final edit
    started = time.monotonic()
    interaction_id = await fake.click_button(message.channel_id, message.id, message.custom_ids()[0], user)
    await fake.wait_response(interaction_id, timeout=30)
    first = time.monotonic() - started
    if not answer:  # the bare client only acknowledges: nothing more to wait for
        return first, None
    record = fake.interactions[interaction_id]

    def answered() -> bool:
        original = fake.find_message(record.original_message_id or 0)
        return original is not None and not original.flags & (1 << 7)

    await fake.wait_for(answered, timeout=30)
    answer_time = time.monotonic() - started
    if settle:
        status = fake.find_message(message.channel_id)  # the thread was started from it: same id

        def settled() -> bool:
            shown = status.text if status is not None else ""
            return not message.custom_ids() and "completed" in shown

        await fake.wait_for(settled, timeout=30)
    return first, answer_time


async def load(
    fake: Any, cards: list[Any], users: list[Any], concurrency: int, answer: bool, settle: bool = False
) -> list[tuple[float, float | None]]:
    queue = list(reversed(cards))
    times: list[tuple[float, float | None]] = []

    async def worker(user: Any) -> None:
        while queue:
            times.append(await click(fake, queue.pop(), user, answer, settle))

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


def _split(items: list[Any], parts: int) -> list[list[Any]]:
    return [items[i::parts] for i in range(parts)]


LEVELS = ("isolated", "back_to_back", f"burst_{CONCURRENCY}")


async def drive(counts: dict[str, int], rounds: int, out: Path) -> dict[str, Any]:
    """``counts``: clicks per level, per client; each level is split over the rounds."""
    from tests.fakes.discord_fake import FakeChannel, FakeDiscord, FakeUser

    users = [FakeUser(720000000000000000 + i, f"user{i}") for i in range(CONCURRENCY)]
    needed = rounds * WARMUP + sum(counts.values())  # pipebot approves each message once
    times: dict[str, dict[str, list[tuple[float, float | None]]]] = {
        kind: {level: [] for level in LEVELS} for kind in ("bare", "pipebot")
    }
    with tempfile.TemporaryDirectory(prefix="pipebot-bench-") as tmp:
        base = Path(tmp) / "pipelines"
        await asyncio.to_thread(prepare_runs, base, needed)
        async with FakeDiscord(token=TOKEN) as fake:
            fake.add_guild(GUILD, channels=[FakeChannel(CHANNEL, "bench")], members=users)

            def cards() -> list[Any]:
                found = [m for t in fake.threads for m in fake.messages_in(t)]
                return [m for m in found if any(c.startswith(BUTTON) for c in m.custom_ids())]

            # pipebot's outbox posts the approval messages; then the clients take turns (rounds
            # alternate bare / pipebot so a drift of the machine weighs on both alike).
            poster = ClientProcess("pipebot", base, fake.api_url, fake.gateway_url)
            try:
                await fake.wait_for(lambda: len(cards()) >= needed, timeout=600)
            finally:
                await poster.stop()
            await fake.wait_for(lambda: not fake.connected, timeout=30)
            targets = sorted(cards(), key=lambda m: m.id)
            batches = {"warmup": _split(targets[: rounds * WARMUP], rounds)}
            at = rounds * WARMUP
            for level in LEVELS:
                batches[level] = _split(targets[at : at + counts[level]], rounds)
                at += counts[level]
            for r in range(rounds):
                for kind in ("bare", "pipebot"):
                    proc = ClientProcess(kind, base, fake.api_url, fake.gateway_url)
                    answer = kind == "pipebot"
                    try:
                        await fake.wait_for(lambda: fake.connected, timeout=60)
                        await load(fake, batches["warmup"][r], users, 1, answer, settle=True)
                        times[kind]["isolated"] += await load(
                            fake, batches["isolated"][r], users, 1, answer, settle=True
                        )
                        times[kind]["back_to_back"] += await load(
                            fake, batches["back_to_back"][r], users, 1, answer
                        )
                        times[kind][LEVELS[2]] += await load(
                            fake, batches[LEVELS[2]][r], users, CONCURRENCY, answer
                        )
                    finally:
                        await proc.stop()
                    await fake.wait_for(lambda: not fake.connected, timeout=30)
            errors = [str(e) for e in fake.errors]
    results = {kind: {level: summary(t) for level, t in levels.items()} for kind, levels in times.items()}
    ratios = {
        level: round(results["pipebot"][level]["p99_ms"] / results["bare"][level]["p99_ms"], 2)
        for level in LEVELS
    }
    report = {
        "benchmark": "discord interaction -> first response (button clicks)",
        "command": " ".join(["python -m bench.discord_latency", *sys.argv[1:]]),
        "machine": describe(),
        "rounds": rounds,
        "levels": {
            "isolated": "one click at a time; the next once the previous one's effects are all shown",
            "back_to_back": "one click at a time; the next as soon as the previous one is answered",
            LEVELS[2]: f"{CONCURRENCY} clicks in flight at once",
        },
        "results": results,
        "p99_ratio_pipebot_over_bare": ratios,
        "target_p99_ratio": TARGET,
        "meets_target": {level: ratio <= TARGET for level, ratio in ratios.items()},
        "fake_errors": errors,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--isolated", type=int, default=100, help="isolated clicks, per client")
    parser.add_argument("--back-to-back", type=int, default=200, help="back-to-back clicks, per client")
    parser.add_argument("--burst", type=int, default=160, help=f"clicks {CONCURRENCY} at a time, per client")
    parser.add_argument("--rounds", type=int, default=2, help="alternations bare / pipebot")
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
    rounds = max(1, args.rounds)
    counts = {
        "isolated": max(rounds, args.isolated),
        "back_to_back": max(rounds, args.back_to_back),
        LEVELS[2]: max(CONCURRENCY * rounds, args.burst),
    }
    report = asyncio.run(drive(counts, rounds, args.out))
    for kind, levels in report["results"].items():
        for level, figures in levels.items():
            print(f"{kind:8} {level:13} " + "  ".join(f"{k}={v}" for k, v in figures.items()))
    print(f"p99 ratio pipebot/bare: {report['p99_ratio_pipebot_over_bare']} (target ≤ {TARGET})")
    if report["fake_errors"]:
        print(f"the fake rejected {len(report['fake_errors'])} requests: {report['fake_errors'][:3]}")
    return 1 if report["fake_errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
