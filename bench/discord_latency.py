"""Discord button latency: pipebot's client vs a bare discord.py client, on the same fake Discord.

    python -m bench.discord_latency [--isolated 100] [--back-to-back 200] [--burst 160] [--burst-64 256]
                                    [--rounds 2] [--doors 2] [--out bench/results/discord.json]

Processes, as in production: the client under test (its own process); Discord's REST API, served
by ``--doors`` front-door processes on one port (bench.discord_front_door: each request stamped
with the kernel's time of its arrival, then forwarded to the fake, which validates it as strictly
as in the tests); and this process, which holds the fake's state and its gateway
(`tests.fakes.discord_fake`) and dispatches the button clicks (INTERACTION_CREATE) over the
websocket, stamping each as it leaves. A click's ack time is callback arrival − dispatch, both
stamped with CLOCK_MONOTONIC (one clock for every process of the machine; the callback's stamp is
the kernel's receive time of its bytes, see bench.discord_front_door): neither the fake's
work on pipebot's follow-ups and edits nor this process's own loop is counted, as on Discord,
whose gateway and REST API are separate, scaled-out services. The clients:
  * bare    — a discord.Client (GUILDS intent) whose only handler defers every component click
              (the same ephemeral "thinking" acknowledgement pipebot sends);
  * pipebot — `pipebot serve` itself (bot.serve.serve_async): its front process records each
              interaction in the inbox and defers it; its engine process (a real engine on SQLite)
              handles it, answers through the token and delivers the outbox. Each click approves a
              distinct checkpoint, so a transition and the outbox edits happen behind every ack.

Levels: "isolated" (the next click once the previous one's effects are all shown), "back_to_back"
(the next as soon as the previous one is answered: acked for bare, followed up for pipebot), and
bursts of 16 and 64 clicks dispatched at once, at a fixed pace whatever the client does (the
same offered load for both). Reported: ack p50/p99/max per client and level, the p99 ratio; for
pipebot also interaction → its answer (the follow-up replacing "thinking", stamped as it arrives)
and how long it keeps working after the bursts (their last answer → its last request). Both
clients click the same approval messages, in one run, on one fake; rounds alternate them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.machine import (
    as_in_production,
    bare_front,
    choose_realtime,
    describe,
    percentile,
    quiet_heap,
    realtime_wanted,
)
from tests.fakes.discord_rest import API_PREFIX

GUILD = 920000000000000001
CHANNEL = 920000000000000010
TOKEN = "bench-bot-token"
WARMUP = 16
IDLE_GAP = 0.05
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

    bare_front()
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
        pipebot_http_port=free_port(),  # /healthz: not the default 3000, which a test may hold
        pipebot_front_realtime=realtime_wanted(),  # bench --realtime: the bare client's too
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
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, env={**env, "LOG_LEVEL": "ERROR"}, preexec_fn=as_in_production
        )

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FrontDoors:
    """``count`` processes serving Discord's REST API on one port (bench.discord_front_door)."""

    def __init__(self, count: int, upstream: str) -> None:
        self.port = free_port()
        cmd = [sys.executable, "-m", "bench.discord_front_door", str(self.port), upstream]
        self.procs = [
            subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE) for _ in range(count)
        ]
        for proc in self.procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != b"ready":
                raise RuntimeError("a REST front door did not start")
        self.api_url = f"http://127.0.0.1:{self.port}{API_PREFIX}"

    def stop(self) -> None:
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.close()
        for proc in self.procs:
            proc.wait(30)


def ack_of(record: Any) -> float:
    return float(record.responded_at - record.dispatched_at)


async def click(fake: Any, message: Any, user: Any, answer: bool, settle: bool) -> Any:
    """One click; returns its interaction record once acknowledged (and with ``answer``, answered).

    ``settle``: first leave the client idle for a moment (as between people's clicks), and after
    the answer wait for everything the click causes (the approval message edited, the run's status
    message showing it completed).
    """
    if settle:
        await asyncio.sleep(IDLE_GAP)  # the outbox's last bookkeeping after the final edit
    interaction_id = await fake.click_button(message.channel_id, message.id, message.custom_ids()[0], user)
    record = fake.interactions[interaction_id]
    await fake.wait_for(lambda: record.responded_at, timeout=30)
    if not answer:  # the bare client only acknowledges: nothing more to wait for
        return record
    await fake.wait_for(lambda: record.answered_at, timeout=60)
    if settle:
        status = fake.find_message(message.channel_id)  # the thread was started from it: same id

        def settled() -> bool:
            shown = status.text if status is not None else ""
            return not message.custom_ids() and "completed" in shown

        await fake.wait_for(settled, timeout=30)
    return record


