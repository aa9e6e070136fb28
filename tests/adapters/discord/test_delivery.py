"""The outbox deliverer against the fake: rate limits, Discord's size limits, files, threads."""

from __future__ import annotations

from adapters.discord.deliver import DiscordDeliverer
from engine.clock import ManualClock
from engine.forms import FileUpload
from tests.adapters.discord.helpers import ALICE, BOB, CHANNEL, Bot, bare, thread_messages, with_button
from tests.adapters.discord.test_interactions import HERE, actor, brief_submitted
from tests.fakes.discord_fake import FakeDiscord


async def test_rate_limits_are_waited_out_and_nothing_is_lost(
    fake: FakeDiscord, bot: Bot, clock: ManualClock
) -> None:
    # A short 429: discord.py waits retry_after and sends again.
    fake.rate_limit(f"POST /channels/{CHANNEL}/messages", times=1, retry_after=0.05)
    bot.engine.start_run("blog-post", actor(ALICE), HERE)
    await bot.drain()
    posts = [r.status for r in fake.requests if r.route == f"POST /channels/{CHANNEL}/messages"]
    assert posts == [429, 200]
    (thread,) = fake.threads

    # More 429s than discord.py retries: the row stays in the outbox (RetryLater) and goes out
    # later, exactly once, in order.
    (item,) = bot.engine.pending(actor(ALICE))
    fake.rate_limit(f"/channels/{thread}/messages", times=6, retry_after=0.01)
    seen, posted = len(fake.requests_to(f"/channels/{thread}/messages")), len(fake.messages_in(thread))
    bot.engine.submit_form(item.execution_id, actor(ALICE), {"topic": "Launch"})
    assert await bot.drain() == 0
    assert [r.status for r in fake.requests_to(f"/channels/{thread}/messages")[seen:]] == [429] * 5
    clock.advance(2)
    assert await bot.drain() > 0
    messages = fake.messages_in(thread)
    assert "Submitted by Alice" in messages[posted - 1].text  # the form card, edited in place
    new = [m.text for m in messages[posted:]]
    assert new[0].startswith("📎 **Brief**") and len(new) == 2  # artifacts, then approval: once each
    assert messages[-1].custom_ids()[0].startswith("pb:approve_complete:")
    fake.assert_no_errors()


async def test_long_text_is_clipped_to_discord_limits(fake: FakeDiscord, bot: Bot) -> None:
    engine = bot.engine
    engine.start_run("blog-post", actor(ALICE), HERE)
    (item,) = engine.pending(actor(ALICE))
    notes = "@everyone " + "n" * 5000
    engine.submit_form(item.execution_id, actor(ALICE), {"topic": "Launch", "notes": notes})
    engine.request_revision(item.execution_id, actor(BOB), "Shorter. ```\n" + "log line\n" * 400 + "```")
    await bot.drain()
    notice = next(m for m in thread_messages(fake) if m.text.startswith("⚠️ Revision 1 of Brief"))
    assert len(notice.text) <= 4000 and notice.text.count("```") % 2 == 0  # a V2 card's text budget
    approval = next(m for m in thread_messages(fake) if "**Notes**" in m.text)
    assert approval.text.endswith("…") and "**Topic**\nLaunch" in approval.text  # the fake checks 4,000
    # Nothing anyone typed can ping: every message went out with mentions disabled.
    sent = fake.requests_to(f"/channels/{approval.channel_id}/messages")
    assert sent and all(r.json["allowed_mentions"] == {"parse": []} for r in sent if r.json)
    fake.assert_no_errors()


async def test_artifacts_over_the_upload_limit_are_announced(fake: FakeDiscord, bot: Bot) -> None:
    engine = bot.engine
    engine.outbox.register("discord", DiscordDeliverer(bot.client, engine, max_upload_bytes=2000))
    engine.start_run("blog-post", actor(ALICE), HERE)
    (item,) = engine.pending(actor(ALICE))
    upload = FileUpload("big.bin", b"\0" * 5000)
    engine.submit_form(item.execution_id, actor(ALICE), {"topic": "Launch", "reference": upload})
    await bot.drain()
    message = next(m for m in thread_messages(fake) if m.text.startswith("📎"))
    (big,) = [a for a in engine.artifacts("blog-post#v1") if a.name == "reference"]
    assert f"reference.bin (5000 bytes) — `pipebot artifacts get {big.artifact_id}`" in message.text
    assert [a.filename for a in message.attachments] == ["brief.json"]
    assert message.file_components == ["attachment://brief.json"]
    fake.assert_no_errors()


async def test_run_started_in_a_thread_stays_in_it(fake: FakeDiscord, bot: Bot) -> None:
    execution_id = brief_submitted(bot.engine)
    await bot.drain()
    (thread,) = fake.threads
    # A second run started from inside the first run's thread: no thread in a thread.
    thread_conversation = type(HERE)("discord", str(CHANNEL), str(thread))
    bot.engine.start_run("blog-post", actor(ALICE), thread_conversation)
    await bot.drain()
    assert list(fake.threads) == [thread]
    status = [m for m in fake.messages_in(thread) if m.text.startswith("### blog-post#v2")]
    assert len(status) == 1
    assert bare(with_button(fake.messages_in(thread), "pb:open_form:").custom_ids()) != [
        f"pb:open_form:{execution_id}"
    ]
    fake.assert_no_errors()
