"""Show changes in the console: the `d<id>` button and `changes <id>` print the diff once."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from engine.api import Engine
from tests.adapters.console.test_console_deadlines import Chat

NOTES = """\
id: notes
approvers: [console:alice, console:bob]
checkpoints:
  - id: note
    inputs: [{id: text, label: Text, type: multiline_text, required: true}]
    human: {approval_to_complete: true, max_revisions: 2}
    save_form_as_artifact: true
    outputs: [{name: note, format: json}]
"""


@pytest.fixture
def chats(engine: Engine) -> Iterator[dict[str, Chat]]:
    engine.import_pipeline_text(NOTES, actor=None)
    room = io.StringIO()
    chats = {name: Chat(engine, name, room) for name in ("alice", "bob")}
    yield chats
    for chat in chats.values():
        chat.console.loop.close()


def test_show_changes_in_the_console(chats: dict[str, Chat]) -> None:
    alice, bob = chats["alice"], chats["bob"]
    out = alice.type("/pipeline run notes", "f1", "first words")
    assert "[a1] Approve" in out and "[d1]" not in out  # nothing to compare with yet
    out = bob.type("r1", "longer please", "f1", "first words\\nand more @everyone")
    assert "(revision 1)" in out and "[d1] Show changes" in out
    out = bob.type("d1")
    assert "🔍 Changes in Note (revision 1 → 2), shown for bob" in out
    assert "note.json: changed (+1 −1 lines)" in out
    assert "--- note.json (revision 1)" in out and "+++ note.json (revision 2)" in out
    assert '-  "text": "first words"' in out
    assert '+  "text": "first words\\nand more @everyone"' in out
    assert "The changes are posted in the thread." in out
    again = alice.type("changes 1")
    assert "The changes are above, in the thread." in again and "---" not in again
