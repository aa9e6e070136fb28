"""`pipebot serve` replicas as real processes on one database, driven like Slack drives them.

The test process holds the loopback Slack fake (Web API) and plays Slack's clients: signed slash
commands, clicks and modal submissions sent round-robin to the replicas' HTTP ports. Used by
tests/bot/test_replicas.py and bench/replicas.py.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_records import Message
from tests.fakes.slack_signing import SlackClientSim

SECRET = "replicas-signing-secret"
CHANNEL = "C0PIPE"
ROOT = Path(__file__).resolve().parents[2]
PIPELINE = """\
id: pair
name: Pair
auto_advance: true
approvers: []
prevent_self_approval: false
checkpoints:
  - id: brief
    name: Brief
    mode: human_only
    inputs:
      - {id: topic, label: Topic, type: text, required: true, max_length: 200}
    human: {approval_to_start: false, approval_to_complete: true, max_revisions: 0}
    save_form_as_artifact: true
    outputs: [{name: brief, format: json}]
  - id: review
    name: Review
    mode: human_only
    human: {approval_to_start: true, approval_to_complete: true, max_revisions: 0}
"""
T = TypeVar("T")
ATTEMPTS, EFFECT_SECONDS = 4, 30.0


def free_port() -> int:
    """A free port below Linux's ephemeral range: one from bind(0) may be taken meanwhile by an
    outgoing connection (the replicas' own database connections) before the replica binds it."""
    while True:
        port = random.randint(20000, 30000)
        with socket.socket() as s:
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port


@dataclass
class Replica:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None


@dataclass
class Replicas:
    base: Path
    database_url: str | None
    fake: FakeSlack | None  # None: no Slack (extra_env says what to run instead)
    stale_seconds: float = 3.0
    extra_env: dict[str, str] = field(default_factory=dict)
    members: list[Replica] = field(default_factory=list)
    _turn: itertools.count[int] = field(default_factory=itertools.count)

    def env(self, port: int) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SLACK_", "DISCORD_", "PIPEBOT_", "OPENAI_")) and k != "DATABASE_URL"
        }
        if self.fake is not None:
            env.update(
                SLACK_BOT_TOKEN=self.fake.token, SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=self.fake.api_url
            )
        env.update(
            BASE_PIPELINES_PATH=str(self.base),
            PIPEBOT_HTTP_PORT=str(port),
            PIPEBOT_WORKER_STALE_SECONDS=str(self.stale_seconds),
            LOG_LEVEL="WARNING",
            PYTHONPATH=str(ROOT),
        )
        if self.database_url:
            env["DATABASE_URL"] = self.database_url
        env.update(self.extra_env)
        return env

    def start(self, n: int = 1, **env: str) -> list[Replica]:
        started = []
        for _ in range(n):
            port = free_port()
            log = self.base.parent / f"replica-{len(self.members)}.log"
            proc = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "serve"],
                env={**self.env(port), **env},
                cwd=self.base.parent,  # no .env file of the repository
                stdout=subprocess.DEVNULL,
                stderr=log.open("wb"),
            )
            replica = Replica(proc, port, log)
            self.members.append(replica)
            started.append(replica)
        return started

    async def ready(self, replicas: list[Replica] | None = None, timeout: float = 60) -> None:
        async with aiohttp.ClientSession() as http:
            for r in replicas or self.members:
                deadline = time.monotonic() + timeout
                while True:
                    assert r.alive, f"replica exited early:\n{r.log.read_text()[-3000:]}"
                    answer = ""
                    try:
                        async with http.get(f"http://127.0.0.1:{r.port}/readyz") as resp:
                            if resp.status == 200:
                                break
                            answer = await resp.text()
                    except aiohttp.ClientError as exc:
                        answer = repr(exc)
                    assert time.monotonic() < deadline, f"not ready ({answer}):\n{r.log.read_text()[-3000:]}"
                    await asyncio.sleep(0.1)

    async def metric(self, replica: Replica, sample: str) -> float | None:
        """The largest sample of a replica's /metrics with this name and these labels (and any
        others: `process` says which of its two processes), e.g. 'pipebot_leader{role="schedule"}'."""
        url = f"http://127.0.0.1:{replica.port}/metrics"
        async with aiohttp.ClientSession() as http, http.get(url) as resp:
            text = await resp.text()
        return sample_value(text, sample)

    async def leader(self, role: str) -> Replica | None:
        for r in self.members:
            if r.alive and await self.metric(r, f'pipebot_leader{{role="{role}"}}') == 1.0:
                return r
        return None

    def next_url(self) -> str:
        alive = [r for r in self.members if r.alive]
        return alive[next(self._turn) % len(alive)].url

    def kill(self, replica: Replica) -> float:
        replica.proc.send_signal(signal.SIGKILL)
        replica.proc.wait(10)
        return time.monotonic()

    def stop(self) -> None:
        for r in self.members:
            if r.alive:
                r.proc.send_signal(signal.SIGTERM)
        for r in self.members:
            try:
                r.proc.wait(15)
            except subprocess.TimeoutExpired:
                r.proc.kill()
                r.proc.wait(5)


def sample_value(exposition: str, sample: str) -> float | None:
    """The largest value of the samples named like `sample` whose labels include its labels."""
    name, _, rest = sample.partition("{")
    wanted = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    found = [
        s.value
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
        if s.name == name and wanted.items() <= s.labels.items()
    ]
    return max(found) if found else None


async def until(probe: Callable[[], T | None], timeout: float = 60, what: str = "") -> T:
    started = time.monotonic()
    deadline = started + timeout
    while True:
        found = probe()
        if found is not None and found is not False:
            return found
        now = time.monotonic()
        if now > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        # Close polling first (latency figures), then less often: many waiters scanning the
        # fake's messages would otherwise make this process the bottleneck.
        await asyncio.sleep(0.005 if now - started < 0.2 else 0.05)


