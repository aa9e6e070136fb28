"""What every Slack listener needs: the engine, the Web API client, the directory, and a place
for the work that runs after the ack (kept referenced so it is neither lost nor collected).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from adapters.slack.directory import Directory
from adapters.slack.render import Rendered
from engine.api import Engine

log = logging.getLogger("pipebot.slack")
T = TypeVar("T")


class AcksFirst:
    """Work after an ack gives way to requests being answered, for at most `max_wait`.

    Everything shares one event loop (and one GIL with the engine's threads): a burst of clicks
    would otherwise see each ack wait behind the engine work and Slack calls of the clicks
    before it. The bound keeps background work from starving under a steady stream of requests
    (and keeps modals within their trigger_id's 3 s).
    """

    def __init__(self, max_wait: float = 0.25) -> None:
        self.max_wait = max_wait
        self.in_flight = 0
        self._quiet = asyncio.Event()
        self._quiet.set()

    def begin(self) -> None:
        self.in_flight += 1
        self._quiet.clear()

    def end(self) -> None:
        self.in_flight -= 1
        if self.in_flight <= 0:
            self.in_flight = 0
            self._quiet.set()

    async def wait(self) -> None:
        if self.in_flight:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._quiet.wait(), self.max_wait)


@dataclass
class SlackContext:
    engine: Engine
    client: AsyncWebClient
    directory: Directory
    http: aiohttp.ClientSession  # file downloads and response_url posts
    bot_token: str
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    acks_first: AcksFirst = field(default_factory=AcksFirst)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Engine commands are synchronous (SQLite): run them off the event loop."""
        return await asyncio.to_thread(fn, *args)

    def spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """Run `work` after the ack; errors are logged, never lost silently."""
        task = asyncio.create_task(self._guard(work, name), name=name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _guard(self, work: Coroutine[Any, Any, None], name: str) -> None:
        try:
            await self.acks_first.wait()
            await work
        except Exception:
            log.exception("slack: %s failed", name)

    async def idle(self, timeout: float = 10.0) -> None:
        """Wait for the work started by past requests (shutdown, tests)."""
        while self.tasks or self.engine.inbox.busy:
            await self.engine.inbox.idle(timeout)
            if self.tasks:
                await asyncio.wait(set(self.tasks), timeout=timeout)

    async def tell(self, body: dict[str, Any], message: Rendered, *, ephemeral: bool = True) -> None:
        """Answer whoever sent `body` (a slash command or a click), by default only to them.

        Through the request's response_url when there is one: it works in any conversation,
        even those the bot is not in. Clicks in the App Home have none: answer in the app's DM.
        """
        url = body.get("response_url")
        user = body.get("user_id") or (body.get("user") or {}).get("id")
        if url:
            webhook = AsyncWebhookClient(url, session=self.http)
            resp = await webhook.send(
                text=message.text,
                blocks=message.blocks,
                response_type="ephemeral" if ephemeral else "in_channel",
                replace_original=False,
            )
            if resp.status_code == 200:
                return
            log.warning("response_url answered %s: %s", resp.status_code, resp.body)
        if user:
            try:
                await self.client.chat_postMessage(channel=user, text=message.text, blocks=message.blocks)
            except SlackApiError as exc:
                log.warning("could not tell %s: %r", user, exc)
