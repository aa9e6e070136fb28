"""The engine process of `pipebot serve`: inbox handling, outbox, worker and schedules.

Started by bot.serve with the settings as JSON on the first line of stdin. Each further line
wakes the inbox (the front recorded a row), or says a row's ack reached the platform
("acked <id>", see Inbox.until_acked); "stop" asks for a clean stop (what is under way
finishes); the end of stdin without "stop" means the front died, and this process exits at
once, like the front: the rows it had not handled are handled after the restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import threading

from bot import logs
from bot.serve import engine_tasks, open_engine
from bot.settings import Settings
from engine.api import Engine

log = logging.getLogger("pipebot.engine")


async def run(settings: Settings, lines: asyncio.StreamReader) -> None:
    # Below the front in the CPU scheduler: on a busy machine the acks come first, the work after.
    os.nice(settings.pipebot_engine_nice)
    engine = open_engine(settings)
    engine.inbox.partner = f"{socket.gethostname()}:{os.getppid()}"  # the front's rows: see Inbox.owner
    stop = asyncio.Event()
    listening = threading.Event()
    tasks = engine_tasks(engine, settings, stop, listening)
    if settings.slack_enabled:
        from adapters.slack.service import run_slack_engine

        tasks.append(asyncio.create_task(run_slack_engine(engine, settings, stop), name="slack"))
    if settings.discord_enabled:
        from adapters.discord.service import run_discord_engine

        tasks.append(asyncio.create_task(run_discord_engine(engine, settings, stop), name="discord"))
    tasks.append(asyncio.create_task(report(engine, stop), name="report"))
    try:
        while True:
            line = await lines.readline()
            if not line:  # the front is gone: so is this process
                log.error("the front process went away; exiting")
                os._exit(1)
            if line.strip() == b"stop":
                break
            if line.startswith(b"acked "):  # the front's ack of a row reached the platform
                engine.inbox.acked(int(line.split()[1]))
                continue
            engine.inbox.wake()
    finally:
        stop.set()
        listening.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        engine.close()


async def report(engine: Engine, stop: asyncio.Event, every: float = 1.0) -> None:
    """Tell the front when the outbox last drained (its /readyz checks that the loop is alive)."""
    while not stop.is_set():
        if engine.outbox.last_drain is not None:
            sys.stdout.write(f"drained {engine.outbox.last_drain}\n")
            sys.stdout.flush()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


async def main_async() -> None:
    # Ctrl-C in a terminal reaches the whole process group: the front stops this process itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    first = await reader.readline()
    if not first:
        return
    settings = Settings.model_validate_json(first)
    logs.setup(settings.log_level, settings.log_format)
    await run(settings, reader)


def main() -> int:
    asyncio.run(main_async())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
