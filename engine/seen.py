"""What a card showed: the execution's revision and a short digest of its artifacts and values.

Each decision button carries them (`Button.revision`, `Button.digest`); a decision made on a
card that no longer matches — a revision came in between, the artifacts changed — is refused
inside the command's own locked transaction. Approving therefore approves exactly what the
card showed, however the clicks race.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from engine import artifacts, messages
from engine.errors import Refused
from engine.models import ExecutionRow
from engine.tx import Tx

DIGEST_CHARS = 12  # 48 bits: enough to tell two versions of one execution apart, short in a custom_id


@dataclass(frozen=True)
class Seen:
    revision: int
    digest: str


def of(tx: Tx, ex: ExecutionRow) -> Seen:
    """The execution as a card built now shows it."""
    rows = sorted((r.id, r.sha256) for r in artifacts.of_execution(tx, ex.id))
    parts = [f"{artifact_id}:{sha}" for artifact_id, sha in rows] + [ex.form_json or ""]
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:DIGEST_CHARS]
    return Seen(ex.revision, digest)


def check_revision(ex: ExecutionRow, seen: Seen | None) -> None:
    """Checked first: a card of another revision is out of date whatever happened since."""
    if seen is not None and seen.revision != ex.revision:
        raise Refused(messages.STALE_CARD)


def check(tx: Tx, ex: ExecutionRow, seen: Seen | None) -> None:
    """Refuse a decision taken on a card that no longer shows the execution (None: a button
    from before cards carried what they showed; see adapters.actions).

    Checked once the execution is known to wait for this decision: a card of the same
    revision whose decision was already taken is answered "Already approved by …" instead
    (taking it changes the digest: files are promoted)."""
    if seen is not None and seen != of(tx, ex):
        raise Refused(messages.STALE_CARD)
