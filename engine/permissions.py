"""Who may act on a run. Checked in the engine so every platform enforces the same rules."""

from __future__ import annotations

from collections.abc import Iterable

from engine import messages
from engine.actors import Actor
from engine.definitions import Pipeline
from engine.errors import NotAllowed
from engine.models import RunRow


def is_approver(pipeline: Pipeline, actor: Actor, extra: Iterable[str] = ()) -> bool:
    """Entries are ``platform:user``, ``platform:@group`` or ``platform:role:id``.

    An empty list means everyone in the conversation may approve. ``extra`` are the principals
    added to one decision (escalation, reassignment).
    """
    if not pipeline.approvers:
        return True
    for entry in [*pipeline.approvers, *extra]:
        platform, _, who = entry.partition(":")
        if platform != actor.platform:
            continue
        if who == actor.user_id or who in actor.groups:
            return True
    return False


def check_approval(pipeline: Pipeline, run: RunRow, actor: Actor, extra: Iterable[str] = ()) -> None:
    if not is_approver(pipeline, actor, extra):
        raise NotAllowed(messages.NOT_APPROVER)
    if pipeline.prevent_self_approval and run.started_by == actor.key:
        raise NotAllowed(messages.SELF_APPROVAL)


def check_run_control(pipeline: Pipeline, run: RunRow, actor: Actor) -> None:
    """Pause, resume, cancel and rollback: the run's starter or an approver."""
    if run.started_by == actor.key or is_approver(pipeline, actor):
        return
    raise NotAllowed(messages.NOT_RUN_CONTROLLER)
