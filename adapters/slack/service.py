"""`run_slack`: the Slack side of `pipebot serve`, over HTTP or Socket Mode.

HTTP: an aiohttp server on PIPEBOT_HTTP_PORT with POST /slack/events (slash commands,
interactivity and events) and GET /healthz. Socket Mode (SLACK_APP_TOKEN set): no public URL;
bolt's AsyncSocketModeHandler asks apps.connections.open (on SLACK_API_URL, like every Web API
call) for a websocket URL and receives the same payloads there.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from aiohttp import web

from adapters.slack.app import SlackApp, SocketModeHandler, create_slack_app, create_slack_handler
from adapters.slack.directory import PLATFORM
from adapters.slack.stream import SlackTurns
from bot.settings import Settings
from engine import metrics
from engine.api import Engine

log = logging.getLogger("pipebot.slack")
EVENTS_PATH = "/slack/events"


async def healthz(_: web.Request) -> web.Response:
    return web.Response(text="ok")


class HttpServer:
    """The request URL Slack posts to; `start` returns the base URL it listens on."""

    def __init__(
        self, slack: SlackApp, extra_routes: Callable[[web.Application], None] | None = None
    ) -> None:
        self.slack, self.extra_routes = slack, extra_routes
        self.runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        try:
            return await self.slack.handle(request)
        finally:
            metrics.ACK_SECONDS.labels(PLATFORM).observe(time.perf_counter() - started)

    async def start(self, host: str = "0.0.0.0", port: int = 3000) -> str:
        app = web.Application()
        app.router.add_post(EVENTS_PATH, self._handle)
        if self.extra_routes is not None:  # serve's /healthz, /readyz, /metrics
            self.extra_routes(app)
        else:
            app.router.add_get("/healthz", healthz)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, port)
        await site.start()
        bound = self.runner.addresses[0][1] if self.runner.addresses else port
        return f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{bound}"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


async def create_from_settings(engine: Engine, settings: Settings, handle_here: bool = True) -> SlackApp:
    if not settings.slack_bot_token:
        raise ValueError("SLACK_BOT_TOKEN is not set")
    return await create_slack_app(
        engine,
        token=settings.slack_bot_token,
        signing_secret=settings.slack_signing_secret,
        api_url=settings.slack_api_url,
        max_artifact_bytes=settings.pipebot_max_upload_bytes,
        handle_here=handle_here,
    )


async def run_slack_engine(engine: Engine, settings: Settings, stop: asyncio.Event) -> None:
    """The engine process's Slack: inbox rows handled and the outbox delivered over the Web API."""
    if not settings.slack_bot_token:
        raise ValueError("SLACK_BOT_TOKEN is not set")
    ctx, deliverer = await create_slack_handler(
        engine,
        token=settings.slack_bot_token,
        api_url=settings.slack_api_url,
        max_artifact_bytes=settings.pipebot_max_upload_bytes,
    )
    engine.outbox.register(PLATFORM, deliverer)
    engine.turn_sinks[PLATFORM] = SlackTurns(deliverer.client)
    try:
        await stop.wait()
    finally:
        await ctx.idle()
        await ctx.http.close()


async def run_slack(
    engine: Engine,
    settings: Settings,
    stop: asyncio.Event,
    extra_routes: Callable[[web.Application], None] | None = None,
    handle_here: bool = True,
) -> None:
    """Slack requests in: verified, recorded in the inbox and acked (handled here or, with
    ``handle_here`` False, in the engine process); with ``handle_here`` the outbox too."""
    slack = await create_from_settings(engine, settings, handle_here)
    if handle_here:
        engine.outbox.register(PLATFORM, slack.deliverer)
        engine.turn_sinks[PLATFORM] = SlackTurns(slack.deliverer.client)
    try:
        if settings.slack_app_token:
            handler = SocketModeHandler(slack, settings.slack_app_token)
            await handler.connect_async()  # type: ignore[no-untyped-call]
            log.info("slack: connected in Socket Mode")
            try:
                await stop.wait()
            finally:
                await handler.close_async()  # type: ignore[no-untyped-call]
        else:
            server = HttpServer(slack, extra_routes)
            url = await server.start(port=settings.pipebot_http_port)
            log.info("slack: listening on %s%s", url, EVENTS_PATH)
            try:
                await stop.wait()
            finally:
                await server.stop()
    finally:
        await slack.close()
