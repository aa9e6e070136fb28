"""State, value types and Discord-shaped JSON builders shared by the Discord fake.

:class:`FakeState` holds everything the fake records (requests, violations, messages, threads,
interactions, commands, gateway identifies) and builds the JSON objects discord.py parses (users,
members, guilds, channels, threads, messages, attachments).  The REST routes
(:mod:`tests.fakes.discord_rest`) and the gateway (:mod:`tests.fakes.discord_gateway`) mutate it;
:class:`tests.fakes.discord_fake.FakeDiscord` is the public face.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import mimetypes
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from tests.fakes.discord_limits import (
    FLAG_COMPONENTS_V2,
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    iter_components,
)

JSON = dict[str, Any]
T = TypeVar("T")

DISCORD_EPOCH_MS = 1420070400000
ADMINISTRATOR = 1 << 3
ALL_PERMISSIONS = (1 << 53) - 1
EVERYONE_DEFAULT_PERMISSIONS = 1071698660929
# Permissions the bot has in every channel (view, send, embed, attach, threads, history ...).
DEFAULT_APP_PERMISSIONS = 563227566370880
# Message flags a client may set when creating a message (crosspost/loading/... are Discord's own).
CLIENT_MESSAGE_FLAGS = (1 << 2) | FLAG_EPHEMERAL | (1 << 12) | FLAG_COMPONENTS_V2
MESSAGE_CREATING_INTERACTION = {2: 20, 3: 0, 4: 0, 5: 0}


def now_iso() -> str:
    """Discord's ISO 8601 timestamp format."""
    return datetime.now(UTC).isoformat()


