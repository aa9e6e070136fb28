"""Edit and approve in Slack: real slack-bolt over real HTTP, the loopback fake validating the modal."""

from __future__ import annotations

from pathlib import Path

from tests.adapters.slack.conftest import CHANNEL, Harness, all_text, has_buttons
from tests.engine.edit_helpers import SCORES, SUMMARY, artifact_text, history, import_digest, script_worker
from tests.engine.helpers import current, interactions

RUN = "digest#v1"


async def waiting(h: Harness, tmp_path: Path, long: str = "x" * 5000) -> int:
    import_digest(h.engine, tmp_path, "slack:U0ANA, slack:U0BEN", long)
    await h.command("run digest", user="U0CAROL")
    assert await script_worker(h.engine).drain() == 1
    await h.settle()
    ex, status = current(h.engine, RUN)
    assert status == "waiting_approval_to_complete"
    return ex


async def test_edit_and_approve_through_the_modal(h: Harness, tmp_path: Path) -> None:
    ex = await waiting(h, tmp_path)
    card = h.last_with_button("edit_and_approve")
    await h.click("U0CAROL", card, "edit_and_approve")  # not an approver: told privately, nothing opens
    assert any("You may not approve this" in t for t in h.ephemerals_for("U0CAROL"))
    assert not h.fake.opened_views
    await h.click("U0ANA", card, "edit_and_approve")
    [view] = h.fake.opened_views.values()
    assert view["callback_id"] == "pb_edit"
    inputs = {
        b["block_id"]: b["element"].get("initial_value") for b in view["blocks"] if b["type"] == "input"
    }
    assert inputs == {"summary": SUMMARY, "scores": SCORES, "_comment": None}
    assert "long.txt is 5,000 characters, too long to edit here (at most 3,000)" in str(view["blocks"])

    edited = "# Summary\n\nRewritten by Ana."
    bad = {"summary": edited, "scores": '{"score": "high"}'}
    resp = await h.sim.view_submission(h.url, "U0ANA", view, bad)
    assert resp.body == {
        "response_action": "errors",
        "errors": {
            "scores": "The edited scores.json does not match the schema at /score: 'high' is not of type"
            " 'integer'. Nothing was changed."
        },
    }
    await h.settle()
    assert artifact_text(h.engine, RUN, "summary") == SUMMARY  # nothing changed
    assert len(history(h.engine, RUN, "summary")) == 1
    assert current(h.engine, RUN) == (ex, "waiting_approval_to_complete")

    resp = await h.sim.view_submission(
        h.url, "U0ANA", view, {"summary": edited, "scores": SCORES, "_comment": "Shorter"}
    )
    assert resp.body == ""
    await h.settle()
    card = h.fake.get_message(CHANNEL, card.ts)
    assert "Edited and approved by ana" in all_text(card) and "Shorter" in all_text(card)
    assert not has_buttons(card)
    assert any("ana edited summary.md of" in m.text for m in h.thread())
    assert artifact_text(h.engine, RUN, "summary") == edited + "\n"
    revs = history(h.engine, RUN, "summary")
    assert [(number, kind) for number, kind, _, _ in revs] == [(1, "produced"), (2, "edited")]
    assert revs[1][2] == "slack:U0ANA"
    original = revs[0][3]
    mine = revs[1][3]
    assert original == SUMMARY.encode() and mine == (edited + "\n").encode()
    assert h.engine.run(RUN).info.status == "completed"
    assert ("edit", "accepted", "U0ANA") in interactions(h.engine, ex)


LONG_ONLY = """\
id: notes
approvers: [slack:U0ANA]
checkpoints:
  - id: notes
    mode: script
    script:
      code: |
        import os, pathlib
        pathlib.Path(os.environ["PIPEBOT_OUTPUTS"], "notes.txt").write_text("y" * 3001)
    outputs: [{name: notes, format: txt}]
"""


async def test_too_long_to_edit_here_says_so(h: Harness, tmp_path: Path) -> None:
    (tmp_path / "notes.yaml").write_text(LONG_ONLY)
    h.engine.import_pipeline(tmp_path / "notes.yaml")
    await h.command("run notes", user="U0CAROL")
    assert await script_worker(h.engine).drain() == 1
    await h.settle()
    await h.click("U0ANA", h.last_with_button("edit_and_approve"), "edit_and_approve")
    assert not h.fake.opened_views  # nothing fits in a Slack text input: a private reply instead
    [told] = h.ephemerals_for("U0ANA")
    assert "notes.txt is 3,001 characters, too long to edit here (at most 3,000)" in told
    assert "download it from the run's thread" in told
    assert current(h.engine, "notes#v1")[1] == "waiting_approval_to_complete"
