"""Show changes: a unified diff of each text artifact on an approval card against what came
before it — the previous revision after a revision request, or, on the first attempt of a run
that extends a version, the same checkpoint's artifact of that version.

Read-only, but it posts to the run's thread: once per (execution, revision); a further click
is answered privately. Anyone who can click it sees the thread already, and the diff shows
only content posted there (the artifacts), so no permission is checked.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from engine import artifacts, messages, seen
from engine.actors import Actor
from engine.errors import Refused
from engine.human import Outcome, _record, load
from engine.models import ArtifactRow, ExecutionRow, InteractionRow, RunRow
from engine.notifications import ArtifactChange, ChangesCard
from engine.seen import Seen
from engine.tx import Tx
from engine.workspace import Workspace, safe_filename

TEXT_FORMATS = {"md", "txt", "json", "yaml", "yml", "csv", "py", "html"}
MAX_COMPARED_BYTES = 512 * 1024  # difflib is slow on huge files; those are only named
KIND = "show_changes"


def available(run: RunRow, ex: ExecutionRow) -> bool:
    """Whether an approval card of this execution offers Show changes."""
    return ex.revision > 0 or run.extends_run_id is not None


@dataclass(frozen=True)
class _Side:
    label: str  # "revision 2", "v1"
    data: bytes | None  # None: no longer readable
    fmt: str


def _text(side: _Side) -> str | None:
    if side.data is None:
        return None
    try:
        return side.data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _compare(name: str, old: _Side | None, new: _Side) -> tuple[ArtifactChange, str]:
    """One artifact: what the summary says about it, and its diff ("" when there is none)."""
    if new.fmt not in TEXT_FORMATS:
        return ArtifactChange(name=name, status="skipped", note=messages.CHANGES_NOT_TEXT), ""
    if old is not None and old.data is not None and old.data == new.data:
        return ArtifactChange(name=name, status="unchanged"), ""
    if old is not None and old.data is None:
        return ArtifactChange(name=name, status="skipped", note=messages.CHANGES_GONE), ""
    sizes = [len(s.data) for s in (old, new) if s is not None and s.data is not None]
    if any(size > MAX_COMPARED_BYTES for size in sizes):
        return ArtifactChange(name=name, status="skipped", note=messages.CHANGES_TOO_BIG), ""
    before = "" if old is None else _text(old)
    after = _text(new)
    if before is None or after is None:
        return ArtifactChange(name=name, status="skipped", note=messages.CHANGES_NOT_TEXT), ""
    lines = list(
        difflib.unified_diff(
            before.splitlines(),
            after.splitlines(),
            f"{name} ({old.label if old else messages.CHANGES_NONE})",
            f"{name} ({new.label})",
            lineterm="",
        )
    )
    added = sum(1 for ln in lines[2:] if ln.startswith("+"))
    removed = sum(1 for ln in lines[2:] if ln.startswith("-"))
    status = "added" if old is None else "changed"
    return ArtifactChange(name=name, status=status, added=added, removed=removed), "\n".join(lines) + "\n"


def _file_name(row: ArtifactRow) -> str:
    suffix = Path(row.path).suffix or f".{row.format}"
    return row.name if row.name.endswith(suffix) else f"{row.name}{suffix}"


def _against_revision(
    tx: Tx, ws: Workspace, rows: list[ArtifactRow]
) -> tuple[list[ArtifactChange], list[str], str]:
    items, diffs = [], []
    span: tuple[int, int] | None = None
    for row in rows:
        revs = artifacts.revisions(tx, row.id)
        if not revs:
            continue
        cur = revs[-1]
        new = _Side(f"revision {cur.number}", artifacts.revision_bytes(ws, cur), row.format)
        old = None
        if len(revs) > 1:
            prev = revs[-2]
            old = _Side(f"revision {prev.number}", artifacts.revision_bytes(ws, prev), row.format)
            span = span or (prev.number, cur.number)
        item, diff = _compare(_file_name(row), old, new)
        items.append(item)
        diffs.append(diff)
    what = messages.CHANGES_REVISIONS.format(a=span[0], b=span[1]) if span else messages.CHANGES_PREVIOUS
    return items, diffs, what


def _against_version(
    tx: Tx, ws: Workspace, run: RunRow, ex: ExecutionRow, rows: list[ArtifactRow]
) -> tuple[list[ArtifactChange], list[str], str]:
    base_run = tx.session.get(RunRow, run.extends_run_id)
    assert base_run is not None
    base = {r.name: r for r in artifacts.of_runs(tx, [base_run.id]) if r.checkpoint_id == ex.checkpoint_id}
    items, diffs = [], []
    for row in rows:
        data = _read(ws, row.path)
        new = _Side(f"v{run.version}", data, row.format)
        found = base.pop(row.name, None)
        old = None if found is None else _Side(f"v{base_run.version}", _read(ws, found.path), found.format)
        item, diff = _compare(_file_name(row), old, new)
        items.append(item)
        diffs.append(diff)
    for gone in base.values():
        items.append(ArtifactChange(name=_file_name(gone), status="removed"))
        diffs.append("")
    return items, diffs, messages.CHANGES_VERSION.format(version=base_run.version)


def _read(ws: Workspace, rel: str) -> bytes | None:
    try:
        return ws.absolute(rel).read_bytes()
    except (OSError, ValueError):
        return None


def card(tx: Tx, ws: Workspace, run: RunRow, ex: ExecutionRow, asked_by: str) -> ChangesCard:
    cp = tx.pipeline(run).checkpoint(ex.checkpoint_id)
    rows = artifacts.of_execution(tx, ex.id)
    if ex.revision > 0:
        items, diffs, what = _against_revision(tx, ws, rows)
    else:
        items, diffs, what = _against_version(tx, ws, run, ex, rows)
    return ChangesCard(
        key=f"exec:{ex.id}:changes:{ex.revision}",
        run=tx.run_info(run),
        execution_id=ex.id,
        checkpoint=cp.title,
        text=messages.CHANGES_HEAD.format(checkpoint=cp.title, what=what, who=asked_by),
        items=items,
        diff="".join(diffs),
        filename=safe_filename(f"{ex.checkpoint_id}-r{ex.revision}.diff", "changes.diff"),
    )


def show(tx: Tx, ws: Workspace, execution_id: int, actor: Actor, shown: Seen | None = None) -> Outcome:
    """Post the changes of the execution's current revision to its thread, once."""
    ex, run, cp = load(tx, execution_id)  # locked: two clicks at once post once
    seen.check_revision(ex, shown)
    if not available(run, ex):
        raise Refused(messages.CHANGES_NOTHING.format(checkpoint=cp.title))
    posted = tx.session.scalar(
        select(InteractionRow.id)
        .where(
            InteractionRow.execution_id == ex.id,
            InteractionRow.kind == KIND,
            InteractionRow.revision == ex.revision,
            InteractionRow.outcome == "accepted",
        )
        .limit(1)
    )
    if posted is not None:
        return Outcome(messages.CHANGES_ABOVE, changed=False)
    tx.notify(run, card(tx, ws, run, ex, actor.name))
    _record(tx, run, ex, KIND, actor)
    return Outcome(messages.CHANGES_POSTED)
