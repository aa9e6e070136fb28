"""Edit and approve: an approver's own text for a result's artifacts, checked before it is stored.

Only the declared outputs of agent and script checkpoints in text formats can be edited. An edit
is checked as the agent's or script's own file was (engine.validation: sizes, pattern, and for
json and yaml the output's ``schema``), so an edit can never approve what the checkpoint would
have refused. engine.human.edit_and_approve stores what passes as new artifact revisions.
"""

from __future__ import annotations

from pydantic import BaseModel

from engine import artifacts, messages, seen
from engine.definitions import Checkpoint, OutputSpec
from engine.errors import EditInvalid, Refused
from engine.models import ArtifactRow, ExecutionRow, RunRow
from engine.tx import Tx
from engine.validation import check_output
from engine.workspace import Workspace

EDITABLE_FORMATS = frozenset({"md", "txt", "json", "yaml", "csv"})


class EditableFile(BaseModel):
    name: str  # the output's name: the key of an edit
    filename: str  # name.format, as people see it
    format: str
    artifact_id: int
    text: str


class EditSpec(BaseModel):
    """What an "Edit and approve" dialog shows: each editable artifact's current text, and the
    version it is (engine.seen): an edit is refused unless made on exactly that version."""

    execution_id: int
    run: str
    checkpoint: str
    files: list[EditableFile]
    revision: int
    digest: str


def editable(tx: Tx, cp: Checkpoint, ex: ExecutionRow) -> list[tuple[ArtifactRow, OutputSpec]]:
    """The execution's artifacts that may be edited, with the output each one is."""
    if cp.mode not in ("agent", "script"):
        return []
    specs = {o.name: o for o in cp.outputs if o.format in EDITABLE_FORMATS}
    order = list(specs)
    found = artifacts.of_execution(tx, ex.id)
    rows = [r for r in found if r.name in specs and r.format == specs[r.name].format]
    return [(row, specs[row.name]) for row in sorted(rows, key=lambda r: order.index(r.name))]  # as declared


def _read(ws: Workspace, row: ArtifactRow) -> bytes | None:
    path = ws.absolute(row.path)
    return path.read_bytes() if path.is_file() else None


def _text(data: bytes | None) -> str | None:
    try:
        return None if data is None else data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def spec(tx: Tx, ws: Workspace, run: RunRow, cp: Checkpoint, ex: ExecutionRow) -> EditSpec:
    files = []
    for row, out in editable(tx, cp, ex):
        text = _text(_read(ws, row))
        if text is not None:
            files.append(
                EditableFile(
                    name=row.name,
                    filename=f"{row.name}.{out.format}",
                    format=out.format,
                    artifact_id=row.id,
                    text=text,
                )
            )
    if not files:
        raise Refused(messages.NOTHING_TO_EDIT)
    shown = seen.of(tx, ex)
    return EditSpec(
        execution_id=ex.id,
        run=run.name,
        checkpoint=cp.title,
        files=files,
        revision=shown.revision,
        digest=shown.digest,
    )


def _content(text: str, old: bytes) -> bytes | None:
    """The edited text as file content: chat inputs drop a final newline and may send CRLF.
    None: not text (lone surrogates, which JSON can carry)."""
    text = text.replace("\r\n", "\n")
    if old.endswith(b"\n") and not text.endswith("\n"):
        text += "\n"
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return None


def prepare(
    tx: Tx, ws: Workspace, cp: Checkpoint, ex: ExecutionRow, texts: dict[str, str], max_chars: int
) -> list[tuple[ArtifactRow, bytes]]:
    """The artifacts whose text changed, with their new content; refuse (EditInvalid naming
    each problem) unless every edit passes its output's checks.

    ``max_chars`` bounds each edit (a text typed in chat: Limits.multiline_chars) whatever the
    client claims its input allowed."""
    rows = {row.name: (row, out) for row, out in editable(tx, cp, ex)}
    unknown = sorted(set(texts) - set(rows))
    if unknown:
        names = ", ".join(unknown)
        raise Refused(messages.NOT_EDITABLE.format(names=names) if rows else messages.NOTHING_TO_EDIT)
    changed: list[tuple[ArtifactRow, bytes]] = []
    errors: dict[str, str] = {}
    for name, text in texts.items():
        row, out = rows[name]
        if len(text) > max_chars:
            problem = messages.EDIT_TOO_LONG.format(size=len(text), limit=max_chars)
            errors[name] = messages.edit_refused(f"{name}.{out.format}", [problem])
            continue
        old = _read(ws, row) or b""
        new = _content(text, old)
        if new == old:
            continue
        problems = ["is not UTF-8 text"] if new is None else check_output(out, new, cp.validation)
        if problems or new is None:
            errors[name] = messages.edit_refused(f"{name}.{out.format}", problems)
        else:
            changed.append((row, new))
    if errors:
        raise EditInvalid(errors)
    return changed
