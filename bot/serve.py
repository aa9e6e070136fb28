"""`pipebot serve`: one process, one event loop, every adapter whose credentials are set."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from bot.cli import engine_config, make_worker
from bot.health import Health, OpsServer
from bot.settings import Settings
from engine import timers
from engine.api import Engine
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
    engine = Engine.open(
        settings.base_pipelines_path,
        settings.database_url,
        config=engine_config(settings),
    )
    # Engine commands and the outbox's database work run in threads; a shorter GIL switch
    # interval lets the event loop answer the platforms' requests sooner while they run.
    sys.setswitchinterval(SWITCH_INTERVAL)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread (tests)
            loop.add_signal_handler(sig, stop.set)
    chosen = [(name, fn) for name, fn in chosen if name in wanted]
    log.info("starting %s", ", ".join([name for name, _ in chosen] + sorted(wanted - {"slack", "discord"})))
    health = Health(engine, settings.pipebot_ready_max_outbox_lag, "outbox" in wanted)
    tasks: list[asyncio.Task[Any]] = []
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
    listening = threading.Event()
    if not engine.store.is_sqlite:  # other replicas' commits wake this one's outbox and worker
        threading.Thread(
            target=engine.store.listen, args=(engine.wake_listeners, listening), name="listen", daemon=True
        ).start()
    slack_http = any(name == "slack" for name, _ in chosen) and not settings.slack_app_token
    for name, fn in chosen:
        if name == "discord":  # one gateway connection for all replicas: the leader's
            gateway = Leadership(engine.store, "discord-gateway")
            body = _discord_body(fn, engine, settings)
            tasks.append(asyncio.create_task(gateway.run(stop, body), name=name))
        elif name == "slack":
            tasks.append(asyncio.create_task(run_slack_with(fn, engine, settings, stop, health), name=name))
        else:
            tasks.append(asyncio.create_task(fn(engine, settings, stop), name=name))
    health.loops = {t.get_name(): t for t in tasks}
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
    return 0


def _discord_body(
    fn: Service, engine: Engine, settings: Settings
) -> Callable[[asyncio.Event], Coroutine[Any, Any, None]]:
    async def body(inner: asyncio.Event) -> None:
        await fn(engine, settings, inner)

    return body


async def run_slack_with(
    fn: Service, engine: Engine, settings: Settings, stop: asyncio.Event, health: Health
) -> None:
    """Slack's HTTP server also carries /readyz and /metrics."""
    from adapters.slack.service import run_slack

    if fn is run_slack:
        await run_slack(engine, settings, stop, extra_routes=health.add_routes)
    else:
        await fn(engine, settings, stop)


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
