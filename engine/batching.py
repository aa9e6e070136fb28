"""Group commit: many callers' small writes in one transaction, in one worker thread.

SQLite has one writer at a time; when each of 64 concurrent requests takes the lock for its own
one-row insert, they queue behind each other and behind SQLite's busy-wait backoff. Here the
items submitted while a transaction runs go together in the next one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger("pipebot.batching")
T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    def __init__(self, fn: Callable[[list[T]], list[R]], *, inline: bool = False) -> None:
        """``fn`` writes a batch in one transaction and returns one result per item, in order.

        ``inline``: call it on the event loop (once per loop iteration, for what came in during
        it) rather than in a thread. For a short insert in a process whose loop does little else
        this is faster: a thread must win the GIL back from the loop after every SQLite call, and
        under load each of those waits costs a switch interval.
        """
        self.fn, self.inline = fn, inline
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._task: asyncio.Task[None] | None = None
        self._scheduled = False

    async def submit(self, item: T) -> R:
        return await self.enqueue(item)

    def enqueue(self, item: T) -> asyncio.Future[R]:
        """Queue ``item`` now (in call order) without waiting for its transaction."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        if self.inline:
            if not self._scheduled:
                self._scheduled = True
                loop.call_soon(self._flush)
        elif self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        return future

    def _flush(self) -> None:
        self._scheduled = False
        batch, self._pending = self._pending, []
        try:
            results = self.fn([item for item, _ in batch])
        except Exception as exc:
            for _, future in batch:
                future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            future.set_result(result)

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                results = await asyncio.to_thread(self.fn, [item for item, _ in batch])
            except BaseException as exc:  # every caller of the batch learns why
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)


class WhenQuiet(Generic[T]):
    """Writes that may wait (bookkeeping nobody awaits): collected, and written in one call on the
    event loop once nothing urgent has happened for ``quiet`` seconds (`busy` marks the urgent,
    such as an interaction to acknowledge), and at most ``longest`` seconds after the first.

    A front's loop answers one request at a time: a commit that lands just as a request comes in
    delays its answer by the commit, and bookkeeping arrives at just such moments (a row's
    "handled" report comes as its answer leaves, when the next click is on its way)."""

    def __init__(
        self, fn: Callable[[list[T]], object], *, quiet: float = 0.005, longest: float = 1.0
    ) -> None:
        self.fn, self.quiet, self.longest = fn, quiet, longest
        self._pending: list[T] = []
        self._first = self._busy = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def add(self, item: T) -> None:
        loop = asyncio.get_running_loop()
        if not self._pending:
            self._first = loop.time()
        self._pending.append(item)
        if self._timer is None:
            self._timer = loop.call_later(self.quiet, self._due)

    def busy(self) -> None:
        """Something urgent is under way: hold the writes back a little (cheap: called per request)."""
        if self._timer is not None:
            self._busy = asyncio.get_running_loop().time()

    def _due(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if now - self._busy < self.quiet and now - self._first < self.longest:
            self._timer = loop.call_at(self._busy + self.quiet, self._due)
            return
        self._timer = None
        self.flush()

    def flush(self) -> None:
        """Write what is pending now (also on close); a failure is logged, not raised."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending, []
        if batch:
            try:
                self.fn(batch)
            except Exception:
                log.exception("%d deferred writes failed", len(batch))
