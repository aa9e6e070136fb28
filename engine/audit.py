"""The audit log for what has no run: pipeline imports and deletions, and refusals of them.

Commands on a run are audited in ``human_interactions`` (engine.human); this table holds the
rest, so every refusal leaves a row somewhere.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from engine.actors import Actor
from engine.models import AuditRow

OPERATOR = Actor("cli", "operator", "the operator")  # who acts when the CLI passes no actor


def record(
    session: Session,
    now: datetime,
    kind: str,
    outcome: str,
    actor: Actor | None,
    subject: str | None,
    data: dict[str, Any] | None = None,
) -> None:
    who = actor or OPERATOR
    session.add(
        AuditRow(
            kind=kind,
            outcome=outcome,
            subject=subject,
            actor_platform=who.platform,
            actor_id=who.user_id,
            actor_name=who.name,
            data_json=json.dumps(data) if data is not None else None,
            created_at=now,
        )
    )