async def one_by_one(fake: Any, cards: list[Any], users: list[Any], answer: bool, settle: bool) -> list[Any]:
    return [await click(fake, card, users[0], answer, settle) for card in cards]


async def bursts(
    fake: Any, cards: list[Any], users: list[Any], size: int, period: float, answer: bool
) -> list[Any]:
    """``size`` clicks dispatched at once, a burst every ``period`` seconds whatever the client
    does (the same offered load for both clients); returns once all are acknowledged / answered."""
    loop = asyncio.get_running_loop()
    records: list[Any] = []
    start = loop.time()
    for k, at in enumerate(range(0, len(cards), size)):
        await asyncio.sleep(max(0.0, start + k * period - loop.time()))
        for j, card in enumerate(cards[at : at + size]):
            clicked = await fake.click_button(card.channel_id, card.id, card.custom_ids()[0], users[j])
            records.append(fake.interactions[clicked])
    await fake.wait_for(lambda: all(r.responded_at for r in records), timeout=60)
    if answer:
        await fake.wait_for(lambda: all(r.answered_at for r in records), timeout=600)
    return records


def summary(records: list[Any]) -> dict[str, Any]:
    acks = [ack_of(r) * 1000 for r in records]
    out: dict[str, Any] = {
        "clicks": len(records),
        "p50_ms": round(percentile(acks, 50), 2),
        "p99_ms": round(percentile(acks, 99), 2),
        "max_ms": round(max(acks), 2),
    }
    answers = [(r.answered_at - r.dispatched_at) * 1000 for r in records if r.answered_at is not None]
    if answers:
        out["answer_p50_ms"] = round(percentile(answers, 50), 2)
        out["answer_p99_ms"] = round(percentile(answers, 99), 2)
    return out


def _split(items: list[Any], parts: int) -> list[list[Any]]:
    return [items[i::parts] for i in range(parts)]


BURSTS = {16: 0.5, 64: 2.0}  # burst size: seconds between two bursts' starts (32 clicks/s)
LEVELS = ("isolated", "back_to_back", *(f"burst_{n}" for n in BURSTS))


async def quiet(fake: Any, since: int, answered: float, for_seconds: float = 0.5) -> float:
    """Once the bot has sent nothing for a while: seconds from the last answer to the last request
    it sent since request number ``since`` (both stamped as they arrived)."""
    count, changed = len(fake.requests), time.monotonic()
    while time.monotonic() - changed < for_seconds:
        await asyncio.sleep(0.01)
        if len(fake.requests) != count:
            count, changed = len(fake.requests), time.monotonic()
    last = max((r.arrived_at for r in fake.requests[since:]), default=answered)
    return round(max(0.0, last - answered), 3)


