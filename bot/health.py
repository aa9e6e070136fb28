"""Operator endpoints on PIPEBOT_HTTP_PORT: /healthz (alive), /readyz (able to serve), /metrics.

They share the Slack HTTP server when there is one, or get a small server of their own (Socket
Mode, Discord only), so every replica can be probed behind a load balancer.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot import process_metrics
from bot.process_metrics import Families
from engine import metrics
from engine.api import Engine

DRAIN_SILENT_SECONDS = 30.0  # the outbox loop drains at least every second when alive


class Health:
    def __init__(self, engine: Engine, max_outbox_lag: float, outbox_runs: bool) -> None:
        self.engine, self.max_outbox_lag, self.outbox_runs = engine, max_outbox_lag, outbox_runs
        self.loops: dict[str, asyncio.Task[object]] = {}  # this replica's loops: all must be alive
        # The engine process's samples (see bot.process_metrics), when it is a process of its own.
        self.engine_metrics: Callable[[], Awaitable[Families | None]] | None = None

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/metrics", self.metrics)

    async def healthz(self, _: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(self, _: web.Request) -> web.Response:
        problems = [f"{name} stopped" for name, task in self.loops.items() if task.done()]
        last = self.engine.outbox.last_drain
        if self.outbox_runs and (last is None or time.monotonic() - last > DRAIN_SILENT_SECONDS):
            problems.append("the outbox loop is not draining")
        try:
            problems += await asyncio.to_thread(self._database)
        except Exception as exc:
            problems.append(f"database unreachable: {type(exc).__name__}")
        if problems:
            return web.Response(status=503, text="not ready: " + "; ".join(problems))
        return web.Response(text="ready")

    def _database(self) -> list[str]:
        store = self.engine.store
        store.ping()
        problems = [] if store.migrations_current() else ["database migrations are not current"]
        _, lag = self._backlog()
        if lag > self.max_outbox_lag:
            problems.append(f"outbox lag {lag:.0f} s is over {self.max_outbox_lag:.0f} s")
        return problems

    def _backlog(self) -> tuple[int, float]:
        pending, oldest = self.engine.outbox.backlog()
        lag = (self.engine.clock() - oldest) / timedelta(seconds=1) if oldest is not None else 0.0
        metrics.OUTBOX_PENDING.set(pending)
        metrics.OUTBOX_LAG.set(max(0.0, lag))
        return pending, lag

    async def metrics(self, _: web.Request) -> web.Response:
        with contextlib.suppress(Exception):  # the rest of the metrics are still worth serving
            await asyncio.to_thread(self._backlog)
        if self.engine_metrics is None:
            body = generate_latest()
        else:
            body = process_metrics.merged(await self.engine_metrics())
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


class OpsServer:
    """The endpoints alone, when no Slack HTTP server carries them."""

    def __init__(self, health: Health) -> None:
        self.health = health
        self.runner: web.AppRunner | None = None

    async def start(self, port: int, host: str = "0.0.0.0") -> None:
        app = web.Application()
        self.health.add_routes(app)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, host, port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