class SnowflakeGenerator:
    """Monotonic, time-based snowflakes so ``created_at`` in discord.py is plausible."""

    def __init__(self) -> None:
        self._last = 0

    def __call__(self) -> int:
        candidate = ((int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22) | (1 << 17)
        self._last = max(candidate, self._last + 1)
        return self._last


@dataclass(frozen=True)
class FakeUser:
    """A human member who triggers interactions.  ``roles`` are role ids of the guild."""

    id: int
    username: str
    roles: Sequence[int] = ()
    global_name: str | None = None
    locale: str = "en-US"
    bot: bool = False

    def payload(self) -> JSON:
        """The Discord user object."""
        return {
            "id": str(self.id),
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": None,
            "bot": self.bot,
            "system": False,
            "public_flags": 0,
            "flags": 0,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
            "primary_guild": None,
            "collectibles": None,
        }


@dataclass(frozen=True)
class FakeRole:
    """A guild role; ``permissions`` is the Discord permission bit set."""

    id: int
    name: str
    permissions: int = 0
    position: int = 1
    color: int = 0


@dataclass(frozen=True)
class FakeChannel:
    """A guild channel (0 text, 2 voice, 4 category, 5 announcement, 15 forum)."""

    id: int
    name: str
    type: int = 0
    parent_id: int | None = None
    position: int = 0
    topic: str | None = None


@dataclass(frozen=True)
class FakeFile:
    """A file a user uploads (modal file upload, attachment command option)."""

    filename: str
    data: bytes
    content_type: str | None = None


@dataclass(frozen=True)
class RecordedFile:
    """One ``files[n]`` part of a multipart request."""

    field: str
    filename: str
    data: bytes
    content_type: str | None


@dataclass
class RecordedRequest:
    """One HTTP request received by the fake (``status`` is the status it was answered with)."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    files: list[RecordedFile]
    authorization: str | None
    status: int = 0
    arrived_at: float = 0.0  # time.monotonic() when it reached the fake (or its front door)

    @property
    def route(self) -> str:
        """``"POST /channels/1/messages"`` (path relative to the API base)."""
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class Violation:
    """A request the fake rejected (limits, auth, unknown routes, late or double callbacks...)."""

    method: str
    path: str
    status: int
    code: int
    message: str
    errors: JSON = field(default_factory=dict)
    details: tuple[str, ...] = ()

    def __str__(self) -> str:
        extra = "; ".join(self.details)
        return f"{self.method} {self.path} -> {self.status} {self.code} {self.message}" + (
            f" [{extra}]" if extra else ""
        )


@dataclass
class StoredAttachment:
    """An uploaded attachment with its bytes."""

    id: int
    filename: str
    data: bytes
    content_type: str | None
    url: str
    description: str | None = None

    @property
    def size(self) -> int:
        """Size in bytes."""
        return len(self.data)

    def payload(self) -> JSON:
        """The Discord attachment object."""
        result: JSON = {
            "id": str(self.id),
            "filename": self.filename,
            "size": self.size,
            "url": self.url,
            "proxy_url": self.url,
            "flags": 0,
        }
        if self.content_type:
            result["content_type"] = self.content_type
        if self.description:
            result["description"] = self.description
        return result


@dataclass
class StoredMessage:
    """A message as Discord currently holds it (edits applied), plus the attachment bytes."""

    payload: JSON
    attachments: list[StoredAttachment] = field(default_factory=list)
    edits: int = 0

    @property
    def id(self) -> int:
        """Message id."""
        return int(self.payload["id"])

    @property
    def channel_id(self) -> int:
        """Channel (or thread) id."""
        return int(self.payload["channel_id"])

    @property
    def content(self) -> str:
        """Current content."""
        return str(self.payload.get("content") or "")

    @property
    def text(self) -> str:
        """What a person reads: the content, or every text display of a Components V2 card."""
        shown = [str(c["content"]) for c in iter_components(self.components) if c.get("type") == 10]
        return "\n".join([self.content, *shown]) if self.content else "\n".join(shown)

    @property
    def file_components(self) -> list[str]:
        """``attachment://`` names shown by file components."""
        return [str(c["file"]["url"]) for c in iter_components(self.components) if c.get("type") == 13]

    @property
    def accent(self) -> int | None:
        """Accent colour of the card's container."""
        found = [c.get("accent_color") for c in iter_components(self.components) if c.get("type") == 17]
        return found[0] if found else None

    @property
    def embeds(self) -> list[JSON]:
        """Current embeds."""
        return list(self.payload.get("embeds") or [])

    @property
    def components(self) -> list[JSON]:
        """Current components (with the ``id`` fields Discord assigns)."""
        return list(self.payload.get("components") or [])

    @property
    def flags(self) -> int:
        """Message flags."""
        return int(self.payload.get("flags") or 0)

    @property
    def ephemeral(self) -> bool:
        """Whether only the interaction user sees it."""
        return bool(self.flags & FLAG_EPHEMERAL)

    def custom_ids(self) -> list[str]:
        """custom_id of every component, in order."""
        return [str(c["custom_id"]) for c in iter_components(self.components) if "custom_id" in c]

    def find_component(self, custom_id: str) -> JSON | None:
        """The component with this custom_id, if any."""
        for comp in iter_components(self.components):
            if comp.get("custom_id") == custom_id:
                return dict(comp)
        return None


@dataclass
class InteractionRecord:
    """An interaction the fake dispatched, and what the bot did with it."""

    id: int
    token: str
    type: int
    guild_id: int
    channel_id: int
    user: FakeUser
    payload: JSON
    created_at: float
    message_id: int | None = None
    response_type: int | None = None
    dispatched_at: float | None = None  # time.monotonic() as INTERACTION_CREATE left the gateway
    responded_at: float | None = None  # time.monotonic() as its callback arrived
    answered_at: float | None = None  # ... as the follow-up replacing its "thinking" message arrived
    original_message_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)


@dataclass
class ModalRecord:
    """A modal the bot opened (callback type 9) for ``interaction``."""

    interaction: InteractionRecord
    payload: JSON


@dataclass
class CommandSync:
    """One bulk overwrite of application commands (``guild_id`` None = global)."""

    guild_id: int | None
    names: list[str]


@dataclass
class GuildState:
    """A configured guild: channel and role payloads, members."""

    id: int
    name: str
    owner_id: int
    channels: dict[int, JSON] = field(default_factory=dict)
    roles: dict[int, JSON] = field(default_factory=dict)
    members: dict[int, FakeUser] = field(default_factory=dict)
    joined_at: str = field(default_factory=now_iso)

    def permissions_of(self, user: FakeUser) -> int:
        """Guild-level permissions: @everyone plus the user's roles (administrator = all)."""
        if user.id == self.owner_id:
            return ALL_PERMISSIONS
        perms = int(self.roles[self.id]["permissions"]) if self.id in self.roles else 0
        for role_id in user.roles:
            if role_id in self.roles:
                perms |= int(self.roles[role_id]["permissions"])
        return ALL_PERMISSIONS if perms & ADMINISTRATOR else perms


