"""Slack ack latency: pipebot's app vs a bare slack_bolt AsyncApp, on the same signed clicks.

    python -m bench.slack_ack [--clicks 200,320,640] [--latency-clicks 100] [--out bench/results/slack.json]
                              [--apps bare,bare_pbr,pipebot,pipebot_1proc]

Three kinds of process: the app under test (as in production: Slack is elsewhere); the
benchmark's client, which signs and sends the clicks at concurrency 1, 16 and 64 and times each
answer; and this process, which plays Slack's Web API (`tests.fakes.slack_api.FakeSlack`, with
its Block Kit validation) and reads the figures. Each pipebot click approves a distinct
checkpoint (a transition and three Slack messages behind every ack); one click in eight is an
"Open form" click, whose modal must open within 3 s of the click (the trigger_id's life).

Measured: ack latency (request sent → HTTP answer read) p50/p99 for
  * bare          — AsyncApp(...) with one listener ``async def ack_only(ack): await ack()``, defaults
  * bare_pbr      — the same with process_before_response=True, the mode pipebot runs bolt in
  * pipebot       — `pipebot serve` (bot.serve.serve_async): the front process records each click
                    in the inbox and acks; its engine process handles it and delivers the messages
  * pipebot_1proc — the same in one process (PIPEBOT_ENGINE_PROCESS=false), for comparison;
views.open latency (click sent → the fake receives views.open) for the form clicks; how long the
bot keeps working after each burst (last ack → last message of the burst's clicks); and click →
next message: the click is sent → FakeSlack receives the chat.update of the clicked message
(one click at a time).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket
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

from bench.machine import (
    as_in_production,
    bare_front,
    choose_realtime,
    describe,
    percentile,
    quiet_heap,
    realtime_wanted,
)

SECRET = "bench-signing-secret"
START_UP = 3.0  # seconds from an app's READY to its first measured click
CHANNEL = "C0BENCH"
USERS = [f"U0BENCH{i}" for i in range(8)]
LEVELS = (1, 16, 64)
WARMUP = 20
FORM_EVERY = 8  # one click in eight opens a form
FORM_PIPELINE = """\
id: bench-form
name: Bench form
checkpoints:
  - id: form
    name: Form
    inputs: [{id: topic, label: Topic, type: text, required: true}]
    human: {approval_to_start: false, approval_to_complete: false, max_revisions: 0}
"""
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
APPS = ("bare", "bare_pbr", "pipebot", "pipebot_1proc")
DEFAULT_APPS = "bare,bare_pbr,pipebot"  # pipebot_1proc clicks what pipebot already approved
PIPEBOT = ("pipebot", "pipebot_1proc")


# -- the app process ----------------------------------------------------------------------------------


async def serve(kind: str, base: Path, api_url: str, token: str) -> None:
    """Serve one app on a loopback port, print its URL, run until stdin closes."""
    from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
    from slack_bolt.app.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    stop = asyncio.Event()
    closers: list[Callable[[], Awaitable[None]]] = []
    if kind in PIPEBOT:
        await serve_pipebot(kind, base, api_url, token)
        return
    bare_front()
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
    await runner.cleanup()
    for close in closers:
        await close()


async def serve_pipebot(kind: str, base: Path, api_url: str, token: str) -> None:
    """`pipebot serve` itself on a free port: prints READY once /healthz answers."""
    from bot.serve import serve_async
    from bot.settings import Settings

    port = free_port()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        base_pipelines_path=base,
        slack_bot_token=token,
        slack_signing_secret=SECRET,
        slack_api_url=api_url,
        pipebot_http_port=port,
        pipebot_engine_process=kind == "pipebot",
        pipebot_front_realtime=realtime_wanted(),  # bench --realtime: the bare apps' too
        log_level="ERROR",
    )
    stop = asyncio.Event()
    server = asyncio.create_task(serve_async(settings, stop))
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    if resp.status == 200:
                        break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.02)
    print(f"READY http://127.0.0.1:{port}/slack/events", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the driver closes it
    stop.set()
    await server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the client (sends the clicks, times the answers) ---------------------------------------------


async def client_main() -> None:
    """Read one job (url, bodies, concurrency) from stdin; print each click's send and answer times."""
    job = json.loads(sys.stdin.readline())
    bodies = [b.encode() for b in job["bodies"]]
    quiet_heap()  # the measuring instrument: no collection pauses inside what it times
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        times = await load(session, job["url"], bodies, job["concurrency"])
    print(json.dumps(times), flush=True)


