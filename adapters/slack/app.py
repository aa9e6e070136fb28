"""Build pipebot's Slack app: Web API client, the entry points (HTTP, Socket Mode), bolt's listeners.

A request is verified and read once (adapters.slack.requests). Commands, clicks and form
submissions, nearly every request, are recorded in the inbox and acked (adapters.slack.inbox.take);
the work runs from the row. Everything else (events, the workflow step) goes to bolt's AsyncApp,
which runs its listeners before answering (``process_before_response``); they ack at once and hand
their work to `SlackContext.spawn`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import send_async_response
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import AsyncConnectionErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import home, inbox, requests, workflow
from adapters.slack.context import SlackContext
from adapters.slack.deliver import DEFAULT_MAX_ARTIFACT_BYTES, SlackDeliverer
from adapters.slack.directory import PLATFORM, Directory
from engine.api import Engine
from engine.inbox import digest

log = logging.getLogger("pipebot.slack")
MAX_INLINE_WAIT = 5.0  # longer Retry-After waits are left to the outbox (RetryLater)


class RateLimitRetryHandler(AsyncRetryHandler):
    """Wait out a 429's Retry-After and try again, when the wait is short.

    slack_sdk's AsyncRateLimitErrorRetryHandler waits whatever Slack says (a minute, say) while
    the caller holds a click or a delivery; past `max_wait` the 429 surfaces instead, and the
    deliverer turns it into RetryLater so the outbox waits without holding anything.
    """

    def __init__(self, max_retry_count: int = 3, max_wait: float = MAX_INLINE_WAIT) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return (
            response is not None and response.status_code == 429 and _retry_after(response) <= self.max_wait
        )

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        assert response is not None
        state.next_attempt_requested = True
        await asyncio.sleep(_retry_after(response) + random.uniform(0, 0.1))
        state.increment_current_attempt()


def _retry_after(response: HttpResponse) -> float:
    for key, values in response.headers.items():
        if key.lower() == "retry-after" and values:
            try:
                return float(values[0])
            except ValueError:
                break
    return 1.0


def build_client(token: str, api_url: str, session: aiohttp.ClientSession | None = None) -> AsyncWebClient:
    return AsyncWebClient(
        token=token,
        base_url=api_url,
        session=session,  # one pooled session: no new TCP connection per call
        timeout=30,
        retry_handlers=[AsyncConnectionErrorRetryHandler(max_retry_count=2), RateLimitRetryHandler()],
    )


@dataclass
class SlackApp:
    app: AsyncApp
    ctx: SlackContext
    deliverer: SlackDeliverer
    owns_session: bool
    verifier: SignatureVerifier | None = None

    async def handle(self, request: web.Request) -> web.Response:
        """POST /slack/events: slash commands, interactivity and events all arrive here."""
        self.ctx.acks_first.begin()
        try:
            incoming = await requests.read(request, self.verifier)
            if isinstance(incoming, web.Response):
                return incoming
            try:
                answer = await inbox.take(self.ctx, incoming.body, incoming.key, incoming.payload_json)
            except requests.SHAPE_ERRORS as exc:
                log.warning("slack: request of an unexpected shape: %r", exc)
                return web.Response(status=400, text="unexpected shape")
            if answer is None:  # not a command, click or form of ours: bolt's listeners
                answer = await self.app.async_dispatch(incoming.for_bolt())
            return await to_aiohttp_response(answer)
        finally:
            self.ctx.acks_first.end()

    async def close(self) -> None:
        await self.ctx.idle()
        if self.owns_session:
            await self.ctx.http.close()


async def create_slack_app(
    engine: Engine,
    *,
    token: str,
    signing_secret: str | None,
    api_url: str = "https://slack.com/api/",
    max_artifact_bytes: int = DEFAULT_MAX_ARTIFACT_BYTES,
    session: aiohttp.ClientSession | None = None,
    handle_here: bool = True,
) -> SlackApp:
    """The app and its deliverer (call inside the event loop that will serve it).

    ``handle_here``: this process handles the requests' inbox rows (else another process does:
    `pipebot serve`'s engine process, see bot.serve).
    """
    http = session or aiohttp.ClientSession()
    client = build_client(token, api_url, http)
    ctx = SlackContext(engine, client, Directory(client, engine), http, token)
    if handle_here:
        engine.inbox.register(PLATFORM, lambda item: inbox.handle(ctx, item))
    app = AsyncApp(
        client=client,
        signing_secret=signing_secret or "",
        # HTTP requests are verified once, in requests.read, before bolt sees them; Socket Mode
        # envelopes arrive on an authenticated socket.
        request_verification_enabled=False,
        process_before_response=True,
        logger=logging.getLogger("pipebot.slack.bolt"),
    )
    app.use(requests.once(engine))
    app.error(requests.on_error)
    register(app, ctx)
    deliverer = SlackDeliverer(client, engine, max_artifact_bytes, ctx.acks_first)
    verifier = SignatureVerifier(signing_secret) if signing_secret else None
    return SlackApp(app, ctx, deliverer, session is None, verifier)


class SocketModeHandler(AsyncSocketModeHandler):
    """Bolt's Socket Mode handler, recording commands, clicks and forms under their envelope's
    id, so a re-sent envelope is acked without acting on it twice (see adapters.slack.requests)."""

    def __init__(self, slack: SlackApp, app_token: str) -> None:
        super().__init__(slack.app, app_token)  # type: ignore[no-untyped-call]
        self.ctx = slack.ctx

    async def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        started = time.time()
        headers: dict[str, str | Sequence[str]] = {}
        if req.retry_attempt is not None:
            headers["x-slack-retry-num"] = str(req.retry_attempt)
        answer: BoltResponse | None = BoltResponse(status=200, body="")
        problem = requests.shape_problem(req.payload)
        if problem:  # acked and dropped: a non-200 is not acked, and Slack would send it again
            log.warning("slack: malformed envelope %s: %s", req.envelope_id, problem)
        else:
            key = digest(f"slack-envelope:{req.envelope_id}") if req.envelope_id else None
            try:
                answer = await inbox.take(self.ctx, req.payload, key)
            except requests.SHAPE_ERRORS as exc:
                log.warning("slack: envelope %s of an unexpected shape: %r", req.envelope_id, exc)
                answer = BoltResponse(status=200, body="")
        if answer is None:
            bolt_req = AsyncBoltRequest(mode="socket_mode", body=req.payload, headers=headers)
            answer = await self.app.async_dispatch(bolt_req)
        await send_async_response(client, req, answer, started)


async def create_slack_handler(
    engine: Engine,
    *,
    token: str,
    api_url: str = "https://slack.com/api/",
    max_artifact_bytes: int = DEFAULT_MAX_ARTIFACT_BYTES,
) -> tuple[SlackContext, SlackDeliverer]:
    """Slack without a bolt app: the inbox handler and the deliverer (the engine process)."""
    http = aiohttp.ClientSession()
    client = build_client(token, api_url, http)
    ctx = SlackContext(engine, client, Directory(client, engine), http, token)
    engine.inbox.register(PLATFORM, lambda item: inbox.handle(ctx, item))
    return ctx, SlackDeliverer(client, engine, max_artifact_bytes, ctx.acks_first)


def register(app: AsyncApp, ctx: SlackContext) -> None:
    """Bolt's listeners: what is not a command, click or form of ours (those: inbox.take)."""
    home.register(app, ctx)
    workflow.register(app, ctx)


__all__ = [
    "RateLimitRetryHandler",
    "SlackApp",
    "SocketModeHandler",
    "build_client",
    "create_slack_app",
    "create_slack_handler",
    "register",
]
