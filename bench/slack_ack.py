"""Slack ack latency: pipebot's app vs a bare slack_bolt AsyncApp, on the same signed clicks.

    python -m bench.slack_ack [--clicks 200,320,640] [--latency-clicks 100] [--out bench/results/slack.json]

The app under test runs in its own process (as in production: Slack is elsewhere); this process
plays Slack: it holds the fake Web API (`tests.fakes.slack_api.FakeSlack`) and sends signed
block_actions requests at concurrency 1, 16 and 64. Each pipebot click approves a distinct
checkpoint, so the engine work (a transition, three Slack messages) happens behind every ack.

Measured: ack latency (request sent → HTTP answer read) p50/p99 for
  * bare     — AsyncApp(...) with one listener ``async def ack_only(ack): await ack()``, defaults
  * bare_pbr — the same with process_before_response=True, the mode pipebot runs bolt in
  * pipebot  — `adapters.slack.app.create_slack_app` over a real engine on SQLite,
and for pipebot, click → next message: the click is sent → FakeSlack receives the next
chat.update / chat.postMessage (the approval request edited to "Approved by …"), p50.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from bench.machine import describe, percentile

SECRET = "bench-signing-secret"
CHANNEL = "C0BENCH"
USERS = [f"U0BENCH{i}" for i in range(8)]
LEVELS = (1, 16, 64)
WARMUP = 20
PIPELINE = """\
id: bench-gate
name: Bench gate
auto_advance: true
checkpoints:
  - id: gate
    name: Gate
    human: {approval_to_start: true, approval_to_complete: false, max_revisions: 0}
  - id: review
    name: Review
    human: {approval_to_start: false, approval_to_complete: true, max_revisions: 0}
