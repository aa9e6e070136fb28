"""Slash commands, autocomplete, permissions, concurrent clicks and file inputs through Discord."""

from __future__ import annotations

import asyncio

from engine import messages
from engine.actors import Actor, Conversation
from engine.api import Engine
from tests.adapters.discord.helpers import (
    ALICE,
    BOB,
    CAROL,
    CHANNEL,
    DAVE,
    ERIN,
    GUILD,
    OLIVE,
    RELEASE_ROLE,
    Bot,
    answer,
    bare,
    click,
    click_answer,
    command,
    fields_of,
    fresh,
    open_modal,
    thread_messages,
    with_button,
)
from tests.fakes.discord_fake import FakeDiscord, FakeFile, FakeUser

HERE = Conversation("discord", str(CHANNEL))


def actor(user: FakeUser) -> Actor:
    return Actor(
        "discord", str(user.id), user.global_name or user.username, frozenset(f"role:{r}" for r in user.roles)
    )


def brief_submitted(engine: Engine, by: FakeUser = ALICE) -> int:
    """A blog-post run whose brief form is in: its execution waits for approval."""
    engine.start_run("blog-post", actor(by), HERE)
    (item,) = [i for i in engine.pending(actor(by)) if i.stage == "form"]
    engine.submit_form(item.execution_id, actor(by), {"topic": "Launch"})
    return item.execution_id


async def test_autocomplete_pipelines_runs_and_checkpoints(fake: FakeDiscord, bot: Bot) -> None:
    bot.engine.start_run("blog-post", actor(ALICE), HERE)
    asked = await fake.autocomplete(
        GUILD, CHANNEL, ALICE, "pipeline run", {"pipeline": "blo"}, focused="pipeline"
    )
    body = await fake.wait_response(asked)
    assert body["type"] == 8 and body["data"]["choices"] == [
        {"name": "blog-post — Blog post", "value": "blog-post"}
    ]
    asked = await fake.autocomplete(GUILD, CHANNEL, ALICE, "pipeline status", {"run": "#v1"}, focused="run")
    assert [c["value"] for c in (await fake.wait_response(asked))["data"]["choices"]] == ["blog-post#v1"]
    options = {"run": "blog-post#v1", "checkpoint": ""}
    asked = await fake.autocomplete(GUILD, CHANNEL, ALICE, "pipeline rollback", options, focused="checkpoint")
    assert [c["value"] for c in (await fake.wait_response(asked))["data"]["choices"]] == ["brief"]
    fake.assert_no_errors()


async def test_commands_share_wording_and_visibility(fake: FakeDiscord, bot: Bot) -> None:
    helped = await command(fake, ALICE, "help")
    assert helped.ephemeral and helped.content.startswith("Usage:") and "/pipeline run" in helped.content
    listed = await command(fake, ALICE, "list")
    assert "**blog-post** (v1)" in listed.content and "**release** (v1)" in listed.content
    unknown = await command(fake, ALICE, "show", pipeline="nope")
    assert unknown.content == "There is no pipeline 'nope'. Try /pipeline list." and unknown.ephemeral
    bad = await command(fake, ALICE, "run", pipeline="blog-post", extend=7)
    assert bad.ephemeral and bad.content == "There is no run blog-post#v7."

    # pause answers publicly when it works; a refusal is only for the caller (the public
    # "thinking" message is removed and the answer sent ephemerally).
    await command(fake, ALICE, "run", pipeline="release")
    refused = await command(fake, BOB, "pause", run="release#v1")
    assert refused.ephemeral and refused.content.startswith("You may not do this")
    paused = await command(fake, ALICE, "pause", run="release#v1")
    assert not paused.ephemeral and "paused" in paused.content.lower()
    assert len(fake.deleted_messages) == 1 and fake.deleted_messages[0].flags & (1 << 7)
    fake.assert_no_errors()


async def test_import_from_an_attachment(fake: FakeDiscord, bot: Bot) -> None:
    yaml = b"id: hello\nname: Hello\ncheckpoints:\n  - id: greet\n    mode: human_only\n"
    refused = await command(fake, ALICE, "import", file=FakeFile("hello.yaml", yaml, "application/x-yaml"))
    assert refused.ephemeral and refused.content == messages.NOT_IMPORTER
    assert "hello" not in {p.slug for p in bot.engine.pipelines()}
    imported = await command(fake, OLIVE, "import", file=FakeFile("hello.yaml", yaml, "application/x-yaml"))
    assert imported.content == "Pipeline **hello** imported as version 1." and not imported.ephemeral
    flow = await command(fake, OLIVE, "import", yaml="{id: flow, checkpoints: [{id: one}]}")
    assert flow.content == "Pipeline **flow** imported as version 1."
    assert {p.slug for p in bot.engine.pipelines()} >= {"hello", "flow"}
    big = yaml + b"#" * 200_000  # over PIPEBOT_MAX_IMPORT_BYTES: refused without downloading it
    too_big = await command(fake, OLIVE, "import", file=FakeFile("big.yaml", big, "application/x-yaml"))
    assert too_big.ephemeral
    assert too_big.content == "big.yaml is 200,070 bytes: /pipeline import takes at most 102,400 bytes."
    fake.assert_no_errors()


