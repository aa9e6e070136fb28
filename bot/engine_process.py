"""The engine process of `pipebot serve`: inbox handling, outbox, worker and schedules.

Started by bot.serve with the settings as JSON on the first line of stdin. Then each row the
front records arrives whole ("row <json>"; an empty line means "look in the inbox"), and
"acked <id>" when the row's ack reached the platform (see Inbox.until_acked); "stop" asks
for a clean stop (what is under way finishes); the end of stdin without "stop" means the front
died, and this process exits at once, like the front: the rows it had not handled are handled
after the restart. On stdout it reports the rows it handled ("handled <id> <result as JSON>":
the front writes them to the inbox, see engine/journal.py) and its outbox's drains.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import threading

from bot import logs, process_metrics
from bot.scheduling import throughput_only
from bot.serve import SWITCH_INTERVAL, engine_tasks, freeze_startup_objects, open_engine
from bot.settings import Settings
from engine.api import Engine

log = logging.getLogger("pipebot.engine")


async def run(settings: Settings, lines: asyncio.StreamReader) -> None:
    # Below the front in the CPU scheduler: on a busy machine the acks come first, the work after.
    os.nice(settings.pipebot_engine_nice)
    throughput_only()
    # Commands and deliveries hop between the loop and worker threads many times per click; a
    # shorter GIL switch interval (CPython's default is 5 ms) keeps each hop short.
    sys.setswitchinterval(SWITCH_INTERVAL)
    engine = open_engine(settings)
    engine.inbox.partner = f"{socket.gethostname()}:{os.getppid()}"  # the front's rows: see Inbox.owner
    if engine.inbox.journal is not None:  # SQLite: the front is the journal's one writer
        engine.inbox.report = _report_handled
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
    tasks.append(asyncio.create_task(freeze_startup_objects(stop), name="gc-freeze"))
    try:
        while True:
            line = await lines.readline()
            if not line:  # the front is gone: so is this process
                log.error("the front process went away; exiting")
                os._exit(1)
            if line.strip() == b"stop":
                break
            if line.strip() == b"metrics":
                sys.stdout.write(f"metrics {process_metrics.encode()}\n")
                sys.stdout.flush()
            elif line.startswith(b"row "):
                engine.inbox.hand_over(line[4:].decode())
            elif line.startswith(b"acked "):  # the front's ack of a row reached the platform
                engine.inbox.acked(int(line.split()[1]))
            else:
                engine.inbox.wake()
    finally:
        stop.set()
        listening.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        engine.close()


def _report_handled(row_id: int, result: str | None) -> None:
    sys.stdout.write(f"handled {row_id} {json.dumps(result)}\n")
    sys.stdout.flush()


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
