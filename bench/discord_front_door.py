"""Discord's REST API for the benchmark's bots: front doors in processes of their own.

    python -m bench.discord_front_door PORT UPSTREAM   (started by bench.discord_latency)

Real Discord's gateway and REST API are separate, horizontally scaled services: a bot's
follow-ups and message edits do not delay the arrival of its interaction callbacks. Here the fake
(`tests.fakes.discord_fake`, in the driver process) holds the state and validates every request
as strictly as ever; these processes (several, sharing one port through SO_REUSEPORT) only stamp
each request with its arrival and forward it to the fake with that stamp, which the fake uses as
the request's time (the 3 s deadline of an interaction callback, the callback's recorded arrival).
Stdin closed: stop.

The stamp is the kernel's: when the request's last bytes reached this machine's socket
(SO_TIMESTAMPNS on each read, `StampingLoop`), not when this process got around to reading them.
A process's own clock would add how long it waited for a CPU, and on one machine that wait is the
fake's load (every edit and follow-up a bot sends is work for it), which Discord's servers do
not put on the bot's. Sent as CLOCK_MONOTONIC (the clock of the gateway's dispatch stamps).
"""

from __future__ import annotations

import asyncio
import socket
import struct
import sys
import time
from asyncio import selector_events
from typing import Any

import aiohttp
from aiohttp import web

from bench.machine import quiet_heap

HEADER = "X-Fake-Arrived"
# Hop-by-hop or recomputed headers: not forwarded either way.
SKIP = {"content-length", "transfer-encoding", "connection", "keep-alive", "host", "date", "server"}


SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux


class StampedTransport(selector_events._SelectorSocketTransport):  # type: ignore[name-defined,misc]
    """asyncio's socket transport, reading with recvmsg to keep each read's kernel receive time."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stamps: list[float] = []  # CLOCK_REALTIME, since the last `arrival`

    def _read_ready__data_received(self) -> None:
        if self._conn_lost:
            return
        try:
            data, ancillary, _, _ = self._sock.recvmsg(self.max_size, 64)
        except (BlockingIOError, InterruptedError):
            return
        except Exception as exc:
            self._fatal_error(exc, "Fatal read error on socket transport")
            return
        if not data:
            self._read_ready__on_eof()
            return
        for level, kind, raw in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                seconds, nanoseconds = struct.unpack("qq", raw[:16])
                self.stamps.append(seconds + nanoseconds / 1e9)
        try:
            self._protocol.data_received(data)
        except Exception as exc:
            self._fatal_error(exc, "Fatal error: protocol.data_received() call failed.")


class StampingLoop(asyncio.SelectorEventLoop):
    def _make_socket_transport(  # type: ignore[override]
        self, sock: socket.socket, protocol: Any, waiter: Any = None, *, extra: Any = None, server: Any = None
    ) -> StampedTransport:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        return StampedTransport(self, sock, protocol, waiter, extra, server)


def arrival(request: web.Request) -> float:
    """When the request (read in full) reached the socket, as time.monotonic(); the stamps are
    cleared for the connection's next request (no pipelining: it comes after this response)."""
    stamps: list[float] | None = getattr(request.transport, "stamps", None)
    if not stamps:
        return time.monotonic()
    arrived = stamps[-1] - time.time() + time.monotonic()
    stamps.clear()
    return arrived


async def serve(port: int, upstream: str) -> None:
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), auto_decompress=False)

    async def forward(request: web.Request) -> web.Response:
        body = await request.read()
        arrived = arrival(request)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in SKIP}
        headers[HEADER] = repr(arrived)
        async with session.request(
            request.method, upstream + request.path_qs, data=body, headers=headers
        ) as resp:
            data = await resp.read()
            back = {k: v for k, v in resp.headers.items() if k.lower() not in SKIP}
            return web.Response(status=resp.status, body=data, headers=back)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, reuse_port=True).start()
    quiet_heap()  # no collection pauses in what stamps the arrivals
    print("ready", flush=True)
    try:
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    finally:
        await runner.cleanup()
        await session.close()


def main() -> int:
    with asyncio.Runner(loop_factory=StampingLoop) as runner:
        runner.run(serve(int(sys.argv[1]), sys.argv[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
