"""Show changes (engine side): the diff of an approval card's revision against the previous one,
or against the extended version; posted once per (execution, revision)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from engine import messages
from engine.api import Engine
from engine.errors import Refused
from engine.models import OutboxRow
from engine.notifications import NOTIFICATION, ChangesCard
from engine.seen import Seen
from tests.conftest import HERE, person

ANA, BOB = person("ana"), person("bob")

PIPELINE = """
id: reports
name: Reports
approvers: [console:ana, console:bob]
checkpoints:
  - id: report
    name: Report
    mode: script
    script: {code: "print(1)"}
    human: {approval_to_complete: true, max_revisions: 3}
    outputs: [{name: report, format: md}, {name: data, format: json}, {name: raw, format: txt}]
"""


@pytest.fixture
def reports(engine: Engine, tmp_path: Path) -> Engine:
    path = tmp_path / "reports.yaml"
    path.write_text(PIPELINE)
    engine.import_pipeline(path)
    return engine


def produce(engine: Engine, report: str, data: str = '{"n": 1}\n', raw: bytes = b"\xff\xfe1") -> int:
    """What the worker does for one attempt: write the outputs, report success."""
    item = engine.claim_work("w1", 60)
    assert item is not None
    out = item.workdir / "outputs"
    files = {"report": ("md", "report.md", report.encode()), "data": ("json", "data.json", data.encode())}
    files["raw"] = ("txt", "raw.txt", raw)
    paths = {}
    for name, (fmt, filename, content) in files.items():
        (out / filename).write_bytes(content)
        paths[name] = (fmt, out / filename)
    assert engine.work_succeeded(item.execution_id, "w1", paths, (0, 0), "")
    return item.execution_id


def posted(engine: Engine) -> list[ChangesCard]:
    with engine.store.read() as s:
        rows = s.scalars(
            select(OutboxRow).where(OutboxRow.message_key.like("%:changes:%")).order_by(OutboxRow.id)
        )
        notes = [NOTIFICATION.validate_json(r.payload_json) for r in rows]
    return [n for n in notes if isinstance(n, ChangesCard)]


def card_buttons(engine: Engine, execution_id: int) -> dict[str, Seen]:
    with engine.store.read() as s:
        rows = s.scalars(
            select(OutboxRow).where(OutboxRow.message_key.like(f"exec:{execution_id}:complete:%"))
        )
        notes = [NOTIFICATION.validate_json(r.payload_json) for r in rows]
    latest = notes[-1]
    return {b.action: Seen(b.revision, b.digest) for b in getattr(latest, "buttons", [])}


def test_show_changes_after_a_revision(reports: Engine) -> None:
    engine = reports
    engine.start_run("reports", ANA, HERE)
    ex = produce(engine, "# Report\n\nline one\nline two\n")
    assert "show_changes" not in card_buttons(engine, ex)  # a first attempt: nothing to compare
    with pytest.raises(Refused):
        engine.show_changes(ex, BOB)
    first_card = card_buttons(engine, ex)["approve_complete"]
    engine.request_revision(ex, BOB, "more")
    produce(engine, "# Report\n\nline one\nline 2 <!channel> @everyone\nline three\n", raw=b"\xff\xfe2")
    shown = card_buttons(engine, ex)["show_changes"]
    assert shown.revision == 1

    with pytest.raises(Refused, match="out of date"):
        engine.show_changes(ex, BOB, first_card)  # a click on the revision-0 card
    out = engine.show_changes(ex, BOB, shown)
    assert out.changed and out.message == messages.CHANGES_POSTED
    [card] = posted(engine)
    assert card.key == f"exec:{ex}:changes:1" and card.filename == "report-r1.diff"
    assert card.text == "Changes in *Report* (revision 1 → 2), shown for Bob"
    assert [(i.name, i.status, i.added, i.removed) for i in card.items] == [
        ("report.md", "changed", 2, 1),
        ("data.json", "unchanged", 0, 0),
        ("raw.txt", "skipped", 0, 0),
    ]
    assert card.items[2].note == messages.CHANGES_NOT_TEXT
    assert card.diff.splitlines() == [
        "--- report.md (revision 1)",
        "+++ report.md (revision 2)",
        "@@ -1,4 +1,5 @@",
        " # Report",
        " ",
        " line one",
        "-line two",
        "+line 2 <!channel> @everyone",
        "+line three",
    ]
    # A second click, by anyone, posts nothing more: it is answered privately.
    again = engine.show_changes(ex, ANA, shown)
    assert not again.changed and again.message == messages.CHANGES_ABOVE
    assert len(posted(engine)) == 1


def test_show_changes_of_a_run_that_extends_a_version(reports: Engine) -> None:
    engine = reports
    engine.start_run("reports", ANA, HERE)
    v1 = produce(engine, "alpha\nbeta\n", data='{"n": 1}\n')
    engine.approve_complete(v1, ANA)
    info = engine.start_run("reports", ANA, HERE, extend=1)
    ex = produce(engine, "alpha\nbeta\ngamma\n", data='{"n": 1}\n')
    shown = card_buttons(engine, ex)["show_changes"]
    assert shown.revision == 0
    engine.show_changes(ex, BOB, shown)
    [card] = posted(engine)
    assert card.text == "Changes in *Report* (against v1), shown for Bob"
    assert card.diff.splitlines()[:2] == ["--- report.md (v1)", f"+++ report.md (v{info.name[-1]})"]
    assert "+gamma" in card.diff.splitlines()
    assert [(i.name, i.status) for i in card.items] == [
        ("report.md", "changed"),
        ("data.json", "unchanged"),
        ("raw.txt", "unchanged"),
    ]
