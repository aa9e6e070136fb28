"""WhenQuiet: bookkeeping written once the front has been quiet for a moment, never lost."""

from __future__ import annotations

import asyncio
import logging

import pytest

from engine.batching import WhenQuiet

QUIET = 0.05


def recorder() -> tuple[list[tuple[float, list[int]]], WhenQuiet[int]]:
    written: list[tuple[float, list[int]]] = []

    def write(batch: list[int]) -> None:
        written.append((asyncio.get_running_loop().time(), batch))

    return written, WhenQuiet(write, quiet=QUIET, longest=0.5)


async def test_what_is_added_together_is_written_once_the_loop_was_quiet() -> None:
    written, later = recorder()
    start = asyncio.get_running_loop().time()
    later.add(1)
    later.add(2)
    assert written == []  # not on the spot: a request may be coming in
    await asyncio.sleep(QUIET * 3)
    [(at, batch)] = written
    assert batch == [1, 2] and at - start >= QUIET


async def test_each_busy_moment_holds_the_write_back_until_quiet_again() -> None:
    written, later = recorder()
    later.add(1)
    loop = asyncio.get_running_loop()
    for _ in range(4):  # requests keep coming, closer together than QUIET
        await asyncio.sleep(QUIET / 2)
        later.busy()
        assert written == []
    last_busy = loop.time()
    await asyncio.sleep(QUIET * 3)
    [(at, batch)] = written
    assert batch == [1] and at - last_busy >= QUIET * 0.9


async def test_a_loop_that_is_never_quiet_still_writes_within_longest() -> None:
    written, later = recorder()
    start = asyncio.get_running_loop().time()
    later.add(1)
    while not written:
        await asyncio.sleep(QUIET / 5)
        later.busy()
        assert asyncio.get_running_loop().time() - start < 2.0, "never written"
    [(at, batch)] = written
    assert batch == [1] and 0.5 <= at - start < 1.0


async def test_flush_writes_at_once_and_a_failing_write_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    written, later = recorder()
    later.add(7)
    later.flush()  # a clean stop: nothing pending is left behind
    assert [batch for _, batch in written] == [[7]]
    await asyncio.sleep(QUIET * 2)
    assert len(written) == 1  # the timer went with the flush

    def fail(batch: list[int]) -> None:
        raise OSError("disk full")

    broken = WhenQuiet(fail, quiet=QUIET)
    broken.add(1)
    with caplog.at_level(logging.ERROR, logger="pipebot.batching"):
        await asyncio.sleep(QUIET * 3)
    assert "1 deferred writes failed" in caplog.text