def role_payload(role: FakeRole) -> JSON:
    """The Discord role object."""
    return {
        "id": str(role.id),
        "name": role.name,
        "color": role.color,
        "colors": {"primary_color": role.color, "secondary_color": None, "tertiary_color": None},
        "hoist": False,
        "icon": None,
        "unicode_emoji": None,
        "position": role.position,
        "permissions": str(role.permissions),
        "managed": False,
        "mentionable": False,
        "flags": 0,
    }


def channel_payload(guild_id: int, channel: FakeChannel) -> JSON:
    """The Discord guild channel object."""
    result: JSON = {
        "id": str(channel.id),
        "type": channel.type,
        "guild_id": str(guild_id),
        "name": channel.name,
        "position": channel.position,
        "parent_id": None if channel.parent_id is None else str(channel.parent_id),
        "permission_overwrites": [],
        "nsfw": False,
        "flags": 0,
    }
    if channel.type in (0, 5, 15):
        result.update(
            topic=channel.topic,
            rate_limit_per_user=0,
            last_message_id=None,
            default_auto_archive_duration=1440,
        )
    if channel.type == 15:
        result.update(
            available_tags=[], default_reaction_emoji=None, default_sort_order=None, default_forum_layout=0
        )
    if channel.type == 2:
        result.update(
            bitrate=64000, user_limit=0, rtc_region=None, last_message_id=None, rate_limit_per_user=0
        )
    return result


