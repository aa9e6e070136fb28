"""Typed notifications: what chat should show, described without any platform.

Each notification has a ``key``: the message it lives in. A later notification with the same
key replaces that message (the adapter edits it), which is how "Approved by @ana" replaces
the buttons of an approval request.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, TypeAdapter

Action = Literal[
    "approve_start",
    "approve_complete",
    "request_revision",
    "open_form",
    "retry",
    "reject",
    "approve_with_comment",
    "edit_and_approve",
    "reassign",
    "confirm_rollback",  # execution_id carries the rollback id (engine.rollbacks)
    "keep_rollback",
    "history_page",  # execution_id carries the run id, page the page to show
    "show_changes",  # read-only: posts the diff of the card's revision (engine.changes)
]
Style = Literal["primary", "danger"]


class RunInfo(BaseModel):
    run_id: int
    name: str
    pipeline_title: str
    status: str
    done: int
    total: int
    current: str | None = None
    started_by: str
    finish_hook: str | None = None  # see RunRow.finish_hook


class Button(BaseModel):
    action: Action
    execution_id: int
    label: str
    style: Style | None = None
    page: int | None = None
    # What the card showed (engine.seen): a decision on a card that no longer matches is refused.
    revision: int = 0
    digest: str = ""


class Field_(BaseModel):
    label: str
    value: str


class ArtifactInfo(BaseModel):
    artifact_id: int
    name: str
    format: str
    size: int
    path: str
    sha256: str = ""
    preview: str | None = None
    archived: bool = False  # moved away by a rollback: still readable with `artifacts get`


class _Base(BaseModel):
    key: str
    run: RunInfo


class RunStatusCard(_Base):
    """The run's parent message (its thread holds everything else)."""

    kind: Literal["run_status"] = "run_status"


class ApprovalCard(_Base):
    kind: Literal["approval"] = "approval"
    execution_id: int
    stage: Literal["start", "complete"]
    checkpoint: str
    text: str
    fields: list[Field_] = []
    approvals: int = 0
    required: int = 1
    buttons: list[Button] = []
    decided: str | None = None
    due_at: datetime | None = None  # naive UTC; shown in each reader's own time zone


class FormCard(_Base):
    kind: Literal["form"] = "form"
    execution_id: int
    checkpoint: str
    text: str
    feedback: str | None = None
    buttons: list[Button] = []
    decided: str | None = None
    due_at: datetime | None = None


class ArtifactsCard(_Base):
    kind: Literal["artifacts"] = "artifacts"
    execution_id: int
    checkpoint: str
    artifacts: list[ArtifactInfo]


class NoticeCard(_Base):
    """A line in the run's thread: paused, resumed, revision asked, completed, failed..."""

    kind: Literal["notice"] = "notice"
    text: str
    level: Literal["info", "success", "warning", "error"] = "info"
    buttons: list[Button] = []
    # Principals (slack:U1, slack:@group, discord:role:9) to mention: reminders and escalations only.
    mentions: list[str] = []
    # Users (platform:id) who also get the text as a direct message.
    direct: list[str] = []


class TurnCard(_Base):
    """One agent's turn in a discussion: Markdown as the model wrote it, and what it cost.

    Adapters that showed the turn live (streamed) already hold its message: this card, with the
    same key, replaces the live text with the final one.
    """

    kind: Literal["turn"] = "turn"
    execution_id: int
    checkpoint: str
    agent: str
    role: str = ""
    round: int  # 0: a meta agent's proposal
    text: str
    tokens_in: int = 0
    tokens_out: int = 0


class ArtifactChange(BaseModel):
    name: str  # the file name, e.g. draft.md
    status: Literal["changed", "unchanged", "added", "removed", "skipped"]
    added: int = 0  # lines
    removed: int = 0
    note: str = ""  # why it was skipped


class ChangesCard(_Base):
    """Show changes: unified diffs of an execution's text artifacts against what came before.

    Each adapter shows ``diff`` inline (a code block) when it fits one message of its platform,
    else attaches it as ``filename``; ``items`` summarise every artifact either way.
    """

    kind: Literal["changes"] = "changes"
    execution_id: int
    checkpoint: str
    text: str
    items: list[ArtifactChange]
    diff: str
    filename: str


Notification = Annotated[
    RunStatusCard | ApprovalCard | FormCard | ArtifactsCard | NoticeCard | TurnCard | ChangesCard,
    Field(discriminator="kind"),
]
NOTIFICATION = TypeAdapter(Notification)
