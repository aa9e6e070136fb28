"""Logs an operator can use: readable text by default, ``LOG_FORMAT=json`` for one JSON object per
line (python-json-logger) with the run, execution, platform and user bound by the engine and the
adapters (engine.logctx). Libraries' request logs (httpx under openai, aiohttp's access log,
slack_sdk, discord.py's HTTP) stay below the default level: in ``pipebot console`` the log shares
the terminal with the chat."""

from __future__ import annotations

import logging
import sys
from typing import Literal, TextIO

from pythonjsonlogger.json import JsonFormatter

from engine.logctx import FIELDS, ContextFilter

LogFormat = Literal["text", "json"]
# Every library logs at WARNING and above unless LOG_LEVEL=DEBUG: many narrate each request at
# INFO (httpx or httpx2 under openai, aiohttp's access log, discord.py, slack_sdk). pipebot's own
# loggers ("pipebot.*") log at LOG_LEVEL; Bolt's, which are under that name, stay quiet too.
CHATTY = ("pipebot.slack.bolt",)
TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class TextFormatter(logging.Formatter):
    """The classic line, with the bound ids at the end when there are any."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = " ".join(f"{k}={getattr(record, k)}" for k in FIELDS if hasattr(record, k))
        return f"{line} [{ids}]" if ids else line


def json_formatter() -> logging.Formatter:
    return JsonFormatter(
        "{asctime}{levelname}{name}{message}",
        style="{",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        json_ensure_ascii=False,
    )


def setup(level: str = "INFO", fmt: LogFormat = "text", stream: TextIO | None = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(json_formatter() if fmt == "json" else TextFormatter(TEXT))
    ours = logging.getLogger("pipebot")
    ours.setLevel(level.upper())
    quiet = logging.DEBUG if ours.level <= logging.DEBUG else logging.WARNING
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(quiet)
    for name in CHATTY:
        logging.getLogger(name).setLevel(quiet)
    return handler
