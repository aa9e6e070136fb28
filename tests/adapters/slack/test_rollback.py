"""Rollbacks through Slack: the proposal with Confirm / Keep (working after a restart), archives
that keep every same-named file, run-level rollback, restore, refusals and the history pages."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from adapters.slack.directory import PLATFORM
from engine import messages
from engine.actors import Actor
from engine.api import Engine
from engine.forms import FileUpload
from tests.adapters.slack.conftest import CHANNEL, Harness, all_text, start_harness, stop_harness
from tests.engine.helpers import current
from tests.engine.rollback_helpers import import_twins
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_records import Ephemeral

pytestmark = pytest.mark.slow
ANA = Actor(PLATFORM, "U0ANA", "ana")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def steps(h: Harness, run: str, count: int, approve_last: bool = True) -> None:
    """Forms and approvals as the engine takes them (the modals are tested in test_blog_post)."""
    for i in range(count):
        ex, _ = current(h.engine, run)
        files = {"text": f"{run} {i}", "attachment": FileUpload("notes.md", f"# {run} {i}\n".encode())}
        await asyncio.to_thread(h.engine.submit_form, ex, ANA, files)
        if approve_last or i < count - 1:
            await asyncio.to_thread(h.engine.approve_complete, ex, ANA)
    await h.settle()


def last_ephemeral(h: Harness, user: str) -> Ephemeral:
    return [e for e in h.fake.ephemerals if e.user == user][-1]


def action_ids(e: Ephemeral) -> list[str]:
    return [el["action_id"] for b in e.blocks if b.get("type") == "actions" for el in b["elements"]]


async def click_ephemeral(h: Harness, user: str, e: Ephemeral, action: str) -> None:
    [action_id] = [a for a in action_ids(e) if a.startswith(f"pb:{action}:")]
    resp = await h.sim.ephemeral_action(h.url, user, e, action_id, user_name=user[2:].lower())
    assert resp.status == 200
    await h.settle()


async def test_rollbacks_through_slack(engine: Engine, fake: FakeSlack, tmp_path: Path) -> None:
    import_twins(engine, tmp_path)
    h = await start_harness(engine, fake)
    try:
        await h.command("run twins")
        await steps(h, "twins#v1", 3, approve_last=False)  # first, second done; third in review
        before = {a.artifact_id: a.sha256 for a in engine.artifacts("twins#v1")}

        await h.command("rollback twins#v1 first", user="U0MALLORY")
        assert h.ephemerals_for("U0MALLORY")[-1] == messages.NOT_RUN_CONTROLLER
        await h.command("rollback twins#v1 first")
        proposal = last_ephemeral(h, "U0ANA")
        assert "Roll back twins#v1 to first? This archives first (exec 1, completed)" in proposal.text
        assert action_ids(proposal) == ["pb:confirm_rollback:1", "pb:keep_rollback:1"]
    finally:
        await stop_harness(h)

    h = await start_harness(engine, fake)  # a restart: the buttons keep working (the plan is a row)
    try:
        await click_ephemeral(h, "U0ANA", proposal, "confirm_rollback")
        assert "Rolled back twins#v1 to first (rollback 1)." in [m.text for m in fake.messages_in(CHANNEL)]
        run_ts = fake.messages_in(CHANNEL)[0].ts
        thread = "\n".join(all_text(m) for m in fake.messages_in(CHANNEL, thread_ts=run_ts))
        assert "twins#v1 rolled back to first by ana (rollback 1: 3 execution(s), 6 file(s)" in thread
        await click_ephemeral(h, "U0ANA", proposal, "confirm_rollback")
        assert h.ephemerals_for("U0ANA")[-1] == "Rollback 1 was already confirmed (ana)."
        for art_id, digest in before.items():  # same-named files, each artifact its own bytes
            assert sha(engine.artifact_path(art_id)) == digest
        archive = next((engine.ws.base / "twins" / ".archived").iterdir())
        assert {p.parent.name for p in archive.rglob("doc.json")} == {"exec_1", "exec_2", "form"}

        # Restore it; nothing newer happened to those checkpoints.
        await h.command("restore 1")
        assert engine.run("twins#v1").info.done == 2
        statuses = [e.status for e in engine.run("twins#v1").executions]
        assert statuses == ["completed", "completed", "waiting_approval_to_complete", "rolled_back"]
        await h.command("restore 1")
        assert h.ephemerals_for("U0ANA")[-1] == "Rollback 1 was already restored."
        await h.command("restore 99")
        assert h.ephemerals_for("U0ANA")[-1] == "There is no rollback 99."

        # Run-level: v2 completed, v3 active; back to v1.
        await asyncio.to_thread(engine.approve_complete, 3, ANA)  # the restored review works
        await h.command("run twins")
        await steps(h, "twins#v2", 3)
        await h.command("run twins")
        await steps(h, "twins#v3", 1, approve_last=False)
        await h.command("rollback twins#v1")
        proposal = last_ephemeral(h, "U0ANA")
        assert proposal.text.startswith("Return twins to v1? This archives twins#v2, twins#v3")
        await click_ephemeral(h, "U0ANA", proposal, "keep_rollback")
        assert h.ephemerals_for("U0ANA")[-1] == "Kept twins#v1 as it is: nothing was rolled back."
        await h.command("rollback twins#v1")
        await click_ephemeral(h, "U0ANA", last_ephemeral(h, "U0ANA"), "confirm_rollback")
        assert engine.run("twins#v3").info.status == "rolled_back"
        assert (engine.ws.base / "twins" / "runs" / "latest").readlink().name == "v1"
        await h.command("status twins#v3")
        assert "rolled back by ana at" in h.ephemerals_for("U0ANA")[-1]
        await h.command("run twins")
        assert h.ephemerals_for("U0ANA")[-1] == "Started twins#v4."
        await h.command("rollbacks twins")
        listed = h.ephemerals_for("U0ANA")[-1]
        assert listed.index("#4") < listed.index("#2") < listed.index("#1")  # newest first
        assert "restored (restore 2)" in listed

        # The history, a page at a time.
        await h.command("history twins#v1")
        first = last_ephemeral(h, "U0ANA")
        assert "History of twins#v1 (completed) — page 1/2" in first.text
        assert "rollback 1 to first" in first.text
        await click_ephemeral(h, "U0ANA", first, "history_page")
        assert "page 2/2" in h.ephemerals_for("U0ANA")[-1]
        h.fake.assert_all_ok()
    finally:
        await stop_harness(h)
