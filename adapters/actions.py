"""Button actions as strings: the state a button carries, so it works after any restart."""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.notifications import Action, Button

PREFIX = "pb"
ACTIONS: tuple[Action, ...] = (
    "approve_start",
    "approve_complete",
    "request_revision",
    "open_form",
    "retry",
    "reject",
    "approve_with_comment",
    "reassign",
    "confirm_rollback",
    "keep_rollback",
    "history_page",
)
PATTERN = re.compile(r"^pb:(?P<action>[a-z_]+):(?P<execution_id>\d+)(?::(?P<page>\d+))?$")


@dataclass(frozen=True)
class ActionRef:
    action: Action
    execution_id: int  # or the rollback id (confirm/keep_rollback), the run id (history_page)
    page: int | None = None

    def encode(self) -> str:
        tail = f":{self.page}" if self.page is not None else ""
        return f"{PREFIX}:{self.action}:{self.execution_id}{tail}"


def encode(button: Button) -> str:
    return ActionRef(button.action, button.execution_id, button.page).encode()


def decode(value: str) -> ActionRef | None:
    m = PATTERN.match(value)
    if m is None or m["action"] not in ACTIONS:
        return None
    page = int(m["page"]) if m["page"] else None
    return ActionRef(m["action"], int(m["execution_id"]), page)  # type: ignore[arg-type]
