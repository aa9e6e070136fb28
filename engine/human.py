"""Human commands on a checkpoint execution: approve start, submit form, approve completion
(as it is, or edited), request revision, reject, reassign. Each is idempotent: when it already
took effect, it says who acted first.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, insert, select, update

from engine import artifacts, edits, flow, messages, queued_writes, seen
from engine.actors import Actor
from engine.definitions import Checkpoint
from engine.errors import AlreadyDone, NotFound, Refused
from engine.forms import FileUpload, validate_form
from engine.limits import DEFAULT as DEFAULT_LIMITS
from engine.limits import Limits
from engine.models import ExecutionRow, ExtraApproverRow, InteractionRow, RunRow
from engine.permissions import check_approval
from engine.seen import Seen
from engine.states import ExecStatus as E
from engine.states import RunStatus as R
from engine.states import move_execution, move_run
from engine.tx import Tx
from engine.workspace import Workspace, safe_filename

# A user id as the platforms spell them (letters, digits, a few marks): one person, never a group.
ONE_PERSON = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class Outcome:
    message: str
    changed: bool = True
    # A rejection with `on_reject: rollback:<checkpoint>`: the engine rolls the run back to it
    # once this transaction committed (a rollback moves files: engine.rollbacks).
    rollback_to: str | None = None
    run: str | None = None


VERBS = {
    "approve_start": "Approved",
    "approve_complete": "Approved",
    "submit_form": "Submitted",
    "request_revision": "Revision requested",
    "reject": "Rejected",
    "deadline": "Decided",
}
# A click on a decided message answers with the decision taken there, whichever button it was.
_ENDS = ("reject", "deadline")
SAME_DECISION = {
    "approve_start": ("approve_start", *_ENDS),
    "submit_form": ("submit_form", *_ENDS),
    "approve_complete": ("approve_complete", "request_revision", *_ENDS),
    "request_revision": ("approve_complete", "request_revision", *_ENDS),
    "reject": ("approve_start", "submit_form", "approve_complete", "request_revision", *_ENDS),
    "reassign": ("approve_start", "submit_form", "approve_complete", "request_revision", *_ENDS),
    "edit_and_approve": ("approve_complete", "request_revision", *_ENDS),
}
STAGES = {
    E.WAITING_APPROVAL_TO_START: "start",
    E.WAITING_FOR_INPUT: "form",
    E.WAITING_APPROVAL_TO_COMPLETE: "complete",
}


def _rows(ids: list[int]) -> Select[ExecutionRow, RunRow]:
    return (
        select(ExecutionRow, RunRow)
        .join(RunRow, RunRow.id == ExecutionRow.run_id)
        .where(ExecutionRow.id.in_(ids))
        .order_by(ExecutionRow.id)  # locked in one order: two batches of one table cannot deadlock
        .with_for_update()
    )


def _loaded(tx: Tx) -> dict[int, tuple[ExecutionRow, RunRow]]:
    # In one transaction the rows are the session's own, locked by the first load: loading them
    # again (a deadline checks its wait, then approves through the same command) need not query.
    loaded: dict[int, tuple[ExecutionRow, RunRow]] = tx.session.info.setdefault("loaded", {})
    return loaded


def preload(tx: Tx, execution_ids: list[int]) -> None:
    """Load (and lock) many executions with their runs in one query: a batch of timers."""
    ids = sorted(set(execution_ids) - set(_loaded(tx)))
    if ids:
        for ex, run in tx.session.execute(_rows(ids)):
            _loaded(tx)[ex.id] = (ex, run)


def load(tx: Tx, execution_id: int) -> tuple[ExecutionRow, RunRow, Checkpoint]:
    loaded = _loaded(tx)
    known = loaded.get(execution_id)
    if known is not None and all(obj in tx.session for obj in known):
        ex, run = known
        return ex, run, flow.checkpoint_of(tx, run, ex)
    row = tx.session.execute(_rows([execution_id])).first()
    if row is None:
        raise NotFound(f"There is no checkpoint execution {execution_id}.")
    ex, run = row
    loaded[execution_id] = (ex, run)
    return ex, run, flow.checkpoint_of(tx, run, ex)


def _expect(tx: Tx, ex: ExecutionRow, run: RunRow, cp: Checkpoint, kind: str, status: E) -> None:
    """Refuse unless the execution waits for exactly this; say who acted first if it is done."""
    if ex.status != status:
        first = tx.session.scalar(
            select(InteractionRow)
            .where(
                InteractionRow.execution_id == ex.id,
                InteractionRow.kind.in_(SAME_DECISION[kind]),
                InteractionRow.outcome == "accepted",
            )
            .order_by(InteractionRow.id.desc())
            .limit(1)
        )
        if first is not None:
            raise AlreadyDone(
                messages.already(VERBS[first.kind], first.actor_name, first.created_at), by=first.actor_name
            )
        raise Refused(messages.NOT_WAITING.format(checkpoint=cp.title, status=ex.status.replace("_", " ")))
    if run.status == R.PAUSED:
        raise Refused(messages.RUN_PAUSED.format(run=run.name))
    if run.status != R.IN_PROGRESS:
        raise Refused(messages.RUN_OVER.format(run=run.name, status=run.status))


def _record(
    tx: Tx,
    run: RunRow,
    ex: ExecutionRow,
    kind: str,
    actor: Actor,
    data: Any = None,
    outcome: str = "accepted",
) -> None:
    extra = "" if outcome == "accepted" else f" ({outcome})"
    tx.log(run, f"{kind} by {actor.name} on {ex.checkpoint_id}{extra}")
    queued_writes.queue(  # sent before anything reads it (engine.queued_writes)
        tx.session.connection(),
        _INTERACTIONS,
        {
            "run_id": run.id,
            "execution_id": ex.id,
            "kind": kind,
            "outcome": outcome,
            "actor_platform": actor.platform,
            "actor_id": actor.user_id,
            "actor_name": actor.name,
            "revision": ex.revision,
            "data_json": json.dumps(data) if data is not None else None,
            "created_at": tx.now(),
        },
    )


_INTERACTIONS = insert(InteractionRow)


def _approve(tx: Tx, run: RunRow, ex: ExecutionRow, kind: str, actor: Actor) -> tuple[int, list[str]]:
    """Count this approval; return (count, approver names once enough distinct people approved)."""
    required = tx.pipeline(run).required_approvals
    if required == 1:
        return 1, [actor.name]  # one approval decides: nothing to count
    rows = tx.session.execute(
        select(InteractionRow.actor_platform, InteractionRow.actor_id, InteractionRow.actor_name).where(
            InteractionRow.execution_id == ex.id,
            InteractionRow.kind == kind,
            InteractionRow.revision == ex.revision,
            InteractionRow.outcome == "approval",
        )
    ).all()
    keys = {f"{platform}:{user}" for platform, user, _ in rows}
    if actor.key in keys:
        raise AlreadyDone(f"You already approved this ({len(keys)} of {required} approvals).", by=actor.name)
    _record(tx, run, ex, kind, actor, outcome="approval")
    names = [name for _, _, name in rows] + [actor.name]
    return len(names), (names if len(names) >= required else [])


def approve_start(
    tx: Tx,
    ws: Workspace,
    execution_id: int,
    actor: Actor,
    shown: Seen | None = None,
    *,
    comment: str | None = None,
    auto: str | None = None,
) -> Outcome:
    return _approval(tx, ws, execution_id, actor, "start", shown, comment, auto)


def approve_complete(
    tx: Tx,
    ws: Workspace,
    execution_id: int,
    actor: Actor,
    shown: Seen | None = None,
    *,
    comment: str | None = None,
    auto: str | None = None,
) -> Outcome:
    return _approval(tx, ws, execution_id, actor, "complete", shown, comment, auto)


def extra_approvers(tx: Tx, ex: ExecutionRow) -> list[str]:
    """Principals added to this decision only (escalation, reassignment)."""
    return list(
        tx.session.scalars(select(ExtraApproverRow.principal).where(ExtraApproverRow.execution_id == ex.id))
    )


def check_approver(tx: Tx, run: RunRow, ex: ExecutionRow, actor: Actor) -> None:
    check_approval(tx.pipeline(run), run, actor, extra_approvers(tx, ex))


def _approval(
    tx: Tx,
    ws: Workspace,
    execution_id: int,
    actor: Actor,
    stage: str,
    shown: Seen | None,
    comment: str | None,
    auto: str | None,
    edited: list[str] | None = None,
) -> Outcome:
    """One approval of a start or a result; the decision once enough distinct people approved.

    ``auto`` is the deadline's own wording: it decides alone, needing no permission or count.
    ``edited``: the files this approver just edited (edit_and_approve), kept with the decision.
    """
    kind, waits_in = (
        ("approve_start", E.WAITING_APPROVAL_TO_START)
        if stage == "start"
        else ("approve_complete", E.WAITING_APPROVAL_TO_COMPLETE)
    )
    ex, run, cp = load(tx, execution_id)
    seen.check_revision(ex, shown)
    _expect(tx, ex, run, cp, kind, waits_in)
    seen.check(tx, ex, shown)
    comment = (comment or "").strip() or None
    if auto is None:
        check_approver(tx, run, ex, actor)
        count, names = _approve(tx, run, ex, kind, actor)
        if not names:
            tx.notify(run, flow.approval_card(tx, run, ex, cp, stage, approvals=count))
            return Outcome(f"Approval recorded ({count} of {tx.pipeline(run).required_approvals}).")
        verb = messages.EDITED_VERB if edited else "Approved"
        decided = messages.with_comment(flow.decided_text(verb, ", ".join(names), tx), comment)
    else:
        count, decided = 0, auto
    data = {k: v for k, v in (("comment", comment), ("edited", edited)) if v}
    _record(tx, run, ex, kind, actor, data or None)
    tx.notify(run, flow.approval_card(tx, run, ex, cp, stage, count, decided))
    if stage == "start":
        flow.begin(tx, ws, run, ex, actor=actor.key)
    elif edited:
        reason = "edited " + ", ".join(edited)
        flow.complete(tx, ws, run, ex, actor=actor.key, rule="edit_and_approve", reason=reason)
    else:
        flow.complete(tx, ws, run, ex, actor=actor.key)
    flow.show_run(tx, run)
    return Outcome(f"Started {cp.title}." if stage == "start" else f"Approved {cp.title}.")


def edit_and_approve(
    tx: Tx,
    ws: Workspace,
    execution_id: int,
    actor: Actor,
    texts: dict[str, str],
    shown: Seen | None = None,
    *,
    comment: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Outcome:
    """Store an approver's edits of a result's text artifacts, then approve it as approve_complete
    does (same permission, idempotency and stale-card checks, made before anything is stored).

    ``texts`` maps output name to its new text. Each changed artifact gets a new revision credited
    to the editor (the agent's original stays readable); an edit that fails its output's checks
    refuses the whole command (EditInvalid) and changes nothing.

    ``shown`` is required: edited text replaces what the editor saw, so it must name that
    version (EditSpec.revision/digest); the checks below then refuse any other.
    """
    ex, run, cp = load(tx, execution_id)
    if shown is None:
        raise Refused(messages.EDIT_WITHOUT_VERSION)
    seen.check_revision(ex, shown)
    _expect(tx, ex, run, cp, "edit_and_approve", E.WAITING_APPROVAL_TO_COMPLETE)
    seen.check(tx, ex, shown)
    check_approver(tx, run, ex, actor)
    changed = edits.prepare(tx, ws, cp, ex, texts, limits.multiline_chars)
    stored = []
    for row, content in changed:
        rev = artifacts.add_revision(tx, ws, row, content, actor.key, "edited")
        stored.append({"name": row.name, "format": row.format, "revision": rev.number, "sha256": rev.sha256})
    if not stored:
        outcome = _approval(tx, ws, execution_id, actor, "complete", None, comment, None)
        return Outcome(f"{messages.EDIT_UNCHANGED} {outcome.message}")
    _record(tx, run, ex, "edit", actor, {"artifacts": stored})
    # Approvals given before the edit approved other content: they no longer count.
    tx.session.execute(
        update(InteractionRow)
        .where(
            InteractionRow.execution_id == ex.id,
            InteractionRow.kind == "approve_complete",
            InteractionRow.revision == ex.revision,
            InteractionRow.outcome == "approval",
        )
        .values(outcome="approval_before_edit")
    )
    files = [f"{s['name']}.{s['format']}" for s in stored]
    flow.notice(tx, run, messages.edited(actor.name, files, cp.title))
    outcome = _approval(tx, ws, execution_id, actor, "complete", None, comment, None, files)
    return Outcome(f"Edited {', '.join(files)}. {outcome.message}")


def request_revision(
    tx: Tx, ws: Workspace, execution_id: int, actor: Actor, feedback: str, shown: Seen | None = None
) -> Outcome:
    ex, run, cp = load(tx, execution_id)
    seen.check_revision(ex, shown)
    _expect(tx, ex, run, cp, "request_revision", E.WAITING_APPROVAL_TO_COMPLETE)
    seen.check(tx, ex, shown)
    check_approver(tx, run, ex, actor)
    if ex.revision >= cp.human.max_revisions:
        raise Refused(messages.NO_REVISIONS_LEFT.format(checkpoint=cp.title, max=cp.human.max_revisions))
    feedback = feedback.strip()
    if not feedback:
        raise Refused("Say what should change: the feedback is empty.")
    _record(tx, run, ex, "request_revision", actor, {"feedback": feedback})
    tx.notify(
        run,
        flow.approval_card(
            tx, run, ex, cp, "complete", decided=flow.decided_text("Revision requested", actor.name, tx)
        ),
    )
    move_execution(tx.session, tx.clock, ex, E.REVISION_REQUESTED, actor=actor.key, reason=feedback)
    ex.revision += 1
    ex.feedback = feedback
    flow.notice(
        tx, run, f"Revision {ex.revision} of {cp.title} requested by {actor.name}: {feedback}", "warning"
    )
    flow.begin(tx, ws, run, ex, actor=actor.key)
    return Outcome(f"Revision requested for {cp.title}.")


def submit_form(
    tx: Tx,
    ws: Workspace,
    execution_id: int,
    actor: Actor,
    values: dict[str, Any],
    max_file_bytes: int,
    limits: Limits = DEFAULT_LIMITS,
    shown: Seen | None = None,
    *,
    auto: str | None = None,
) -> Outcome:
    ex, run, cp = load(tx, execution_id)
    seen.check_revision(ex, shown)
    _expect(tx, ex, run, cp, "submit_form", E.WAITING_FOR_INPUT)
    seen.check(tx, ex, shown)
    kept = _kept_files(ws, cp, ex, values)
    clean = validate_form(cp.inputs, {**values, **kept}, max_file_bytes, limits)
    previous = flow.form_values(ex)
    stored: dict[str, Any] = {}
    for key, value in clean.items():
        if key in kept:  # a revision left the file empty: the file, and its artifact, stay
            stored[key] = previous[key]
        elif isinstance(value, FileUpload):
            path = ws.write_output(
                run.pipeline_slug, ex.id, f"{key}_{safe_filename(value.filename)}", value.data, "form"
            )
            fmt = path.suffix.lstrip(".") or "bin"
            artifacts.record(tx, ws, run, ex, key, fmt, path, author=actor.key)
            stored[key] = {"file": path.name, "size": len(value.data), "path": ws.relative(path)}
        else:
            stored[key] = value
    ex.form_json = json.dumps(stored)
    if cp.save_form_as_artifact:
        # A human checkpoint's json output is its form; agents and scripts produce their own.
        declared = [o.name for o in cp.outputs if o.format == "json"] if cp.mode == "human_only" else []
        name = declared[0] if declared else f"{cp.id}_form"
        path = ws.write_output(
            run.pipeline_slug, ex.id, f"{name}.json", json.dumps(stored, indent=2).encode(), "form"
        )
        artifacts.record(tx, ws, run, ex, name, "json", path, author=actor.key)
    _record(tx, run, ex, "submit_form", actor, stored)
    tx.notify(
        run, flow.form_card(tx, run, ex, cp, decided=auto or flow.decided_text("Submitted", actor.name, tx))
    )
    if cp.mode == "human_only":
        flow.work_done(tx, ws, run, ex, actor=actor.key)
    else:
        move_execution(tx.session, tx.clock, ex, E.RUNNING, actor=actor.key)
    flow.show_run(tx, run)
    return Outcome(f"Form for {cp.title} submitted.")


def _kept_files(ws: Workspace, cp: Checkpoint, ex: ExecutionRow, values: dict[str, Any]) -> dict[str, Any]:
    """File fields left empty that an earlier submission of this execution filled in."""
    previous = flow.form_values(ex)
    kept: dict[str, Any] = {}
    for f in cp.inputs:
        old, new = previous.get(f.id), values.get(f.id)
        if f.type != "file" or not (new is None or new == "") or not isinstance(old, dict):
            continue
        path = ws.absolute(str(old.get("path", "")))
        if path.is_file():
            kept[f.id] = FileUpload(str(old["file"]), path.read_bytes())
    return kept


WAITS_FOR = {
    "approve_start": E.WAITING_APPROVAL_TO_START,
    "approve_complete": E.WAITING_APPROVAL_TO_COMPLETE,
    "approve_with_comment": E.WAITING_APPROVAL_TO_COMPLETE,
    "request_revision": E.WAITING_APPROVAL_TO_COMPLETE,
    "edit_and_approve": E.WAITING_APPROVAL_TO_COMPLETE,
}


def check(tx: Tx, execution_id: int, actor: Actor, kind: str, shown: Seen | None = None) -> None:
    """Raise what ``kind`` would refuse with now (AlreadyDone, Refused, NotAllowed); change nothing.

    Lets a chat adapter refuse before it asks for more (a revision's feedback in a dialog).
    """
    ex, run, cp = load(tx, execution_id)
    seen.check_revision(ex, shown)
    if kind in ("reject", "reassign", "approve_with_comment"):
        # These act on whichever approval waits (to start or to complete).
        _waiting_approval(tx, ex, run, cp, "reassign" if kind == "approve_with_comment" else kind, False)
    else:
        _expect(tx, ex, run, cp, kind, WAITS_FOR[kind])
    if kind != "reassign":  # handing a decision on judges nothing the card shows
        seen.check(tx, ex, shown)
    check_approver(tx, run, ex, actor)
    if kind == "request_revision" and ex.revision >= cp.human.max_revisions:
        raise Refused(messages.NO_REVISIONS_LEFT.format(checkpoint=cp.title, max=cp.human.max_revisions))


def _waiting_approval(tx: Tx, ex: ExecutionRow, run: RunRow, cp: Checkpoint, kind: str, forms: bool) -> str:
    """The stage waiting for a decision now (start, complete; form when ``forms``), or refuse."""
    allowed = {E.WAITING_APPROVAL_TO_START, E.WAITING_APPROVAL_TO_COMPLETE} | (
        {E.WAITING_FOR_INPUT} if forms else set()
    )
    _expect(tx, ex, run, cp, kind, E(ex.status) if ex.status in allowed else E.WAITING_APPROVAL_TO_COMPLETE)
    return STAGES[E(ex.status)]


def reject(
    tx: Tx,
    ws: Workspace,
    execution_id: int,
    actor: Actor,
    reason: str,
    shown: Seen | None = None,
    *,
    auto: str | None = None,
    roll_back: bool = True,
) -> Outcome:
    """The checkpoint fails: the run stops as failed, or rolls back when ``on_reject`` says so.

    One rejection decides, however many approvals the pipeline needs. ``auto`` (the deadline's
    wording) needs no permission; ``roll_back=False`` ignores ``on_reject`` (``on_deadline: fail``).
    """
    from engine import runs  # runs imports this module (Outcome)
    from engine.timers import effective

    ex, run, cp = load(tx, execution_id)
    seen.check_revision(ex, shown)
    stage = _waiting_approval(tx, ex, run, cp, "reject", forms=auto is not None)
    seen.check(tx, ex, shown)
    reason = reason.strip()
    if not reason:
        raise Refused(messages.REASON_NEEDED)
    if auto is None:
        check_approver(tx, run, ex, actor)
    _record(
        tx, run, ex, "reject" if auto is None else "deadline", actor, {"reason": reason, "outcome": "reject"}
    )
    decided = auto or messages.rejected(actor.name, tx.now(), reason)
    runs.close_open_card(tx, run, ex, decided)
    move_execution(tx.session, tx.clock, ex, E.FAILED, actor=actor.key, reason=reason)
    ex.error = reason
    on_reject = effective(tx.pipeline(run), cp).on_reject if roll_back else None
    move_run(tx.session, tx.clock, run, R.FAILED, actor=actor.key, reason=reason)
    verb = "rejected" if stage != "form" else "not filled in"
    if on_reject and on_reject.startswith("rollback:"):
        target = on_reject.removeprefix("rollback:")
        flow.notice(
            tx, run, f"{cp.title} {verb} by {actor.name}: {reason}. Rolling back to {target}.", "error"
        )
        flow.show_run(tx, run)
        return Outcome(f"Rejected {cp.title}.", rollback_to=target, run=run.name)
    flow.notice(tx, run, f"{run.name} failed: {cp.title} {verb} by {actor.name}: {reason}", "error")
    flow.show_run(tx, run)
    return Outcome(f"Rejected {cp.title}.")


def reassign(tx: Tx, execution_id: int, actor: Actor, to: Actor) -> Outcome:
    """Hand a pending decision to someone else: they become an approver of this decision only."""
    ex, run, cp = load(tx, execution_id)
    stage = _waiting_approval(tx, ex, run, cp, "reassign", forms=False)
    check_approver(tx, run, ex, actor)
    if to.platform != actor.platform:
        raise Refused("Hand it to someone on this platform.")
    if not ONE_PERSON.fullmatch(to.user_id):
        # The chosen user comes from the client: a group handle ("@leads"), a role ("role:1") or
        # mention syntax would make a whole group an approver, or ping the channel.
        raise Refused(messages.REASSIGN_ONE_PERSON)
    principal = to.key
    if principal in extra_approvers(tx, ex):
        raise AlreadyDone(f"{to.name} may already decide this.", by=actor.name)
    tx.session.add(
        ExtraApproverRow(
            execution_id=ex.id,
            principal=principal,
            name=to.name,
            reason="reassign",
            added_by=actor.key,
            created_at=tx.now(),
        )
    )
    _record(tx, run, ex, "reassign", actor, {"to": principal, "name": to.name})
    tx.notify(run, flow.approval_card(tx, run, ex, cp, stage))
    flow.notice(
        tx,
        run,
        f"{actor.name} handed the decision on *{cp.title}* to {to.name}.",
        mentions=[principal],
        direct=[principal],
    )
    return Outcome(f"{to.name} may now decide {cp.title}.")
