"""Form drafts: what one person entered in a form that is not submitted yet.

Chat forms may need several steps (some platforms' modals hold five inputs) and an invalid submission
must come back with the values kept. A draft changes nothing about the run: it is one row of
``human_interactions`` (kind ``form_draft``, outcome ``draft``) per execution, person and revision,
and uploaded files wait in the execution's temp folder. ``Engine.form(id, actor)`` prefills with it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select

from engine.actors import Actor
from engine.errors import NotFound, Refused
from engine.forms import FileUpload
from engine.models import ExecutionRow, InteractionRow, RunRow
from engine.states import ExecStatus as E
from engine.tx import Tx
from engine.workspace import Workspace, safe_filename

KIND, OUTCOME = "form_draft", "draft"


def _row(tx: Tx, ex: ExecutionRow, actor: Actor) -> InteractionRow | None:
    return tx.session.scalar(
        select(InteractionRow)
        .where(
            InteractionRow.execution_id == ex.id,
            InteractionRow.kind == KIND,
            InteractionRow.revision == ex.revision,
            InteractionRow.actor_platform == actor.platform,
            InteractionRow.actor_id == actor.user_id,
        )
        .order_by(InteractionRow.id.desc())
        .limit(1)
    )


def save(tx: Tx, ws: Workspace, execution_id: int, actor: Actor, values: dict[str, Any]) -> None:
    ex = tx.session.get(ExecutionRow, execution_id)
    if ex is None:
        raise NotFound(f"There is no checkpoint execution {execution_id}.")
    run = tx.session.get(RunRow, ex.run_id)
    assert run is not None
    cp = tx.pipeline(run).checkpoint(ex.checkpoint_id)
    if ex.status != E.WAITING_FOR_INPUT:  # the same refusal as Engine.form
        raise Refused(f"The form of {cp.title} is not open (it is {ex.status.replace('_', ' ')}).")
    inputs = {f.id for f in cp.inputs}
    person = hashlib.sha256(actor.key.encode()).hexdigest()[:16]
    folder = ws.temp_dir(run.pipeline_slug, ex.id) / ".drafts" / person
    stored: dict[str, Any] = {}
    for key, value in values.items():
        if key not in inputs:
            continue
        if isinstance(value, FileUpload):
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{key}_{safe_filename(value.filename)}"
            path.write_bytes(value.data)
            stored[key] = {
                "draft_file": ws.relative(path),
                "filename": value.filename,
                "type": value.content_type,
            }
        else:
            stored[key] = (
                value if value is None or isinstance(value, str | int | float | bool) else str(value)
            )
    row = _row(tx, ex, actor)
    if row is not None:
        row.data_json, row.created_at = json.dumps(stored), tx.now()
        return
    tx.session.add(
        InteractionRow(
            run_id=run.id,
            execution_id=ex.id,
            kind=KIND,
            outcome=OUTCOME,
            actor_platform=actor.platform,
            actor_id=actor.user_id,
            actor_name=actor.name,
            revision=ex.revision,
            data_json=json.dumps(stored),
            created_at=tx.now(),
        )
    )


def load(tx: Tx, ws: Workspace, ex: ExecutionRow, actor: Actor) -> dict[str, Any]:
    """The person's draft for the execution's current revision (files as FileUpload)."""
    row = _row(tx, ex, actor)
    if row is None or not row.data_json:
        return {}
    values: dict[str, Any] = {}
    for key, value in json.loads(row.data_json).items():
        if isinstance(value, dict) and "draft_file" in value:
            path = ws.absolute(value["draft_file"])
            if path.is_file():
                values[key] = FileUpload(value["filename"], path.read_bytes(), value["type"])
        else:
            values[key] = value
    return values
