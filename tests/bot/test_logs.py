"""Operator logs: text by default, LOG_FORMAT=json one object per line with the bound ids, and no
library request logging at the default level."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot import logs
from engine import logctx
from engine.api import Engine
from tests.conftest import HERE, person


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in (*logs.CHATTY, "pipebot")}
    yield
    root.handlers[:], root.level = handlers, level
    for name, value in levels.items():
        logging.getLogger(name).setLevel(value)


def test_json_lines_carry_the_bound_ids(restore_logging: None, engine: Engine) -> None:
    out = io.StringIO()
    logs.setup("INFO", "json", out)
    with logctx.bound(run="blog-post#v1", execution=7, platform="slack", user="U0ANA"):
        logging.getLogger("pipebot.worker").warning("retrying: %s", "rate limited")
    logging.getLogger("pipebot.outbox").info("plain")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["message"] == "retrying: rate limited" and first["level"] == "WARNING"
    assert (first["run"], first["execution"], first["platform"], first["user"]) == (
        "blog-post#v1", "7", "slack", "U0ANA"
    )  # fmt: skip
    assert first["logger"] == "pipebot.worker" and "time" in first
    assert "run" not in second and second["message"] == "plain"


def test_engine_commands_bind_who_and_what(restore_logging: None, engine: Engine) -> None:
    out = io.StringIO()
    logs.setup("DEBUG", "json", out)
    seen: list[dict[str, str]] = []

    class Spy(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(logctx.current())

    spy = Spy()
    logging.getLogger("sqlalchemy.engine").addHandler(spy)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
    try:
        info = engine.start_run("blog-post", person("ana"), HERE)
        engine.pause(info.name, person("ana"))
    finally:
        logging.getLogger("sqlalchemy.engine").removeHandler(spy)
        logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    assert {"run": "blog-post#v1", "platform": "console", "user": "ana"} in seen


def test_text_by_default_and_library_requests_stay_quiet(restore_logging: None) -> None:
    out = io.StringIO()
    logs.setup("INFO", "text", out)
    logging.getLogger("httpx2").info('HTTP Request: POST http://x/v1/chat/completions "HTTP/1.1 200 OK"')
    logging.getLogger("aiohttp.access").info("127.0.0.1 POST /slack/events 200")
    logging.getLogger("discord.http").info("POST /channels/1/messages 200")
    with logctx.bound(run="r#v1", execution=3):
        logging.getLogger("pipebot.worker").info("claimed")
    (line,) = out.getvalue().splitlines()
    assert line.endswith("INFO pipebot.worker: claimed [run=r#v1 execution=3]")
    logs.setup("DEBUG", "text", out)
    logging.getLogger("httpx2").debug("now shown")
    assert "now shown" in out.getvalue()
