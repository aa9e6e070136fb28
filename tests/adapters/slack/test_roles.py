"""Who may import and delete pipelines, through real slack-bolt: refusals are private, audited, inert."""

from __future__ import annotations

from sqlalchemy import func, select

from engine import messages
from engine.api import Engine
from engine.models import AuditRow, CheckpointDefinitionRow, PipelineRow, RunRow
from tests.adapters.slack.conftest import CHANNEL, Harness

ADMIN, OWNER, MEMBER = "U0ADMIN", "U0OWN", "U0ANA"  # tests/conftest.py: ADMINS names slack:U0ADMIN
EVIL = '{id: evil, checkpoints: [{id: x, mode: script, script: {code: "import os; print(os.environ)"}}]}'
OWNED = "{id: owned, owners: [slack:U0OWN], approvers: [slack:U0BEN], checkpoints: [{id: brief}]}"


def counts(engine: Engine) -> tuple[int, ...]:
    with engine.store.read() as s:
        return tuple(
            s.scalar(select(func.count()).select_from(m)) or 0
            for m in (PipelineRow, CheckpointDefinitionRow, RunRow)
        )


def refusals(engine: Engine) -> list[tuple[str, str | None, str]]:
    with engine.store.read() as s:
        rows = s.scalars(select(AuditRow).where(AuditRow.outcome == "refused").order_by(AuditRow.id))
        return [(r.kind, r.subject, r.actor_id) for r in rows]


async def test_a_member_cannot_import_a_script_pipeline(h: Harness) -> None:
    before = counts(h.engine)
    await h.command(f"import {EVIL}", user=MEMBER)
    assert h.ephemerals_for(MEMBER) == [messages.NOT_IMPORTER]
    assert h.fake.messages_in(CHANNEL) == []  # answered privately, nothing posted
    assert counts(h.engine) == before and "evil" not in {p.slug for p in h.engine.pipelines()}
    assert refusals(h.engine) == [("import", "evil", MEMBER)]
    await h.command(f"import {EVIL}", user=ADMIN)
    assert "Pipeline evil imported as version 1." in h.fake.messages_in(CHANNEL)[-1].text
    h.fake.assert_all_ok()


async def test_only_owners_reimport_and_delete(h: Harness) -> None:
    await h.command(f"import {OWNED}", user=ADMIN)
    before = counts(h.engine)
    without_approvers = OWNED.replace("approvers: [slack:U0BEN], ", "")
    await h.command(f"import {without_approvers}", user=MEMBER)
    await h.command("delete owned", user=MEMBER)
    assert h.ephemerals_for(MEMBER) == [messages.NOT_IMPORTER, messages.NOT_DELETER]
    assert counts(h.engine) == before and h.engine.pipeline("owned").approvers == ["slack:U0BEN"]
    assert refusals(h.engine) == [("import", "owned", MEMBER), ("delete", "owned", MEMBER)]

    await h.command(f"import {without_approvers.replace('brief', 'draft')}", user=OWNER)
    assert "Pipeline owned imported as version 2." in h.fake.messages_in(CHANNEL)[-1].text
    await h.command(f"import {EVIL.replace('evil', 'owned').replace('{id: x', '{id: x2')}", user=OWNER)
    assert messages.SCRIPTS_ADMINS_ONLY in h.ephemerals_for(OWNER)

    await h.command("run owned", user=MEMBER)
    await h.command("delete owned", user=OWNER)
    assert h.ephemerals_for(OWNER)[-1].startswith("owned has active runs (owned#v1)")
    await h.command("delete owned cancel-runs", user=OWNER)
    assert "Deleted pipeline owned and cancelled owned#v1" in h.fake.messages_in(CHANNEL)[-1].text
    await h.command("list", user=MEMBER)
    assert "owned" not in h.ephemerals_for(MEMBER)[-1]
    await h.command("status owned#v1", user=MEMBER)
    assert "cancelled" in h.ephemerals_for(MEMBER)[-1]  # its runs stay readable
    h.fake.assert_all_ok()


async def test_a_too_long_answer_reopens_the_modal_with_the_error(h: Harness) -> None:
    form = "{id: note, checkpoints: [{id: ask, inputs: [{id: title, label: Title, type: text}]}]}"
    await h.command(f"import {form}", user=ADMIN)
    await h.command("run note", user=MEMBER)
    await h.click(MEMBER, h.last_with_button("open_form"), "open_form")
    [view] = h.fake.opened_views.values()
    resp = await h.sim.view_submission(h.url, MEMBER, view, {"title": "t" * 2500}, user_name="ana")
    assert resp.body == {
        "response_action": "errors",
        "errors": {"title": "must be at most 2,000 characters (got 2,500)"},
    }
    await h.settle()
    assert h.engine.run("note#v1").executions[0].status == "waiting_for_input"