def button(message: Message, action: str) -> str | None:
    for block in message.blocks:
        for el in block.get("elements", []):
            if el.get("type") == "button" and str(el.get("action_id", "")).startswith(f"pb:{action}:"):
                return str(el["action_id"])
    return None


@dataclass
class Driver:
    """Runs of the `pair` pipeline, each by its own user, every request to the next replica."""

    replicas: Replicas
    sim: SlackClientSim
    latencies: list[float] = field(default_factory=list)  # click → next message, seconds

    @property
    def fake(self) -> FakeSlack:
        assert self.replicas.fake is not None
        return self.replicas.fake

    def _status(self, name: str) -> Message | None:
        pattern = re.compile(rf"{re.escape(name)}(?!\d)")
        for m in self.fake.messages_in(CHANNEL):
            if pattern.search(m.text):
                return m
        return None

    def _waiting(self, thread: str, action: str, skip: set[str]) -> Message | None:
        for m in self.fake.messages_in(CHANNEL, thread_ts=thread):
            if m.ts not in skip and button(m, action):
                return m
        return None

    async def _act(
        self, send: Callable[[str], Awaitable[Any]], effect: Callable[[], T | None], what: str
    ) -> T:
        """Send a request to the next replica and wait for its effect; like Slack, send it again
        to another replica when one dies before answering. An acknowledged request is never sent
        again: it is in the inbox, and another replica handles it once the dead one's claim is
        stale (engine.inbox)."""
        for _ in range(ATTEMPTS):
            try:
                resp = await send(self.replicas.next_url())
                assert resp.status == 200, resp
            except (aiohttp.ClientError, OSError):
                continue  # the replica died: Slack retries the request elsewhere
            return await until(effect, EFFECT_SECONDS, what)
        raise AssertionError(f"no answer after {ATTEMPTS} tries: {what}")

    def _click(self, user: str, message: Message, action: str) -> Callable[[str], Awaitable[Any]]:
        action_id = button(message, action)
        assert action_id
        return lambda url: self.sim.block_action(
            url, user, action_id, channel_id=CHANNEL, message_ts=message.ts, user_name=user.lower()
        )

    async def run_one(self, user: str, hold: asyncio.Event | None = None) -> str:
        """Start a run and take it to the end: form, approve, approve start, approve."""
        name = await self._act(
            lambda url: self.sim.slash_command(
                url, text="run pair", user_id=user, user_name=user.lower(), channel_id=CHANNEL
            ),
            lambda: self._started(user),
            f"{user}'s run to start",
        )
        status = await until(lambda: self._status(name), what=f"{name}'s status message")
        done: set[str] = set()
        form = await until(lambda: self._waiting(status.ts, "open_form", done), what=f"{name} form")
        if hold is not None:
            await hold.wait()
        execution = (button(form, "open_form") or "").split(":")[2]
        view = await self._open_form(user, form, execution, f"{name}'s modal")
        await self._act(
            lambda url: self.sim.view_submission(
                url, user, view, {"topic": f"topic of {name}"}, user_name=user.lower()
            ),
            lambda: self.fake.get_message(CHANNEL, form.ts).edited,
            f"{name}'s form submitted",
        )
        done.add(form.ts)
        for action in ("approve_complete", "approve_start", "approve_complete"):
            card = await until(lambda a=action: self._waiting(status.ts, a, done), what=f"{name} {action}")  # type: ignore[misc]
            sent = time.monotonic()
            await self._act(
                self._click(user, card, action),
                lambda c=card: self.fake.get_message(CHANNEL, c.ts).edited,  # type: ignore[misc]
                f"{name} {action} decided",
            )
            self.latencies.append(time.monotonic() - sent)
            done.add(card.ts)
        return name

    def _started(self, user: str) -> str | None:
        for e in self.fake.ephemerals:
            m = re.search(r"Started (pair#v\d+)", e.text)
            if e.user == user and m:
                return m.group(1)
        return None

    async def _open_form(self, user: str, form: Message, execution: str, what: str) -> dict[str, Any]:
        """Click Open form until the modal opens. A replica that acked the click and died leaves
        it to another, past the trigger's 3 s: the person is told to click again, and does."""
        for _ in range(ATTEMPTS):
            told = len(self.fake.ephemerals)

            def opened(told: int = told) -> dict[str, Any] | bool | None:
                again = any(
                    e.user == user and "before your form could open" in e.text
                    for e in self.fake.ephemerals[told:]
                )
                return self._view(execution) or again or None

            found = await self._act(self._click(user, form, "open_form"), opened, what)
            if isinstance(found, dict):
                return found
        raise AssertionError(f"no modal after {ATTEMPTS} clicks: {what}")

    def _view(self, execution: str) -> dict[str, Any] | None:
        for view in self.fake.opened_views.values():
            if str(view.get("private_metadata")).split(":")[0] == execution:  # id[:revision:digest]
                return view
        return None


def bot_posts(fake: FakeSlack) -> list[Message]:
    return [m for m in fake.messages.values() if m.user == fake.bot_user_id and not m.deleted]


def duplicates(fake: FakeSlack) -> list[Any]:
    """Outbox rows that reached the channel more than once (every post carries its row id)."""
    seen: dict[Any, int] = {}
    for m in bot_posts(fake):
        if m.metadata is not None:
            key = m.metadata["event_payload"]["outbox_id"]
            seen[key] = seen.get(key, 0) + 1
    return [k for k, n in seen.items() if n > 1]
