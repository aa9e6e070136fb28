"""A strict loopback fake of Discord (REST + gateway) for driving the real discord.py.

Usage::

    async with FakeDiscord() as fake:
        fake.add_guild(GUILD, channels=[FakeChannel(CHANNEL, "general")], roles=[FakeRole(ROLE, "ops")])
        configure_endpoints(fake.api_url, fake.gateway_url)
        ...  # start a discord.Client with token fake.token, wait for on_ready
        interaction_id = await fake.send_slash_command(GUILD, CHANNEL, FakeUser(1, "alice"), name="pipeline")
        body = await fake.wait_response(interaction_id)

The fake listens on 127.0.0.1 (ephemeral port): REST under ``/api/v10`` (see
:mod:`tests.fakes.discord_rest`), the websocket at ``/gateway`` (see
:mod:`tests.fakes.discord_gateway`), uploaded files under ``/attachments``.  It enforces Discord's
limits (:mod:`tests.fakes.discord_limits`) and records everything: :attr:`requests`,
:attr:`errors` (every rejected request or gateway protocol error), :attr:`messages` by channel,
:attr:`threads`, :attr:`interaction_responses` by interaction id, :attr:`commands` /
:attr:`guild_commands`, :attr:`identifies`.  Interactions are injected with
:meth:`send_slash_command`, :meth:`autocomplete`, :meth:`click_button`, :meth:`select_menu` and
:meth:`submit_modal`; they are validated against what the bot registered or sent (a command must
have been synced, a button must exist on the message, a modal must have been opened for that user).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from tests.fakes.discord_gateway import PRIVILEGED_INTENTS, Gateway
from tests.fakes.discord_limits import DEFAULT_UPLOAD_LIMIT, iter_components
from tests.fakes.discord_rest import API_PREFIX, GUILDS_INTENT, RateLimitRule, RestApi
from tests.fakes.discord_state import (
    JSON,
    CommandSync,
    FakeChannel,
    FakeFile,
    FakeRole,
    FakeState,
    FakeUser,
    GuildState,
    InteractionRecord,
    ModalRecord,
    RecordedFile,
    RecordedRequest,
    StoredAttachment,
    StoredMessage,
    Violation,
    channel_payload,
    ensure_guild_defaults,
)

__all__ = [
    "CommandSync",
    "FakeChannel",
    "FakeDiscord",
    "FakeFile",
    "FakeRole",
    "FakeUser",
    "InteractionRecord",
    "RecordedFile",
    "RecordedRequest",
    "StoredAttachment",
    "StoredMessage",
    "Violation",
]

OptionValues = Mapping[str, Any] | Sequence[JSON] | None
ModalValue = str | bool | Sequence[str] | Sequence[FakeFile] | Sequence[FakeUser] | Sequence[int] | None


class FakeDiscord(FakeState):
    """Discord on loopback.  All timing knobs are in seconds."""

    def __init__(
        self,
        *,
        token: str = "fake-bot-token",
        application_id: int | None = None,
        bot_user_id: int | None = None,
        bot_username: str = "pipebot",
        interaction_deadline: float = 3.0,
        interaction_token_ttl: float = 15 * 60.0,
        upload_limit: int = DEFAULT_UPLOAD_LIMIT,
        heartbeat_interval_ms: int = 41_250,
        allowed_privileged_intents: int = PRIVILEGED_INTENTS,
    ) -> None:
        super().__init__(
            token=token,
            application_id=application_id,
            bot_user_id=bot_user_id,
            bot_username=bot_username,
            interaction_deadline=interaction_deadline,
            interaction_token_ttl=interaction_token_ttl,
            upload_limit=upload_limit,
        )
        self.gateway = Gateway(
            self,
            heartbeat_interval_ms=heartbeat_interval_ms,
            allowed_privileged_intents=allowed_privileged_intents,
        )
        self.rest = RestApi(self, self.gateway)
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._background: set[asyncio.Task[int]] = set()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on 127.0.0.1 with an ephemeral port."""
        if self._runner is not None:
            raise RuntimeError("FakeDiscord already started")
        app = web.Application(client_max_size=self.upload_limit * 11 + 1024 * 1024)
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_get("/attachments/{channel}/{attachment}/{filename}", self.rest.handle_attachment)
        app.router.add_route("*", API_PREFIX + "{tail:(/.*)?}", self.rest.handle)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        self.base_url = f"http://127.0.0.1:{self._port}"
        self.gateway.url = f"ws://127.0.0.1:{self._port}/gateway"

    async def stop(self) -> None:
        """Close gateway connections and the server."""
        if self._runner is None:
            return
        await self.gateway.close_all()
        await self._runner.cleanup()
        self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def api_url(self) -> str:
        """REST base, e.g. ``http://127.0.0.1:PORT/api/v10`` (for ``DISCORD_API_URL``)."""
        self._require_started()
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        """Gateway, e.g. ``ws://127.0.0.1:PORT/gateway`` (for ``DISCORD_GATEWAY_URL``)."""
        self._require_started()
        return self.gateway.url

    def _require_started(self) -> None:
        if self._runner is None:
            raise RuntimeError("FakeDiscord is not started")

    # -- configuration -----------------------------------------------------------------------

    def add_guild(
        self,
        guild_id: int,
        *,
        name: str = "pipebot test guild",
        channels: Sequence[FakeChannel] = (),
        roles: Sequence[FakeRole] = (),
        members: Sequence[FakeUser] = (),
        owner_id: int | None = None,
    ) -> GuildState:
        """Configure a guild the bot is in (sent as GUILD_CREATE after READY).

        The @everyone role (id = guild id) is added unless given; the bot is always a member.
        If a client is already connected, GUILD_CREATE is dispatched right away.
        """
        guild = GuildState(guild_id, name, owner_id if owner_id is not None else self.application_id + 1)
        ensure_guild_defaults(guild, roles)
        for channel in channels:
            guild.channels[channel.id] = channel_payload(guild_id, channel)
            self.channels[channel.id] = guild.channels[channel.id]
            self.messages.setdefault(channel.id, [])
        guild.members[self.bot_user.id] = self.bot_user
        for member in members:
            guild.members[member.id] = member
        self.guilds[guild_id] = guild
        if self.gateway.sessions:
            task = asyncio.get_running_loop().create_task(
                self.gateway.dispatch("GUILD_CREATE", self.guild_payload(guild), intent=GUILDS_INTENT)
            )
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        self.notify()
        return guild

    def rate_limit(
        self, route_substring: str, times: int = 1, retry_after: float = 0.2, *, is_global: bool = False
    ) -> None:
        """Answer the next ``times`` requests whose ``"METHOD /path"`` contains ``route_substring`` with 429.

        The path is relative to ``/api/v10``, e.g. ``"POST /channels/123/messages"``.
        """
        self.rest.rate_limits.append(RateLimitRule(route_substring, times, retry_after, is_global))

    # -- inspection --------------------------------------------------------------------------

    @property
    def intents(self) -> int | None:
        """Intents of the last IDENTIFY (``None`` before any)."""
        return self.gateway.intents

    @property
    def connected(self) -> bool:
        """Whether a client is identified on the gateway right now."""
        return self.gateway.ready

    def requests_to(self, route_substring: str) -> list[RecordedRequest]:
        """Recorded requests whose ``"METHOD /path"`` contains ``route_substring``."""
        return [r for r in self.requests if route_substring in r.route]

    def assert_no_errors(self) -> None:
        """Fail if the fake rejected anything."""
        if self.errors:
            raise AssertionError("Discord fake rejected requests:\n" + "\n".join(str(e) for e in self.errors))

    async def wait_response(self, interaction_id: int, timeout: float = 5.0) -> JSON:
        """The callback body (``{"type": .., "data": ..}``) the bot sent for an interaction."""
        return await self.wait_for(lambda: self.interaction_responses.get(interaction_id), timeout)

    async def wait_connected(self, timeout: float = 5.0) -> None:
        """Wait until a client has identified (or resumed) on the gateway."""
        await self.wait_for(lambda: self.gateway.ready, timeout)

    async def request_reconnect(self) -> None:
        """Send op 7 RECONNECT; discord.py should come back with RESUME."""
        await self.gateway.send_op(7)

    # -- interaction injection ---------------------------------------------------------------

    async def _deliver(self, record: InteractionRecord) -> int:
        record.dispatched_at = time.monotonic()
        reached = await self.gateway.dispatch("INTERACTION_CREATE", record.payload)
        if not reached:
            raise RuntimeError("no bot is connected to the fake gateway")
        self.notify()
        return record.id

    def _channel_guild(self, guild_id: int | None, channel_id: int) -> GuildState:
        guild = self.guild_of_channel(channel_id)
        if guild is None or (guild_id is not None and guild.id != guild_id):
            raise LookupError(f"channel {channel_id} is not in guild {guild_id}")
        return guild

    def _registered_command(self, guild_id: int, name: str) -> JSON:
        for scope in (self.guild_commands.get(guild_id, {}), self.commands):
            command = scope.get(name)
            if command is not None and command.get("type", 1) == 1:
                return command
        raise LookupError(
            f"slash command /{name} is not registered for guild {guild_id} (did the bot sync its tree?)"
        )

    def _option_value(
        self, guild: GuildState, channel_id: int, schema: JSON, value: Any, resolved: JSON
    ) -> Any:
        kind = schema["type"]
        name = schema["name"]
        if kind == 3:
            if not isinstance(value, str):
                raise TypeError(f"option {name} expects a string")
            choices = [c["value"] for c in schema.get("choices") or []]
            if choices and value not in choices:
                raise ValueError(f"option {name}: {value!r} is not one of the choices {choices}")
            return value
        if kind in (4, 10):
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or (kind == 4 and not isinstance(value, int))
            ):
                raise TypeError(f"option {name} expects a {'integer' if kind == 4 else 'number'}")
            return value
        if kind == 5:
            if not isinstance(value, bool):
                raise TypeError(f"option {name} expects a boolean")
            return value
        if kind in (6, 9) and isinstance(value, FakeUser):
            self.resolved_user(guild, value, resolved)
            return str(value.id)
        if kind == 7 and isinstance(value, int) and value in self.channels:
            resolved.setdefault("channels", {})[str(value)] = {
                **self.channels[value],
                "permissions": str(guild.permissions_of(self.bot_user)),
            }
            return str(value)
        if kind in (8, 9) and isinstance(value, int) and value in guild.roles:
            resolved.setdefault("roles", {})[str(value)] = dict(guild.roles[value])
            return str(value)
        if kind == 11 and isinstance(value, FakeFile):
            return self.resolved_attachment(channel_id, value, resolved)
        raise TypeError(f"option {name} (type {kind}) cannot take {value!r}")

    def _build_options(
        self,
        guild: GuildState,
        channel_id: int,
        schema: Sequence[JSON],
        values: Mapping[str, Any],
        resolved: JSON,
        focused: str | None,
    ) -> list[JSON]:
        by_name = {o["name"]: o for o in schema}
        options: list[JSON] = []
        for name, value in values.items():
            if name not in by_name:
                raise KeyError(f"the registered command has no option {name!r} (options: {sorted(by_name)})")
            option = by_name[name]
            if name == focused:
                if not option.get("autocomplete"):
                    raise ValueError(f"option {name} does not have autocomplete enabled")
                options.append({"name": name, "type": option["type"], "value": str(value), "focused": True})
                continue
            options.append(
                {
                    "name": name,
                    "type": option["type"],
                    "value": self._option_value(guild, channel_id, option, value, resolved),
                }
            )
        if focused is None:
            missing = [o["name"] for o in schema if o.get("required") and o["name"] not in values]
            if missing:
                raise ValueError(f"required options missing: {missing}")
        return options

    def _command_data(
        self, guild: GuildState, channel_id: int, name: str, options: OptionValues, focused: str | None
    ) -> JSON:
        parts = name.split()
        command = self._registered_command(guild.id, parts[0])
        resolved: JSON = {}
        if options is None or isinstance(options, Mapping):
            values: Mapping[str, Any] = options or {}
            schema: list[JSON] = list(command.get("options") or [])
            path: list[JSON] = []
            for part in parts[1:]:
                sub = next((o for o in schema if o["name"] == part and o["type"] in (1, 2)), None)
                if sub is None:
                    raise LookupError(f"/{name}: {part!r} is not a registered sub-command")
                path.append({"name": part, "type": sub["type"]})
                schema = list(sub.get("options") or [])
            if any(o["type"] in (1, 2) for o in schema):
                raise ValueError(f"/{name} needs a sub-command")
            built = self._build_options(guild, channel_id, schema, values, resolved, focused)
            for node in reversed(path):
                node["options"] = built
                built = [node]
        else:
            built = [dict(o) for o in options]
        data: JSON = {"id": command["id"], "name": parts[0], "type": 1, "options": built}
        if "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        if resolved:
            data["resolved"] = resolved
        return data

    async def send_slash_command(
        self,
        guild_id: int,
        channel_id: int,
        user: FakeUser,
        name: str = "pipeline",
        options: OptionValues = None,
    ) -> int:
        """Dispatch a CHAT_INPUT application command interaction; returns its id.

        ``name`` may include sub-commands (``"pipeline run"``).  ``options`` is either a mapping
        ``{option_name: value}`` checked and typed against the registered command (users as
        :class:`FakeUser`, channels and roles as ids, attachments as :class:`FakeFile`), or a raw
        list of option objects sent as is.
        """
        guild = self._channel_guild(guild_id, channel_id)
        data = self._command_data(guild, channel_id, name, options, None)
        return await self._deliver(self.new_interaction(2, data, channel_id, user))

    async def autocomplete(
        self,
        guild_id: int,
        channel_id: int,
        user: FakeUser,
        name: str,
        options: Mapping[str, Any],
        focused: str,
    ) -> int:
        """Dispatch an APPLICATION_COMMAND_AUTOCOMPLETE interaction for option ``focused``."""
        guild = self._channel_guild(guild_id, channel_id)
        if focused not in options:
            raise KeyError(f"focused option {focused!r} must be in options")
        data = self._command_data(guild, channel_id, name, options, focused)
        return await self._deliver(self.new_interaction(4, data, channel_id, user))

    def _component_message(
        self, channel_id: int, message_id: int, custom_id: str
    ) -> tuple[StoredMessage, JSON]:
        message = next((m for m in self.messages.get(channel_id, []) if m.id == message_id), None)
        if message is None:
            raise LookupError(f"message {message_id} is not in channel {channel_id}")
        component = message.find_component(custom_id)
        if component is None:
            raise LookupError(
                f"message {message_id} has no component {custom_id!r} (has {message.custom_ids()})"
            )
        if component.get("disabled"):
            raise ValueError(f"component {custom_id!r} is disabled")
        return message, component

    async def click_button(self, channel_id: int, message_id: int, custom_id: str, user: FakeUser) -> int:
        """Dispatch a MESSAGE_COMPONENT interaction for a button on a stored message."""
        message, component = self._component_message(channel_id, message_id, custom_id)
        if component.get("type") != 2 or component.get("style") in (5, 6):
            raise ValueError(f"component {custom_id!r} is not an interactive button")
        data = {"custom_id": custom_id, "component_type": 2, "id": component.get("id")}
        return await self._deliver(self.new_interaction(3, data, channel_id, user, message=message))

    async def select_menu(
        self, channel_id: int, message_id: int, custom_id: str, values: Sequence[str], user: FakeUser
    ) -> int:
        """Dispatch a MESSAGE_COMPONENT interaction choosing ``values`` in a string select."""
        message, component = self._component_message(channel_id, message_id, custom_id)
        if component.get("type") != 3:
            raise ValueError(f"component {custom_id!r} is not a string select")
        self._check_select_values(component, list(values))
        data = {
            "custom_id": custom_id,
            "component_type": 3,
            "values": list(values),
            "id": component.get("id"),
        }
        return await self._deliver(self.new_interaction(3, data, channel_id, user, message=message))

    @staticmethod
    def _check_select_values(component: JSON, values: list[str]) -> None:
        allowed = [o["value"] for o in component.get("options") or []]
        unknown = [v for v in values if v not in allowed]
        if unknown:
            raise ValueError(f"{component['custom_id']!r}: {unknown} are not options ({allowed})")
        low = component.get("min_values")
        high = component.get("max_values")
        low = 1 if low is None else int(low)
        high = 1 if high is None else int(high)
        if component.get("required") is False and not values:
            return
        if not low <= len(values) <= high:
            raise ValueError(
                f"{component['custom_id']!r}: choose between {low} and {high} values, got {len(values)}"
            )

    def _modal_field(
        self, guild: GuildState, channel_id: int, comp: JSON, value: Any, provided: bool, resolved: JSON
    ) -> JSON:
        kind = comp["type"]
        custom_id = comp["custom_id"]
        required = comp.get("required", True) is not False
        out: JSON = {"type": kind, "id": comp.get("id"), "custom_id": custom_id}
        if kind == 4:
            text = value if provided else comp.get("value") or ""
            if not isinstance(text, str):
                raise TypeError(f"text input {custom_id!r} takes a string")
            low, high = comp.get("min_length") or 0, comp.get("max_length") or 4000
            if required and not text:
                raise ValueError(f"text input {custom_id!r} is required")
            if text and not low <= len(text) <= high:
                raise ValueError(f"text input {custom_id!r} must be {low}..{high} characters")
            out["value"] = text
        elif kind == 3:
            chosen = [str(v) for v in (value or [])]
            self._check_select_values(comp, chosen)
            out["values"] = chosen
        elif kind == 5:
            users = list(value or [])
            for user in users:
                self.resolved_user(guild, user, resolved)
            out["values"] = [str(u.id) for u in users]
        elif kind == 6:
            for role_id in value or []:
                resolved.setdefault("roles", {})[str(role_id)] = dict(guild.roles[role_id])
            out["values"] = [str(r) for r in value or []]
        elif kind == 8:
            for chan_id in value or []:
                resolved.setdefault("channels", {})[str(chan_id)] = dict(self.channels[chan_id])
            out["values"] = [str(c) for c in value or []]
        elif kind == 19:
            files = list(value or [])
            low = comp.get("min_values")
            high = comp.get("max_values")
            low = 1 if low is None else int(low)
            high = 1 if high is None else int(high)
            if (required or files) and not low <= len(files) <= high:
                raise ValueError(f"file upload {custom_id!r} takes {low}..{high} files, got {len(files)}")
            for upload in files:
                if len(upload.data) > self.upload_limit:
                    raise ValueError(f"{upload.filename} exceeds the upload limit")
            out["values"] = [self.resolved_attachment(channel_id, f, resolved) for f in files]
        elif kind == 21:
            if value is not None and value not in [o["value"] for o in comp.get("options") or []]:
                raise ValueError(f"radio group {custom_id!r}: {value!r} is not an option")
            if required and value is None:
                raise ValueError(f"radio group {custom_id!r} is required")
            out["value"] = value
        elif kind == 22:
            out["values"] = [str(v) for v in value or []]
        elif kind == 23:
            out["value"] = bool(value)
        else:
            raise NotImplementedError(f"modal component type {kind} is not supported by the fake")
        return out

    async def submit_modal(
        self,
        channel_id: int,
        custom_id: str,
        components_values: Mapping[str, ModalValue],
        user: FakeUser,
        message_id: int | None = None,
    ) -> int:
        """Dispatch a MODAL_SUBMIT for the modal ``custom_id`` the bot opened for ``user``.

        ``components_values`` maps each field's custom_id to its value: ``str`` for text inputs
        (missing = the modal's default), option values for string selects / checkbox groups,
        :class:`FakeFile` lists for file uploads (sent in ``resolved.attachments``),
        :class:`FakeUser` lists for user selects, role / channel ids for those selects, ``str`` for
        radio groups and ``bool`` for checkboxes.  A modal can be submitted once.
        """
        opened: ModalRecord | None = None
        for record in reversed(self.modals):
            if record.payload.get("custom_id") == custom_id and record.interaction.user.id == user.id:
                opened = record
                break
        if opened is None:
            raise LookupError(f"no modal {custom_id!r} is open for user {user.id}")
        if opened.interaction.channel_id != channel_id:
            raise LookupError(f"modal {custom_id!r} was opened in channel {opened.interaction.channel_id}")
        guild = self._channel_guild(None, channel_id)
        fields = {
            c["custom_id"]: c for c in iter_components(opened.payload["components"]) if "custom_id" in c
        }
        unknown = set(components_values) - set(fields)
        if unknown:
            raise KeyError(f"modal {custom_id!r} has no fields {sorted(unknown)} (has {sorted(fields)})")
        resolved: JSON = {}
        submitted: list[JSON] = []
        for comp in opened.payload["components"]:
            kind = comp["type"]
            if kind == 1:
                child = comp["components"][0]
                cid = child["custom_id"]
                value = self._modal_field(
                    guild, channel_id, child, components_values.get(cid), cid in components_values, resolved
                )
                submitted.append({"type": 1, "id": comp.get("id"), "components": [value]})
            elif kind == 18:
                child = comp["component"]
                cid = child["custom_id"]
                value = self._modal_field(
                    guild, channel_id, child, components_values.get(cid), cid in components_values, resolved
                )
                submitted.append({"type": 18, "id": comp.get("id"), "component": value})
            elif kind == 10:
                submitted.append({"type": 10, "id": comp.get("id"), "content": comp.get("content", "")})
        data: JSON = {"custom_id": custom_id, "components": submitted}
        if resolved:
            data["resolved"] = resolved
        source_message = message_id if message_id is not None else opened.interaction.message_id
        message = None if source_message is None else self.find_message(source_message)
        if source_message is not None and message is None:
            raise LookupError(f"message {source_message} does not exist")
        self.modals.remove(opened)
        return await self._deliver(self.new_interaction(5, data, channel_id, user, message=message))
