"""The outbox: written with the state change, delivered after commit, surviving crashes."""

from __future__ import annotations

from sqlalchemy import func, select

from engine.api import Engine
from engine.clock import ManualClock
from engine.leases import Leases
from engine.models import OutboxRow
from engine.notifications import ApprovalCard, FormCard
from engine.outbox import Delivery, MessageRef, RetryLater, lease_name
from tests.conftest import HERE, person
from tests.engine.helpers import current
from tests.fakes.deliverers import RecordingDeliverer


async def test_crash_between_commit_and_delivery_loses_nothing(engine: Engine) -> None:
    info = engine.start_run("blog-post", person("ana"), HERE)
    ex, _ = current(engine, info.name)
    engine.submit_form(ex, person("ana"), {"topic": "t"})
    engine.close()  # the process dies before any delivery

    restarted = Engine.open(engine.ws.base, clock=engine.clock)
    sink = RecordingDeliverer()
    restarted.outbox.register("console", sink)
    assert await restarted.outbox.drain() > 0
    kinds = [d.note.kind for d in sink.deliveries]
    assert kinds[0] == "run_status" and sink.deliveries[0].parent is None
    assert all(d.parent is not None and d.parent.message_id == "m1" for d in sink.deliveries[1:])
    assert kinds[1:] == ["notice", "form", "artifacts", "approval"]
    form = sink.deliveries[2].note
    assert isinstance(form, FormCard) and form.decided and form.buttons == []  # newest content, posted once
    assert await restarted.outbox.drain() == 0  # nothing twice
    restarted.close()


async def test_later_notifications_edit_the_same_message(engine: Engine) -> None:
    sink = RecordingDeliverer()
    engine.outbox.register("console", sink)
    info = engine.start_run("blog-post", person("ana"), HERE)
    ex, _ = current(engine, info.name)
    engine.submit_form(ex, person("ana"), {"topic": "t"})
    await engine.outbox.drain()
    approval = [d for d in sink.deliveries if d.note.kind == "approval"][-1]
    engine.approve_complete(ex, person("bob"))
    await engine.outbox.drain()
    edits = [d for d in sink.deliveries if d.existing is not None]
    edited_approval = [d for d in edits if d.note.key == approval.note.key]
    assert len(edited_approval) == 1 and edited_approval[0].existing is not None
    note = edited_approval[0].note
    assert isinstance(note, ApprovalCard) and note.decided == "Approved by Bob at 09:00" and not note.buttons
    assert any(d.note.key == "run" for d in edits)


async def test_failed_delivery_is_retried_with_backoff_in_order(engine: Engine, clock: ManualClock) -> None:
    sink = RecordingDeliverer(fail_times=2)
    engine.outbox.register("console", sink)
    engine.start_run("blog-post", person("ana"), HERE)
    assert await engine.outbox.drain() == 0
    assert await engine.outbox.drain() == 0  # not due yet: nothing overtakes the failed row
    clock.advance(2.5)
    assert await engine.outbox.drain() == 0  # second failure, backoff doubles
    clock.advance(3)
    assert await engine.outbox.drain() == 0  # 4 s backoff not over yet
    clock.advance(2)
    assert await engine.outbox.drain() == 3
    assert [d.note.kind for d in sink.deliveries] == ["run_status", "notice", "form"]


async def test_rate_limit_waits_what_the_platform_says(engine: Engine, clock: ManualClock) -> None:
    sink = RecordingDeliverer(fail_times=1, retry_after=30)
    engine.outbox.register("console", sink)
    engine.start_run("blog-post", person("ana"), HERE)
    await engine.outbox.drain()
    clock.advance(29)
    assert await engine.outbox.drain() == 0
    clock.advance(1.5)
    assert await engine.outbox.drain() == 3


async def test_other_platforms_rows_wait_for_their_adapter(engine: Engine) -> None:
    sink = RecordingDeliverer()
    engine.outbox.register("slack", sink)
    engine.start_run("blog-post", person("ana"), HERE)  # a console conversation
    assert await engine.outbox.drain() == 0 and sink.deliveries == []


async def test_a_waiting_run_does_not_starve_the_others(engine: Engine, clock: ManualClock) -> None:
    class FailsFirstRun(RecordingDeliverer):
        async def deliver(self, delivery: Delivery) -> MessageRef:
            if delivery.note.run.name == "blog-post#v1":
                raise RetryLater(600)
            return await super().deliver(delivery)

    sink = FailsFirstRun()
    engine.outbox.register("console", sink)
    engine.outbox.batch = 3  # the first run alone has more rows than the batch
    engine.start_run("blog-post", person("ana"), HERE)
    engine.start_run("blog-post", person("ana"), HERE)
    await engine.outbox.drain()  # v1 fails and waits
    assert await engine.outbox.drain() == 3  # v2 is delivered meanwhile
    assert {d.note.run.name for d in sink.deliveries} == {"blog-post#v2"}


async def test_rows_after_a_failure_are_sent_without_a_lookup(engine: Engine, clock: ManualClock) -> None:
    # A drain marks every claimed row "sending" (it may be on the platform after a crash); a
    # failure puts back the marks of the rows it never tried, so they are not looked up first.
    sink = RecordingDeliverer(fail_times=1)
    engine.outbox.register("console", sink)
    engine.start_run("blog-post", person("ana"), HERE)
    assert await engine.outbox.drain() == 0
    clock.advance(2.5)
    assert await engine.outbox.drain() == 3
    assert [d.sending_since is not None for d in sink.deliveries] == [True, False, False]


async def test_a_drain_that_lost_its_lease_stops(engine: Engine, clock: ManualClock) -> None:
    # A drain stalled past half the lease's life checks the lease again before each row: another
    # process that took the run over (our lease looked dead) delivers the rest, not both of us.
    other = Leases(engine.store, clock, "other-process", engine.outbox.leases.stale_after)

    class Stalls(RecordingDeliverer):
        async def deliver(self, delivery: Delivery) -> MessageRef:
            ref = await super().deliver(delivery)
            if len(self.deliveries) == 1:
                clock.advance(engine.outbox.leases.stale_after + 1)
                assert other.acquire([lease_name(delivery.note.run.run_id)])
            return ref

    sink = Stalls()
    engine.outbox.register("console", sink)
    engine.start_run("blog-post", person("ana"), HERE)
    await engine.outbox.drain()
    assert len(sink.deliveries) == 1
    with engine.store.read() as s:
        left = s.scalar(select(func.count()).select_from(OutboxRow).where(OutboxRow.delivered_at.is_(None)))
    assert left == 2  # the new holder's to deliver


async def test_a_slow_drain_that_keeps_its_lease_sends_without_a_lookup(
    engine: Engine, clock: ManualClock
) -> None:
    # Checking the lease again marks the row again: that mark is this drain's, not an earlier
    # attempt's, so the message is posted without looking for it first.
    class Slow(RecordingDeliverer):
        async def deliver(self, delivery: Delivery) -> MessageRef:
            ref = await super().deliver(delivery)
            clock.advance(engine.outbox.leases.stale_after / 2 + 1)
            return ref

    sink = Slow()
    engine.outbox.register("console", sink)
    engine.start_run("blog-post", person("ana"), HERE)
    assert await engine.outbox.drain() == 3
    assert [d.sending_since for d in sink.deliveries] == [None, None, None]