async def drive(counts: dict[str, int], rounds: int, doors: int, out: Path) -> dict[str, Any]:
    """``counts``: clicks per level, per client; each level is split over the rounds."""
    from bench.discord_front_door import HEADER
    from tests.fakes.discord_fake import FakeChannel, FakeDiscord, FakeUser

    machine = describe()  # the load average before the run
    users = [FakeUser(720000000000000000 + i, f"user{i}") for i in range(max(BURSTS))]
    needed = rounds * WARMUP + sum(counts.values())  # pipebot approves each message once
    records: dict[str, dict[str, list[Any]]] = {
        kind: {level: [] for level in LEVELS} for kind in ("bare", "pipebot")
    }
    after: dict[str, list[float]] = {f"burst_{n}": [] for n in BURSTS}  # pipebot's work after the bursts
    with tempfile.TemporaryDirectory(prefix="pipebot-bench-") as tmp:
        base = Path(tmp) / "pipelines"
        await asyncio.to_thread(prepare_runs, base, needed)
        async with FakeDiscord(token=TOKEN) as fake:
            fake.rest.arrival_header = HEADER
            fake.add_guild(GUILD, channels=[FakeChannel(CHANNEL, "bench")], members=users)
            front = await asyncio.to_thread(FrontDoors, doors, fake.base_url)
            api_url = front.api_url
            try:

                def cards() -> list[Any]:
                    found = [m for t in fake.threads for m in fake.messages_in(t)]
                    return [m for m in found if any(c.startswith(BUTTON) for c in m.custom_ids())]

                # pipebot's outbox posts the approval messages; then the clients take turns (rounds
                # alternate bare / pipebot so a drift of the machine weighs on both alike).
                poster = ClientProcess("pipebot", base, api_url, fake.gateway_url)
                try:
                    await fake.wait_for(lambda: len(cards()) >= needed, timeout=600)
                finally:
                    await poster.stop()
                await fake.wait_for(lambda: not fake.connected, timeout=30)
                targets = sorted(cards(), key=lambda m: m.id)
                quiet_heap()  # the fake's collections must not be timed as a client's latency
                batches = {"warmup": _split(targets[: rounds * WARMUP], rounds)}
                at = rounds * WARMUP
                for level in LEVELS:
                    batches[level] = _split(targets[at : at + counts[level]], rounds)
                    at += counts[level]
                for r in range(rounds):
                    for kind in ("bare", "pipebot"):
                        proc = ClientProcess(kind, base, api_url, fake.gateway_url)
                        answer = kind == "pipebot"
                        got = records[kind]
                        try:
                            await fake.wait_for(lambda: fake.connected, timeout=60)
                            await one_by_one(fake, batches["warmup"][r], users, answer, settle=True)
                            got["isolated"] += await one_by_one(
                                fake, batches["isolated"][r], users, answer, settle=True
                            )
                            got["back_to_back"] += await one_by_one(
                                fake, batches["back_to_back"][r], users, answer, settle=False
                            )
                            for n, period in BURSTS.items():
                                since = len(fake.requests)
                                burst = await bursts(fake, batches[f"burst_{n}"][r], users, n, period, answer)
                                got[f"burst_{n}"] += burst
                                if answer:
                                    answered = max(r.answered_at for r in burst)
                                    after[f"burst_{n}"].append(await quiet(fake, since, answered))
                        finally:
                            await asyncio.sleep(0.5)  # the last responses on their way back to it
                            await proc.stop()
                        await fake.wait_for(lambda: not fake.connected, timeout=30)
            finally:
                await asyncio.to_thread(front.stop)
            errors = [str(e) for e in fake.errors]
    results = {kind: {level: summary(t) for level, t in levels.items()} for kind, levels in records.items()}
    ratios = {
        level: round(results["pipebot"][level]["p99_ms"] / results["bare"][level]["p99_ms"], 2)
        for level in LEVELS
    }
    report = {
        "benchmark": "discord interaction -> first response (button clicks)",
        "command": " ".join(["python -m bench.discord_latency", *sys.argv[1:]]),
        "machine": machine,
        "rounds": rounds,
        "rest_front_doors": doors,
        "levels": {
            "isolated": "one click at a time; the next once the previous one's effects are all shown",
            "back_to_back": "one click at a time; the next as soon as the previous one is answered",
            **{
                f"burst_{n}": f"{n} clicks dispatched at once, a burst every {period} s"
                for n, period in BURSTS.items()
            },
        },
        "results": results,
        "pipebot_work_after_bursts_s": after,
        "p99_ratio_pipebot_over_bare": ratios,
        "target_p99_ratio": TARGET,
        "meets_target": {level: ratio <= TARGET for level, ratio in ratios.items()},
        "acks_later_than_3s": sum(
            1 for levels in records.values() for rs in levels.values() for r in rs if ack_of(r) > 3.0
        ),
        "fake_errors": errors,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    report["load_after"] = describe()["load"]  # printed, not written: the file holds the "before"
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--isolated", type=int, default=100, help="isolated clicks, per client")
    parser.add_argument("--back-to-back", type=int, default=200, help="back-to-back clicks, per client")
    parser.add_argument("--burst", type=int, default=160, help="clicks 16 at a time, per client")
    parser.add_argument("--burst-64", type=int, default=256, help="clicks 64 at a time, per client")
    parser.add_argument("--rounds", type=int, default=2, help="alternations bare / pipebot")
    parser.add_argument("--doors", type=int, default=2, help="processes serving Discord's REST API")
    parser.add_argument("--out", type=Path, default=Path("bench/results/discord.json"))
    parser.add_argument(
        "--realtime",
        choices=["on", "off"],
        default="on",
        help="both clients' fronts SCHED_FIFO where allowed (pipebot: PIPEBOT_FRONT_REALTIME)",
    )
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
    choose_realtime(args.realtime)
    rounds = max(1, args.rounds)
    counts = {
        "isolated": max(rounds, args.isolated),
        "back_to_back": max(rounds, args.back_to_back),
        "burst_16": max(16 * rounds, args.burst),
        "burst_64": max(64 * rounds, args.burst_64),
    }
    report = asyncio.run(drive(counts, rounds, max(1, args.doors), args.out))
    for kind, levels in report["results"].items():
        for level, figures in levels.items():
            print(f"{kind:8} {level:13} " + "  ".join(f"{k}={v}" for k, v in figures.items()))
    print(f"p99 ratio pipebot/bare: {report['p99_ratio_pipebot_over_bare']} (target ≤ {TARGET})")
    print(f"pipebot's work after the bursts (s): {report['pipebot_work_after_bursts_s']}")
    print(f"load average before: {report['machine']['load']}, after: {report['load_after']}")
    if report["fake_errors"]:
        print(f"the fake rejected {len(report['fake_errors'])} requests: {report['fake_errors'][:3]}")
    return 1 if report["fake_errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
