"""Who may do what: admins, a pipeline's owners, runners and channels.

Every role is a list of principals in one syntax (the one ``approvers`` uses):
``slack:U012ABC``, ``slack:@editors`` (a user group), ``discord:80351110224678912``,
``discord:role:1234``, ``console:alice``. A conversation is named the same way
(``slack:C0123``, ``discord:<channel id>``, ``console:terminal``).

``actor=None`` in these checks is the operator at the command line (``pipebot pipelines ...``):
whoever runs the CLI already holds the database and the files.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from engine import messages
from engine.actors import Actor, Conversation
from engine.definitions import Pipeline
from engine.errors import NotAllowed


@dataclass(frozen=True)
class Roles:
    """The roles the deployment sets (``PIPEBOT_ADMINS``); pipelines bring their own."""

    admins: tuple[str, ...] = ()


def parse_principals(text: str | None) -> tuple[str, ...]:
    """``"slack:U1, discord:role:2"`` -> ("slack:U1", "discord:role:2")."""
    return tuple(p.strip() for p in (text or "").split(",") if p.strip())


def matches(principals: Iterable[str], actor: Actor) -> bool:
    """True when ``actor`` is one of ``principals``: the user itself or one of its groups/roles."""
    for entry in principals:
        platform, _, who = entry.partition(":")
        if platform == actor.platform and (who == actor.user_id or who in actor.groups):
            return True
    return False


def is_admin(roles: Roles, actor: Actor | None) -> bool:
    return actor is None or matches(roles.admins, actor)


def is_owner(pipeline: Pipeline, actor: Actor) -> bool:
    return matches(pipeline.owners, actor)


def in_channel(pipeline: Pipeline, where: Conversation) -> bool:
    if not pipeline.channels:
        return True
    here = {f"{where.platform}:{where.channel}"} | (
        {f"{where.platform}:{where.thread}"} if where.thread else set()
    )
    return bool(here & set(pipeline.channels))


def check_start(roles: Roles, pipeline: Pipeline, actor: Actor, where: Conversation) -> None:
    """Runners start runs (default: anyone), in the pipeline's channels (default: any)."""
    if not in_channel(pipeline, where):
        raise NotAllowed(messages.NOT_IN_CHANNEL.format(pipeline=pipeline.id))
    if pipeline.runners and not (matches(pipeline.runners, actor) or is_admin(roles, actor)):
        raise NotAllowed(messages.NOT_RUNNER.format(pipeline=pipeline.id))


def check_import(roles: Roles, new: Pipeline, existing: Pipeline | None, actor: Actor | None) -> None:
    """Admins import anything; a pipeline's owners re-import it, without scripts.

    Owners are those of the version already there, never of the file being imported (or anyone
    could name themselves owner).
    """
    if is_admin(roles, actor):
        return
    assert actor is not None
    if existing is None or not is_owner(existing, actor):
        raise NotAllowed(messages.NOT_IMPORTER)
    if any(cp.script is not None or cp.mode == "script" for cp in new.checkpoints):
        raise NotAllowed(messages.SCRIPTS_ADMINS_ONLY)


def check_delete(roles: Roles, existing: Pipeline, actor: Actor | None) -> None:
    if is_admin(roles, actor):
        return
    assert actor is not None
    if not is_owner(existing, actor):
        raise NotAllowed(messages.NOT_DELETER)


def all_principals(roles: Roles, pipelines: Iterable[Pipeline]) -> set[str]:
    """Every principal named anywhere (adapters use it to know which group lookups matter)."""
    out = set(roles.admins)
    for p in pipelines:
        out.update(p.approvers, p.owners, p.runners)
    return out
