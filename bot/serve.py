"""`pipebot serve`: one process, one event loop, every adapter whose credentials are set."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from bot.cli import engine_config, make_worker
from bot.settings import Settings
from engine import timers
from engine.api import Engine

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
    log.info("starting %s", ", ".join(name for name, _ in chosen))
    worker = make_worker(engine, settings)
    engine.listeners.append(worker.wake)
    tasks = [
        asyncio.create_task(engine.outbox.run(stop), name="outbox"),
        asyncio.create_task(worker.run(stop), name="worker"),
        asyncio.create_task(start_scheduled(engine, stop), name="schedules"),
        asyncio.create_task(
            timers.run(engine.fire_timers, engine.next_timer_due, engine.clock, stop), name="timers"
        ),
    ]
    tasks += [asyncio.create_task(fn(engine, settings, stop), name=name) for name, fn in chosen]
    try:
        await stop.wait()
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        engine.close()
    return 0


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
