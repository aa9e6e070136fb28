"""Discord's REST API for the benchmark's bots: front doors in processes of their own.

    python -m bench.discord_front_door PORT UPSTREAM   (started by bench.discord_latency)

Real Discord's gateway and REST API are separate, horizontally scaled services: a bot's
follow-ups and message edits do not delay the arrival of its interaction callbacks. Here the fake
(`tests.fakes.discord_fake`, in the driver process) holds the state and validates every request
as strictly as ever; these processes (several, sharing one port through SO_REUSEPORT) only stamp
each request as it arrives (time.monotonic(): CLOCK_MONOTONIC, the same clock in every process on
the machine) and forward it to the fake with that stamp, which the fake uses as the request's time
(the 3 s deadline of an interaction callback, the callback's recorded arrival). Stdin closed: stop.
"""

from __future__ import annotations

import asyncio
import sys
import time

import aiohttp
from aiohttp import web

from bench.machine import quiet_heap

HEADER = "X-Fake-Arrived"
# Hop-by-hop or recomputed headers: not forwarded either way.
SKIP = {"content-length", "transfer-encoding", "connection", "keep-alive", "host", "date", "server"}


async def serve(port: int, upstream: str) -> None:
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), auto_decompress=False)

    async def forward(request: web.Request) -> web.Response:
        arrived = time.monotonic()  # first: before the body is read
        body = await request.read()
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
    asyncio.run(serve(int(sys.argv[1]), sys.argv[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
