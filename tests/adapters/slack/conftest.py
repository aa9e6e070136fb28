"""A running pipebot Slack app (real slack_bolt over real HTTP on loopback) against FakeSlack."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from adapters.slack.app import SlackApp, create_slack_app
from adapters.slack.directory import PLATFORM
from adapters.slack.service import EVENTS_PATH, HttpServer
from engine.api import Engine
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_records import Message
from tests.fakes.slack_signing import SimResponse, SlackClientSim

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
CHANNEL = "C0PIPE"


@dataclass
class Harness:
    engine: Engine
    fake: FakeSlack
    slack: SlackApp
    server: HttpServer
    sim: SlackClientSim
    base: str

    @property
    def url(self) -> str:
        return self.base + EVENTS_PATH

    async def settle(self) -> None:
        """Wait for the work started after each ack, then deliver everything the engine wrote."""
        while True:
            await self.slack.ctx.idle()
            if not await self.engine.outbox.drain() and not self.slack.ctx.tasks:
                return

    async def command(self, text: str, user: str = "U0ANA", channel: str = CHANNEL) -> SimResponse:
        resp = await self.sim.slash_command(
            self.url, text=text, user_id=user, user_name=user[2:].lower(), channel_id=channel
        )
        assert resp.status == 200, resp
        await self.settle()
        return resp

    def run_message(self, channel: str = CHANNEL) -> Message:
        return self.fake.messages_in(channel)[-1]

    def thread(self, channel: str = CHANNEL) -> list[Message]:
        return self.fake.messages_in(channel, thread_ts=self.run_message(channel).ts)

    def last_with_button(self, action: str, channel: str = CHANNEL) -> Message:
        found = [m for m in self.thread(channel) if button_id(m, action)]
        assert found, f"no message with a {action} button in the thread:\n{self.fake.describe()}"
        return found[-1]

    async def click(
        self, user: str, message: Message, action: str, *, settle: bool = True, **delivery: Any
    ) -> SimResponse:
        action_id = button_id(message, action)
        assert action_id, f"no {action} button in {message.blocks}"
        resp = await self.sim.block_action(
            self.url, user, action_id, channel_id=message.channel, message_ts=message.ts,
            user_name=user[2:].lower(), **delivery,
        )  # fmt: skip
        if settle:
            await self.settle()
        return resp

    def ephemerals_for(self, user: str) -> list[str]:
        return [e.text for e in self.fake.ephemerals if e.user == user]


def button_id(message: Message, action: str) -> str | None:
    for block in message.blocks:
        for el in block.get("elements", []):
            if el.get("type") == "button" and str(el.get("action_id", "")).startswith(f"pb:{action}:"):
                return str(el["action_id"])
    return None


def has_buttons(message: Message) -> bool:
    return any(b.get("type") == "actions" for b in message.blocks)


def all_text(message: Message) -> str:
    return message.text + "\n" + json.dumps(message.blocks, ensure_ascii=False)


async def start_harness(engine: Engine, fake: FakeSlack) -> Harness:
    slack = await create_slack_app(engine, token=fake.token, signing_secret=SECRET, api_url=fake.api_url)
    engine.outbox.register(PLATFORM, slack.deliverer)
    server = HttpServer(slack)
    base = await server.start("127.0.0.1", 0)
    return Harness(engine, fake, slack, server, SlackClientSim(SECRET, fake), base)


async def stop_harness(h: Harness) -> None:
    await h.sim.close()
    await h.server.stop()
    await h.slack.close()


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as server:
        yield server


@pytest.fixture
async def h(engine: Engine, fake: FakeSlack) -> AsyncIterator[Harness]:
    harness = await start_harness(engine, fake)
    try:
        yield harness
    finally:
        await stop_harness(harness)
