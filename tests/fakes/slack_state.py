"""Workspace state of the fake Slack Web API (`tests.fakes.slack_api`).

`SlackWorkspace` is the data model behind `FakeSlack`: users, channels, user groups, messages
(current text/blocks plus edit history), ephemeral messages, files, modal/home views, trigger ids
and response URLs. Its methods enforce Slack's semantics (unknown message → `message_not_found`,
trigger ids single-use and short-lived, ...) by raising `ApiError`; the HTTP layer in
`slack_api.py` turns those into ``{"ok": false, "error": ...}`` responses.
"""

from __future__ import annotations

import itertools
import mimetypes
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

from tests.fakes.slack_payloads import with_generated_ids
from tests.fakes.slack_records import (
    ApiError,
    Ephemeral,
    FileRecord,
    Message,
    ResponseUrlTarget,
    Trigger,
    UploadedFile,
)

TS_RE = re.compile(r"^\d{10}\.\d{6}$")
CHANNEL_ID_RE = re.compile(r"^[CGD][A-Z0-9]{2,}$")
USER_ID_RE = re.compile(r"^[UW][A-Z0-9]{2,}$")
_TS_BASE_US = 1_700_000_000_000_000


class SlackWorkspace:
    """The state of one fake workspace with one bot; see `FakeSlack` for the HTTP side."""

    def __init__(
        self,
        token: str = "xoxb-test-token",
        *,
        team_id: str = "T0FAKE",
        bot_user_id: str = "U0BOT",
        bot_id: str = "B0BOT",
        app_id: str = "A0FAKE",
        trigger_ttl: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token = token
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.trigger_ttl = trigger_ttl
        self.clock = clock
        self.users: dict[str, dict[str, Any]] = {}
        self.channels: dict[str, dict[str, Any]] = {}
        self.usergroups: dict[str, list[str]] = {}
        self.usergroup_handles: dict[str, str] = {}  # usergroup id -> handle ("release-managers")
        self.messages: dict[tuple[str, str], Message] = {}
        self.ephemerals: list[Ephemeral] = []
        self.files: dict[str, FileRecord] = {}
        self.uploaded_files: list[UploadedFile] = []
        self.opened_views: dict[str, dict[str, Any]] = {}  # modals by view id (current version)
        self.home_views: dict[str, dict[str, Any]] = {}  # published home tab by user id
        self.response_targets: dict[str, ResponseUrlTarget] = {}
        self._triggers: dict[str, Trigger] = {}
        self._uploads: dict[str, str] = {}  # upload key → file id
        self._ts = itertools.count(100, 100)
        self._ids = itertools.count(1)
        self._base_url = ""
        self.add_user(bot_user_id, "Pipebot", name="pipebot", is_bot=True)

    # -- ids --------------------------------------------------------------------------------------
    def next_ts(self) -> str:
        """Unique, strictly increasing "1700000000.000100"-style timestamps."""
        us = _TS_BASE_US + next(self._ts)
        return f"{us // 1_000_000}.{us % 1_000_000:06d}"

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):08X}"

    # -- directory --------------------------------------------------------------------------------
    def add_user(
        self,
        user_id: str,
        real_name: str,
        *,
        name: str | None = None,
        email: str | None = None,
        is_bot: bool = False,
        deleted: bool = False,
        tz: str = "Europe/Paris",
    ) -> dict[str, Any]:
        handle = name or real_name.lower().replace(" ", ".")
        profile: dict[str, Any] = {"real_name": real_name, "display_name": handle}
        if email:
            profile["email"] = email
        user: dict[str, Any] = {
            "id": user_id,
            "team_id": self.team_id,
            "name": handle,
            "real_name": real_name,
            "deleted": deleted,
            "is_bot": is_bot,
            "is_admin": False,
            "tz": tz,
            "profile": profile,
        }
        self.users[user_id] = user
        return user

    def add_channel(self, channel_id: str, name: str, *, is_private: bool = False) -> dict[str, Any]:
        is_im = channel_id.startswith("D")
        channel: dict[str, Any] = {
            "id": channel_id,
            "name": name,
            "is_channel": not is_im and not is_private,
            "is_group": is_private,
            "is_im": is_im,
            "is_private": is_private or is_im,
            "is_archived": False,
            "is_member": True,
            "created": 1_700_000_000,
        }
        self.channels[channel_id] = channel
        return channel

    def set_usergroup(self, usergroup_id: str, user_ids: list[str], handle: str | None = None) -> None:
        self.usergroups[usergroup_id] = list(user_ids)
        if handle is not None:
            self.usergroup_handles[usergroup_id] = handle

    def resolve_channel(self, channel: str) -> str:
        """A conversation id as Slack would resolve it (user id → DM, #name → id)."""
        if CHANNEL_ID_RE.match(channel):
            if channel not in self.channels:
                self.add_channel(channel, channel.lower())
            return channel
        if USER_ID_RE.match(channel):
            dm = f"D{channel[1:]}"
            if dm not in self.channels:
                self.add_channel(dm, channel)
            return dm
        name = channel.removeprefix("#")
        for cid, info in self.channels.items():
            if info["name"] == name:
                return cid
        raise ApiError("channel_not_found", f"{channel!r} is neither a conversation/user id nor a known name")

    # -- messages ---------------------------------------------------------------------------------
    def add_message(
        self, channel: str, text: str, *, user: str = "U0USER", thread_ts: str | None = None
    ) -> Message:
        """Seed a message a human posted (e.g. the thread parent a bot replies to)."""
        channel_id = self.resolve_channel(channel)
        msg = Message(channel_id, self.next_ts(), text, [], user, thread_ts=thread_ts)
        self.messages[(channel_id, msg.ts)] = msg
        return msg

    def thread_root(self, channel: str, thread_ts: str | None) -> str | None:
        if thread_ts is None:
            return None
        if not TS_RE.match(thread_ts):
            raise ApiError("invalid_thread_ts", f"thread_ts {thread_ts!r} is not a message timestamp")
        parent = self.messages.get((channel, thread_ts))
        if parent is not None and parent.thread_ts and parent.thread_ts != parent.ts:
            return parent.thread_ts  # replying to a reply lands in the parent's thread
        return thread_ts

    def post_message(
        self,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]],
        *,
        thread_ts: str | None = None,
        metadata: dict[str, Any] | None = None,
        files: list[str] | None = None,
    ) -> Message:
        root = self.thread_root(channel, thread_ts)
        msg = Message(
            channel,
            self.next_ts(),
            text,
            with_generated_ids(blocks),
            self.bot_user_id,
            thread_ts=root,
            bot_id=self.bot_id,
            files=list(files or []),
            metadata=metadata,
        )
        self.messages[(channel, msg.ts)] = msg
        return msg

    def get_message(self, channel: str, ts: str) -> Message:
        msg = self.messages.get((channel, ts))
        if msg is None or msg.deleted:
            raise ApiError("message_not_found", f"no message with ts {ts!r} in {channel!r}")
        return msg

    def edit_message(
        self, channel: str, ts: str, text: str | None, blocks: list[dict[str, Any]] | None
    ) -> Message:
        msg = self.get_message(channel, ts)
        if msg.user != self.bot_user_id:
            raise ApiError("cant_update_message", "the bot can only edit its own messages")
        msg.history.append((msg.text, msg.blocks))
        if text is not None:
            msg.text = text
        if blocks is not None:
            msg.blocks = with_generated_ids(blocks)
        return msg

    def messages_in(self, channel: str, thread_ts: str | None = None) -> list[Message]:
        """Live messages of a channel, oldest first: top level, or the replies of thread `thread_ts`."""

        def wanted(m: Message) -> bool:
            if thread_ts is None:
                return m.thread_ts in (None, m.ts)
            return m.thread_ts == thread_ts and m.ts != thread_ts

        found = [m for (ch, _), m in self.messages.items() if ch == channel and not m.deleted and wanted(m)]
        return sorted(found, key=lambda m: m.ts)

    # -- triggers & views -------------------------------------------------------------------------
    def issue_trigger_id(self, view_id: str | None = None) -> str:
        """A fresh trigger id, valid once for `trigger_ttl` seconds (`view_id`: issued inside a modal)."""
        trigger_id = f"{int(time.time())}.{next(self._ids)}.{secrets.token_hex(16)}"
        self._triggers[trigger_id] = Trigger(self.clock(), view_id)
        return trigger_id

    def consume_trigger(self, trigger_id: str) -> Trigger:
        trigger = self._triggers.get(trigger_id)
        if trigger is None:
            raise ApiError("invalid_trigger_id", f"trigger_id {trigger_id!r} was never issued")
        if trigger.used:
            raise ApiError("exchanged_trigger_id", "trigger ids are single-use")
        age = self.clock() - trigger.issued_at
        if age > self.trigger_ttl:
            raise ApiError("expired_trigger_id", f"issued {age:.2f}s ago; valid for {self.trigger_ttl}s")
        trigger.used = True
        return trigger

    def store_view(
        self, view: dict[str, Any], *, previous: dict[str, Any] | None, view_id: str | None = None
    ) -> dict[str, Any]:
        vid = view_id or self.new_id("V")
        root = previous["root_view_id"] if previous else vid
        stored: dict[str, Any] = {
            "id": vid,
            "team_id": self.team_id,
            "type": view["type"],
            "blocks": with_generated_ids(view.get("blocks", [])),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "title": view.get("title"),
            "clear_on_close": view.get("clear_on_close", False),
            "notify_on_close": view.get("notify_on_close", False),
            "close": view.get("close"),
            "submit": view.get("submit"),
            "previous_view_id": previous["id"] if previous else None,
            "root_view_id": root,
            "app_id": self.app_id,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        return stored

    def find_view(self, view_id: str | None, external_id: str | None) -> dict[str, Any]:
        for view in self.opened_views.values():
            if (view_id and view["id"] == view_id) or (external_id and view["external_id"] == external_id):
                return view
        raise ApiError("not_found", f"no open view with view_id={view_id!r} external_id={external_id!r}")

    def stack_depth(self, view: dict[str, Any]) -> int:
        depth, current = 1, view
        while current.get("previous_view_id") in self.opened_views:
            current = self.opened_views[current["previous_view_id"]]
            depth += 1
        return depth

    # -- files ------------------------------------------------------------------------------------
    def new_upload(self, filename: str, length: int) -> tuple[FileRecord, str]:
        mimetype = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        record = FileRecord(
            self.new_id("F"), filename, filename, length, mimetype, self.bot_user_id, int(time.time())
        )
        self.files[record.id] = record
        key = secrets.token_urlsafe(12)
        self._uploads[key] = record.id
        return record, key

    def upload_target(self, key: str) -> FileRecord | None:
        file_id = self._uploads.get(key)
        return self.files.get(file_id) if file_id else None

    def add_file(
        self, name: str, content: bytes, *, mimetype: str | None = None, user: str = "U0USER"
    ) -> dict[str, Any]:
        """Register a file a user shared (e.g. through a file_input); returns its Slack file object."""
        kind = mimetype or mimetypes.guess_type(name)[0] or "application/octet-stream"
        record = FileRecord(
            self.new_id("F"), name, name, len(content), kind, user, int(time.time()), content, True
        )
        self.files[record.id] = record
        return self.file_object(record)

    def file_object(self, record: FileRecord) -> dict[str, Any]:
        base = f"{self._base_url}files-pri/{self.team_id}-{record.id}"
        ext = record.name.rsplit(".", 1)[-1].lower() if "." in record.name else "binary"
        return {
            "id": record.id,
            "created": record.created,
            "timestamp": record.created,
            "name": record.name,
            "title": record.title,
            "mimetype": record.mimetype,
            "filetype": ext,
            "pretty_type": ext.upper(),
            "user": record.user,
            "user_team": self.team_id,
            "mode": "hosted",
            "editable": False,
            "is_external": False,
            "is_public": bool(record.channels),
            "size": record.length,
            "url_private": f"{base}/{record.name}",
            "url_private_download": f"{base}/download/{record.name}",
            "permalink": f"https://fake.slack.com/files/{record.user}/{record.id}/{record.name}",
            "channels": list(record.channels),
        }

    # -- response urls ----------------------------------------------------------------------------
    def issue_response_url(self, channel_id: str, user_id: str, message_ts: str | None = None) -> str:
        """A response_url for an interaction in `channel_id` (from `message_ts` for block actions)."""
        kind = "actions" if message_ts else "commands"
        path = f"{kind}/{self.team_id}/{next(self._ids)}/{secrets.token_urlsafe(12)}"
        self.response_targets[path] = ResponseUrlTarget(channel_id, user_id, message_ts)
        return f"{self._base_url}{path}"
