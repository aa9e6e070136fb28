"""The inbox as `pipebot serve`'s front uses it: rows recorded here and handled by the engine
process, which hears of a row (and of its ack) through hooks, and reports it handled."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.actors import Actor, Conversation
from engine.api import Engine
from engine.inbox import InboxItem, Interaction
from engine.models import InboxRow

PLATFORM = "discord"  # handled elsewhere: this inbox has no handler for it


@pytest.fixture
def front(tmp_path: Path) -> Iterator[Engine]:
    engine = Engine.open(tmp_path / "pipelines")
    engine.inbox.inline_records = True
    yield engine
    engine.close()


def click(n: int) -> Interaction:
    return Interaction(
        PLATFORM,
        "click",
        Actor(PLATFORM, "42", "alice"),
        Conversation(PLATFORM, "C1"),
        {"id": str(n), "data": {"custom_id": "pb:approve_start:1"}},
        dedup_key=f"discord:{n}",
    )


def handled_at(engine: Engine, row_id: int) -> object:
    with engine.inbox.rows.read() as s:
        return s.scalar(select(InboxRow.handled_at).where(InboxRow.id == row_id))


async def test_the_handling_process_hears_of_a_row_at_once_and_of_its_ack_after(front: Engine) -> None:
    told: list[int] = []
    acks: list[int] = []

    def recorded(item: InboxItem) -> None:
        told.append(item.id)

    front.inbox.on_recorded.append(recorded)
    front.inbox.on_acked.append(acks.append)
    row_id = await front.inbox.accept_soon(click(1))
    assert row_id is not None and handled_at(front, row_id) is None  # the row is there, durable
    assert told == [row_id] and acks == []  # it may start on the row while the ack is on its way
    front.inbox.tell_acked(row_id, PLATFORM)
    assert acks == [row_id]
    assert await front.inbox.accept_soon(click(1)) is None  # a replay: no row, no word
    assert told == [row_id]


async def test_a_row_held_back_is_announced_once_when_the_front_says_so(front: Engine) -> None:
    told: list[int] = []
    front.inbox.on_recorded.append(lambda item: told.append(item.id))
    row_id = await front.inbox.accept_soon(click(2), announce=False)
    assert row_id is not None and handled_at(front, row_id) is None  # durable before any word
    assert told == []  # the ack goes out first (the Discord front's deferral)
    front.inbox.announce(row_id)
    front.inbox.announce(row_id)  # the front's fallback after a failed deferral: no second word
    assert told == [row_id]
    assert await front.inbox.accept_soon(click(2), announce=False) is None  # a replay
    front.inbox.announce(row_id)
    assert told == [row_id]


async def test_rows_queued_in_one_loop_step_are_recorded_in_call_order(front: Engine) -> None:
    pending = [front.inbox.accept_soon(click(n)) for n in range(5)]  # as a gateway reader's step would
    ids = [i for i in await asyncio.gather(*pending) if i is not None]
    assert len(ids) == 5 and ids == sorted(ids)


async def test_handled_reports_answer_at_once_and_reach_the_journal_when_the_front_is_quiet(
    front: Engine,
) -> None:
    row_id = await front.inbox.accept(click(3))
    assert row_id is not None
    waiting = asyncio.ensure_future(front.inbox.result(row_id, timeout=5))
    await asyncio.sleep(0)
    front.inbox.finished(row_id, "done")  # the engine process's report
    assert await asyncio.wait_for(waiting, 0.5) == "done"  # whoever waits hears it now
    assert handled_at(front, row_id) is None  # the write waits for a quiet moment
    for _ in range(100):
        if handled_at(front, row_id) is not None:
            break
        await asyncio.sleep(0.01)
    assert handled_at(front, row_id) is not None


async def test_handled_reports_pending_at_a_clean_stop_are_written(tmp_path: Path) -> None:
    engine = Engine.open(tmp_path / "pipelines")
    engine.inbox.inline_records = True
    row_id = await engine.inbox.accept(click(4))
    assert row_id is not None
    engine.inbox.finished(row_id, "done")
    engine.close()  # before the quiet moment came
    reopened = Engine.open(tmp_path / "pipelines")
    try:
        assert handled_at(reopened, row_id) is not None  # not handed over again after the restart
    finally:
        reopened.close()
