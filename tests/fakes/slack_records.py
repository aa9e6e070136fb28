"""Records and errors shared by the fake Slack Web API modules (`tests.fakes.slack_api`).

`Call`, `Message`, `Ephemeral`, `UploadedFile` and `ResponseUrlPost` are what tests read back
from a `FakeSlack`; `ApiError` is how the workspace model and the method handlers reject a request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class ApiError(Exception):
    """A Slack error response: ``{"ok": false, "error": error}`` plus `details` in the messages."""

    def __init__(self, error: str, *details: str, status: int = 200) -> None:
        super().__init__(f"{error}: {'; '.join(details)}" if details else error)
        self.error = error
        self.details = list(details)
        self.status = status


@dataclass
class Call:
    """One Web API request. `time` is `time.monotonic()`; `args` excludes the token."""

    method: str
    args: dict[str, Any]
    time: float
    status: int = 200
    response: dict[str, Any] = field(default_factory=dict)
    injected: bool = False  # answered by rate_limit()/fail_next(), not by the method

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.response.get("ok") is True

    @property
    def error(self) -> str | None:
        return None if self.ok else str(self.response.get("error", f"http_{self.status}"))


@dataclass
class Message:
    """Current state of a channel message (chat.update edits replace text/blocks in place)."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    user: str
    thread_ts: str | None = None
    bot_id: str | None = None
    files: list[str] = field(default_factory=list)
    metadata: dict[str, Any] | None = None
    history: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)  # previous (text, blocks)
    deleted: bool = False
    stream: str | None = None  # "streaming" between chat.startStream and chat.stopStream, then "stopped"

    @property
    def edited(self) -> bool:
        return bool(self.history)

    def to_api(self, team_id: str, *, with_metadata: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "message", "user": self.user, "text": self.text, "ts": self.ts}
        out["team"] = team_id
        if self.bot_id:
            out["bot_id"] = self.bot_id
        if self.blocks:
            out["blocks"] = self.blocks
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
        if self.history:
            out["edited"] = {"user": self.user, "ts": self.ts}
        if self.files:
            out["files"] = [{"id": file_id} for file_id in self.files]
            out["upload"] = True
        if self.metadata is not None and with_metadata:
            out["metadata"] = self.metadata
        return out


@dataclass
class Ephemeral:
    channel: str
    user: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None


@dataclass
class UploadedFile:
    """A file shared through getUploadURLExternal → upload URL → completeUploadExternal."""

    id: str
    name: str
    content: bytes
    title: str
    channel: str | None
    thread_ts: str | None
    initial_comment: str | None = None


@dataclass
class FileRecord:
    id: str
    name: str
    title: str
    length: int
    mimetype: str
    user: str
    created: int
    content: bytes | None = None  # None until the bytes reach the upload URL
    completed: bool = False
    channels: list[str] = field(default_factory=list)


@dataclass
class ResponseUrlPost:
    """A POST the app made to a response_url the fake issued."""

    url: str
    body: dict[str, Any]
    time: float
    status: int
    error: str | None = None


@dataclass
class ResponseUrlTarget:
    channel_id: str
    user_id: str
    message_ts: str | None
    uses: int = 0


@dataclass
class Trigger:
    issued_at: float
    view_id: str | None
    used: bool = False


@dataclass(frozen=True)
class StreamCall:
    """One chat.startStream / appendStream / stopStream call the fake accepted."""

    method: str
    channel: str
    ts: str
    markdown_text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
