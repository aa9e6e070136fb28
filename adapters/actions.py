"""Button actions as strings: the state a button carries, so it works after any restart.

``pb:<action>:<execution>:r<revision>:<digest>``: the execution and what its card showed
(engine.seen), so a click on an out-of-date card is refused by the engine. Buttons posted
before cards carried that (``pb:<action>:<execution>``) still decode, without a view of the
card: refusing them would strand every run that waited on one when pipebot was upgraded (no
newer card is posted until someone decides), and nobody can give a new card an old-style id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import get_args

from engine.notifications import Action, Button
from engine.seen import Seen

PREFIX = "pb"
ACTIONS: tuple[Action, ...] = get_args(Action)  # one list of actions: the engine's
PATTERN = re.compile(
    r"^pb:(?P<action>[a-z_]+):(?P<execution_id>\d+)"
    r"(?::(?P<page>\d+)|:r(?P<revision>\d+):(?P<digest>[0-9a-f]{1,64}))?$"
)


@dataclass(frozen=True)
class ActionRef:
    action: Action
    execution_id: int  # or the rollback id (confirm/keep_rollback), the run id (history_page)
    page: int | None = None
    seen: Seen | None = None

    def encode(self) -> str:
        base = f"{PREFIX}:{self.action}:{self.execution_id}"
        if self.seen is not None:
            return f"{base}:r{self.seen.revision}:{self.seen.digest}"
        return f"{base}:{self.page}" if self.page is not None else base


def ref(button: Button) -> ActionRef:
    shown = Seen(button.revision, button.digest) if button.digest else None
    return ActionRef(button.action, button.execution_id, button.page, shown)


def encode(button: Button) -> str:
    return ref(button).encode()


def decode(value: str) -> ActionRef | None:
    m = PATTERN.match(value)
    if m is None or m["action"] not in ACTIONS:
        return None
    page = int(m["page"]) if m["page"] else None
    shown = Seen(int(m["revision"]), m["digest"]) if m["revision"] is not None else None
    return ActionRef(m["action"], int(m["execution_id"]), page, shown)  # type: ignore[arg-type]
