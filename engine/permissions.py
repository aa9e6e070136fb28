"""Who may act on a run. Checked in the engine so every platform enforces the same rules."""

from __future__ import annotations

from collections.abc import Iterable

from engine import messages
from engine.actors import DEADLINE, Actor
from engine.definitions import Pipeline
from engine.errors import NotAllowed
from engine.models import RunRow
from engine.roles import Roles, is_admin, is_owner, matches


def is_approver(pipeline: Pipeline, actor: Actor, extra: Iterable[str] = ()) -> bool:
    """Entries are ``platform:user``, ``platform:@group`` or ``platform:role:id``.

    An empty list means everyone in the conversation may approve. ``extra`` are the principals
    added to one decision (escalation, reassignment).
    """
    return not pipeline.approvers or matches([*pipeline.approvers, *extra], actor)


def check_approval(pipeline: Pipeline, run: RunRow, actor: Actor, extra: Iterable[str] = ()) -> None:
    if not is_approver(pipeline, actor, extra):
        raise NotAllowed(messages.NOT_APPROVER)
    if pipeline.prevent_self_approval and run.started_by == actor.key:
        raise NotAllowed(messages.SELF_APPROVAL)


def check_run_control(roles: Roles, pipeline: Pipeline, run: RunRow, actor: Actor) -> None:
    """Pause, resume, cancel and rollback: the run's starter, an approver, an owner or an admin."""
    if run.started_by == actor.key or is_approver(pipeline, actor):
        return
    if actor == DEADLINE:  # the pipeline's own deadline (on_reject: rollback:) acting on its run
        return
    if is_owner(pipeline, actor) or is_admin(roles, actor):
        return
    raise NotAllowed(messages.NOT_RUN_CONTROLLER)
