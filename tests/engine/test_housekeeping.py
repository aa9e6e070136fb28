"""Work folders go once their checkpoint completes; a revision keeps an uploaded file."""

from __future__ import annotations

import json
from pathlib import Path

from engine.api import Engine
from engine.forms import FileUpload
from tests.conftest import HERE, person
from tests.engine.helpers import current
from tests.engine.rollback_helpers import import_twins

ANA, BOB = person("ana"), person("bob")


def test_temp_goes_after_completion_and_a_revision_keeps_the_file(engine: Engine, tmp_path: Path) -> None:
    import_twins(engine, tmp_path)
    run = engine.start_run("twins", ANA, HERE).name
    ex, _ = current(engine, run)
    temp = engine.ws.base / "twins" / ".temp" / f"exec_{ex}"
    engine.submit_form(ex, ANA, {"text": "one", "attachment": FileUpload("notes.md", b"# notes\n")})
    engine.request_revision(ex, BOB, "Say more")
    engine.submit_form(ex, ANA, {"text": "one, said more", "attachment": None})  # file left empty
    [form] = [a for a in engine.artifacts(run) if a.name == "doc"]
    stored = json.loads(engine.artifact_path(form.artifact_id).read_text())
    assert stored["text"] == "one, said more" and stored["attachment"]["file"] == "attachment_notes.md"
    [attachment] = [a for a in engine.artifacts(run) if a.name == "attachment"]
    assert temp.is_dir()
    engine.approve_complete(ex, BOB)
    assert not temp.exists()  # promoted, so the work folder is gone
    assert engine.artifact_path(attachment.artifact_id).read_bytes() == b"# notes\n"
    promoted = engine.ws.base / "twins" / "runs" / "v1" / "first" / "attachment_notes.md"
    assert engine.artifact_path(attachment.artifact_id) == promoted
