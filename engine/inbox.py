"""Requests already seen: a request key is claimed once, so a replayed or retried request has
no second effect.

A chat adapter derives the key from what identifies one delivery on its platform (a signed
request's digest, an envelope id) and asks `claim` before acting. The unique key is the lock:
two processes claiming the same key at once see one insert succeed. Keys older than the
window (the platform's own replay window plus a margin) are pruned: a request that old is
refused by its signature check before it gets here.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.models import RequestKeyRow

WINDOW = timedelta(minutes=10)  # Slack refuses signatures older than 5 minutes; twice that


def digest(*parts: str) -> str:
    """A fixed-size key for any request identity (64 hex characters)."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def claim(session: Session, key: str, now: datetime) -> bool:
    """True the first time `key` is seen within the window; False for a replay."""
    session.execute(delete(RequestKeyRow).where(RequestKeyRow.seen_at < now - WINDOW))
    try:
        with session.begin_nested():
            session.execute(insert(RequestKeyRow).values(key=key, seen_at=now))
    except IntegrityError:
        return False
    return True
