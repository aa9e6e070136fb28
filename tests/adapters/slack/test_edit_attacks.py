"""Hostile Edit and approve submissions through real slack-bolt: forged private_metadata, forged
file names, oversized text, replays and races. Each must be refused (or take effect once) with the
artifact's bytes, its revisions and the execution's state unchanged."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

from tests.adapters.slack.conftest import CHANNEL, Harness, all_text
from tests.engine.edit_helpers import SCORES, SUMMARY, artifact_text, history, import_digest, script_worker
from tests.engine.helpers import current, interactions

RUN = "digest#v1"
EDITED = "# Summary\n\nRewritten."


async def start(h: Harness, tmp_path: Path, run: str = RUN, channel: str = CHANNEL) -> int:
    if run == RUN:
        import_digest(h.engine, tmp_path, "slack:U0ANA, slack:U0BEN")
    await h.command("run digest", user="U0CAROL", channel=channel)
    assert await script_worker(h.engine).drain() == 1
    await h.settle()
    ex, status = current(h.engine, run)
    assert status == "waiting_approval_to_complete"
    return ex


async def open_edit(h: Harness, user: str = "U0ANA", channel: str = CHANNEL) -> dict[str, Any]:
    await h.click(user, h.last_with_button("edit_and_approve", channel), "edit_and_approve")
    return list(h.fake.opened_views.values())[-1]


def forged(view: dict[str, Any], metadata: str | None = None, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """A copy of the modal as a hostile client could submit it: no view id (so the fake does not
    put back what is on screen), its own private_metadata and input blocks."""
    out = copy.deepcopy(view)
    out.pop("id", None)
    if metadata is not None:
        out["private_metadata"] = metadata
    for name in extra:
        out["blocks"].append(
            {
                "type": "input",
                "block_id": name,
                "label": {"type": "plain_text", "text": name},
                "element": {"type": "plain_text_input", "action_id": name, "multiline": True},
            }
        )
    return out


async def submit_raw(h: Harness, user: str, view: dict[str, Any], texts: dict[str, str]) -> Any:
    """A view_submission built by hand, as a hostile client sends it (no fake's input checks)."""
    payload = h.sim._envelope("view_submission", h.sim._user(user, user[2:].lower()))
    state = {k: {k: {"type": "plain_text_input", "value": v}} for k, v in texts.items()}
    payload["trigger_id"] = h.sim._trigger_id()
    payload["view"] = {**forged(view), "state": {"values": state}}
    return await h.sim._post_payload(h.url, payload)


def unchanged(h: Harness, run: str = RUN) -> None:
    assert artifact_text(h.engine, run, "summary") == SUMMARY
    assert len(history(h.engine, run, "summary")) == 1
    assert current(h.engine, run)[1] == "waiting_approval_to_complete"


async def test_a_forged_execution_id_without_what_the_card_showed_is_refused(
    h: Harness, tmp_path: Path
) -> None:
    ex1 = await start(h, tmp_path)
    view = await open_edit(h)
    ex2 = await start(h, tmp_path, "digest#v2")
    # Ana's modal of v1, pointed at v2 with the digest dropped: she never saw v2's text.
    resp = await submit_raw(h, "U0ANA", forged(view, str(ex2)), {"summary": EDITED, "scores": SCORES})
    assert resp.body["response_action"] == "update", resp
    await h.settle()
    unchanged(h, "digest#v2")
    unchanged(h, RUN)
    assert ("edit_and_approve", "refused", "U0ANA") in interactions(h.engine, ex2)
    # ... and with v1's revision and digest: not what v2's card shows either.
    meta = view["private_metadata"].replace(f"{ex1}:", f"{ex2}:", 1)
    resp = await submit_raw(h, "U0ANA", forged(view, meta), {"summary": EDITED, "scores": SCORES})
    assert resp.body["response_action"] == "update", resp
    await h.settle()
    unchanged(h, "digest#v2")


async def test_a_non_approver_submitting_the_modal_changes_nothing(h: Harness, tmp_path: Path) -> None:
    ex = await start(h, tmp_path)
    view = await open_edit(h)
    resp = await submit_raw(h, "U0CAROL", forged(view), {"summary": EDITED, "scores": SCORES})
    assert "You may not approve this" in str(resp.body)
    await h.settle()
    unchanged(h)
    assert ("edit_and_approve", "refused", "U0CAROL") in interactions(h.engine, ex)


async def test_an_edit_after_the_decision_or_a_newer_revision_is_refused(h: Harness, tmp_path: Path) -> None:
    await start(h, tmp_path)
    view = await open_edit(h)
    # Ben asks for a revision; the script runs again: the modal shows revision 0.
    await h.click("U0BEN", h.last_with_button("request_revision"), "request_revision")
    feedback = list(h.fake.opened_views.values())[-1]
    await h.sim.view_submission(h.url, "U0BEN", feedback, {"feedback": "Again"})
    await h.settle()
    assert await script_worker(h.engine).drain() == 1
    await h.settle()
    resp = await submit_raw(h, "U0ANA", forged(view), {"summary": EDITED, "scores": SCORES})
    assert "out of date" in str(resp.body), resp
    await h.settle()
    assert artifact_text(h.engine, RUN, "summary") == SUMMARY
    assert "edited" not in [k for _, k, _, _ in history(h.engine, RUN, "summary")]
    # Decided by Ben's click; Ana's modal of the new revision comes too late.
    view = await open_edit(h)
    await h.click("U0BEN", h.last_with_button("approve_complete"), "approve_complete")
    resp = await submit_raw(h, "U0ANA", forged(view), {"summary": EDITED, "scores": SCORES})
    assert "Already approved by ben" in str(resp.body), resp
    await h.settle()
    assert artifact_text(h.engine, RUN, "summary") == SUMMARY
    assert "edited" not in [k for _, k, _, _ in history(h.engine, RUN, "summary")]
    assert h.engine.run(RUN).info.status == "completed"


async def test_file_names_that_are_paths_or_not_outputs_are_refused(h: Harness, tmp_path: Path) -> None:
    await start(h, tmp_path)
    view = await open_edit(h)
    before = sorted(str(p) for p in Path(tmp_path).rglob("*"))
    for name in ("../../../x", f"{tmp_path}/abs", "secrets", "summary.md"):
        resp = await submit_raw(
            h, "U0ANA", forged(view, extra=(name,)), {"summary": EDITED, "scores": SCORES, name: "pwned"}
        )
        assert resp.body["response_action"] == "update", (name, resp)
        assert "not an output of this checkpoint that can be edited" in str(resp.body), resp
        await h.settle()
    unchanged(h)
    assert sorted(str(p) for p in Path(tmp_path).rglob("*")) == before
    written = [
        p
        for p in Path(tmp_path).rglob("*")
        if p.is_file() and not p.name.startswith(("pipebot.db", "inbox.db"))
    ]
    assert not [p for p in written if "pwned" in p.read_text(errors="ignore")]


async def test_an_oversized_edit_is_refused(h: Harness, tmp_path: Path) -> None:
    await start(h, tmp_path)
    view = await open_edit(h)
    big = forged(view)
    for b in big["blocks"]:
        if b.get("block_id") == "summary":
            b["element"].pop("max_length", None)
    # A whole 5 MB request: refused by the HTTP server before slack-bolt reads it.
    resp = await submit_raw(h, "U0ANA", big, {"summary": "y" * 5_000_000, "scores": SCORES})
    assert resp.status == 413
    # Just under the request limit: far beyond anything a chat input holds.
    resp = await submit_raw(h, "U0ANA", big, {"summary": "y" * 700_000, "scores": SCORES})
    assert "too long" in str(resp.body) or "at most" in str(resp.body), resp
    await h.settle()
    unchanged(h)


async def test_a_replayed_or_retried_submission_takes_effect_once(h: Harness, tmp_path: Path) -> None:
    await start(h, tmp_path)
    view = await open_edit(h)
    resp = await h.sim.view_submission(h.url, "U0ANA", view, {"summary": EDITED, "scores": SCORES})
    assert resp.body == ""
    sent = h.sim.sent[-1]
    await h.sim.replay(sent)
    await h.sim.replay(sent, retry_num=1)
    await h.settle()
    assert [k for _, k, _, _ in history(h.engine, RUN, "summary")] == ["produced", "edited"]
    assert h.engine.run(RUN).info.status == "completed"
    assert len([m for m in h.thread() if "ana edited summary.md" in m.text]) == 1
    kinds = [(k, o) for k, o, _ in interactions(h.engine)]
    assert kinds.count(("edit", "accepted")) == 1
    assert kinds.count(("approve_complete", "accepted")) == 1


async def test_approve_racing_an_edit_has_one_outcome(h: Harness, tmp_path: Path) -> None:
    import_digest(h.engine, tmp_path, "slack:U0ANA, slack:U0BEN")
    for trial in range(1, 5):
        run = f"digest#v{trial}"
        await start(h, tmp_path, run)
        view = await open_edit(h)
        card = h.last_with_button("approve_complete")
        await asyncio.gather(
            h.click("U0BEN", card, "approve_complete", settle=False),
            h.sim.view_submission(h.url, "U0ANA", view, {"summary": EDITED, "scores": SCORES}),
        )
        await h.settle()
        revs = history(h.engine, run, "summary")
        text = artifact_text(h.engine, run, "summary")
        kinds = [(k, o) for k, o, _ in interactions(h.engine, current(h.engine, run)[0])]
        assert kinds.count(("approve_complete", "accepted")) == 1, kinds
        if ("edit", "accepted") in kinds:  # Ana won: what she saw (the script's) became her text
            assert text == EDITED + "\n" and len(revs) == 2
        else:  # Ben won: what he saw is what was approved
            assert text == SUMMARY and len(revs) == 1
        assert h.engine.run(run).info.status == "completed"
        assert "approved by" in all_text(h.fake.get_message(CHANNEL, card.ts)).lower()


async def test_text_that_is_not_unicode_is_refused(h: Harness, tmp_path: Path) -> None:
    """JSON may carry lone surrogates ("\\ud800"): not text any file can hold."""
    ex = await start(h, tmp_path)
    view = await open_edit(h)
    resp = await submit_raw(h, "U0ANA", view, {"summary": "# Sum\ud800mary", "scores": SCORES})
    assert resp.status == 400, resp
    await h.settle()
    unchanged(h)
    assert current(h.engine, RUN) == (ex, "waiting_approval_to_complete")
    resp = await submit_raw(h, "U0ANA", view, {"summary": EDITED, "scores": SCORES})
    assert resp.body == "", resp  # the execution is not stuck
    await h.settle()
    assert artifact_text(h.engine, RUN, "summary") == EDITED + "\n"