"""
APPS = ("bare", "bare_pbr", "pipebot")


# -- the app process ----------------------------------------------------------------------------------


async def serve(kind: str, base: Path, api_url: str, token: str) -> None:
    """Serve one app on a loopback port, print its URL, run until stdin closes."""
    from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
    from slack_bolt.app.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    from adapters.slack.app import create_slack_app
    from adapters.slack.directory import PLATFORM
    from engine.api import Engine

    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    closers: list[Callable[[], Awaitable[None]]] = []
    if kind == "pipebot":
        from bot.serve import SWITCH_INTERVAL

        sys.setswitchinterval(SWITCH_INTERVAL)  # as `pipebot serve` does
        engine = Engine.open(base)
        slack = await create_slack_app(engine, token=token, signing_secret=SECRET, api_url=api_url)
        engine.outbox.register(PLATFORM, slack.deliverer)
        tasks.append(asyncio.create_task(engine.outbox.run(stop)))
        handle = slack.handle
        closers.append(slack.close)
    else:
        session = aiohttp.ClientSession()
        client = AsyncWebClient(token=token, base_url=api_url, session=session)
        bare = AsyncApp(client=client, signing_secret=SECRET, process_before_response=kind == "bare_pbr")

        async def ack_only(ack: Any) -> None:
            await ack()

        bare.action(re.compile("^pb:"))(ack_only)

        async def handle(request: web.Request) -> web.Response:
            return await to_aiohttp_response(await bare.async_dispatch(await to_bolt_request(request)))

        closers.append(session.close)
    app = web.Application()
    app.router.add_post("/slack/events", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(f"READY http://127.0.0.1:{runner.addresses[0][1]}/slack/events", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the driver closes it
    stop.set()
    await asyncio.gather(*tasks)
    await runner.cleanup()
    for close in closers:
        await close()


# -- the driver (plays Slack) -------------------------------------------------------------------------


def prepare_runs(base: Path, n: int) -> None:
    """Start `n` bench runs bound to the bench channel (delivered later by the app process)."""
    from engine.actors import Actor, Conversation
    from engine.api import Engine

    engine = Engine.open(base)
    engine.import_pipeline_text(PIPELINE, "bench-gate.yaml", actor=None)
    starter = Actor("slack", USERS[0], "bench")
    for _ in range(n):
        engine.start_run("bench-gate", starter, Conversation("slack", CHANNEL))
    engine.close()


def click_body(fake: Any, message: Any, user: str) -> tuple[bytes, str]:
    """A signed-ready block_actions body for the approve-start button of `message`."""
    from tests.fakes.slack_payloads import build_action

    api_message = message.to_api(fake.team_id)
    button = next(
        el
        for block in api_message["blocks"]
        for el in block.get("elements", [])
        if str(el.get("action_id", "")).startswith("pb:approve_start:")
    )
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": fake.team_id},
        "api_app_id": fake.app_id,
        "token": "verification_token",
        "team": {"id": fake.team_id, "domain": "bench"},
        "container": {
            "type": "message",
            "message_ts": message.ts,
            "channel_id": CHANNEL,
            "is_ephemeral": False,
        },
        "channel": {"id": CHANNEL, "name": "bench"},
        "message": api_message,
        "response_url": fake.issue_response_url(CHANNEL, user, message.ts),
        "trigger_id": fake.issue_trigger_id(),
        "state": {"values": {}},
        "actions": [build_action(api_message["blocks"], button["action_id"], None)],
    }
    return urlencode({"payload": json.dumps(payload)}).encode(), message.ts


class AppProcess:
    def __init__(self, kind: str, base: Path, api_url: str, token: str) -> None:
        self.kind = kind
        cmd = [sys.executable, "-m", "bench.slack_ack", "--serve", kind, "--base", str(base)]
        cmd += ["--api-url", api_url, "--token", token]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.url = ""

    async def ready(self) -> str:
        assert self.proc.stdout is not None
        line = await asyncio.to_thread(self.proc.stdout.readline)
        if not line.startswith("READY "):
            raise RuntimeError(f"{self.kind} app did not start: {line!r}")
        self.url = line.split()[1]
        return self.url

    async def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        await asyncio.to_thread(self.proc.wait, 30)


async def post_click(session: aiohttp.ClientSession, url: str, body: bytes) -> float:
    from tests.fakes.slack_signing import sign

    headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body, SECRET)}
    started = time.monotonic()
    async with session.post(url, data=body, headers=headers) as resp:
        await resp.read()
        if resp.status != 200:
            raise RuntimeError(f"click answered {resp.status}")
    return time.monotonic() - started


async def load(
    session: aiohttp.ClientSession, url: str, bodies: list[bytes], concurrency: int
) -> list[float]:
    queue = list(reversed(bodies))
    times: list[float] = []

    async def worker() -> None:
        while queue:
            times.append(await post_click(session, url, queue.pop()))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return times


def summary(times: list[float]) -> dict[str, float | int]:
    return {
        "n": len(times),
        "p50_ms": round(percentile(times, 50) * 1000, 2),
        "p99_ms": round(percentile(times, 99) * 1000, 2),
    }


async def drive(clicks: dict[int, int], latency_clicks: int) -> dict[str, Any]:
    from tests.fakes.slack_api import FakeSlack

    fake = FakeSlack()
    await fake.start()
    for user in USERS:
        fake.add_user(user, user.title(), name=user.lower())
    total = WARMUP + sum(clicks.values()) + latency_clicks
    results: dict[str, Any] = {"ack": {}, "click_to_message": {}}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "pipelines"
        await asyncio.to_thread(prepare_runs, base, total)
        # The pipebot process posts every run's messages first; their buttons are what gets clicked.
        app = AppProcess("pipebot", base, fake.api_url, fake.token)
        await app.ready()

        def gates() -> list[Any]:
            return [m for m in fake.messages.values() if "pb:approve_start:" in json.dumps(m.blocks)]

        await fake.wait_for(lambda: len(gates()) >= total or None, timeout=120, what="bench runs posted")
        await app.stop()
        messages = sorted(gates(), key=lambda m: m.ts)
        signed = [click_body(fake, m, USERS[i % len(USERS)]) for i, m in enumerate(messages)]
        bodies = [body for body, _ in signed]
        warm, rest = bodies[:WARMUP], bodies[WARMUP:]
        per_level: dict[int, list[bytes]] = {}
        for level in LEVELS:
            per_level[level], rest = rest[: clicks[level]], rest[clicks[level] :]
        timed = signed[len(signed) - len(rest) :]

        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            for kind in APPS:
                app = AppProcess(kind, base, fake.api_url, fake.token)
                url = await app.ready()
                await load(session, url, warm, 4)
                results["ack"][kind] = {}
                for level in LEVELS:
                    chats = len(fake.calls)
                    times = await load(session, url, per_level[level], level)
                    results["ack"][kind][str(level)] = summary(times)
                    if kind == "pipebot":  # let the work behind the acks finish before the next level
                        await settled(fake, chats, len(per_level[level]))
                if kind == "pipebot":
                    results["click_to_message"] = await click_to_message(fake, session, url, timed)
                await app.stop()
    await fake.stop()
    fake.assert_all_ok()
    return results


async def settled(fake: Any, since: int, clicks: int) -> None:
    """Each click ends in three messages: the request edited, the run's status, the next request."""
    await fake.wait_for(
        lambda: sum(c.method.startswith("chat.") for c in fake.calls[since:]) >= 3 * clicks or None,
        timeout=120,
        what=f"the messages of {clicks} clicks",
    )


