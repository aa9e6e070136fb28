"""Reminders that ping exactly the undecided, reject with a reason and reassign, through Discord."""

from __future__ import annotations

from pathlib import Path

from engine.actors import Actor, Conversation
from engine.clock import ManualClock
from tests.adapters.discord.helpers import (
    ALICE,
    BOB,
    CAROL,
    CHANNEL,
    DAVE,
    GUILD,
    RELEASE_ROLE,
    Bot,
    answer,
    fresh,
    full_id,
    open_modal,
    thread_messages,
    with_button,
)
from tests.fakes.discord_fake import FakeDiscord, FakeUser

HERE = Conversation("discord", str(CHANNEL))
GATE = f"""\
id: gate
approvers: [discord:{ALICE.id}, discord:{BOB.id}, "discord:role:{RELEASE_ROLE}"]
required_approvals: 2
human: {{deadline: 2d, on_deadline: fail, remind_every: 4h}}
checkpoints:
  - id: review
"""


def actor(user: FakeUser) -> Actor:
    return Actor(
        "discord", str(user.id), user.global_name or user.username, frozenset(f"role:{r}" for r in user.roles)
    )


def gate(bot: Bot, tmp_path: Path) -> int:
    path = tmp_path / "gate.yaml"
    path.write_text(GATE)
    bot.engine.import_pipeline(path)
    bot.engine.start_run("gate", actor(CAROL), HERE)
    (item,) = bot.engine.pending(actor(ALICE))
    return item.execution_id


async def test_reminder_pings_exactly_the_undecided(
    fake: FakeDiscord, bot: Bot, clock: ManualClock, tmp_path: Path
) -> None:
    ex = gate(bot, tmp_path)
    bot.engine.approve_complete(ex, actor(ALICE))
    await bot.drain()
    card = with_button(thread_messages(fake), "pb:approve_complete:")
    assert "<t:" in card.text  # the deadline in each reader's own zone
    clock.advance(4 * 3600)
    assert bot.engine.fire_timers() == 1
    await bot.drain()
    [reminder] = [m for m in thread_messages(fake) if "Reminder (1 of 3)" in m.text]
    assert reminder.text.startswith(f"ℹ️ <@{BOB.id}> <@&{RELEASE_ROLE}> Reminder")
    assert str(ALICE.id) not in reminder.text
    sent = [
        r.json
        for r in fake.requests_to(f"/channels/{reminder.channel_id}/messages")
        if r.json and "Reminder" in str(r.json)
    ]
    assert sent[0]["allowed_mentions"]["users"] == [BOB.id]
    assert sent[0]["allowed_mentions"]["roles"] == [RELEASE_ROLE]
    assert sent[0]["allowed_mentions"]["parse"] == []


async def test_reject_with_a_reason_and_reassign(fake: FakeDiscord, bot: Bot, tmp_path: Path) -> None:
    ex = gate(bot, tmp_path)
    await bot.drain()
    card = with_button(thread_messages(fake), "pb:reassign:")
    modal = await open_modal(fake, card, f"pb:reassign:{ex}", ALICE)
    done = await answer(
        fake, await fake.submit_modal(card.channel_id, modal["custom_id"], {"decision": [DAVE]}, ALICE)
    )
    assert done.content == "Dave may now decide Review."
    await bot.drain()
    assert "Handed to Dave" in fresh(fake, card).text
    modal = await open_modal(fake, card, full_id(card, f"pb:reject:{ex}"), BOB)
    reason = {"decision": "Numbers are wrong"}
    done = await answer(fake, await fake.submit_modal(card.channel_id, modal["custom_id"], reason, BOB))
    assert done.content == "Rejected Review."
    await bot.drain()
    card = fresh(fake, card)
    assert card.custom_ids() == [] and "Rejected by Bob" in card.text and "Numbers are wrong" in card.text
    assert bot.engine.run("gate#v1").info.status == "failed"


async def test_reminder_direct_messages_each_undecided_approver(
    fake: FakeDiscord, bot: Bot, clock: ManualClock, tmp_path: Path
) -> None:
    path = tmp_path / "people.yaml"
    path.write_text(
        f"""\
id: people
approvers: [discord:{ALICE.id}, discord:{BOB.id}, discord:{DAVE.id}]
required_approvals: 2
human: {{deadline: 2d, remind_every: 4h}}
checkpoints:
  - id: review
"""
    )
    bot.engine.import_pipeline(path)
    for user in (BOB, DAVE):  # members of the guild who have not used pipebot yet
        fake.guilds[GUILD].members[user.id] = user
    bot.engine.start_run("people", actor(CAROL), HERE)
    (item,) = bot.engine.pending(actor(ALICE))
    bot.engine.approve_complete(item.execution_id, actor(ALICE))
    await bot.drain()
    clock.advance(4 * 3600)
    assert bot.engine.fire_timers() == 1
    await bot.drain()
    [reminder] = [m for m in thread_messages(fake) if "Reminder (1 of 3)" in m.text]
    assert reminder.text.startswith(f"ℹ️ <@{BOB.id}> <@{DAVE.id}> Reminder")
    [sent] = [
        r.json
        for r in fake.requests_to(f"POST /channels/{reminder.channel_id}/messages")
        if r.json and "Reminder" in str(r.json)
    ]
    mentions = sent["allowed_mentions"]
    assert sorted(mentions["users"]) == sorted([BOB.id, DAVE.id]) and mentions["parse"] == []
    assert not mentions.get("roles")
    # One DM channel per undecided approver, and the reminder in it (without pinging anyone).
    opened = [r.json for r in fake.requests_to("POST /users/@me/channels")]
    assert sorted(int(body["recipient_id"]) for body in opened if body) == sorted([BOB.id, DAVE.id])
    for user in (BOB, DAVE):
        [dm] = fake.direct_messages(user.id)
        assert "Reminder (1 of 3)" in dm.text and "people#v1" in dm.text and "guild_id" not in dm.payload
        [request] = fake.requests_to(f"POST /channels/{dm.channel_id}/messages")
        assert request.json["allowed_mentions"] == {"parse": []}
    assert fake.direct_messages(ALICE.id) == [] and fake.direct_messages(CAROL.id) == []
    fake.assert_no_errors()
