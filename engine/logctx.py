"""What a log line is about: run, execution, platform and user ids, bound for one unit of work.

Bound with ``contextvars``, so they follow the work into awaited calls, tasks it starts and
``asyncio.to_thread``; ``ContextFilter`` copies them onto every record (the JSON log shows them
as fields, the text log as ``[run=… execution=…]``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

FIELDS = ("run", "execution", "platform", "user")
_bound: ContextVar[dict[str, str]] = ContextVar("pipebot_log_ids", default={})  # noqa: B039


@contextmanager
def bound(**ids: object) -> Iterator[None]:
    """Bind ids (None: left as it was) for the duration of the block."""
    token = _bound.set({**_bound.get(), **{k: str(v) for k, v in ids.items() if v is not None}})
    try:
        yield
    finally:
        _bound.reset(token)


def current() -> dict[str, str]:
    return dict(_bound.get())


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        ids = _bound.get()
        for key in FIELDS:
            if key in ids and not hasattr(record, key):
                setattr(record, key, ids[key])
        return True
