"""Who acts and where a run talks: plain values the adapters build from platform payloads."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Actor:
    platform: str
    user_id: str
    name: str
    # Group handles and role ids the platform says the user belongs to ("@editors", "role:1234").
    groups: frozenset[str] = field(default_factory=frozenset)

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.user_id}"


@dataclass(frozen=True)
class Conversation:
    platform: str
    channel: str
    thread: str | None = None


SYSTEM = Actor("system", "pipebot", "pipebot")
# Acts when nobody decided in time (engine.timers): its own name in the audit trail.
DEADLINE = Actor("system", "deadline", "the deadline")
