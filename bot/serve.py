"""`pipebot serve`: a front process that answers the platforms, and an engine process that works.

The front (this process) verifies each request, records it in the inbox (one insert) and
acknowledges it; nothing else runs on its event loop or in its interpreter, so an ack never
waits behind engine work. The engine process (bot.engine_process, started and supervised here)
handles the inbox rows and runs this replica's outbox, worker and schedule. The front wakes it
through a pipe, one line per recorded row; when the front dies the pipe closes and the engine
process exits too, and whatever was acknowledged but not handled is handled after the restart.
If the engine process dies, the front stops too (with its exit code): they are one replica, restarted
together. PIPEBOT_ENGINE_PROCESS=false runs everything in one process instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from bot.cli import engine_config, make_worker
from bot.health import Health, OpsServer
from bot.process_metrics import Families
from bot.scheduling import latency_first, realtime
from bot.settings import Settings
from engine import timers
from engine.api import Engine
from engine.inbox import InboxItem, encode_item
from engine.leases import Leadership

log = logging.getLogger("pipebot.serve")
SWITCH_INTERVAL = 0.001  # seconds; CPython's default is 0.005
Service = Callable[[Engine, Settings, asyncio.Event], Coroutine[Any, Any, None]]


def services(settings: Settings) -> list[tuple[str, Service]]:
    found: list[tuple[str, Service]] = []
    if settings.slack_enabled:
        from adapters.slack.service import run_slack

        found.append(("slack", run_slack))
    if settings.discord_enabled:
        from adapters.discord.service import run_discord

        found.append(("discord", run_discord))
    return found


async def serve_async(settings: Settings, stop: asyncio.Event | None = None) -> int:
    chosen = services(settings)
    if not chosen:
        log.error(
            "no chat credentials: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (or SLACK_APP_TOKEN), "
            "and/or DISCORD_TOKEN. To try pipebot without them: pipebot console"
        )
        return 2
    wanted = settings.services
    engine = open_engine(settings)
    split = settings.pipebot_engine_process
    child: EngineProcess | None = None
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread (tests)
            loop.add_signal_handler(sig, stop.set)
    chosen = [(name, fn) for name, fn in chosen if name in wanted]
    log.info("starting %s", ", ".join([name for name, _ in chosen] + sorted(wanted - {"slack", "discord"})))
    health = Health(engine, settings.pipebot_ready_max_outbox_lag, "outbox" in wanted)
    listening = threading.Event()
    if split:
        child = EngineProcess(settings, engine)
        engine.inbox.on_recorded.append(child.wake)
        engine.inbox.on_acked.append(child.acked)
        health.engine_metrics = child.metrics
        engine.inbox.inline_records = True  # this loop does nothing but answer: see GroupCommit
        # The engine process is throughput_only; the front answers first: see bot.scheduling.
        if not (settings.pipebot_front_realtime and realtime()):
            if settings.pipebot_front_realtime:
                log.warning(
                    "PIPEBOT_FRONT_REALTIME: the system refused SCHED_FIFO (grant CAP_SYS_NICE or"
                    " RLIMIT_RTPRIO 1, e.g. LimitRTPRIO=1 in the systemd unit); using short time slices"
                )
            latency_first()
        engine.store.checkpoint_elsewhere()  # the engine process checkpoints both SQLite files
        engine.inbox.rows.checkpoint_elsewhere()
        tasks: list[asyncio.Task[Any]] = [asyncio.create_task(child.supervise(stop), name="engine-process")]
    else:
        # Engine commands and the outbox's database work run in threads; a shorter GIL switch
        # interval lets the event loop answer the platforms' requests sooner while they run.
        sys.setswitchinterval(SWITCH_INTERVAL)
        if settings.pipebot_front_realtime:  # the engine's work runs here: never at real-time priority
            log.warning("PIPEBOT_FRONT_REALTIME is ignored with PIPEBOT_ENGINE_PROCESS=false")
        tasks = engine_tasks(engine, settings, stop, listening)
    slack_http = any(name == "slack" for name, _ in chosen) and not settings.slack_app_token
    for name, fn in chosen:
        if name == "discord":  # one gateway connection for all replicas: the leader's
            gateway = Leadership(engine.store, "discord-gateway")
            body = _discord_body(fn, engine, settings, not split)
            tasks.append(asyncio.create_task(gateway.run(stop, body), name=name))
        elif name == "slack":
            tasks.append(
                asyncio.create_task(run_slack_with(fn, engine, settings, stop, health, not split), name=name)
            )
        else:
            tasks.append(asyncio.create_task(fn(engine, settings, stop), name=name))
    health.loops = {t.get_name(): t for t in tasks}
    tasks.append(asyncio.create_task(freeze_startup_objects(stop), name="gc-freeze"))
    ops = None
    if not slack_http:  # the endpoints need a server of their own
        ops = OpsServer(health)
        await ops.start(settings.pipebot_http_port)
    try:
        await stop.wait()
    finally:
        stop.set()
        listening.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        if ops is not None:
            await ops.stop()
        engine.close()
    return child.failed if child is not None else 0


def open_engine(settings: Settings) -> Engine:
    engine = Engine.open(settings.base_pipelines_path, settings.database_url, config=engine_config(settings))
    engine.inbox.hold_seconds = settings.pipebot_inbox_hold_seconds
    engine.inbox.stale_seconds = settings.pipebot_worker_stale_seconds
    return engine


def engine_tasks(
    engine: Engine, settings: Settings, stop: asyncio.Event, listening: threading.Event
) -> list[asyncio.Task[Any]]:
    """The engine's loops (in the engine process, or here with PIPEBOT_ENGINE_PROCESS=false): the
    inbox always, and the outbox, worker and schedule this replica runs (PIPEBOT_SERVICES)."""
    wanted = settings.services
    if engine.inbox.report is None:  # (the reporting side is woken by its front, row by row)
        engine.listeners.append(engine.inbox.wake)
    tasks = [asyncio.create_task(engine.inbox.run(stop), name="inbox")]
    if "outbox" in wanted:
        tasks.append(asyncio.create_task(engine.outbox.run(stop), name="outbox"))
    if "worker" in wanted:
        worker = make_worker(engine, settings)
        engine.listeners.append(worker.wake)
        tasks.append(asyncio.create_task(worker.run(stop), name="worker"))
    if "schedule" in wanted:
        leader = Leadership(engine.store, "schedule")
        tasks.append(
            asyncio.create_task(
                leader.run(stop, lambda inner: start_scheduled(engine, inner)), name="schedule"
            )
        )
    if "schedule" in wanted:
        # Deadlines and reminders: one replica at a time fires them (the rows are claimed in a
        # transaction too, so each fires once even if two ever did).
        timer_leader = Leadership(engine.store, "timers")
        tasks.append(
            asyncio.create_task(
                timer_leader.run(
                    stop,
                    lambda inner: timers.run(engine.fire_timers, engine.next_timer_due, engine.clock, inner),
                ),
                name="timers",
            )
        )
    if not engine.store.is_sqlite:  # other replicas' commits wake this one's outbox and worker
        threading.Thread(
            target=engine.store.listen, args=(engine.wake_listeners, listening), name="listen", daemon=True
        ).start()
    return tasks


class EngineProcess:
    """The engine process, fed its settings and wake-ups on stdin. It reports on stdout the inbox
    rows it handled ("handled <id> <result>", recorded here) and its outbox's drains
    ("drained <monotonic time>", for /readyz)."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings, self.engine = settings, engine
        self.proc: asyncio.subprocess.Process | None = None
        self.failed = 0  # the engine process's exit code when it died first
        # The one question for the engine's samples in flight: scrapes at the same time share it
        # (/metrics is on the public port: a flood of scrapes must not become a flood of work).
        self._metrics: asyncio.Future[Families] | None = None

    async def _reports(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        async for line in proc.stdout:
            parts = line.split(maxsplit=2)
            if len(parts) == 3 and parts[0] == b"handled":
                self.engine.inbox.finished(int(parts[1]), json.loads(parts[2]))
            elif parts and parts[0] == b"metrics" and self._metrics is not None:
                waiter, self._metrics = self._metrics, None
                if not waiter.done():
                    waiter.set_result(json.loads(line[len(b"metrics ") :]))
            elif len(parts) == 2 and parts[0] == b"drained":
                self.engine.outbox.last_drain = float(parts[1])

    def wake(self, item: InboxItem | None = None) -> None:
        """A row was recorded: hand it over whole (no read of the file before it starts)."""
        proc = self.proc
        if proc is not None and proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.write(b"\n" if item is None else b"row " + encode_item(item).encode() + b"\n")

    def acked(self, row_id: int) -> None:
        """A row's ack reached the platform: its handler may answer through it (Inbox.until_acked)."""
        proc = self.proc
        if proc is not None and proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.write(b"acked %d\n" % row_id)

    async def metrics(self, timeout: float = 2.0) -> Families | None:
        """The engine process's samples, or None when it does not answer in time."""
        proc = self.proc
        if proc is None or proc.stdin is None or proc.stdin.is_closing():
            return None
        if self._metrics is None or self._metrics.done():
            self._metrics = asyncio.get_running_loop().create_future()
            proc.stdin.write(b"metrics\n")
        try:
            return await asyncio.wait_for(asyncio.shield(self._metrics), timeout)
        except TimeoutError:
            self._metrics = None  # unanswered: the next scrape asks again
            return None

    async def supervise(self, stop: asyncio.Event) -> None:
        """Run the engine process until `stop`; if it dies first, stop this replica too (its code):
        the two are one replica, restarted together by whatever supervises `pipebot serve`, and
        what was acknowledged meanwhile waits in the inbox."""
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.engine_process",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=1 << 22,  # a report carries a form's answer (a modal view) on one line
        )
        assert self.proc.stdin is not None
        reports = asyncio.create_task(self._reports(self.proc))
        self.proc.stdin.write(self.settings.model_dump_json().encode() + b"\n")
        self.wake()  # rows recorded while it was starting
        stopper = asyncio.ensure_future(stop.wait())
        exited = asyncio.ensure_future(self.proc.wait())
        await asyncio.wait({stopper, exited}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if exited.done():
            reports.cancel()
            log.error("the engine process exited (%s): stopping", self.proc.returncode)
            self.failed = self.proc.returncode or 1
            stop.set()
            return
        self.proc.stdin.write(b"stop\n")  # a clean stop: finish what is under way
        self.proc.stdin.close()
        try:
            await asyncio.wait_for(exited, 30)
        except TimeoutError:
            self.proc.kill()
            await exited
        reports.cancel()


def _discord_body(
    fn: Service, engine: Engine, settings: Settings, handle_here: bool
) -> Callable[[asyncio.Event], Coroutine[Any, Any, None]]:
    async def body(inner: asyncio.Event) -> None:
        from adapters.discord.service import run_discord

        if fn is run_discord:
            await run_discord(engine, settings, inner, handle_here=handle_here)
        else:
            await fn(engine, settings, inner)

    return body


async def run_slack_with(
    fn: Service, engine: Engine, settings: Settings, stop: asyncio.Event, health: Health, handle_here: bool
) -> None:
    """Slack's HTTP server also carries /readyz and /metrics."""
    from adapters.slack.service import run_slack

    if fn is run_slack:
        await run_slack(engine, settings, stop, extra_routes=health.add_routes, handle_here=handle_here)
    else:
        await fn(engine, settings, stop)


async def freeze_startup_objects(stop: asyncio.Event, after: float = 2.0) -> None:
    """Once started, move what start-up made (modules, the app, the engine's metadata: some
    hundred thousand objects) out of the garbage collector's reach. A full collection walks every
    tracked object, and in this process it took 200-340 ms: an ack caught behind one waited that
    long. What is made later is still collected as usual."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), after)
        return
    freeze_heap()


def freeze_heap() -> None:
    gc.collect()
    gc.freeze()


async def start_scheduled(engine: Engine, stop: asyncio.Event, every: float = 30.0) -> None:
    """Pipelines with a `schedule` start their runs here; the database keeps each start unique.
    Each tick also puts back the files of a rollback whose process died while moving them."""
    while not stop.is_set():
        try:
            for run in await asyncio.to_thread(engine.start_scheduled):
                log.info("scheduled run %s started", run.name)
            await asyncio.to_thread(engine.recover_rollbacks)
        except Exception:  # a bad tick must not stop the next one
            log.exception("scheduled starts failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


def serve(settings: Settings) -> int:
    return asyncio.run(serve_async(settings))