class FakeState:
    """Everything the fake knows and records.  See :class:`tests.fakes.discord_fake.FakeDiscord`."""

    def __init__(
        self,
        *,
        token: str,
        application_id: int | None,
        bot_user_id: int | None,
        bot_username: str,
        interaction_deadline: float,
        interaction_token_ttl: float,
        upload_limit: int,
    ) -> None:
        self.next_id = SnowflakeGenerator()
        self.token = token
        self.application_id = application_id or self.next_id()
        self.bot_user = FakeUser(bot_user_id or self.application_id, bot_username, bot=True)
        self.interaction_deadline = interaction_deadline
        self.interaction_token_ttl = interaction_token_ttl
        self.upload_limit = upload_limit
        self.base_url = ""  # http://127.0.0.1:{port}, set when the server starts

        self.guilds: dict[int, GuildState] = {}
        self.channels: dict[int, JSON] = {}
        self.threads: dict[int, JSON] = {}
        self.dm_channels: dict[int, int] = {}  # user id -> the bot's DM channel with them
        self.messages: dict[int, list[StoredMessage]] = {}
        # enforce_nonce: (author id, nonce) -> (time.monotonic() of the send, the message)
        self.nonces: dict[tuple[int, str], tuple[float, StoredMessage]] = {}
        self.nonce_window = 120.0  # seconds a repeated enforced nonce returns the first message
        self.deleted_messages: list[StoredMessage] = []
        self.attachments: dict[int, StoredAttachment] = {}
        self.interactions: dict[int, InteractionRecord] = {}
        self.interaction_responses: dict[int, JSON] = {}
        self.modals: list[ModalRecord] = []
        self.commands: dict[str, JSON] = {}
        self.guild_commands: dict[int, dict[str, JSON]] = {}
        self.command_syncs: list[CommandSync] = []
        self.requests: list[RecordedRequest] = []
        self.errors: list[Violation] = []
        self.identifies: list[JSON] = []
        self._changed = asyncio.Event()

    # -- waiting -----------------------------------------------------------------------------

    def notify(self) -> None:
        """Wake every :meth:`wait_for` so it re-evaluates its predicate."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(self, predicate: Callable[[], T | None], timeout: float = 5.0) -> T:
        """Wait until ``predicate()`` is truthy (re-checked after every change) and return it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                errors = "; ".join(str(e) for e in self.errors[-5:]) or "none"
                raise TimeoutError(f"condition not met within {timeout}s (recent fake errors: {errors})")
            event = self._changed
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                continue

    # -- lookups -----------------------------------------------------------------------------

    def guild_of_channel(self, channel_id: int) -> GuildState | None:
        """The guild a channel or thread belongs to."""
        channel = self.channels.get(channel_id)
        if channel is None or channel.get("guild_id") is None:
            return None
        return self.guilds.get(int(channel["guild_id"]))

    def find_message(self, message_id: int) -> StoredMessage | None:
        """A stored (not deleted) message by id."""
        for stored in self.messages.values():
            for message in stored:
                if message.id == message_id:
                    return message
        return None

    def messages_in(self, channel_id: int) -> list[StoredMessage]:
        """Messages of a channel or thread, oldest first."""
        return list(self.messages.get(channel_id, []))

    def direct_messages(self, user_id: int) -> list[StoredMessage]:
        """What the bot sent a user in their DM channel, oldest first."""
        channel_id = self.dm_channels.get(user_id)
        return self.messages_in(channel_id) if channel_id is not None else []

    # -- payload builders --------------------------------------------------------------------

    def member_payload(self, guild: GuildState, user: FakeUser, *, with_user: bool = True) -> JSON:
        """The Discord guild member object (interaction flavour: includes ``permissions``)."""
        result: JSON = {
            "roles": [str(r) for r in user.roles],
            "joined_at": guild.joined_at,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "nick": None,
            "avatar": None,
            "banner": None,
            "flags": 0,
            "communication_disabled_until": None,
            "permissions": str(guild.permissions_of(user)),
        }
        if with_user:
            result["user"] = user.payload()
        return result

    def guild_payload(self, guild: GuildState) -> JSON:
        """The GUILD_CREATE payload (channels, threads, roles and members included)."""
        return {
            "id": str(guild.id),
            "name": guild.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(guild.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "features": [],
            "emojis": [],
            "stickers": [],
            "roles": list(guild.roles.values()),
            "channels": [dict(c) for c in guild.channels.values()],
            "threads": [dict(t) for t in self.threads.values() if t.get("guild_id") == str(guild.id)],
            "members": [self.member_payload(guild, m) for m in guild.members.values()],
            "member_count": len(guild.members),
            "large": False,
            "unavailable": False,
            "joined_at": guild.joined_at,
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "max_members": 500000,
            "max_video_channel_users": 25,
            "application_id": None,
            "incidents_data": None,
        }

    def application_payload(self) -> JSON:
        """``GET /oauth2/applications/@me``."""
        return {
            "id": str(self.application_id),
            "name": self.bot_user.username,
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "bot_public": False,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": 0,
            "owner": FakeUser(self.application_id + 1, "owner").payload(),
            "team": None,
            "bot": self.bot_user.payload(),
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "tags": [],
            "approximate_guild_count": len(self.guilds),
            "integration_types_config": {"0": {}},
        }

    def thread_payload(
        self, guild_id: int, parent_id: int, thread_id: int, name: str, kind: int, archive: int
    ) -> JSON:
        """A new thread channel object owned by the bot."""
        stamp = now_iso()
        return {
            "id": str(thread_id),
            "type": kind,
            "guild_id": str(guild_id),
            "parent_id": str(parent_id),
            "owner_id": str(self.bot_user.id),
            "name": name,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "message_count": 0,
            "member_count": 1,
            "total_message_sent": 0,
            "flags": 0,
            "applied_tags": [],
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": archive,
                "archive_timestamp": stamp,
                "locked": False,
                "invitable": True,
                "create_timestamp": stamp,
            },
            "member": {
                "id": str(thread_id),
                "user_id": str(self.bot_user.id),
                "join_timestamp": stamp,
                "flags": 0,
            },
        }

    # -- messages ----------------------------------------------------------------------------

    def _assign_component_ids(self, components: list[JSON]) -> list[JSON]:
        used = {c["id"] for c in iter_components(components) if isinstance(c.get("id"), int)}
        counter = itertools.count(1)
        for comp in iter_components(components):
            if comp.get("id") is None and isinstance(comp, dict):
                next_id = next(counter)
                while next_id in used:
                    next_id = next(counter)
                comp["id"] = next_id
        return components

    def normalize_components(self, components: Any) -> list[JSON]:
        """Copy components and give each the numeric ``id`` Discord assigns."""
        return self._assign_component_ids(copy.deepcopy(list(components or [])))

    def store_attachment(
        self, channel_id: int, filename: str, data: bytes, content_type: str | None, description: str | None
    ) -> StoredAttachment:
        """Keep uploaded bytes and serve them at ``/attachments/...``."""
        attachment_id = self.next_id()
        guessed = content_type if content_type not in (None, "application/octet-stream") else None
        guessed = guessed or mimetypes.guess_type(filename)[0]
        url = f"{self.base_url}/attachments/{channel_id}/{attachment_id}/{filename}"
        stored = StoredAttachment(attachment_id, filename, data, guessed, url, description)
        self.attachments[attachment_id] = stored
        return stored

    def _new_attachments(
        self, channel_id: int, payload: Mapping[str, Any], files: Sequence[RecordedFile]
    ) -> dict[str, StoredAttachment]:
        """Attachments for ``files[n]`` parts, keyed by the index ``n`` as a string."""
        described = {str(a.get("id")): a for a in payload.get("attachments") or [] if isinstance(a, Mapping)}
        result: dict[str, StoredAttachment] = {}
        for part in files:
            index = part.field[len("files[") : -1] if part.field.startswith("files[") else part.field
            meta = described.get(index, {})
            filename = str(meta.get("filename") or part.filename)
            result[index] = self.store_attachment(
                channel_id, filename, part.data, part.content_type, meta.get("description")
            )
        return result

    def create_message(
        self,
        channel_id: int,
        payload: Mapping[str, Any],
        files: Sequence[RecordedFile] = (),
        *,
        author: FakeUser | None = None,
        message_type: int | None = None,
        webhook_id: int | None = None,
        interaction: InteractionRecord | None = None,
        extra_flags: int = 0,
        message_id: int | None = None,
    ) -> StoredMessage:
        """Store a new message built from a create-message payload."""
        author = author or self.bot_user
        message_id = message_id or self.next_id()
        guild = self.guild_of_channel(channel_id)
        flags = (int(payload.get("flags") or 0) & CLIENT_MESSAGE_FLAGS) | extra_flags
        reference = payload.get("message_reference")
        if message_type is None:
            message_type = 19 if reference else 0
        data: JSON = {
            "id": str(message_id),
            "channel_id": str(channel_id),
            "author": author.payload(),
            "content": str(payload.get("content") or ""),
            "timestamp": now_iso(),
            "edited_timestamp": None,
            "tts": bool(payload.get("tts", False)),
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [self._normalize_embed(e) for e in payload.get("embeds") or []],
            "components": self.normalize_components(payload.get("components")),
            "pinned": False,
            "type": message_type,
            "flags": flags,
        }
        if guild is not None:
            data["guild_id"] = str(guild.id)
        if reference:
            data["message_reference"] = {"type": 0, "channel_id": str(channel_id), **dict(reference)}
        if payload.get("nonce") is not None:
            data["nonce"] = payload["nonce"]
        if payload.get("poll"):
            data["poll"] = payload["poll"]
        if webhook_id is not None:
            data["webhook_id"] = str(webhook_id)
            data["application_id"] = str(self.application_id)
        if interaction is not None:
            data["interaction_metadata"] = self.interaction_metadata(interaction)
        stored = StoredMessage(data)
        stored.attachments = list(self._new_attachments(channel_id, payload, files).values())
        data["attachments"] = [a.payload() for a in stored.attachments]
        self.messages.setdefault(channel_id, []).append(stored)
        if channel_id in self.channels and not stored.ephemeral:
            self.channels[channel_id]["last_message_id"] = str(message_id)
        if channel_id in self.threads:
            thread = self.threads[channel_id]
            thread["message_count"] = int(thread["message_count"]) + 1
            thread["total_message_sent"] = int(thread["total_message_sent"]) + 1
        self.notify()
        return stored

    def edit_message(
        self, stored: StoredMessage, payload: Mapping[str, Any], files: Sequence[RecordedFile] = ()
    ) -> StoredMessage:
        """Apply an edit-message payload (content, embeds, components, flags, attachments)."""
        data = stored.payload
        if "content" in payload:
            data["content"] = str(payload["content"] or "")
        if "embeds" in payload:
            data["embeds"] = [self._normalize_embed(e) for e in payload["embeds"] or []]
        if "components" in payload:
            data["components"] = self.normalize_components(payload["components"])
        if payload.get("flags") is not None:
            keep = stored.flags & ~CLIENT_MESSAGE_FLAGS
            data["flags"] = (
                keep | (int(payload["flags"]) & CLIENT_MESSAGE_FLAGS) | (stored.flags & FLAG_EPHEMERAL)
            )
        data["flags"] = int(data.get("flags") or 0) & ~FLAG_LOADING
        new = self._new_attachments(stored.channel_id, payload, files)
        if "attachments" in payload and payload["attachments"] is not None:
            existing = {a.id: a for a in stored.attachments}
            kept: list[StoredAttachment] = []
            for entry in payload["attachments"]:
                key = str(entry.get("id"))
                if key in new:
                    kept.append(new.pop(key))
                elif key.isdigit() and int(key) in existing:
                    kept.append(existing[int(key)])
            stored.attachments = kept + list(new.values())
        else:
            stored.attachments = stored.attachments + list(new.values())
        data["attachments"] = [a.payload() for a in stored.attachments]
        data["edited_timestamp"] = now_iso()
        stored.edits += 1
        self.notify()
        return stored

    def delete_message(self, stored: StoredMessage) -> None:
        """Remove a message (kept in :attr:`deleted_messages`)."""
        self.messages[stored.channel_id].remove(stored)
        self.deleted_messages.append(stored)
        self.notify()

    @staticmethod
    def _normalize_embed(embed: Any) -> JSON:
        result = dict(embed) if isinstance(embed, Mapping) else {}
        result.setdefault("type", "rich")
        return result

    # -- interactions ------------------------------------------------------------------------

    def interaction_metadata(self, interaction: InteractionRecord) -> JSON:
        """``interaction_metadata`` of a message created by an interaction response."""
        meta: JSON = {
            "id": str(interaction.id),
            "type": interaction.type,
            "user": interaction.user.payload(),
            "authorizing_integration_owners": {"0": str(interaction.guild_id)},
        }
        data = interaction.payload.get("data") or {}
        if interaction.type == 2:
            meta["name"] = data.get("name")
            meta["command_type"] = data.get("type", 1)
        if interaction.message_id is not None:
            meta["interacted_message_id"] = str(interaction.message_id)
        return meta

    def new_interaction(
        self,
        kind: int,
        data: JSON,
        channel_id: int,
        user: FakeUser,
        *,
        message: StoredMessage | None = None,
    ) -> InteractionRecord:
        """Build and remember a full INTERACTION_CREATE payload."""
        channel = self.channels.get(channel_id)
        guild = self.guild_of_channel(channel_id)
        if channel is None or guild is None:
            raise LookupError(f"channel {channel_id} is not a channel of a configured guild")
        if user.id not in guild.members:
            guild.members[user.id] = user
        interaction_id = self.next_id()
        token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(48)
        payload: JSON = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            "guild_id": str(guild.id),
            "guild": {"id": str(guild.id), "locale": "en-US", "features": []},
            "channel_id": str(channel_id),
            "channel": dict(channel),
            "member": self.member_payload(guild, user),
            "token": token,
            "version": 1,
            "locale": user.locale,
            "guild_locale": "en-US",
            "app_permissions": str(DEFAULT_APP_PERMISSIONS),
            "entitlements": [],
            "entitlement_sku_ids": [],
            "authorizing_integration_owners": {"0": str(guild.id)},
            "context": 0,
            "attachment_size_limit": self.upload_limit,
        }
        if message is not None:
            payload["message"] = dict(message.payload)
        record = InteractionRecord(
            id=interaction_id,
            token=token,
            type=kind,
            guild_id=guild.id,
            channel_id=channel_id,
            user=user,
            payload=payload,
            created_at=asyncio.get_running_loop().time(),
            message_id=None if message is None else message.id,
        )
        self.interactions[interaction_id] = record
        return record

    def interaction_by_token(self, token: str) -> InteractionRecord | None:
        """The interaction whose webhook token this is."""
        for record in self.interactions.values():
            if record.token == token:
                return record
        return None

    def resolved_user(self, guild: GuildState, user: FakeUser, resolved: JSON) -> None:
        """Add a user (and its member) to an interaction ``resolved`` object."""
        resolved.setdefault("users", {})[str(user.id)] = user.payload()
        resolved.setdefault("members", {})[str(user.id)] = self.member_payload(guild, user, with_user=False)

    def resolved_attachment(self, channel_id: int, upload: FakeFile, resolved: JSON) -> str:
        """Store an uploaded file and add it to ``resolved.attachments``; returns its id."""
        stored = self.store_attachment(channel_id, upload.filename, upload.data, upload.content_type, None)
        payload = stored.payload()
        payload["ephemeral"] = True
        resolved.setdefault("attachments", {})[str(stored.id)] = payload
        return str(stored.id)


def ensure_guild_defaults(guild: GuildState, roles: Iterable[FakeRole]) -> None:
    """Add @everyone (id = guild id) unless given, then the configured roles."""
    for role in roles:
        guild.roles[role.id] = role_payload(role)
    if guild.id not in guild.roles:
        everyone = FakeRole(guild.id, "@everyone", EVERYONE_DEFAULT_PERMISSIONS, position=0)
        guild.roles = {guild.id: role_payload(everyone), **guild.roles}
