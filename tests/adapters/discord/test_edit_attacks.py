"""Hostile Edit and approve modal submissions through discord.py: the modal's custom_id and its
inputs' ids are client-controlled. Forged ones change nothing."""

from __future__ import annotations

import copy
from pathlib import Path

from tests.adapters.discord.helpers import (
    ALICE,
    BOB,
    CAROL,
    Bot,
    answer,
    click_answer,
    full_id,
    open_modal,
    thread_messages,
    with_button,
)
from tests.adapters.discord.test_edit import HERE, RUN, actor
from tests.engine.edit_helpers import SCORES, SUMMARY, artifact_text, history, import_digest, script_worker
from tests.engine.helpers import current, interactions
from tests.fakes.discord_fake import FakeDiscord


async def test_forged_edit_modals_change_nothing(fake: FakeDiscord, bot: Bot, tmp_path: Path) -> None:
    import_digest(bot.engine, tmp_path, f"discord:{ALICE.id}, discord:{BOB.id}")
    bot.engine.start_run("digest", actor(CAROL), HERE)
    assert await script_worker(bot.engine).drain() == 1
    await bot.drain()
    ex, _ = current(bot.engine, RUN)
    card = with_button(thread_messages(fake), "pb:edit_and_approve:")
    modal = await open_modal(fake, card, full_id(card, f"pb:edit_and_approve:{ex}"), ALICE)
    assert modal["custom_id"].startswith(f"pbm:edit:{ex}:")  # names the version it shows
    told = await click_answer(fake, card, full_id(card, f"pb:edit_and_approve:{ex}"), CAROL)
    assert "You may not approve this" in told.content  # Carol gets no modal to forge
    attempts = [
        (f"pbm:edit:{ex}", {"summary.0.n": "# Forged", "scores.0.n": SCORES}),  # no version
        (None, {"secrets.0.n": "pwned", "summary.0.n": "# A", "scores.0.n": SCORES}),  # not an output
        (None, {"summary.0.n": "y" * 20_001, "scores.0.n": SCORES}),  # longer than chat allows
    ]
    for custom_id, values in attempts:
        await open_modal(fake, card, full_id(card, f"pb:edit_and_approve:{ex}"), ALICE)
        opened = fake.modals[-1].payload  # what a hostile client sends back instead
        opened["custom_id"] = custom_id or opened["custom_id"]
        template = opened["components"][0]
        for cid in values:
            if cid not in str(opened["components"]):
                extra = copy.deepcopy(template)
                extra["component"]["custom_id"] = cid
                opened["components"].append(extra)
        for c in opened["components"]:
            c["component"]["max_length"] = 30_000
        done = await answer(
            fake, await fake.submit_modal(card.channel_id, opened["custom_id"], values, ALICE)
        )
        assert "Approved" not in done.content, (custom_id, values.keys(), done.content)
    await bot.drain()
    assert artifact_text(bot.engine, RUN, "summary") == SUMMARY
    assert len(history(bot.engine, RUN, "summary")) == 1
    assert current(bot.engine, RUN) == (ex, "waiting_approval_to_complete")
    refused = [who for kind, outcome, who in interactions(bot.engine, ex) if outcome == "refused"]
    assert refused == [str(ALICE.id)] * 3
    # A path for a field id never reaches the engine (not a page id): the rest is an honest edit.
    await open_modal(fake, card, full_id(card, f"pb:edit_and_approve:{ex}"), ALICE)
    opened = fake.modals[-1].payload
    extra = copy.deepcopy(opened["components"][0])
    extra["component"]["custom_id"] = "../../x.0.n"
    opened["components"].append(extra)
    values = {"../../x.0.n": "pwned", "summary.0.n": SUMMARY, "scores.0.n": SCORES}
    # Other tests' folders sit beside this one (an `x.json` of theirs is no escape of ours).
    beside = set(tmp_path.parent.rglob("x.*"))
    await answer(fake, await fake.submit_modal(card.channel_id, opened["custom_id"], values, ALICE))
    await bot.drain()
    assert not list(tmp_path.rglob("x")) and set(tmp_path.parent.rglob("x.*")) == beside