async def run_client(url: str, bodies: list[bytes], concurrency: int) -> list[tuple[float, float]]:
    """The client process for one level: [(sent, answered)] in time.monotonic(), in body order."""
    cmd = [sys.executable, "-m", "bench.slack_ack", "--client"]
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    job = {"url": url, "bodies": [b.decode() for b in bodies], "concurrency": concurrency}
    out, _ = await proc.communicate(json.dumps(job).encode() + b"\n")
    if proc.returncode != 0:
        raise RuntimeError(f"the bench client failed ({proc.returncode})")
    return [(a, b) for a, b in json.loads(out.decode().strip().splitlines()[-1])]


# -- the driver (plays Slack) -------------------------------------------------------------------------


def prepare_runs(base: Path, n: int, forms: int) -> None:
    """Start `n` gate runs and `forms` form runs in the bench channel (posted by the app process)."""
    from engine.actors import Actor, Conversation
    from engine.api import Engine

    engine = Engine.open(base)
    engine.import_pipeline_text(PIPELINE, "bench-gate.yaml", actor=None)
    engine.import_pipeline_text(FORM_PIPELINE, "bench-form.yaml", actor=None)
    starter = Actor("slack", USERS[0], "bench")
    for _ in range(n):
        engine.start_run("bench-gate", starter, Conversation("slack", CHANNEL))
    for _ in range(forms):
        engine.start_run("bench-form", starter, Conversation("slack", CHANNEL))
    engine.close()


def click_body(fake: Any, message: Any, user: str, action: str = "approve_start") -> tuple[bytes, str]:
    """A signed-ready block_actions body for the `action` button of `message` (body, trigger_id)."""
    from tests.fakes.slack_payloads import build_action

    api_message = message.to_api(fake.team_id)
    button = next(
        el
        for block in api_message["blocks"]
        for el in block.get("elements", [])
        if str(el.get("action_id", "")).startswith(f"pb:{action}:")
    )
    trigger = fake.issue_trigger_id()
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
        "trigger_id": trigger,
        "state": {"values": {}},
        "actions": [build_action(api_message["blocks"], button["action_id"], None)],
    }
    return urlencode({"payload": json.dumps(payload)}).encode(), trigger


class AppProcess:
    def __init__(self, kind: str, base: Path, api_url: str, token: str) -> None:
        self.kind = kind
        cmd = [sys.executable, "-m", "bench.slack_ack", "--serve", kind, "--base", str(base)]
        cmd += ["--api-url", api_url, "--token", token]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, preexec_fn=as_in_production
        )
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


async def post_click(session: aiohttp.ClientSession, url: str, body: bytes) -> tuple[float, float]:
    from tests.fakes.slack_signing import sign

    headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body, SECRET)}
    started = time.monotonic()
    async with session.post(url, data=body, headers=headers) as resp:
        await resp.read()
        if resp.status != 200:
            raise RuntimeError(f"click answered {resp.status}")
    return started, time.monotonic()


async def load(
    session: aiohttp.ClientSession, url: str, bodies: list[bytes], concurrency: int
) -> list[tuple[float, float]]:
    queue = list(reversed(list(enumerate(bodies))))
    times: list[tuple[float, float]] = [(0.0, 0.0)] * len(bodies)

    async def worker() -> None:
        while queue:
            i, body = queue.pop()
            times[i] = await post_click(session, url, body)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return times


def summary(times: list[float]) -> dict[str, float | int]:
    return {
        "n": len(times),
        "p50_ms": round(percentile(times, 50) * 1000, 2),
        "p99_ms": round(percentile(times, 99) * 1000, 2),
        "max_ms": round(max(times) * 1000, 2) if times else float("nan"),
    }


class Click:
    """One prepared click: its body, its trigger_id, the message it edits, and if it opens a form."""

    def __init__(self, body: bytes, trigger: str, ts: str, form: bool) -> None:
        self.body, self.trigger, self.ts, self.form = body, trigger, ts, form


