"""Human-only checkpoints through the engine's public commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.api import Engine
from engine.errors import AlreadyDone, FormInvalid, NotAllowed, Refused
from engine.forms import FileUpload
from tests.conftest import HERE, person
from tests.engine.helpers import count_events, current, interactions

ANA, BOB = person("ana"), person("bob")
BRIEF = {"topic": "Launch", "words": "1200", "notes": "two\nlines", "urgent": "yes", "tone": "formal"}


def brief_submitted(engine: Engine) -> tuple[str, int]:
    info = engine.start_run("blog-post", ANA, HERE)
    ex, status = current(engine, info.name)
    assert status == "waiting_for_input"
    engine.submit_form(ex, ANA, dict(BRIEF))
    return info.name, ex


def test_whole_blog_post_run(engine: Engine, tmp_path: Path) -> None:
    run, ex = brief_submitted(engine)
    assert current(engine, run) == (ex, "waiting_approval_to_complete")
    engine.approve_complete(ex, BOB)
    outline, status = current(engine, run)
    assert status == "waiting_approval_to_start"
    engine.approve_start(outline, BOB)
    engine.submit_form(outline, ANA, {"outline": "Intro\nBody\nEnd"})
    engine.approve_complete(outline, BOB)
    sign_off, status = current(engine, run)
    assert status == "waiting_approval_to_complete"  # no inputs: a pure approval gate
    engine.approve_complete(sign_off, BOB)
    view = engine.run(run)
    assert view.info.status == "completed" and view.info.done == 3
    arts = {a.name: a for a in engine.artifacts(run)}
    assert set(arts) == {"brief", "outline"}
    assert arts["brief"].path == "blog-post/runs/v1/brief/brief.json"
    saved = json.loads(engine.artifact_path(arts["brief"].artifact_id).read_text())
    assert saved == {
        "topic": "Launch",
        "words": 1200,
        "notes": "two\nlines",
        "urgent": True,
        "tone": "formal",
        "reference": None,
    }
    base = engine.ws.base / "blog-post"
    assert (base / "runs" / "latest").resolve() == (base / "runs" / "v1").resolve()
    assert (base / ".pipeline_system" / "definitions" / "checkpoints" / "brief.json").is_file()
    log = (base / ".pipeline_system" / "logs" / "system.log").read_text()
    assert "imported version 1" in log and "blog-post#v1 completed." in log
    assert len(arts["brief"].sha256) == 64


def test_bad_form_values_change_nothing(engine: Engine) -> None:
    info = engine.start_run("blog-post", ANA, HERE)
    ex, _ = current(engine, info.name)
    before = count_events(engine)
    with pytest.raises(FormInvalid) as err:
        engine.submit_form(
            ex, ANA, {"topic": "", "words": "50", "tone": "loud", "urgent": "perhaps", "bogus": "x"}
        )
    assert err.value.errors == {
        "topic": "is required",
        "words": "must be at least 100",
        "tone": "must be one of formal, casual",
        "urgent": "must be yes or no",
        "bogus": "is not a field of this form",
    }
    assert current(engine, info.name) == (ex, "waiting_for_input")
    assert count_events(engine) == before
    assert interactions(engine, ex) == []
    assert engine.artifacts(info.name) == []


def test_file_input_gets_a_safe_name_and_a_size_limit(engine: Engine) -> None:
    info = engine.start_run("blog-post", ANA, HERE)
    ex, _ = current(engine, info.name)
    huge = FileUpload("big.bin", b"x" * (engine.config.max_file_bytes + 1))
    with pytest.raises(FormInvalid, match="reference: file is"):
        engine.submit_form(ex, ANA, {**BRIEF, "reference": huge})
    engine.submit_form(ex, ANA, {**BRIEF, "reference": FileUpload("../../etc/my notes.txt", b"hello")})
    arts = {a.name: a for a in engine.artifacts(info.name)}
    assert arts["reference"].path.endswith("/reference_my_notes.txt")
    assert engine.artifact_path(arts["reference"].artifact_id).read_bytes() == b"hello"
    assert engine.ws.absolute(arts["reference"].path).is_relative_to(engine.ws.base / "blog-post" / ".temp")


def test_repeated_command_answers_who_acted_first(engine: Engine) -> None:
    _run, ex = brief_submitted(engine)
    engine.approve_complete(ex, BOB)
    with pytest.raises(AlreadyDone, match="Already approved by Bob at 09:00"):
        engine.approve_complete(ex, ANA)
    with pytest.raises(AlreadyDone, match="Already approved by Bob"):
        engine.request_revision(ex, ANA, "too late")
    assert [k for k, o, _ in interactions(engine, ex) if o == "accepted"] == [
        "submit_form",
        "approve_complete",
    ]


def test_revision_loop_is_bounded(engine: Engine) -> None:
    run, ex = brief_submitted(engine)  # max_revisions: 2
    for n in (1, 2):
        engine.request_revision(ex, BOB, f"change {n}")
        assert current(engine, run) == (ex, "waiting_for_input")
        form = engine.form(ex)
        assert form.feedback == f"change {n}" and form.values["topic"] == "Launch"
        engine.submit_form(ex, ANA, dict(BRIEF))
    with pytest.raises(Refused, match="No revisions left for Brief"):
        engine.request_revision(ex, BOB, "one more")
    actions = [b.action for b in engine.pending(BOB)[0].buttons]
    assert "approve_complete" in actions and "request_revision" not in actions  # the option is gone
    engine.approve_complete(ex, BOB)
    assert engine.run(run).executions[0].revision == 2


def test_empty_feedback_is_refused(engine: Engine) -> None:
    _, ex = brief_submitted(engine)
    with pytest.raises(Refused, match="feedback is empty"):
        engine.request_revision(ex, BOB, "   ")


def test_pause_blocks_checkpoint_controls_until_resume(engine: Engine) -> None:
    run, ex = brief_submitted(engine)
    engine.pause(run, ANA)
    with pytest.raises(Refused, match="is paused"):
        engine.approve_complete(ex, BOB)
    with pytest.raises(AlreadyDone):
        engine.pause(run, ANA)
    engine.resume(run, ANA)
    engine.approve_complete(ex, BOB)
    assert engine.run(run).info.done == 1


def test_paused_run_waits_between_checkpoints(engine: Engine) -> None:
    release = engine.start_run("blog-post", ANA, HERE)
    ex, _ = current(engine, release.name)
    engine.submit_form(ex, ANA, dict(BRIEF))
    engine.approve_complete(ex, BOB)
    nxt, _ = current(engine, release.name)
    engine.approve_start(nxt, BOB)
    engine.submit_form(nxt, ANA, {"outline": "x"})
    engine.approve_complete(nxt, BOB)
    engine.pause(release.name, ANA)
    engine.resume(release.name, ANA)
    assert current(engine, release.name)[1] == "waiting_approval_to_complete"


def test_n_of_m_approvals_and_self_approval(engine: Engine) -> None:
    carol, alice, bob = person("carol"), person("alice"), person("bob")
    info = engine.start_run("release", carol, HERE)
    ex, _ = current(engine, info.name)
    engine.submit_form(
        ex, carol, {"version": "1.2", "risk": "low", "rollback_plan": "revert", "tested": "yes"}
    )
    with pytest.raises(NotAllowed, match="not one of this pipeline's approvers"):
        engine.approve_complete(ex, carol)
    with pytest.raises(NotAllowed, match="not one of this pipeline's approvers"):
        engine.approve_complete(ex, person("mallory"))
    out = engine.approve_complete(ex, alice)
    assert out.message == "Approval recorded (1 of 2)."
    with pytest.raises(AlreadyDone, match=r"already approved this \(1 of 2"):
        engine.approve_complete(ex, alice)
    assert current(engine, info.name) == (ex, "waiting_approval_to_complete")
    engine.approve_complete(ex, bob)
    _nxt, status = current(engine, info.name)
    assert status == "waiting_approval_to_start"  # auto_advance: false
    refused = [(k, a) for k, o, a in interactions(engine, ex) if o == "refused"]
    assert refused == [("approve_complete", "carol"), ("approve_complete", "mallory")]


def test_only_starter_or_approvers_control_a_run(engine: Engine) -> None:
    info = engine.start_run("release", person("carol"), HERE)
    with pytest.raises(NotAllowed, match="only the person who started the run, an approver"):
        engine.pause(info.name, person("mallory"))
    engine.pause(info.name, person("alice"))
    engine.resume(info.name, person("carol"))
    assert [(k, o) for k, o, _ in interactions(engine)] == [("pause", "refused")]


def test_self_approval_refused_for_an_approver(engine: Engine) -> None:
    alice = person("alice")
    info = engine.start_run("release", alice, HERE)
    ex, _ = current(engine, info.name)
    engine.submit_form(ex, alice, {"version": "1", "risk": "high", "rollback_plan": "x", "tested": True})
    with pytest.raises(NotAllowed, match="you started this run"):
        engine.approve_complete(ex, alice)


def test_group_approvers_per_platform(engine: Engine) -> None:
    info = engine.start_run("release", person("carol"), HERE)
    ex, _ = current(engine, info.name)
    engine.submit_form(
        ex, person("carol"), {"version": "1", "risk": "low", "rollback_plan": "x", "tested": True}
    )
    slack_manager = person("U1", "slack", frozenset({"@release-managers"}))
    discord_role = person("42", "discord", frozenset({"role:1234"}))
    wrong_platform = person("U2", "discord", frozenset({"@release-managers"}))
    with pytest.raises(NotAllowed):
        engine.approve_complete(ex, wrong_platform)
    engine.approve_complete(ex, slack_manager)
    engine.approve_complete(ex, discord_role)
    assert current(engine, info.name)[1] == "waiting_approval_to_start"


def test_cancel_closes_the_open_request(engine: Engine) -> None:
    run, ex = brief_submitted(engine)
    engine.cancel(run, BOB)  # blog-post has no approvers: anyone may
    assert engine.run(run).info.status == "cancelled"
    assert current(engine, run) == (ex, "cancelled")
    with pytest.raises(Refused, match="cancelled"):
        engine.approve_complete(ex, BOB)


def test_extend_sees_previous_artifacts(engine: Engine) -> None:
    _first, ex = brief_submitted(engine)
    engine.approve_complete(ex, BOB)
    second = engine.start_run("blog-post", ANA, HERE, extend=1)
    assert second.name == "blog-post#v2"
    view = engine.run(second.name)
    assert view.extends == "blog-post#v1"
    assert [a.name for a in engine.artifacts(second.name)] == ["brief"]
    assert engine.artifacts(second.name, include_extended=False) == []


def test_versions_are_per_pipeline_and_reimport_keeps_old_runs(engine: Engine, tmp_path: Path) -> None:
    a = engine.start_run("blog-post", ANA, HERE)
    b = engine.start_run("release", ANA, HERE)
    c = engine.start_run("blog-post", ANA, HERE)
    assert (a.name, b.name, c.name) == ("blog-post#v1", "release#v1", "blog-post#v2")
    changed = (
        (Path(__file__).parents[2] / "examples" / "blog-post.yaml")
        .read_text()
        .replace("max_length: 200", "max_length: 100")
    )
    path = tmp_path / "blog.yaml"
    path.write_text(changed)
    again = engine.import_pipeline(path)
    assert again.version == 2 and again.changed
    assert not engine.import_pipeline(path).changed
    old_form = engine.form(current(engine, a.name)[0])
    assert old_form.inputs[0].max_length == 200  # the run keeps the definition it started with
    d = engine.start_run("blog-post", ANA, HERE)
    assert engine.form(current(engine, d.name)[0]).inputs[0].max_length == 100


def test_rollback_archives_and_redoes(engine: Engine) -> None:
    run, ex = brief_submitted(engine)
    engine.approve_complete(ex, BOB)
    outline, _ = current(engine, run)
    engine.rollback(run, "brief", ANA)
    new_ex, status = current(engine, run)
    assert new_ex not in (ex, outline) and status == "waiting_for_input"
    statuses = {e.execution_id: e.status for e in engine.run(run).executions}
    assert statuses[ex] == statuses[outline] == "rolled_back"
    assert engine.artifacts(run) == []
    archive = engine.ws.base / "blog-post" / ".archived"
    archived = list(archive.glob(f"rollback_1_*/brief/exec_{ex}/brief.json"))
    assert len(archived) == 1
