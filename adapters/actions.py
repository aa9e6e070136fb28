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
)
PATTERN = re.compile(r"^pb:(?P<action>[a-z_]+):(?P<execution_id>\d+)$")


@dataclass(frozen=True)
class ActionRef:
    action: Action
    execution_id: int

    def encode(self) -> str:
        return f"{PREFIX}:{self.action}:{self.execution_id}"


def encode(button: Button) -> str:
    return ActionRef(button.action, button.execution_id).encode()


def decode(value: str) -> ActionRef | None:
    m = PATTERN.match(value)
    if m is None or m["action"] not in ACTIONS:
        return None
    return ActionRef(m["action"], int(m["execution_id"]))  # type: ignore[arg-type]