async def drive(clicks: dict[int, int], latency_clicks: int, apps: list[str]) -> dict[str, Any]:
    from tests.fakes.slack_api import FakeSlack

    fake = FakeSlack()
    fake.trigger_ttl = 3600.0  # the benchmark checks the 3 s itself (the triggers are issued early)
    await fake.start()
    for user in USERS:
        fake.add_user(user, user.title(), name=user.lower())
    gates = WARMUP + sum(clicks.values()) + latency_clicks
    forms = max(1, sum(clicks.values()) // FORM_EVERY // 4)  # each form message is clicked again and again
    results: dict[str, Any] = {"ack": {}, "views_open": {}, "after_burst": {}, "click_to_message": {}}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "pipelines"
        await asyncio.to_thread(prepare_runs, base, gates, forms)
        # pipebot posts every run's messages first; their buttons are what gets clicked.
        app = AppProcess("pipebot", base, fake.api_url, fake.token)
        await app.ready()

        def with_button(action: str) -> list[Any]:
            return [m for m in fake.messages.values() if f"pb:{action}:" in json.dumps(m.blocks)]

        await fake.wait_for(
            lambda: (
                (len(with_button("approve_start")) >= gates and len(with_button("open_form")) >= forms)
                or None
            ),
            timeout=300,
            what="bench runs posted",
        )
        await app.stop()
        approvals = sorted(with_button("approve_start"), key=lambda m: m.ts)
        form_messages = sorted(with_button("open_form"), key=lambda m: m.ts)

        def approve(i: int, message: Any) -> Click:
            body, trigger = click_body(fake, message, USERS[i % len(USERS)])
            return Click(body, trigger, message.ts, False)

        def open_form(i: int) -> Click:
            message = form_messages[i % len(form_messages)]
            body, trigger = click_body(fake, message, USERS[0], "open_form")  # the form's assignee
            return Click(body, trigger, message.ts, True)

        warm = [approve(i, m) for i, m in enumerate(approvals[:WARMUP])]
        rest = approvals[WARMUP:]
        per_level: dict[int, list[Click]] = {}
        for level in LEVELS:
            mine, rest = rest[: clicks[level]], rest[clicks[level] :]
            level_clicks: list[Click] = []
            for i, message in enumerate(mine):
                level_clicks.append(approve(i, message))
                if i % FORM_EVERY == FORM_EVERY - 1:
                    level_clicks.append(open_form(i))
            per_level[level] = level_clicks
        timed = [approve(i, m) for i, m in enumerate(rest)]

        quiet_heap()
        for kind in apps:
            app = AppProcess(kind, base, fake.api_url, fake.token)
            url = await app.ready()
            # Measured from its steady state on: pipebot's processes move what start-up made out
            # of the collector's reach 2 s after their start (bot.serve.freeze_startup_objects), a
            # one-time full collection that is part of starting, not of answering.
            await asyncio.sleep(START_UP)
            pipebot = kind in PIPEBOT
            # Each pipebot variant approves each message once: the gates are clicked by one of them.
            acting = kind == next((a for a in apps if a in PIPEBOT), None)
            chats = len(fake.calls)
            await run_client(url, [c.body for c in warm], 4)
            if acting:
                await settled(fake, chats, [c.ts for c in warm], 0)
            results["ack"][kind] = {}
            for level in LEVELS:
                chats = len(fake.calls)
                batch = per_level[level]
                times = await run_client(url, [c.body for c in batch], level)
                results["ack"][kind][str(level)] = summary([b - a for a, b in times])
                if pipebot and acting:
                    # Let the work behind the acks finish before the next level, and time it.
                    edits = [c.ts for c in batch if not c.form]
                    last = await settled(fake, chats, edits, sum(c.form for c in batch))
                    results["after_burst"][str(level)] = round(last - max(b for _, b in times), 3)
                    results["views_open"][str(level)] = views_open(fake, batch, times, chats)
            if acting:
                results["click_to_message"] = await click_to_message(fake, url, timed)
            await app.stop()
    await fake.stop()
    fake.assert_all_ok()
    return results


def views_open(fake: Any, batch: list[Click], times: list[tuple[float, float]], since: int) -> Any:
    """Click sent → the fake receives views.open, for each form click of the level."""
    opened = {
        c.args.get("trigger_id"): c.time for c in fake.calls[since:] if c.method == "views.open" and c.ok
    }
    delays = [
        opened[c.trigger] - sent
        for c, (sent, _) in zip(batch, times, strict=True)
        if c.form and c.trigger in opened
    ]
    out = summary(delays)
    out["missed_3s"] = sum(c.form for c in batch) - sum(d <= 3.0 for d in delays)
    return out


async def settled(fake: Any, since: int, edited: list[str], forms: int, quiet: float = 0.5) -> float:
    """Wait until each clicked approval message was edited ("Approved by …") and each form click
    opened its modal (or was told it came too late), then until the bot has been quiet for
    `quiet` s; returns the last call's time."""
    wanted = set(edited)
    told = len(fake.ephemerals)

    def done() -> bool | None:
        calls = fake.calls[since:]
        seen = {c.args.get("ts") for c in calls if c.method == "chat.update" and c.ok}
        views = sum(c.method == "views.open" for c in calls)
        late = sum("before your form could open" in e.text for e in fake.ephemerals[told:])
        return (wanted <= seen and views + late >= forms) or None

    await fake.wait_for(done, timeout=300, what=f"the work of {len(wanted)} clicks")
    while True:
        count = len(fake.calls)
        await asyncio.sleep(quiet)
        if len(fake.calls) == count:
            return float(fake.calls[-1].time)


async def click_to_message(fake: Any, url: str, clicks: list[Click]) -> Any:
    """One click at a time: sent → the fake receives chat.update of the clicked message."""
    times: list[float] = []
    async with aiohttp.ClientSession() as session:
        for click in clicks:
            seen = len(fake.calls)
            started, _ = await post_click(session, url, click.body)

            def edited(seen: int = seen, ts: str = click.ts) -> float | None:
                for call in fake.calls[seen:]:
                    if call.method == "chat.update" and call.args.get("ts") == ts and call.ok:
                        return float(call.time)
                return None

            times.append(await fake.wait_for(edited, timeout=10, what="the clicked message's edit") - started)
            await settled(fake, seen, [click.ts], 0, quiet=0.05)
    return summary(times)


def report(results: dict[str, Any], command: str) -> str:
    ack = results["ack"]
    apps = list(ack)
    base = "bare" if "bare" in ack else apps[0]
    lines = [
        "| concurrency | "
        + " | ".join(f"{k} p50 / p99 (ms)" for k in apps)
        + " | "
        + " | ".join(f"{k} p99 ÷ {base} p99" for k in apps if k in PIPEBOT)
        + " |",
        "|---|" + "---|" * (len(apps) + sum(k in PIPEBOT for k in apps)),
    ]
    for level in LEVELS:
        row = [ack[k][str(level)] for k in apps]
        ratios = [
            ack[k][str(level)]["p99_ms"] / max(ack[base][str(level)]["p99_ms"], 1e-9)
            for k in apps
            if k in PIPEBOT
        ]
        lines.append(
            f"| {level} | "
            + " | ".join(f"{r['p50_ms']} / {r['p99_ms']}" for r in row)
            + " | "
            + " | ".join(f"{x:.2f}×" for x in ratios)
            + " |"
        )
    lines.append("")
    lines.append(
        "| concurrency | views.open after the click p50 / p99 / max (ms) | modals past 3 s"
        " | work after the burst (s) |"
    )
    lines.append("|---|---|---|---|")
    for level in LEVELS:
        v = results["views_open"].get(str(level))
        if v:
            lines.append(
                f"| {level} | {v['p50_ms']} / {v['p99_ms']} / {v['max_ms']} (n={v['n']}) | {v['missed_3s']} |"
                f" {results['after_burst'].get(str(level))} |"
            )
    c2m = results["click_to_message"]
    if c2m:
        lines.append("")
        lines.append(
            f"Click → next message (pipebot, one click at a time, n={c2m['n']}): "
            f"p50 {c2m['p50_ms']} ms, p99 {c2m['p99_ms']} ms."
        )
    m = results["machine"]
    lines.append("")
    lines.append(
        f"Machine: {m['cpus']} CPUs ({m['cpu']}), Python {m['python']}, {m['system']}, load average"
        f" {m.get('load', '?')} at the start. Command: `{command}`."
    )
    return "\n".join(lines)


def main() -> int:
    from bot.scheduling import throughput_only

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--clicks", default="200,320,640", help="clicks at concurrency 1,16,64")
    parser.add_argument("--latency-clicks", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("bench/results/slack.json"))
    parser.add_argument(
        "--realtime",
        choices=["on", "off"],
        default="on",
        help="both apps' fronts SCHED_FIFO where allowed (pipebot: PIPEBOT_FRONT_REALTIME)",
    )
    parser.add_argument("--apps", default=DEFAULT_APPS, help=f"which of {','.join(APPS)}, in this order")
    parser.add_argument("--serve", choices=APPS, help=argparse.SUPPRESS)
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--api-url", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve, args.base, args.api_url, args.token))
        return 0
    if args.client:
        asyncio.run(client_main())
        return 0
    counts = [int(c) for c in args.clicks.split(",")]
    clicks = dict(zip(LEVELS, counts, strict=True))
    choose_realtime(args.realtime)
    machine = describe()
    # This process plays Slack's servers, which are not on the bot's machine in real life: its
    # CPU must not take the front's. SCHED_BATCH lets a waking process (the front, the client)
    # run first without starving this one (see bot.scheduling.throughput_only).
    throughput_only(0)  # (the kernel's default slice: 0)
    results = asyncio.run(drive(clicks, args.latency_clicks, args.apps.split(",")))
    results["machine"] = machine
    results["command"] = "python -m bench.slack_ack " + " ".join(sys.argv[1:])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(report(results, results["command"].strip()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
