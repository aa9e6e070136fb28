"""Socket Mode for the fake Slack (`tests.fakes.slack_api`): the websocket Slack serves apps on.

An app calls ``apps.connections.open`` with its app-level token (``xapp-...``); the fake answers
with a ``ws://127.0.0.1:{port}/socket-mode/{ticket}`` URL served by `SocketModeHub`, which, like
Slack, greets each connection with ``hello``, sends envelopes (``slash_commands``,
``interactive``, ``events_api``) and expects every envelope to be acknowledged with its
``envelope_id`` (the ack may carry a response payload). A ticket is good for one connection.

    envelope_id = await fake.socket.send("interactive", payload)
    ack = await fake.socket.wait_ack(envelope_id)   # {"envelope_id": ..., "payload": {...}?}
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

ACK_DEADLINE = 3.0


@dataclass
class Envelope:
    envelope_id: str
    type: str
    payload: dict[str, Any]
    sent_at: float
    ack: dict[str, Any] | None = None
    acked_at: float | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)


class SocketModeHub:
    def __init__(self, app_id: str = "A0FAKE") -> None:
        self.app_id = app_id
        self.tickets: set[str] = set()
        self.connections: list[web.WebSocketResponse] = []
        self.envelopes: dict[str, Envelope] = {}
        self.errors: list[str] = []
        self.connected = asyncio.Event()
        self.base_url = ""  # ws://127.0.0.1:{port}/ — set by FakeSlack.start

    def issue_url(self) -> str:
        ticket = secrets.token_urlsafe(12)
        self.tickets.add(ticket)
        return f"{self.base_url}socket-mode/{ticket}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ticket = request.match_info["ticket"]
        if ticket not in self.tickets:
            self.errors.append(f"socket: unknown or reused ticket {ticket!r}")
            return web.Response(status=401, text="invalid_ticket")
        self.tickets.discard(ticket)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.connections.append(ws)
        hello = {
            "type": "hello",
            "num_connections": len(self.connections),
            "debug_info": {"host": "fake-socket-mode", "approximate_connection_time": 3600},
            "connection_info": {"app_id": self.app_id},
        }
        await ws.send_str(json.dumps(hello))
        self.connected.set()
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._on_ack(msg.data)
        finally:
            self.connections.remove(ws)
            if not self.connections:
                self.connected.clear()
        return ws

    def _on_ack(self, data: str) -> None:
        try:
            ack = json.loads(data)
        except json.JSONDecodeError:
            self.errors.append(f"socket: message is not JSON: {data[:200]!r}")
            return
        envelope = self.envelopes.get(str(ack.get("envelope_id")))
        if envelope is None:
            self.errors.append(f"socket: ack for an unknown envelope: {data[:200]!r}")
            return
        if envelope.ack is not None:
            self.errors.append(f"socket: envelope {envelope.envelope_id} acked twice")
            return
        envelope.ack, envelope.acked_at = ack, time.monotonic()
        if envelope.acked_at - envelope.sent_at > ACK_DEADLINE:
            self.errors.append(f"socket: envelope {envelope.envelope_id} acked after {ACK_DEADLINE}s")
        envelope.done.set()

    async def send(
        self, kind: str, payload: dict[str, Any], *, retry_attempt: int = 0, envelope_id: str | None = None
    ) -> str:
        """Send one envelope on the newest connection; returns its envelope_id."""
        await asyncio.wait_for(self.connected.wait(), timeout=5)
        eid = envelope_id or secrets.token_hex(16)
        envelope = {
            "envelope_id": eid,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind != "events_api",
            "retry_attempt": retry_attempt,
            "retry_reason": "timeout" if retry_attempt else "",
        }
        self.envelopes[eid] = Envelope(eid, kind, payload, time.monotonic())
        await self.connections[-1].send_str(json.dumps(envelope))
        return eid

    async def wait_ack(self, envelope_id: str, timeout: float = 5.0) -> dict[str, Any]:
        envelope = self.envelopes[envelope_id]
        await asyncio.wait_for(envelope.done.wait(), timeout)
        assert envelope.ack is not None
        return envelope.ack

    async def close(self) -> None:
        for ws in list(self.connections):
            with contextlib.suppress(Exception):
                await ws.close()
