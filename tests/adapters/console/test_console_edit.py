"""Edit and approve through the console: `edit <id> <file>`, the new text, a line ".", piped in."""

from __future__ import annotations

import io
from pathlib import Path

from adapters.console.app import Console
from engine.api import Engine
from tests.engine.edit_helpers import SUMMARY, artifact_text, history, import_digest, script_worker
from tests.engine.helpers import current, interactions


def typed(engine: Engine, user: str, *lines: str) -> str:
    out = io.StringIO()
    console = Console(engine, user, io.StringIO("".join(f"{line}\n" for line in lines)), out)
    console.worker = script_worker(engine)
    console.run()
    return out.getvalue()


def test_edit_and_approve_in_the_console(engine: Engine, tmp_path: Path) -> None:
    import_digest(engine, tmp_path, "console:ana")
    out = typed(engine, "eve", "/pipeline run digest")
    run = "digest#v1"
    ex, status = current(engine, run)
    assert status == "waiting_approval_to_complete"
    assert f"[e{ex}] Edit and approve" in out
    assert "You may not approve this" in typed(engine, "eve", f"edit {ex} summary", "mine", ".")
    assert f"Which file? Type edit {ex} <file>, one of: summary.md, scores.json, long.txt" in typed(
        engine, "ana", f"e{ex}"
    )
    out = typed(engine, "ana", f"edit {ex} scores.json", '{"score": "high"}', ".")
    assert "✖ The edited scores.json does not match the schema at /score: 'high' is not of type" in out
    assert current(engine, run) == (ex, "waiting_approval_to_complete")
    out = typed(engine, "ana", f"edit {ex} summary", "# Summary", "", "Edited in the console.", "..", ".")
    assert "  | First draft by the script." in out  # the current text, to copy from
    assert "Edited summary.md. Approved Summary." in out
    assert "Edited and approved by ana" in out.replace("Ana", "ana")
    assert artifact_text(engine, run, "summary") == "# Summary\n\nEdited in the console.\n.\n"
    assert engine.run(run).info.status == "completed"
    revs = history(engine, run, "summary")
    assert [(number, kind) for number, kind, _, _ in revs] == [(1, "produced"), (2, "edited")]
    assert revs[1][2] == "console:ana"
    original = revs[0][3]
    assert original == SUMMARY.encode()
    assert ("edit", "accepted", "ana") in interactions(engine, ex)
