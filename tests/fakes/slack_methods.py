"""The Web API methods of the fake Slack (`tests.fakes.slack_api`), one handler per method.

Each handler takes the request's arguments (query, form and, for `JSON_METHODS`, JSON body
merged; the token removed) and returns the success payload without ``"ok"``, or raises `ApiError`
with Slack's error code and the reasons (which end up in ``response_metadata.messages`` and in
`FakeSlack.errors`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from tests.fakes.slack_blocks import decode_json_arg, validate_blocks, validate_message_text, validate_view
from tests.fakes.slack_functions import SlackFunctions
from tests.fakes.slack_records import ApiError, Ephemeral, FileRecord, ResponseUrlTarget, UploadedFile

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]

# Methods for which Slack reads an application/json body (others only read form/query fields).
JSON_METHODS = frozenset(
    {
        "auth.test",
        "chat.postMessage",
        "chat.update",
        "chat.postEphemeral",
        "chat.delete",
        "views.open",
        "views.push",
        "views.update",
        "views.publish",
        "files.completeUploadExternal",
        "chat.startStream",
        "chat.appendStream",
        "chat.stopStream",
    }
)
# Methods that take the app-level token (xapp-...) instead of the bot token.
APP_TOKEN_METHODS = frozenset({"apps.connections.open"})


def _required(args: dict[str, Any], name: str) -> str:
    value = args.get(name)
    if value is None or value == "":
        raise ApiError("invalid_arguments", f"[ERROR] missing required field: {name}")
    if not isinstance(value, str):
        raise ApiError("invalid_arguments", f"[ERROR] {name} must be a string")
    return value


def _optional(args: dict[str, Any], name: str) -> str | None:
    value = args.get(name)
    return None if value is None or value == "" else str(value)


def _json_arg(args: dict[str, Any], name: str, error: str = "invalid_arguments") -> Any:
    try:
        return decode_json_arg(args[name])
    except (json.JSONDecodeError, TypeError) as exc:
        raise ApiError(error, f"[ERROR] {name} is not valid JSON: {exc}") from None


EVENT_TYPE_RE = re.compile(r"^[a-zA-Z0-9_]{1,255}$")


def _metadata(value: Any) -> dict[str, Any]:
    """Message metadata as Slack checks it: {event_type, event_payload (an object)}, nothing else."""
    if not isinstance(value, dict) or set(value) - {"event_type", "event_payload"}:
        raise ApiError("invalid_metadata_format", "[ERROR] metadata must be {event_type, event_payload}")
    if not isinstance(value.get("event_type"), str) or not EVENT_TYPE_RE.match(value["event_type"]):
        raise ApiError("invalid_metadata_format", "[ERROR] event_type must match [a-zA-Z0-9_]{1,255}")
    if not isinstance(value.get("event_payload"), dict):
        raise ApiError("invalid_metadata_format", "[ERROR] event_payload must be an object")
    return value


def _flag(args: dict[str, Any], name: str) -> bool:
    return str(args.get(name, "")).lower() in ("1", "true")


def _limit(args: dict[str, Any], default: int) -> int:
    try:
        limit = int(args.get("limit", default))
    except ValueError:
        raise ApiError("invalid_limit", "[ERROR] limit must be a number") from None
    if not 1 <= limit <= 1000:
        raise ApiError("invalid_limit", "[ERROR] limit must be between 1 and 1000")
    return limit


def _upload_problem(record: FileRecord | None) -> str | None:
    if record is None:
        return "unknown"
    if record.content is None:
        return "not uploaded yet"
    if record.completed:
        return "already completed"
    return None


# Slack's control sequences that ping or link: <!channel>, <!here>, <!everyone>, <@U…>, <#C…>,
# <http://x|y>, <mailto:…>. pipebot never means to send one: user content must arrive escaped.
MENTION = re.compile(r"<(?:[!@#]|https?:|mailto:)[^>]*>?")


def _mrkdwn_texts(node: Any) -> list[str]:
    if isinstance(node, list):
        return [t for item in node for t in _mrkdwn_texts(item)]
    if not isinstance(node, dict):
        return []
    own = [str(node.get("text", ""))] if node.get("type") in ("mrkdwn", "markdown") else []
    return own + [t for value in node.values() for t in _mrkdwn_texts(value)]


class SlackWebApi(SlackFunctions):
    """`SlackWorkspace` plus the Web API method handlers; `FakeSlack` serves them over HTTP.

    Strict about mentions: a message, modal or file comment holding an unescaped ``<!…>``,
    ``<@…>``, ``<#…>`` or link is accepted (Slack would) but recorded in `errors`, so
    `assert_all_ok` fails; a test that means to post one sets ``mentions_allowed``.
    """

    errors: list[str]
    mentions_allowed = False

    def check_mentions(self, where: str, text: str | None, blocks: Any = None) -> None:
        """Record unescaped control sequences in `text` (a message's top-level text, what
        notifications show) and in the mrkdwn of `blocks` (plain_text and input values are shown
        as typed: Slack parses nothing there)."""
        if self.mentions_allowed:
            return
        for content in [text or "", *_mrkdwn_texts(blocks)]:
            if found := MENTION.search(content):
                self.errors.append(f"mention: {where} would ping or link: {found.group(0)[:60]!r}")

    def method_table(self) -> dict[str, Handler]:
        return {
            "api.test": self._api_test,
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.startStream": self._chat_start_stream,
            "chat.appendStream": self._chat_append_stream,
            "chat.stopStream": self._chat_stop_stream,
            "functions.completeSuccess": self._functions_complete_success,
            "functions.completeError": self._functions_complete_error,
            "views.open": self._views_open,
            "views.push": self._views_push,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
            "files.info": self._files_info,
            "usergroups.users.list": self._usergroups_users_list,
            "usergroups.list": self._usergroups_list,
            "apps.connections.open": self._apps_connections_open,
            "users.info": self._users_info,
            "conversations.info": self._conversations_info,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
        }

    async def _api_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"args": args}

    async def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://fake.slack.com/",
            "team": "Fake Workspace",
            "user": self.users[self.bot_user_id]["name"],
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _message_content(self, args: dict[str, Any], *, required: bool) -> tuple[str | None, Any]:
        text, blocks = args.get("text"), None
        if "blocks" in args:
            blocks = _json_arg(args, "blocks", "invalid_blocks_format")
            if not isinstance(blocks, list):
                raise ApiError("invalid_blocks_format", "[ERROR] blocks must be a JSON array")
            if problems := validate_blocks(blocks, "message"):
                raise ApiError("invalid_blocks", *problems)
        if text is not None and (problems := validate_message_text(text)):
            raise ApiError("msg_too_long" if isinstance(text, str) else "invalid_arguments", *problems)
        if required and not text and not blocks and not args.get("attachments"):
            raise ApiError("no_text", "one of text, blocks or attachments is required")
        self.check_mentions("message", text, blocks)
        return text, blocks

    async def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self.resolve_channel(_required(args, "channel"))
        text, blocks = self._message_content(args, required=True)
        metadata = _metadata(_json_arg(args, "metadata")) if "metadata" in args else None
        msg = self.post_message(
            channel, text or "", blocks or [], thread_ts=_optional(args, "thread_ts"), metadata=metadata
        )
        return {"channel": channel, "ts": msg.ts, "message": msg.to_api(self.team_id)}

    async def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts = _required(args, "channel"), _required(args, "ts")
        if self.get_message(channel, ts).stream == "streaming":
            raise ApiError("message_is_streaming", "stop the stream (chat.stopStream) before editing")
        text, blocks = self._message_content(args, required=True)
        msg = self.edit_message(channel, ts, text, blocks)
        return {"channel": channel, "ts": ts, "text": msg.text, "message": msg.to_api(self.team_id)}

    async def _chat_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts = _required(args, "channel"), _required(args, "ts")
        self.get_message(channel, ts).deleted = True
        return {"channel": channel, "ts": ts}

    async def _chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self.resolve_channel(_required(args, "channel"))
        user = _required(args, "user")
        if user not in self.users:
            raise ApiError("user_not_found", f"unknown user {user!r} (register it with fake.add_user)")
        text, blocks = self._message_content(args, required=True)
        thread_ts = self.thread_root(channel, _optional(args, "thread_ts"))
        eph = Ephemeral(channel, user, self.next_ts(), text or "", blocks or [], thread_ts)
        self.ephemerals.append(eph)
        return {"message_ts": eph.ts}

    def _view_arg(self, args: dict[str, Any], expected_type: str | None = None) -> dict[str, Any]:
        if "view" not in args:
            raise ApiError("invalid_arguments", "[ERROR] missing required field: view")
        view = _json_arg(args, "view")
        if problems := validate_view(view):
            raise ApiError("invalid_arguments", *problems)
        assert isinstance(view, dict)
        if expected_type and view["type"] != expected_type:
            raise ApiError("invalid_arguments", f"[ERROR] view type must be {expected_type!r} here")
        self.check_mentions("view", None, view.get("blocks"))
        return view

    def _trigger(self, args: dict[str, Any]) -> str | None:
        trigger_id = _optional(args, "trigger_id") or _optional(args, "interactivity_pointer")
        if trigger_id is None:
            raise ApiError("invalid_arguments", "[ERROR] missing required field: trigger_id")
        return self.consume_trigger(trigger_id).view_id

    async def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        view = self._view_arg(args, "modal")
        self._trigger(args)
        stored = self.store_view(view, previous=None)
        self.opened_views[stored["id"]] = stored
        return {"view": stored}

    async def _views_push(self, args: dict[str, Any]) -> dict[str, Any]:
        view = self._view_arg(args, "modal")
        parent_id = self._trigger(args)
        parent = self.opened_views.get(parent_id) if parent_id else None
        if parent is None:
            raise ApiError("not_found", "views.push needs a trigger_id from an interaction inside a modal")
        if self.stack_depth(parent) >= 3:
            raise ApiError("push_limit_reached", "at most 3 views can be stacked")
        stored = self.store_view(view, previous=parent)
        self.opened_views[stored["id"]] = stored
        return {"view": stored}

    async def _views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        view = self._view_arg(args)
        current = self.find_view(_optional(args, "view_id"), _optional(args, "external_id"))
        expected_hash = _optional(args, "hash")
        if expected_hash is not None and expected_hash != current["hash"]:
            raise ApiError("hash_conflict", "the view changed since that hash was issued")
        previous = self.opened_views.get(current["previous_view_id"] or "")
        stored = self.store_view(view, previous=previous, view_id=current["id"])
        stored["root_view_id"] = current["root_view_id"]
        if "external_id" not in view:
            stored["external_id"] = current["external_id"]
        self.opened_views[stored["id"]] = stored
        return {"view": stored}

    async def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        user_id = _required(args, "user_id")
        view = self._view_arg(args, "home")
        if user_id not in self.users:
            raise ApiError("user_not_found", f"unknown user {user_id!r}")
        current = self.home_views.get(user_id)
        stored = self.store_view(view, previous=None, view_id=current["id"] if current else None)
        self.home_views[user_id] = stored
        return {"view": stored}

    async def _files_get_upload_url(self, args: dict[str, Any]) -> dict[str, Any]:
        filename, raw_length = _required(args, "filename"), _required(args, "length")
        if not raw_length.isdigit() or int(raw_length) < 1:
            raise ApiError(
                "invalid_arguments", f"[ERROR] length must be a positive integer, got {raw_length!r}"
            )
        record, key = self.new_upload(filename, int(raw_length))
        return {"upload_url": f"{self._base_url}upload/v1/{key}", "file_id": record.id}

    async def _files_complete_upload(self, args: dict[str, Any]) -> dict[str, Any]:
        if "files" not in args:
            raise ApiError("invalid_arguments", "[ERROR] missing required field: files")
        entries = _json_arg(args, "files")
        if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
            raise ApiError("invalid_arguments", "[ERROR] files must be a non-empty array of {id, title}")
        channel_id = (
            _optional(args, "channel_id") or (_optional(args, "channels") or "").split(",")[0] or None
        )
        thread_ts = _optional(args, "thread_ts")
        if thread_ts and not channel_id:
            raise ApiError("invalid_arguments", "[ERROR] thread_ts requires channel_id")
        channel = self.resolve_channel(channel_id) if channel_id else None
        thread = self.thread_root(channel, thread_ts) if channel else None
        records = []
        for entry in entries:
            record = self.files.get(str(entry.get("id")))
            problem = _upload_problem(record)
            if record is None or problem:
                raise ApiError("file_not_found", f"file {entry.get('id')!r} is {problem}")
            records.append((record, entry))
        comment = _optional(args, "initial_comment")
        blocks: list[Any] = []
        if "blocks" in args and comment is None:  # Slack ignores blocks next to an initial_comment
            blocks = _json_arg(args, "blocks", "invalid_blocks_format")
            if not isinstance(blocks, list):
                raise ApiError("invalid_blocks_format", "[ERROR] blocks must be a JSON array")
            if problems := validate_blocks(blocks, "message"):
                raise ApiError("invalid_blocks", *problems)
        self.check_mentions("file comment", comment, blocks)
        for record, entry in records:
            record.completed = True
            record.title = str(entry.get("title") or record.name)
            if channel:
                record.channels.append(channel)
            assert record.content is not None
            self.uploaded_files.append(
                UploadedFile(record.id, record.name, record.content, record.title, channel, thread, comment)
            )
        if channel:
            self.post_message(
                channel, comment or "", blocks, thread_ts=thread, files=[r.id for r, _ in records]
            )
        return {"files": [{"id": r.id, "title": r.title} for r, _ in records]}

    async def _files_info(self, args: dict[str, Any]) -> dict[str, Any]:
        record = self.files.get(_required(args, "file"))
        if record is None or not record.completed:
            raise ApiError("file_not_found", f"no completed file {args.get('file')!r}")
        return {"file": self.file_object(record)}

    async def _usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        group = _required(args, "usergroup")
        if group not in self.usergroups:
            raise ApiError("no_such_subteam", f"unknown usergroup {group!r} (use fake.set_usergroup)")
        return {"users": list(self.usergroups[group])}

    async def _usergroups_list(self, args: dict[str, Any]) -> dict[str, Any]:
        include_users = str(args.get("include_users", "")).lower() in ("1", "true")
        groups = []
        for group_id, users in self.usergroups.items():
            handle = self.usergroup_handles.get(group_id, group_id.lower())
            group: dict[str, Any] = {
                "id": group_id,
                "team_id": self.team_id,
                "is_usergroup": True,
                "name": handle.replace("-", " ").title(),
                "handle": handle,
                "user_count": len(users),
            }
            if include_users:
                group["users"] = list(users)
            groups.append(group)
        return {"usergroups": groups}

    async def _apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"url": self.socket_url()}

    def socket_url(self) -> str:
        raise ApiError("not_allowed", "Socket Mode is not served by this workspace model")

    async def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = _required(args, "user")
        if user not in self.users:
            raise ApiError("user_not_found", f"unknown user {user!r} (use fake.add_user)")
        return {"user": self.users[user]}

    async def _conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = _required(args, "channel")
        if channel not in self.channels:
            raise ApiError("channel_not_found", f"unknown channel {channel!r} (use fake.add_channel)")
        return {"channel": self.channels[channel]}

    # -- response_url ----------------------------------------------------------------------------
    async def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        """Top-level messages, newest first; metadata only with include_all_metadata."""
        channel = self.resolve_channel(_required(args, "channel"))
        limit, meta = _limit(args, 100), _flag(args, "include_all_metadata")
        found = list(reversed(self.messages_in(channel)))
        return {
            "messages": [m.to_api(self.team_id, with_metadata=meta) for m in found[:limit]],
            "has_more": len(found) > limit,
        }

    async def _conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        """A thread: its parent, then the replies oldest first (one page; no cursor here)."""
        channel = self.resolve_channel(_required(args, "channel"))
        ts = _required(args, "ts")
        parent = self.messages.get((channel, ts))
        if parent is None or parent.deleted:
            raise ApiError("thread_not_found", f"no message with ts {ts!r} in {channel!r}")
        limit, meta = _limit(args, 1000), _flag(args, "include_all_metadata")
        found = [parent, *self.messages_in(channel, thread_ts=ts)]
        if len(found) > limit:
            raise ApiError("invalid_arguments", "[ERROR] this fake serves one page: raise limit")
        return {"messages": [m.to_api(self.team_id, with_metadata=meta) for m in found], "has_more": False}

    def apply_response_url_post(self, target: ResponseUrlTarget, body: dict[str, Any]) -> None:
        if body.get("delete_original"):
            if not target.message_ts:
                raise ApiError("no_original", "delete_original needs an interaction on a message", status=400)
            self.get_message(target.channel_id, target.message_ts).deleted = True
            return
        try:
            text, blocks = self._message_content(body, required=True)
        except ApiError as exc:
            exc.status = 400
            raise
        if body.get("replace_original"):
            if not target.message_ts:
                raise ApiError(
                    "no_original", "replace_original needs an interaction on a message", status=400
                )
            msg = self.get_message(target.channel_id, target.message_ts)
            msg.history.append((msg.text, msg.blocks))
            msg.text, msg.blocks = text or "", blocks or []
        elif body.get("response_type") == "in_channel":
            thread = _optional(body, "thread_ts")
            self.post_message(target.channel_id, text or "", blocks or [], thread_ts=thread)
        else:
            ts = self.next_ts()
            eph = Ephemeral(target.channel_id, target.user_id, ts, text or "", blocks or [])
            self.ephemerals.append(eph)
