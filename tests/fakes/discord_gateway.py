"""Gateway half of the Discord fake: the websocket discord.py connects to.

Protocol (JSON encoding): HELLO (op 10) -> IDENTIFY (op 2, token and intents checked) -> READY
then one GUILD_CREATE per configured guild (GUILDS intent); HEARTBEAT (op 1) -> HEARTBEAT_ACK
(op 11); RESUME (op 6) replays the events missed since ``seq`` then RESUMED, or answers
INVALID_SESSION (op 9); REQUEST_GUILD_MEMBERS (op 8) -> one GUILD_MEMBERS_CHUNK.  Protocol errors
close the socket with Discord's close codes (4001 unknown opcode, 4002 decode error, 4003 not
authenticated, 4004 authentication failed, 4005 already authenticated, 4010 invalid shard,
4012 invalid API version, 4013 invalid intents, 4014 disallowed intents).

Transport compression: discord.py 2.7 always asks for ``compress=zlib-stream`` unless
``zstandard`` (or Python 3.14's ``compression.zstd``) is importable, in which case it asks for
``zstd-stream``.  zlib-stream is implemented as on Discord: one zlib context per connection, each
payload compressed and flushed with ``Z_SYNC_FLUSH`` (so it ends with ``00 00 ff ff``) and sent as a
binary frame.  zstd-stream is implemented when ``zstandard`` is installed; otherwise the fake
closes with 4000 and records the violation.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.discord_state import JSON, FakeState, Violation

GUILDS_INTENT = 1 << 0
GUILD_MEMBERS_INTENT = 1 << 1
GUILD_PRESENCES_INTENT = 1 << 8
MESSAGE_CONTENT_INTENT = 1 << 15
PRIVILEGED_INTENTS = GUILD_MEMBERS_INTENT | GUILD_PRESENCES_INTENT | MESSAGE_CONTENT_INTENT
KNOWN_INTENTS = (1 << 26) - 1


def _zstd_compressor() -> Callable[[bytes], bytes] | None:
    try:
        import zstandard  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    stream = zstandard.ZstdCompressor().compressobj()

    def compress(data: bytes) -> bytes:
        return bytes(stream.compress(data) + stream.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK))

    return compress


@dataclass
class GatewaySession:
    """A resumable gateway session (survives reconnects)."""

    id: str
    intents: int
    seq: int = 0
    events: list[JSON] = field(default_factory=list)
    connection: Connection | None = None


@dataclass
class ConnectionInfo:
    """How a client connected: query parameters and what it sent first."""

    query: dict[str, str]
    compress: str | None
    resumed: bool = False
    identified: bool = False
    close_code: int | None = None


class Connection:
    """One websocket connection, with its optional transport compression."""

    def __init__(
        self, ws: web.WebSocketResponse, info: ConnectionInfo, compressor: Callable[[bytes], bytes] | None
    ) -> None:
        self.ws = ws
        self.info = info
        self._compressor = compressor
        self._lock = asyncio.Lock()
        self.session: GatewaySession | None = None

    async def send(self, payload: JSON) -> None:
        """Send one gateway payload (compressed if negotiated)."""
        raw = json.dumps(payload).encode()
        async with self._lock:
            if self.ws.closed:
                return
            if self._compressor is None:
                await self.ws.send_str(raw.decode())
            else:
                await self.ws.send_bytes(self._compressor(raw))

    async def close(self, code: int, reason: str) -> None:
        """Close with a gateway close code."""
        self.info.close_code = code
        await self.ws.close(code=code, message=reason.encode())


class Gateway:
    """The fake gateway websocket and its sessions."""

    def __init__(
        self, state: FakeState, *, heartbeat_interval_ms: int, allowed_privileged_intents: int
    ) -> None:
        self.state = state
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.allowed_privileged_intents = allowed_privileged_intents
        self.url = ""  # ws://127.0.0.1:{port}/gateway, set when the server starts
        self.sessions: dict[str, GatewaySession] = {}
        self.connections: list[ConnectionInfo] = []
        self.heartbeats = 0
        self._live: set[Connection] = set()

    # -- public helpers ----------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Whether an identified (or resumed) client is connected."""
        return any(c.session is not None and not c.ws.closed for c in self._live)

    @property
    def live(self) -> int:
        """Open gateway connections that identified or resumed (one per connected client)."""
        return sum(1 for c in self._live if c.session is not None and not c.ws.closed)

    @property
    def intents(self) -> int | None:
        """Intents of the last IDENTIFY."""
        return int(self.state.identifies[-1]["intents"]) if self.state.identifies else None

    async def dispatch(self, event: str, data: JSON, *, intent: int | None = None) -> int:
        """Send a DISPATCH to every session (that has ``intent``).

        Sessions whose client is disconnected buffer the event for RESUME.  Returns how many
        connected clients received it.
        """
        reached = 0
        for session in list(self.sessions.values()):
            if intent is not None and not session.intents & intent:
                continue
            await self._dispatch_to(session, event, data)
            reached += session.connection is not None
        return reached

    async def send_op(self, op: int, data: Any = None) -> None:
        """Send a raw opcode (e.g. 7 RECONNECT) to every live connection."""
        for conn in list(self._live):
            await conn.send({"op": op, "d": data, "s": None, "t": None})

    async def close_all(self, code: int = 1001) -> None:
        """Close every live connection."""
        for conn in list(self._live):
            if not conn.ws.closed:
                await conn.close(code, "fake gateway shutting down")

    # -- internals ---------------------------------------------------------------------------

    async def _dispatch_to(self, session: GatewaySession, event: str, data: JSON) -> None:
        session.seq += 1
        payload = {"op": 0, "t": event, "s": session.seq, "d": data}
        session.events.append(payload)
        if session.connection is not None:
            await session.connection.send(payload)

    def _violation(self, code: int, message: str, detail: str) -> None:
        self.state.errors.append(Violation("WS", "/gateway", 0, code, message, details=(detail,)))
        self.state.notify()

    async def _fail(self, conn: Connection, code: int, reason: str, detail: str = "") -> None:
        self._violation(code, reason, detail or reason)
        await conn.close(code, reason)

    def _ready_payload(self, session: GatewaySession) -> JSON:
        return {
            "v": 10,
            "user": {**self.state.bot_user.payload(), "verified": True, "mfa_enabled": False, "email": None},
            "guilds": [{"id": str(g), "unavailable": True} for g in self.state.guilds],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.url,
            "shard": [0, 1],
            "application": {"id": str(self.state.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "user_settings": {},
            "auth": {},
            "_trace": ['["fake-gateway",{"micros":0}]'],
        }

    async def _identify(self, conn: Connection, data: Any) -> bool:
        if not isinstance(data, dict) or not isinstance(data.get("properties"), dict):
            await self._fail(conn, 4002, "Decode error", "IDENTIFY without properties")
            return False
        if data.get("token") != self.state.token:
            await self._fail(conn, 4004, "Authentication failed.", "IDENTIFY with a wrong token")
            return False
        intents = data.get("intents")
        if not isinstance(intents, int) or isinstance(intents, bool) or intents & ~KNOWN_INTENTS:
            await self._fail(conn, 4013, "Invalid intent(s).", f"intents={intents!r}")
            return False
        if intents & PRIVILEGED_INTENTS & ~self.allowed_privileged_intents:
            await self._fail(
                conn,
                4014,
                "Disallowed intent(s).",
                f"privileged intents {intents & PRIVILEGED_INTENTS:#x} not enabled",
            )
            return False
        shard = data.get("shard")
        if shard is not None and list(shard) != [0, 1]:
            await self._fail(conn, 4010, "Invalid shard.", f"shard={shard!r}")
            return False
        self.state.identifies.append(dict(data))
        session = GatewaySession(secrets.token_hex(16), intents)
        self.sessions[session.id] = session
        conn.session = session
        conn.info.identified = True
        session.connection = conn
        await self._dispatch_to(session, "READY", self._ready_payload(session))
        if intents & GUILDS_INTENT:
            for guild in self.state.guilds.values():
                await self._dispatch_to(session, "GUILD_CREATE", self.state.guild_payload(guild))
        self.state.notify()
        return True

    async def _resume(self, conn: Connection, data: Any) -> bool:
        if not isinstance(data, dict):
            await self._fail(conn, 4002, "Decode error", "RESUME without an object")
            return False
        if data.get("token") != self.state.token:
            await self._fail(conn, 4004, "Authentication failed.", "RESUME with a wrong token")
            return False
        session = self.sessions.get(str(data.get("session_id")))
        if session is None:
            await conn.send({"op": 9, "d": False, "s": None, "t": None})
            return True
        if session.connection is not None and session.connection is not conn:
            old = session.connection
            session.connection = None
            if not old.ws.closed:
                await old.close(4009, "Session timed out.")
        seq = data.get("seq") or 0
        conn.session = session
        conn.info.resumed = True
        session.connection = conn
        for event in session.events:
            if int(event["s"]) > seq:
                await conn.send(event)
        await self._dispatch_to(session, "RESUMED", {"_trace": ['["fake-gateway",{"micros":0}]']})
        self.state.notify()
        return True

    async def _members_chunk(self, conn: Connection, data: Any) -> None:
        if not isinstance(data, dict) or conn.session is None:
            return
        guild = self.state.guilds.get(int(data.get("guild_id") or 0))
        if guild is None:
            return
        chunk: JSON = {
            "guild_id": str(guild.id),
            "members": [self.state.member_payload(guild, m) for m in guild.members.values()],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        await self._dispatch_to(conn.session, "GUILD_MEMBERS_CHUNK", chunk)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """The ``/gateway`` websocket endpoint."""
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        query = dict(request.query)
        compress = query.get("compress")
        info = ConnectionInfo(query, compress)
        self.connections.append(info)
        compressor: Callable[[bytes], bytes] | None = None
        unsupported = None
        if compress == "zlib-stream":
            zlib_stream = zlib.compressobj()

            def compressor(data: bytes) -> bytes:
                return zlib_stream.compress(data) + zlib_stream.flush(zlib.Z_SYNC_FLUSH)
        elif compress == "zstd-stream":
            compressor = _zstd_compressor()
            unsupported = (
                None if compressor is not None else "zstd-stream needs the zstandard package in the fake"
            )
        elif compress is not None:
            unsupported = f"unknown compress={compress!r}"
        conn = Connection(ws, info, compressor)
        self._live.add(conn)
        try:
            if query.get("v") != "10":
                await self._fail(conn, 4012, "Invalid API version", f"v={query.get('v')!r}")
                return ws
            if query.get("encoding", "json") != "json":
                await self._fail(
                    conn, 4002, "Decode error", f"encoding={query.get('encoding')!r} is not supported"
                )
                return ws
            if unsupported is not None:
                await self._fail(conn, 4000, "Unknown error", unsupported)
                return ws
            await conn.send(
                {
                    "op": 10,
                    "d": {"heartbeat_interval": self.heartbeat_interval_ms, "_trace": []},
                    "s": None,
                    "t": None,
                }
            )
            await self._serve(conn)
        finally:
            self._live.discard(conn)
            session = conn.session
            if session is not None and session.connection is conn:
                session.connection = None
                if ws.close_code in (1000, 1001):
                    # A clean close by the client ends the session, as on Discord.
                    self.sessions.pop(session.id, None)
            self.state.notify()
        return ws

    async def _serve(self, conn: Connection) -> None:
        async for msg in conn.ws:
            if msg.type != WSMsgType.TEXT:
                if msg.type == WSMsgType.BINARY:
                    await self._fail(conn, 4002, "Decode error", "binary frames (ETF) are not supported")
                return
            try:
                payload = json.loads(msg.data)
            except ValueError:
                await self._fail(conn, 4002, "Decode error", "invalid JSON")
                return
            if not isinstance(payload, dict):
                await self._fail(conn, 4002, "Decode error", "payload is not an object")
                return
            op = payload.get("op")
            data = payload.get("d")
            if op == 1:
                self.heartbeats += 1
                await conn.send({"op": 11, "d": None, "s": None, "t": None})
            elif op == 2:
                if conn.session is not None:
                    await self._fail(conn, 4005, "Already authenticated.")
                    return
                if not await self._identify(conn, data):
                    return
            elif op == 6:
                if conn.session is not None:
                    await self._fail(conn, 4005, "Already authenticated.")
                    return
                if not await self._resume(conn, data):
                    return
            elif conn.session is None:
                await self._fail(conn, 4003, "Not authenticated.", f"op {op!r} before IDENTIFY")
                return
            elif op == 8:
                await self._members_chunk(conn, data)
            elif op in (3, 4):
                continue  # presence / voice state updates are accepted and ignored
            else:
                await self._fail(conn, 4001, "Unknown opcode.", f"op {op!r}")
                return
