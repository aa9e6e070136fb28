"""Edit and approve through Discord: a modal of paged paragraph inputs, rejoined into each file."""

from __future__ import annotations

from pathlib import Path

from adapters.discord.forms import edit_layout, edited_texts
from engine.actors import Actor, Conversation
from engine.api import EditableFile, EditSpec
from tests.adapters.discord.helpers import (
    ALICE,
    BOB,
    CAROL,
    CHANNEL,
    Bot,
    answer,
    click_answer,
    fields_of,
    fresh,
    full_id,
    open_modal,
    thread_messages,
    with_button,
)
from tests.engine.edit_helpers import SCORES, SUMMARY, artifact_text, history, import_digest, script_worker
from tests.engine.helpers import current, interactions
from tests.fakes.discord_fake import FakeDiscord, FakeUser

HERE = Conversation("discord", str(CHANNEL))
RUN = "digest#v1"
LONG = ("x" * 99 + "\n") * 90  # 9,000 characters: three pages, cut at line ends


def actor(user: FakeUser) -> Actor:
    return Actor("discord", str(user.id), user.global_name or user.username)


async def test_edit_and_approve_in_a_paged_modal(fake: FakeDiscord, bot: Bot, tmp_path: Path) -> None:
    import_digest(bot.engine, tmp_path, f"discord:{ALICE.id}, discord:{BOB.id}", LONG)
    bot.engine.start_run("digest", actor(CAROL), HERE)
    assert await script_worker(bot.engine).drain() == 1
    await bot.drain()
    ex, _ = current(bot.engine, RUN)
    card = with_button(thread_messages(fake), "pb:edit_and_approve:")
    told = await click_answer(fake, card, f"pb:edit_and_approve:{ex}", CAROL)
    assert "You may not approve this" in told.content

    modal = await open_modal(fake, card, full_id(card, f"pb:edit_and_approve:{ex}"), ALICE)
    fields = fields_of(modal)
    assert [(k, f["label"]) for k, f in fields.items()] == [
        ("summary.0.n", "summary.md"),
        ("scores.0.n", "scores.json"),
        ("long.0.n", "long.txt (1/3)"),
        ("long.1.n", "long.txt (2/3)"),
        ("long.2.n", "long.txt (3/3)"),
    ]
    assert fields["summary.0.n"]["value"] == SUMMARY and all(len(f["value"]) <= 4000 for f in fields.values())

    bad = {"summary.0.n": "# Mine", "scores.0.n": "[1, 2]"}
    done = await answer(fake, await fake.submit_modal(card.channel_id, modal["custom_id"], bad, ALICE))
    assert (
        "The edited scores.json does not match the schema at /: [1, 2] is not of type 'object'"
        in done.content
    )
    assert artifact_text(bot.engine, RUN, "summary") == SUMMARY
    assert current(bot.engine, RUN) == (ex, "waiting_approval_to_complete")

    modal = await open_modal(fake, card, full_id(card, f"pb:edit_and_approve:{ex}"), ALICE)
    good = {"summary.0.n": "# Summary\n\nEdited in Discord.", "scores.0.n": SCORES}
    done = await answer(fake, await fake.submit_modal(card.channel_id, modal["custom_id"], good, ALICE))
    assert done.content == "Edited summary.md. Approved Summary."
    await bot.drain()
    assert "Edited and approved by Alice" in fresh(fake, card).text
    assert artifact_text(bot.engine, RUN, "summary") == "# Summary\n\nEdited in Discord.\n"
    assert artifact_text(bot.engine, RUN, "long") == LONG  # three pages rejoined exactly: no edit
    assert len(history(bot.engine, RUN, "long")) == 1
    revs = history(bot.engine, RUN, "summary")
    assert [(number, kind) for number, kind, _, _ in revs] == [(1, "produced"), (2, "edited")]
    author = revs[1][2]
    original = revs[0][3]
    assert original == SUMMARY.encode() and author == f"discord:{ALICE.id}"
    assert bot.engine.run(RUN).info.status == "completed"
    assert ("edit", "accepted", str(ALICE.id)) in interactions(bot.engine, ex)


def test_pages_rejoin_exactly_and_what_does_not_fit_is_named() -> None:
    texts = {"a": "y" * 9000, "b": ("z" * 10 + "\n") * 500 + "end", "c": "", "d": "w" * 4001}
    files = [
        EditableFile(name=n, filename=f"{n}.txt", format="txt", artifact_id=i, text=t)
        for i, (n, t) in enumerate(texts.items())
    ]
    shown, left_out = edit_layout(
        EditSpec(execution_id=1, run="r", checkpoint="c", files=files, revision=0, digest="0")
    )
    assert [(f.name, len(cut)) for f, cut in shown] == [("a", 3), ("c", 1)]  # four boxes and the note
    assert [f.name for f in left_out] == ["b", "d"]
    submitted = {f"{f.name}.{i}.{join}": page for f, cut in shown for i, (page, join) in enumerate(cut)}
    assert edited_texts(submitted) == {"a": texts["a"], "c": ""}
    ((_, cut),) = edit_layout(
        EditSpec(execution_id=1, run="r", checkpoint="c", files=[files[1]], revision=0, digest="0")
    )[0]
    submitted = {f"b.{i}.{join}": page for i, (page, join) in enumerate(cut)}
    assert len(cut) == 2 and edited_texts(submitted) == {"b": texts["b"]}