async def click_to_message(
    fake: Any, session: aiohttp.ClientSession, url: str, clicks: list[tuple[bytes, str]]
) -> Any:
    """One click at a time: sent → the fake receives chat.update of the clicked message."""
    times: list[float] = []
    for body, ts in clicks:
        seen = len(fake.calls)
        started = time.monotonic()
        await post_click(session, url, body)

        def edited(seen: int = seen, ts: str = ts) -> float | None:
            for call in fake.calls[seen:]:
                if call.method == "chat.update" and call.args.get("ts") == ts and call.ok:
                    return float(call.time)
            return None

        times.append(await fake.wait_for(edited, timeout=10, what="the clicked message's edit") - started)
        await settled(fake, seen, 1)
    return summary(times)


def report(results: dict[str, Any], command: str) -> str:
    ack = results["ack"]
    lines = [
        "| concurrency | bare p50 / p99 (ms) | bare_pbr p50 / p99 (ms) | pipebot p50 / p99 (ms) |"
        " pipebot p99 ÷ bare p99 | pipebot p99 ÷ bare_pbr p99 |",
        "|---|---|---|---|---|---|",
    ]
    for level in LEVELS:
        row = [ack[k][str(level)] for k in APPS]
        ratios = [row[2]["p99_ms"] / max(r["p99_ms"], 1e-9) for r in row[:2]]
        lines.append(
            f"| {level} | "
            + " | ".join(f"{r['p50_ms']} / {r['p99_ms']}" for r in row)
            + f" | {ratios[0]:.2f}× | {ratios[1]:.2f}× |"
        )
    c2m = results["click_to_message"]
    lines.append("")
    lines.append(
        f"Click → next message (pipebot, one click at a time, n={c2m['n']}): "
        f"p50 {c2m['p50_ms']} ms, p99 {c2m['p99_ms']} ms."
    )
    m = results["machine"]
    lines.append("")
    lines.append(
        f"Machine: {m['cpus']} CPUs ({m['cpu']}), Python {m['python']}, {m['system']}. Command: `{command}`."
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--clicks", default="200,320,640", help="clicks at concurrency 1,16,64")
    parser.add_argument("--latency-clicks", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("bench/results/slack.json"))
    parser.add_argument("--serve", choices=APPS, help=argparse.SUPPRESS)
    parser.add_argument("--base", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--api-url", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve, args.base, args.api_url, args.token))
        return 0
    counts = [int(c) for c in args.clicks.split(",")]
    clicks = dict(zip(LEVELS, counts, strict=True))
    results = asyncio.run(drive(clicks, args.latency_clicks))
    results["machine"] = describe()
    results["command"] = "python -m bench.slack_ack " + " ".join(sys.argv[1:])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(report(results, results["command"].strip()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
