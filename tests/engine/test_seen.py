"""Cards carry what they showed: a decision on a card that no longer matches is refused."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from engine import messages
from engine.api import Engine, Seen
from engine.errors import AlreadyDone, PipebotError, Refused
from engine.models import InteractionRow
from tests.conftest import HERE, person
from tests.engine.helpers import current, interactions

GATE = """
id: gate
name: Gate
checkpoints:
  - id: sign-off
    name: Sign-off
    mode: human_only
    human: {approval_to_start: false, approval_to_complete: true, max_revisions: 3}
"""


def card(engine: Engine, execution_id: int, action: str = "approve_complete") -> Seen:
    """What the approval card for `execution_id` shows now (as its buttons carry it)."""
    [item] = [i for i in engine.pending(person("bob"), limit=500) if i.execution_id == execution_id]
    [button] = [b for b in item.buttons if b.action == action]
    return Seen(button.revision, button.digest)


def test_a_stale_card_is_refused_and_audited(engine: Engine) -> None:
    engine.import_pipeline_text(GATE, actor=None)
    info = engine.start_run("gate", person("ana"), HERE)
    ex, status = current(engine, info.name)
    assert status == "waiting_approval_to_complete"
    shown = card(engine, ex)
    assert shown.revision == 0 and len(shown.digest) == 12
    engine.request_revision(ex, person("carol"), "again", shown)
    assert card(engine, ex).revision == 1
    with pytest.raises(Refused, match=messages.STALE_CARD):
        engine.approve_complete(ex, person("bob"), shown)
    with pytest.raises(Refused, match=messages.STALE_CARD):
        engine.request_revision(ex, person("bob"), "more", shown)
    assert interactions(engine, ex)[-2:] == [
        ("approve_complete", "refused", "bob"),
        ("request_revision", "refused", "bob"),
    ]
    assert current(engine, info.name) == (ex, "waiting_approval_to_complete")
    engine.approve_complete(ex, person("bob"), card(engine, ex))  # the latest card works
    assert engine.run(info.name).info.status == "completed"


def test_changed_artifacts_make_the_card_stale(engine: Engine) -> None:
    info = engine.start_run("blog-post", person("ana"), HERE)
    ex, _ = current(engine, info.name)
    form = card_of_form(engine, ex)
    engine.submit_form(ex, person("ana"), {"topic": "first"}, form)
    review = card(engine, ex)
    engine.request_revision(ex, person("bob"), "another topic", review)
    # The form asked again: submitting it with the old card's view is refused too.
    with pytest.raises(Refused, match=messages.STALE_CARD):
        engine.submit_form(ex, person("ana"), {"topic": "second"}, form)
    engine.submit_form(ex, person("ana"), {"topic": "second"}, card_of_form(engine, ex))
    second = card(engine, ex)
    assert second.revision == 1 and second.digest != review.digest  # another form, another digest
    # A button from before cards carried what they showed (no digest) is taken as it is.
    assert engine.approve_complete(ex, person("bob")).changed


def card_of_form(engine: Engine, execution_id: int) -> Seen:
    [item] = [i for i in engine.pending(person("ana")) if i.execution_id == execution_id]
    [button] = item.buttons
    return Seen(button.revision, button.digest)


@pytest.mark.slow
def test_approve_and_revision_racing_never_approve_the_unseen_revision(engine: Engine) -> None:
    """Approve (of revision 0) and Request revision clicked at the same moment, 100 times."""
    engine.import_pipeline_text(GATE, actor=None)
    outcomes: dict[str, int] = {}
    for trial in range(100):
        info = engine.start_run("gate", person("ana"), HERE)
        ex, _ = current(engine, info.name)
        shown = card(engine, ex)
        barrier = threading.Barrier(2)
        results: list[str] = []
        threads = [
            threading.Thread(target=decide, args=(engine, c, ex, shown, barrier, results))
            for c in ("approve", "revise")
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        key = ",".join(sorted(results))
        outcomes[key] = outcomes.get(key, 0) + 1
        accepted = [
            (kind, revision)
            for kind, revision in accepted_decisions(engine, ex)
            if kind == "approve_complete"
        ]
        assert all(revision == 0 for _, revision in accepted), (trial, results)
        assert len(results) == 2 and sum(r.endswith(":applied") for r in results) == 1, results
        if engine.run(info.name).info.status == "in_progress":
            engine.cancel(info.name, person("ana"))
    # Either order happens; neither applies the approval to revision 1.
    assert set(outcomes) <= {"approve:applied,revise:already", "approve:stale,revise:applied"}, outcomes


def decide(
    engine: Engine, command: str, ex: int, shown: Seen, barrier: threading.Barrier, results: list[str]
) -> None:
    barrier.wait()
    try:
        if command == "approve":
            engine.approve_complete(ex, person("bob"), shown)
        else:
            engine.request_revision(ex, person("carol"), "fix it", shown)
        results.append(f"{command}:applied")
    except (Refused, AlreadyDone) as exc:
        results.append(f"{command}:{'stale' if str(exc) == messages.STALE_CARD else 'already'}")
    except PipebotError as exc:
        results.append(f"{command}:error {exc}")


def accepted_decisions(engine: Engine, execution_id: int) -> list[tuple[str, int]]:
    with engine.store.read() as s:
        rows = s.scalars(
            select(InteractionRow).where(
                InteractionRow.execution_id == execution_id, InteractionRow.outcome == "accepted"
            )
        )
        return [(r.kind, r.revision) for r in rows]
