"""Who may do what: admins, owners, runners, channels; every refusal audited, nothing changed."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine import messages
from engine.actors import Actor, Conversation
from engine.api import Engine
from engine.errors import NotAllowed, NotFound, Refused
from engine.models import AuditRow, CheckpointDefinitionRow, EventRow, PipelineRow, RunRow
from engine.roles import parse_principals
from tests.conftest import HERE, person

ADMIN = person("admin")
OWNER = person("olga")
MALLORY = person("mallory")

OWNED = """\
id: owned
owners: [console:olga, "slack:@leads"]
approvers: [console:alice]
checkpoints:
  - id: brief
    inputs: [{id: topic, label: Topic, type: text}]
"""
SCRIPTED = """\
id: scripted
checkpoints:
  - id: run
    mode: script
    script: {code: "print('hi')", network: true}
"""


def rows(engine: Engine, model: type) -> int:
    with engine.store.read() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def state(engine: Engine) -> tuple[int, ...]:
    """Row counts of everything an import, a delete or a start could change."""
    return tuple(rows(engine, m) for m in (PipelineRow, CheckpointDefinitionRow, RunRow, EventRow))


def audit(engine: Engine) -> list[tuple[str, str, str | None, str]]:
    with engine.store.read() as s:
        return [
            (r.kind, r.outcome, r.subject, f"{r.actor_platform}:{r.actor_id}")
            for r in s.scalars(select(AuditRow).order_by(AuditRow.id))
        ]


def last_refusal(engine: Engine) -> tuple[str, str, str | None, str]:
    return [a for a in audit(engine) if a[1] == "refused"][-1]


def test_principals_setting_is_comma_separated() -> None:
    assert parse_principals(" slack:U1, discord:role:2 ,,console:me") == (
        "slack:U1",
        "discord:role:2",
        "console:me",
    )
    assert parse_principals(None) == ()


def test_only_admins_import_new_pipelines_from_chat(engine: Engine) -> None:
    before = state(engine)
    with pytest.raises(NotAllowed, match=r"^You may not import pipelines: ask an admin \(PIPEBOT_ADMINS\)$"):
        engine.import_pipeline_text(OWNED, actor=MALLORY)
    assert state(engine) == before
    assert not (engine.ws.base / "owned").exists()  # no definition files written either
    assert last_refusal(engine) == ("import", "refused", "owned", "console:mallory")
    assert engine.import_pipeline_text(OWNED, actor=ADMIN).changed
    assert audit(engine)[-1] == ("import", "accepted", "owned", "console:admin")


def test_owners_reimport_their_pipeline_others_cannot(engine: Engine) -> None:
    engine.import_pipeline_text(OWNED, actor=ADMIN)
    # The attack: re-import without approvers, then approve alone.
    hijack = OWNED.replace("approvers: [console:alice]\n", "")
    before = state(engine)
    with pytest.raises(NotAllowed, match="You may not import pipelines"):
        engine.import_pipeline_text(hijack, actor=MALLORY)
    assert state(engine) == before and engine.pipeline("owned").approvers == ["console:alice"]
    # Naming oneself owner in the new file changes nothing: the owners that count are the old ones.
    with pytest.raises(NotAllowed):
        engine.import_pipeline_text(hijack.replace("console:olga", "console:mallory"), actor=MALLORY)
    assert state(engine) == before
    assert engine.import_pipeline_text(hijack, actor=OWNER).version == 2
    # A group owner (slack:@leads) re-imports too.
    lead = Actor("slack", "U9", "Lea", frozenset({"@leads"}))
    assert engine.import_pipeline_text(OWNED.replace("topic", "subject"), actor=lead).version == 3


def test_scripts_come_from_admins_or_the_cli(engine: Engine, tmp_path: Path) -> None:
    engine.import_pipeline_text(OWNED, actor=ADMIN)
    with_script = OWNED + '  - id: go\n    mode: script\n    script: {code: "print(1)"}\n'
    before = state(engine)
    with pytest.raises(NotAllowed, match="script checkpoints"):
        engine.import_pipeline_text(with_script, actor=OWNER)
    assert state(engine) == before and last_refusal(engine)[:3] == ("import", "refused", "owned")
    assert engine.import_pipeline_text(with_script, actor=ADMIN).version == 2
    # network: true from an admin in chat, and from the CLI (no actor: the operator).
    assert engine.import_pipeline_text(SCRIPTED, actor=ADMIN).changed
    path = tmp_path / "s.yaml"
    path.write_text(SCRIPTED.replace("hi", "hello"))
    assert engine.import_pipeline(path).version == 2
    assert audit(engine)[-1] == ("import", "accepted", "scripted", "cli:operator")
    assert engine.pipeline("scripted").checkpoints[0].script.network is True  # type: ignore[union-attr]


def test_runners_and_channels_limit_starts(engine: Engine) -> None:
    text = OWNED.replace("owners:", "runners: [console:rita]\nchannels: [console:room-1]\nowners:")
    engine.import_pipeline_text(text, actor=ADMIN)
    before = state(engine)
    with pytest.raises(NotAllowed, match="not one of its runners"):
        engine.start_run("owned", MALLORY, HERE)
    with pytest.raises(NotAllowed, match="may not run in this conversation"):
        engine.start_run("owned", person("rita"), Conversation("console", "elsewhere"))
    assert state(engine) == before
    assert last_refusal(engine) == ("start_run", "refused", "owned", "console:rita")
    assert engine.start_run("owned", person("rita"), HERE).name == "owned#v1"
    assert engine.start_run("owned", ADMIN, HERE).name == "owned#v2"  # admins start anything


def test_owners_and_admins_control_every_run(engine: Engine) -> None:
    engine.import_pipeline_text(OWNED, actor=ADMIN)
    run = engine.start_run("owned", person("sam"), HERE).name
    with pytest.raises(NotAllowed, match="an owner or an admin"):
        engine.pause(run, MALLORY)
    assert engine.pause(run, OWNER).changed
    assert engine.resume(run, ADMIN).changed
    assert engine.rollback(run, "brief", OWNER).changed
    brief = engine.run(run).executions[-1].execution_id
    engine.submit_form(brief, person("sam"), {"topic": "x"})
    with pytest.raises(NotAllowed):  # owners control runs; deciding stays with the approvers
        engine.approve_complete(brief, OWNER)
    assert engine.cancel(run, ADMIN).changed


def test_delete_hides_the_pipeline_and_keeps_its_runs(engine: Engine) -> None:
    engine.import_pipeline_text(OWNED, actor=ADMIN)
    run = engine.start_run("owned", person("sam"), HERE).name
    before = state(engine)
    with pytest.raises(NotAllowed, match="only its owners or an admin"):
        engine.delete_pipeline("owned", MALLORY)
    with pytest.raises(Refused, match=r"has active runs \(owned#v1\)"):
        engine.delete_pipeline("owned", OWNER)
    assert state(engine) == before
    assert [a[:3] for a in audit(engine)[-2:]] == [("delete", "refused", "owned")] * 2
    done = engine.delete_pipeline("owned", OWNER, cancel_runs=True)
    assert done.message == "Deleted pipeline owned and cancelled owned#v1; its runs and files stay readable."
    assert "owned" not in {p.slug for p in engine.pipelines()}
    assert engine.run(run).info.status == "cancelled"  # still readable
    assert (engine.ws.base / "owned" / ".pipeline_system").is_dir()
    with pytest.raises(NotFound):
        engine.start_run("owned", ADMIN, HERE)
    with pytest.raises(NotFound):
        engine.pipeline("owned")
    assert engine.pipeline("owned", 1).id == "owned"  # an explicit version stays readable
    with pytest.raises(NotFound):
        engine.delete_pipeline("owned", ADMIN)
    # Owners of a deleted pipeline are owners no more: only an admin brings it back.
    with pytest.raises(NotAllowed):
        engine.import_pipeline_text(OWNED, actor=OWNER)
    assert engine.import_pipeline_text(OWNED, actor=ADMIN).version == 2
    assert "owned" in {p.slug for p in engine.pipelines()}


def test_cli_deletes_finished_pipelines_without_flags(engine: Engine) -> None:
    engine.delete_pipeline("blog-post", None)
    assert audit(engine)[-1] == ("delete", "accepted", "blog-post", "cli:operator")
    assert [p.slug for p in engine.pipelines()] == ["release"]


def test_refusal_wording_lives_in_messages() -> None:
    assert messages.NOT_IMPORTER == "You may not import pipelines: ask an admin (PIPEBOT_ADMINS)"
