"""A pipeline whose checkpoints all make files of the same names, and ways to drive it."""

from __future__ import annotations

from pathlib import Path

from engine.actors import Actor
from engine.api import Engine
from engine.forms import FileUpload
from tests.conftest import HERE
from tests.engine.helpers import current

TWINS = """
id: twins
name: Twins
auto_advance: true
approvers: [console:ana, console:bob, "slack:U0ANA", "slack:U0BEN"]
checkpoints:
  - id: first
    name: First
    mode: human_only
    inputs:
      - {id: text, label: Text, type: text, required: true}
      - {id: attachment, label: Attachment, type: file}
    human: {approval_to_complete: true, max_revisions: 2}
    save_form_as_artifact: true
    outputs: [{name: doc, format: json}]
  - id: second
    name: Second
    mode: human_only
    inputs:
      - {id: text, label: Text, type: text, required: true}
      - {id: attachment, label: Attachment, type: file}
    human: {approval_to_complete: true, max_revisions: 2}
    save_form_as_artifact: true
    outputs: [{name: doc, format: json}]
  - id: third
    name: Third
    mode: human_only
    inputs:
      - {id: text, label: Text, type: text, required: true}
      - {id: attachment, label: Attachment, type: file}
    human: {approval_to_complete: true}
    save_form_as_artifact: true
    outputs: [{name: doc, format: json}]
"""


def import_twins(engine: Engine, tmp: Path) -> None:
    path = tmp / "twins.yaml"
    path.write_text(TWINS)
    engine.import_pipeline(path)


def step(engine: Engine, run: str, actor: Actor, text: str, approve: bool = True) -> int:
    """Fill in the current checkpoint's form (with a same-named file) and approve it."""
    ex, status = current(engine, run)
    assert status == "waiting_for_input", status
    engine.submit_form(
        ex, actor, {"text": text, "attachment": FileUpload("notes.md", f"# {text}\n".encode())}
    )
    if approve:
        engine.approve_complete(ex, actor)
    return ex


def twins_run(engine: Engine, actor: Actor, steps: int) -> str:
    run = engine.start_run("twins", actor, HERE).name
    for i in range(steps):
        step(engine, run, actor, f"{run} step {i + 1}")
    return run