async def test_release_refusals_are_ephemeral_and_roles_approve(fake: FakeDiscord, bot: Bot) -> None:
    engine = bot.engine
    engine.start_run("release", actor(CAROL), HERE)
    (item,) = engine.pending(actor(CAROL))
    values = {"version": "1.2", "risk": "low", "rollback_plan": "revert", "tested": "yes"}
    engine.submit_form(item.execution_id, actor(CAROL), values)
    await bot.drain()
    card = with_button(thread_messages(fake), "pb:approve_complete:")
    approve, revise = card.custom_ids()[:2]

    refusal = "You may not approve this: you are not one of this pipeline's approvers."
    assert (await click_answer(fake, card, approve, BOB)).content == refusal
    # Request revision is refused before any modal opens.
    body = await fake.wait_response(await click(fake, card, revise, BOB))
    assert body["type"] == 4 and body["data"]["content"] == refusal and body["data"]["flags"] == 64
    mine = await click_answer(fake, card, approve, CAROL)
    assert mine.content.startswith("You may not approve this: you started this run")

    # Approvers by Discord role (discord:role:1234), two distinct ones required.
    assert RELEASE_ROLE in DAVE.roles
    assert (await click_answer(fake, card, approve, DAVE)).content == "Approval recorded (1 of 2)."
    assert (
        await click_answer(fake, card, approve, DAVE)
    ).content == "You already approved this (1 of 2 approvals)."
    await bot.drain()
    card = fresh(fake, card)
    assert "-# 1 of 2 approvals" in card.text and card.custom_ids()[:2] == [approve, revise]
    assert (await click_answer(fake, card, approve, ERIN)).content == "Approved Change request."
    await bot.drain()
    card = fresh(fake, card)
    assert card.custom_ids() == [] and "Approved by Dave, Erin at 09:00" in card.text
    assert all(
        m.ephemeral for m in fake.messages_in(card.channel_id) if m.payload.get("interaction_metadata")
    )
    fake.assert_no_errors()


async def test_concurrent_clicks_make_one_transition(fake: FakeDiscord, bot: Bot) -> None:
    execution_id = brief_submitted(bot.engine)
    await bot.drain()
    card = with_button(thread_messages(fake), "pb:approve_complete:")
    custom_id = f"pb:approve_complete:{execution_id}"
    clicks = await asyncio.gather(*(click(fake, card, custom_id, user) for user in (ALICE, BOB, DAVE)))
    answers = [(await answer(fake, i)).content for i in clicks]
    assert answers.count("Approved Brief.") == 1
    winner = ("Alice", "Bob", "Dave")[answers.index("Approved Brief.")]
    assert sorted(answers) == [f"Already approved by {winner} at 09:00."] * 2 + ["Approved Brief."]
    view = bot.engine.run("blog-post#v1")
    assert [e.status for e in view.executions][:2] == ["completed", "waiting_approval_to_start"]
    await bot.drain()
    card = fresh(fake, card)
    assert card.custom_ids() == [] and f"Approved by {winner} at 09:00" in card.text
    fake.assert_no_errors()


async def test_file_input_too_large_then_accepted(fake: FakeDiscord, bot: Bot) -> None:
    await command(fake, CAROL, "run", pipeline="release")
    await bot.drain()
    card = with_button(thread_messages(fake), "pb:open_form:")
    execution_id = int(bare(card.custom_ids())[0].rsplit(":", 1)[1])
    thread = card.channel_id
    modal = await open_modal(fake, card, card.custom_ids()[0], CAROL)
    fields = fields_of(modal)
    assert fields["risk"]["type"] == 3 and fields["risk"]["required"] is True
    assert fields["tested"]["required"] is True and fields["downtime"]["placeholder"] == "0–240"
    page1 = {"version": "2.0", "risk": ["high"], "rollback_plan": "revert the deploy", "tested": ["yes"]}
    saved = await answer(fake, await fake.submit_modal(thread, modal["custom_id"], page1, CAROL))
    page2 = await open_modal(fake, saved, saved.custom_ids()[0], CAROL)
    assert fields_of(page2)["changelog"]["type"] == 19 and fields_of(page2)["changelog"]["required"] is False

    big = FakeFile("changes.md", b"x" * 1_200_000, "text/markdown")
    errors = await answer(
        fake, await fake.submit_modal(thread, page2["custom_id"], {"changelog": [big]}, CAROL)
    )
    assert errors.content == "❌ **Changelog file** file is 1200000 bytes; the limit is 1000000"
    assert bare(errors.custom_ids()) == [f"pbf:{execution_id}:1"]
    assert bot.engine.run("release#v1").executions[0].status == "waiting_for_input"
    assert bot.engine.form(execution_id, actor(CAROL)).values["version"] == "2.0"  # the draft

    retry = await open_modal(fake, errors, f"pbf:{execution_id}:1", CAROL)
    small = FakeFile("changes.md", b"# 2.0\n- faster\n", "text/markdown")
    done = await answer(
        fake, await fake.submit_modal(thread, retry["custom_id"], {"changelog": [small]}, CAROL)
    )
    assert done.content == "Form for Change request submitted."
    (changelog,) = [a for a in bot.engine.artifacts("release#v1") if a.name == "changelog"]
    assert bot.engine.artifact_path(changelog.artifact_id).read_bytes() == b"# 2.0\n- faster\n"
    fake.assert_no_errors()


async def test_pending_buttons_work_from_the_ephemeral_reply(fake: FakeDiscord, bot: Bot) -> None:
    execution_id = brief_submitted(bot.engine)
    pending = await command(fake, BOB, "pending")
    assert pending.ephemeral and "blog-post#v1 · Brief: review the result" in pending.content
    assert bare(pending.custom_ids())[:2] == [
        f"pb:approve_complete:{execution_id}",
        f"pb:request_revision:{execution_id}",
    ]
    done = await click_answer(fake, pending, f"pb:approve_complete:{execution_id}", BOB)
    assert done.content == "Approved Brief."
    fake.assert_no_errors()
