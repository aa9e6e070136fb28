"""REST half of the Discord fake: an aiohttp handler serving ``/api/v10/...`` like Discord does.

Every request is recorded (:attr:`FakeState.requests`); every rejection is recorded as a
:class:`~tests.fakes.discord_state.Violation` in :attr:`FakeState.errors` and answered with
Discord's JSON error shape.  Bot routes require ``Authorization: Bot <token>``; interaction
callbacks and interaction webhooks are authenticated by their token, as on Discord.  JSON answers
carry exactly ``Content-Type: application/json`` (discord.py only decodes that exact value) and
``X-RateLimit-*`` headers; 429 answers also carry ``Via`` (without it discord.py assumes a
Cloudflare ban and raises instead of retrying).
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import BodyPartReader, web

from tests.fakes.discord_limits import (
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    MAX_THREAD_NAME,
    Issue,
    error_tree,
    is_empty_message,
    validate_autocomplete,
    validate_command,
    validate_command_list,
    validate_message,
    validate_modal,
)
from tests.fakes.discord_state import (
    JSON,
    MESSAGE_CREATING_INTERACTION,
    CommandSync,
    FakeState,
    GuildState,
    InteractionRecord,
    ModalRecord,
    RecordedFile,
    RecordedRequest,
    StoredMessage,
    Violation,
)

if TYPE_CHECKING:
    from tests.fakes.discord_gateway import Gateway

API_PREFIX = "/api/v10"
GUILDS_INTENT = 1 << 0
GUILD_MESSAGES_INTENT = 1 << 9
TEXT_CHANNEL_TYPES = frozenset({0, 1, 2, 5, 10, 11, 12, 13})  # 1: a DM channel
THREAD_ARCHIVE_DURATIONS = frozenset({60, 1440, 4320, 10080})
# Callback types allowed per interaction type (2 command, 3 component, 4 autocomplete, 5 modal submit).
ALLOWED_CALLBACKS: dict[int, frozenset[int]] = {
    1: frozenset({1}),
    2: frozenset({4, 5, 9}),
    3: frozenset({4, 5, 6, 7, 9}),
    4: frozenset({8}),
    5: frozenset({4, 5, 6, 7}),
}


class HttpError(Exception):
    """Raised by a route to answer with a Discord error (recorded as a violation)."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        errors: JSON | None = None,
        details: tuple[str, ...] = (),
    ) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors or {}
        self.details = details

    @classmethod
    def form(cls, issues: list[Issue]) -> HttpError:
        """The 50035 "Invalid Form Body" answer for limit violations."""
        return cls(400, 50035, "Invalid Form Body", error_tree(issues), tuple(i.describe() for i in issues))


@dataclass
class Reply:
    """What a route answers: JSON body (``None`` = 204 No Content) and status."""

    body: Any = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Ctx:
    """A parsed request handed to a route."""

    method: str
    path: str
    query: Mapping[str, str]
    json: Any
    files: list[RecordedFile]
    params: dict[str, str]
    record: RecordedRequest

    def int_param(self, name: str) -> int:
        """A numeric path parameter."""
        return int(self.params[name])

    def body(self) -> JSON:
        """The JSON object body (400 if it is not an object)."""
        if self.json is None:
            return {}
        if not isinstance(self.json, dict):
            raise HttpError(400, 50109, "The request body contains invalid JSON.")
        return self.json


Handler = Callable[[Ctx], Awaitable[Reply]]


@dataclass
class RouteDef:
    """One REST route: method, path regex, handler, whether a bot token is required."""

    method: str
    pattern: re.Pattern[str]
    handler: Handler
    bot_auth: bool
    bucket: str


@dataclass
class RateLimitRule:
    """Answer the next ``remaining`` matching requests with 429."""

    route_substring: str
    remaining: int
    retry_after: float
    is_global: bool


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """A JSON answer with exactly ``Content-Type: application/json`` (no charset)."""
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    return web.Response(body=json.dumps(body).encode(), status=status, headers=all_headers)


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true")


class RestApi:
    """Discord's HTTP API as far as pipebot and discord.py use it."""

    def __init__(self, state: FakeState, gateway: Gateway) -> None:
        self.state = state
        self.gateway = gateway
        self.rate_limits: list[RateLimitRule] = []
        # A header carrying each request's arrival time (time.monotonic()), set by front doors
        # that forward to this fake from other processes (bench.discord_latency); None: stamped here.
        self.arrival_header: str | None = None
        # Called once a callback is accepted, before it is answered (a test can crash the bot here).
        self.on_callback: Callable[[InteractionRecord], None] | None = None
        self.routes: list[RouteDef] = []
        app = r"(?P<app>\d+)"
        guild = r"(?P<guild>\d+)"
        channel = r"(?P<channel>\d+)"
        message = r"(?P<message>\d+)"
        token = r"(?P<token>[^/]+)"
        add = self._add
        add("GET", r"/users/@me", self.get_me)
        add("POST", r"/users/@me/channels", self.create_dm)
        add("GET", r"/gateway", self.get_gateway, bot_auth=False)
        add("GET", r"/gateway/bot", self.get_gateway_bot)
        add("GET", r"/oauth2/applications/@me", self.get_application)
        add("GET", r"/applications/@me", self.get_application)
        for scope in (f"/applications/{app}", f"/applications/{app}/guilds/{guild}"):
            add("GET", f"{scope}/commands", self.list_commands)
            add("PUT", f"{scope}/commands", self.bulk_overwrite_commands)
            add("POST", f"{scope}/commands", self.upsert_command)
            add("GET", rf"{scope}/commands/(?P<command>\d+)", self.get_command)
            add("PATCH", rf"{scope}/commands/(?P<command>\d+)", self.edit_command)
            add("DELETE", rf"{scope}/commands/(?P<command>\d+)", self.delete_command)
        add(
            "POST",
            rf"/interactions/(?P<interaction>\d+)/{token}/callback",
            self.interaction_callback,
            bot_auth=False,
        )
        add("POST", f"/webhooks/{app}/{token}", self.execute_webhook, bot_auth=False)
        webhook_message = rf"/webhooks/{app}/{token}/messages/(?P<message>@original|\d+)"
        add("GET", webhook_message, self.get_webhook_message, bot_auth=False)
        add("PATCH", webhook_message, self.edit_webhook_message, bot_auth=False)
        add("DELETE", webhook_message, self.delete_webhook_message, bot_auth=False)
        add("GET", f"/channels/{channel}", self.get_channel)
        add("POST", f"/channels/{channel}/messages", self.create_message)
        add("GET", f"/channels/{channel}/messages", self.list_messages)
        add("GET", f"/channels/{channel}/messages/{message}", self.get_message)
        add("PATCH", f"/channels/{channel}/messages/{message}", self.edit_message)
        add("DELETE", f"/channels/{channel}/messages/{message}", self.delete_message)
        add("POST", f"/channels/{channel}/messages/{message}/threads", self.start_thread_from_message)
        add("POST", f"/channels/{channel}/threads", self.start_thread)
        add("POST", f"/channels/{channel}/typing", self.typing)
        add("GET", f"/guilds/{guild}", self.get_guild)
        add("GET", f"/guilds/{guild}/channels", self.get_guild_channels)
        add("GET", rf"/guilds/{guild}/members/(?P<user>\d+)", self.get_member)

    def _add(self, method: str, pattern: str, handler: Handler, *, bot_auth: bool = True) -> None:
        bucket = f"fake{len(self.routes):04d}"
        self.routes.append(RouteDef(method, re.compile(f"^{pattern}$"), handler, bot_auth, bucket))

    # -- plumbing ----------------------------------------------------------------------------

    def now(self) -> float:
        """Loop time used for interaction deadlines."""
        return asyncio.get_running_loop().time()

    async def handle_attachment(self, request: web.Request) -> web.StreamResponse:
        """CDN stand-in: serve uploaded attachment bytes."""
        attachment = self.state.attachments.get(int(request.match_info["attachment"]))
        if attachment is None or attachment.filename != request.match_info["filename"]:
            return web.Response(status=404, text="Not Found")
        return web.Response(
            body=attachment.data, content_type=attachment.content_type or "application/octet-stream"
        )

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Entry point for every ``/api/v10`` request."""
        path = request.path[len(API_PREFIX) :] or "/"
        record = RecordedRequest(
            method=request.method,
            path=path,
            query=dict(request.query),
            json=None,
            files=[],
            authorization=request.headers.get("Authorization"),
            arrived_at=self._arrival(request),
        )
        self.state.requests.append(record)
        try:
            response = await self._handle(request, record)
        except HttpError as exc:
            self.state.errors.append(
                Violation(request.method, path, exc.status, exc.code, exc.message, exc.errors, exc.details)
            )
            body: JSON = {"message": exc.message, "code": exc.code}
            if exc.errors:
                body["errors"] = exc.errors
            response = json_response(body, exc.status)
        record.status = response.status
        self.state.notify()
        return response

    def _arrival(self, request: web.Request) -> float:
        stamped = request.headers.get(self.arrival_header) if self.arrival_header else None
        return float(stamped) if stamped else time.monotonic()

    async def _read_body(self, request: web.Request, record: RecordedRequest) -> None:
        content_type = request.content_type
        if content_type == "multipart/form-data":
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader):
                    raise HttpError(
                        400, 50035, "Invalid Form Body", details=("nested multipart is not supported",)
                    )
                name = part.name or ""
                data = await part.read(decode=False)
                if name == "payload_json":
                    try:
                        record.json = json.loads(data)
                    except ValueError as exc:
                        raise HttpError(400, 50109, "The request body contains invalid JSON.") from exc
                elif name.startswith("files["):
                    record.files.append(
                        RecordedFile(
                            name, part.filename or name, bytes(data), part.headers.get("Content-Type")
                        )
                    )
            return
        raw = await request.read()
        if not raw:
            return
        if content_type != "application/json":
            raise HttpError(
                400, 50035, "Invalid Form Body", details=(f"unsupported Content-Type {content_type!r}",)
            )
        try:
            record.json = json.loads(raw)
        except ValueError as exc:
            raise HttpError(400, 50109, "The request body contains invalid JSON.") from exc

    def _ratelimit_headers(self, route: RouteDef, remaining: int, reset_after: float) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": route.bucket,
        }

    async def _handle(self, request: web.Request, record: RecordedRequest) -> web.Response:
        candidates = [(r, r.pattern.match(record.path)) for r in self.routes]
        matching = [(r, m) for r, m in candidates if m is not None]
        if not matching:
            raise HttpError(404, 0, "404: Not Found", details=("route not implemented by the Discord fake",))
        found = [(r, m) for r, m in matching if r.method == request.method]
        if not found:
            raise HttpError(405, 0, "405: Method Not Allowed")
        route, match = found[0]
        if route.bot_auth and record.authorization != f"Bot {self.state.token}":
            raise HttpError(
                401, 0, "401: Unauthorized", details=(f"Authorization header {record.authorization!r}",)
            )
        await self._read_body(request, record)
        for part in record.files:
            if len(part.data) > self.state.upload_limit:
                raise HttpError(
                    413,
                    40005,
                    "Request entity too large",
                    details=(f"{part.filename}: {len(part.data)} bytes > {self.state.upload_limit}",),
                )
        rule = next(
            (r for r in self.rate_limits if r.remaining > 0 and r.route_substring in record.route), None
        )
        if rule is not None:
            rule.remaining -= 1
            headers = self._ratelimit_headers(route, 0, rule.retry_after)
            headers.update(
                {
                    "Retry-After": str(max(1, math.ceil(rule.retry_after))),
                    "X-RateLimit-Scope": "global" if rule.is_global else "user",
                    "Via": "1.1 google",
                }
            )
            if rule.is_global:
                headers["X-RateLimit-Global"] = "true"
            body = {
                "message": "You are being rate limited.",
                "retry_after": rule.retry_after,
                "global": rule.is_global,
            }
            return json_response(body, 429, headers)
        ctx = Ctx(
            request.method, record.path, record.query, record.json, record.files, match.groupdict(), record
        )
        reply = await route.handler(ctx)
        headers = {**self._ratelimit_headers(route, 4, 1.0), **reply.headers}
        if reply.body is None:
            return web.Response(status=204, headers=headers)
        return json_response(reply.body, reply.status, headers)

    async def _dispatch(self, event: str, data: JSON, intent: int | None) -> None:
        await self.gateway.dispatch(event, data, intent=intent)

    async def _dispatch_message(self, event: str, stored: StoredMessage) -> None:
        if not stored.ephemeral and stored.payload.get("guild_id") is not None:
            await self._dispatch(event, copy.deepcopy(stored.payload), GUILD_MESSAGES_INTENT)

    def _check_message(
        self,
        payload: Mapping[str, Any],
        files: list[RecordedFile],
        *,
        creating: bool,
        path: tuple[str, ...] = (),
        stored: StoredMessage | None = None,
    ) -> None:
        names = [f.filename for f in files] + [a.filename for a in stored.attachments] if stored else []
        issues = validate_message(
            payload,
            path,
            file_count=len(files),
            stored_flags=stored.flags if stored else 0,
            stored_files=names or [f.filename for f in files],
        )
        if issues:
            raise HttpError.form(issues)
        if creating and is_empty_message(payload, len(files)):
            raise HttpError(400, 50006, "Cannot send an empty message")

    # -- identity ----------------------------------------------------------------------------

    async def get_me(self, ctx: Ctx) -> Reply:
        """``GET /users/@me`` (discord.py's login)."""
        return Reply(
            {
                **self.state.bot_user.payload(),
                "verified": True,
                "mfa_enabled": False,
                "email": None,
                "locale": "en-US",
            }
        )

    async def create_dm(self, ctx: Ctx) -> Reply:
        """``POST /users/@me/channels`` with ``recipient_id``: the bot's DM channel with a user who
        shares a guild with it (the same channel again on every call), as a type-1 channel object."""
        body = ctx.body()
        recipient = body.get("recipient_id")
        if recipient is None:
            raise HttpError.form([Issue(("recipient_id",), "BASE_TYPE_REQUIRED", "This field is required")])
        if isinstance(recipient, bool) or not str(recipient).isdigit():
            issue = Issue(("recipient_id",), "NUMBER_TYPE_COERCE", f'Value "{recipient}" is not snowflake.')
            raise HttpError.form([issue])
        user_id = int(recipient)
        user = next((g.members[user_id] for g in self.state.guilds.values() if user_id in g.members), None)
        if user is None or user.bot:
            raise HttpError(400, 50033, "Invalid Recipient(s)")
        channel_id = self.state.dm_channels.get(user_id)
        if channel_id is None:
            channel_id = self.state.dm_channels[user_id] = self.state.next_id()
            self.state.channels[channel_id] = {
                "id": str(channel_id),
                "type": 1,
                "last_message_id": None,
                "flags": 0,
                "recipients": [user.payload()],
            }
            self.state.messages.setdefault(channel_id, [])
        return Reply(copy.deepcopy(self.state.channels[channel_id]))

    async def get_gateway(self, ctx: Ctx) -> Reply:
        """``GET /gateway``."""
        return Reply({"url": self.gateway.url})

    async def get_gateway_bot(self, ctx: Ctx) -> Reply:
        """``GET /gateway/bot``: the fake's own gateway, one shard."""
        limit = {"total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1}
        return Reply({"url": self.gateway.url, "shards": 1, "session_start_limit": limit})

    async def get_application(self, ctx: Ctx) -> Reply:
        """``GET /oauth2/applications/@me`` (called by ``Client.login``)."""
        return Reply(self.state.application_payload())

    # -- application commands ----------------------------------------------------------------

    def _command_scope(self, ctx: Ctx) -> tuple[int | None, dict[str, JSON]]:
        if ctx.int_param("app") != self.state.application_id:
            raise HttpError(403, 50001, "Missing Access", details=("application id does not match the bot",))
        if "guild" not in ctx.params or ctx.params["guild"] is None:
            return None, self.state.commands
        guild_id = ctx.int_param("guild")
        if guild_id not in self.state.guilds:
            raise HttpError(404, 10004, "Unknown Guild")
        return guild_id, self.state.guild_commands.setdefault(guild_id, {})

    def _command_payload(self, body: Mapping[str, Any], guild_id: int | None, existing: JSON | None) -> JSON:
        result: JSON = {
            "id": existing["id"] if existing else str(self.state.next_id()),
            "application_id": str(self.state.application_id),
            "version": str(self.state.next_id()),
            "type": body.get("type", 1),
            "name": body["name"],
            "name_localizations": body.get("name_localizations"),
            "description": body.get("description", ""),
            "description_localizations": body.get("description_localizations"),
            "options": copy.deepcopy(body.get("options") or []),
            "default_member_permissions": body.get("default_member_permissions"),
            "nsfw": bool(body.get("nsfw", False)),
            "contexts": body.get("contexts"),
            "integration_types": body.get("integration_types") or [0],
        }
        if guild_id is not None:
            result["guild_id"] = str(guild_id)
        else:
            result["dm_permission"] = body.get("dm_permission", True)
        return result

    def _find_command(self, ctx: Ctx) -> tuple[int | None, dict[str, JSON], JSON]:
        guild_id, scope = self._command_scope(ctx)
        for command in scope.values():
            if command["id"] == ctx.params["command"]:
                return guild_id, scope, command
        raise HttpError(404, 10063, "Unknown application command")

    async def list_commands(self, ctx: Ctx) -> Reply:
        """``GET .../commands``."""
        _, scope = self._command_scope(ctx)
        return Reply(list(scope.values()))

    async def bulk_overwrite_commands(self, ctx: Ctx) -> Reply:
        """``PUT .../commands``: validate and replace the whole set (what ``tree.sync`` does)."""
        guild_id, scope = self._command_scope(ctx)
        if not isinstance(ctx.json, list):
            raise HttpError(
                400,
                50035,
                "Invalid Form Body",
                {"_errors": [{"code": "LIST_TYPE_CONVERT", "message": "Must be an array."}]},
            )
        issues = validate_command_list(ctx.json)
        if issues:
            raise HttpError.form(issues)
        new = {c["name"]: self._command_payload(c, guild_id, scope.get(c["name"])) for c in ctx.json}
        scope.clear()
        scope.update(new)
        self.state.command_syncs.append(CommandSync(guild_id, list(new)))
        return Reply(list(new.values()))

    async def upsert_command(self, ctx: Ctx) -> Reply:
        """``POST .../commands``: create or overwrite one command by name."""
        guild_id, scope = self._command_scope(ctx)
        body = ctx.body()
        issues = validate_command(body)
        if issues:
            raise HttpError.form(issues)
        existed = body["name"] in scope
        scope[body["name"]] = self._command_payload(body, guild_id, scope.get(body["name"]))
        return Reply(scope[body["name"]], 200 if existed else 201)

    async def get_command(self, ctx: Ctx) -> Reply:
        """``GET .../commands/{id}``."""
        return Reply(self._find_command(ctx)[2])

    async def edit_command(self, ctx: Ctx) -> Reply:
        """``PATCH .../commands/{id}``."""
        guild_id, scope, command = self._find_command(ctx)
        merged = {**command, **ctx.body()}
        issues = validate_command(merged)
        if issues:
            raise HttpError.form(issues)
        del scope[command["name"]]
        scope[merged["name"]] = self._command_payload(merged, guild_id, command)
        return Reply(scope[merged["name"]])

    async def delete_command(self, ctx: Ctx) -> Reply:
        """``DELETE .../commands/{id}``."""
        _, scope, command = self._find_command(ctx)
        del scope[command["name"]]
        return Reply(None)

    # -- interactions ------------------------------------------------------------------------

    def _interaction(self, ctx: Ctx) -> InteractionRecord:
        record = self.state.interactions.get(ctx.int_param("interaction"))
        if record is None:
            raise HttpError(404, 10062, "Unknown interaction")
        if record.token != ctx.params["token"]:
            raise HttpError(401, 50027, "Invalid Webhook Token")
        return record

    async def interaction_callback(self, ctx: Ctx) -> Reply:
        """``POST /interactions/{id}/{token}/callback`` (types 1, 4-9; ``?with_response``)."""
        record = self._interaction(ctx)
        if record.response_type is not None:
            raise HttpError(400, 40060, "Interaction has already been acknowledged.")
        age = ctx.record.arrived_at - record.created_at  # loop time is time.monotonic()
        if age > self.state.interaction_deadline:
            raise HttpError(
                404, 10062, "Unknown interaction", details=(f"callback {age:.3f}s after the interaction",)
            )
        body = ctx.body()
        kind = body.get("type")
        data = body.get("data") or {}
        if not isinstance(kind, int) or not isinstance(data, dict):
            raise HttpError.form([Issue(("type",), "BASE_TYPE_REQUIRED", "This field is required")])
        allowed = ALLOWED_CALLBACKS.get(record.type, frozenset())
        if kind in (6, 7) and record.message_id is None:
            allowed = allowed - {6, 7}
        if kind not in allowed:
            raise HttpError.form(
                [
                    Issue(
                        ("type",),
                        "INTERACTION_RESPONSE_TYPE_INVALID",
                        f"Callback type {kind} is invalid for interaction type {record.type}",
                    )
                ]
            )
        if kind == 4:
            self._check_message(data, ctx.files, creating=True, path=("data",))
        elif kind == 7:
            self._check_message(data, ctx.files, creating=False, path=("data",))
        elif kind == 8:
            issues = validate_autocomplete(data, ("data",))
            if issues:
                raise HttpError.form(issues)
        elif kind == 9:
            issues = validate_modal(data, ("data",))
            if issues:
                raise HttpError.form(issues)

        target = None if record.message_id is None else self.state.find_message(record.message_id)
        if kind == 7 and target is None:
            raise HttpError(
                404, 10008, "Unknown Message", details=("the component's message no longer exists",)
            )

        record.response_type = kind
        record.responded_at = ctx.record.arrived_at
        resource: JSON | None = None
        if kind in (4, 5):
            extra = FLAG_LOADING if kind == 5 else 0
            content = data if kind == 4 else {"flags": int(data.get("flags") or 0) & FLAG_EPHEMERAL}
            stored = self.state.create_message(
                record.channel_id,
                content,
                ctx.files,
                message_type=MESSAGE_CREATING_INTERACTION[record.type],
                webhook_id=self.state.application_id,
                interaction=record,
                extra_flags=extra,
            )
            record.original_message_id = stored.id
            resource = {"type": kind, "message": copy.deepcopy(stored.payload)}
            await self._dispatch_message("MESSAGE_CREATE", stored)
        elif kind in (6, 7):
            record.original_message_id = record.message_id
            if kind == 7 and target is not None:
                self.state.edit_message(target, data, ctx.files)
                resource = {"type": kind, "message": copy.deepcopy(target.payload)}
                await self._dispatch_message("MESSAGE_UPDATE", target)
        elif kind == 9:
            modal = {**data, "components": self.state.normalize_components(data.get("components"))}
            self.state.modals.append(ModalRecord(record, modal))
        self.state.interaction_responses[record.id] = copy.deepcopy(body)
        self.state.notify()
        if self.on_callback is not None:
            self.on_callback(record)

        if not _truthy(ctx.query.get("with_response")):
            return Reply(None)
        summary: JSON = {"id": str(record.id), "type": record.type}
        if resource is not None:
            message = resource["message"]
            summary["response_message_id"] = message["id"]
            summary["response_message_loading"] = kind == 5
            summary["response_message_ephemeral"] = bool(int(message.get("flags") or 0) & FLAG_EPHEMERAL)
        answer: JSON = {"interaction": summary}
        if resource is not None:
            answer["resource"] = resource
        return Reply(answer)

    def _webhook_interaction(self, ctx: Ctx) -> InteractionRecord:
        record = self.state.interaction_by_token(ctx.params["token"])
        if record is None or ctx.int_param("app") != self.state.application_id:
            raise HttpError(404, 10015, "Unknown Webhook")
        if self.now() - record.created_at > self.state.interaction_token_ttl:
            raise HttpError(401, 50027, "Invalid Webhook Token", details=("interaction token expired",))
        return record

    def _webhook_message(self, ctx: Ctx) -> tuple[InteractionRecord, StoredMessage]:
        record = self._webhook_interaction(ctx)
        wanted = ctx.params["message"]
        if wanted == "@original":
            message_id = record.original_message_id
        elif int(wanted) in record.followup_ids or int(wanted) == record.original_message_id:
            message_id = int(wanted)
        else:
            message_id = None
        stored = None if message_id is None else self.state.find_message(message_id)
        if stored is None:
            raise HttpError(404, 10008, "Unknown Message")
        return record, stored

    async def execute_webhook(self, ctx: Ctx) -> Reply:
        """``POST /webhooks/{app}/{token}``: an interaction follow-up message.

        As on Discord, the first follow-up after a deferred "thinking" response (type 5) replaces
        the loading message instead of creating a new one.
        """
        record = self._webhook_interaction(ctx)
        if record.response_type is None:
            raise HttpError(
                404, 10015, "Unknown Webhook", details=("follow-up before the interaction was acknowledged",)
            )
        body = ctx.body()
        self._check_message(body, ctx.files, creating=True)
        original = (
            None
            if record.original_message_id is None
            else self.state.find_message(record.original_message_id)
        )
        if record.response_type == 5 and original is not None and original.flags & FLAG_LOADING:
            record.answered_at = ctx.record.arrived_at
            stored = self.state.edit_message(original, body, ctx.files)
            await self._dispatch_message("MESSAGE_UPDATE", stored)
        else:
            channel_id = int(ctx.query["thread_id"]) if "thread_id" in ctx.query else record.channel_id
            if channel_id not in self.state.channels:
                raise HttpError(404, 10003, "Unknown Channel")
            stored = self.state.create_message(
                channel_id, body, ctx.files, webhook_id=self.state.application_id, interaction=record
            )
            record.followup_ids.append(stored.id)
            await self._dispatch_message("MESSAGE_CREATE", stored)
        if not _truthy(ctx.query.get("wait")):
            return Reply(None)
        return Reply(copy.deepcopy(stored.payload))

    async def get_webhook_message(self, ctx: Ctx) -> Reply:
        """``GET /webhooks/{app}/{token}/messages/{id|@original}``."""
        return Reply(copy.deepcopy(self._webhook_message(ctx)[1].payload))

    async def edit_webhook_message(self, ctx: Ctx) -> Reply:
        """``PATCH /webhooks/{app}/{token}/messages/{id|@original}``."""
        _, stored = self._webhook_message(ctx)
        body = ctx.body()
        self._check_message(body, ctx.files, creating=False, stored=stored)
        self.state.edit_message(stored, body, ctx.files)
        await self._dispatch_message("MESSAGE_UPDATE", stored)
        return Reply(copy.deepcopy(stored.payload))

    async def delete_webhook_message(self, ctx: Ctx) -> Reply:
        """``DELETE /webhooks/{app}/{token}/messages/{id|@original}``."""
        _, stored = self._webhook_message(ctx)
        self.state.delete_message(stored)
        await self._delete_event(stored)
        return Reply(None)

    # -- channels and messages ---------------------------------------------------------------

    def _channel(self, ctx: Ctx) -> JSON:
        channel = self.state.channels.get(ctx.int_param("channel"))
        if channel is None:
            raise HttpError(404, 10003, "Unknown Channel")
        return channel

    def _message(self, ctx: Ctx) -> StoredMessage:
        """A message of the channel; ephemeral messages are invisible to channel endpoints."""
        channel_id = int(self._channel(ctx)["id"])
        message_id = ctx.int_param("message")
        for stored in self.state.messages.get(channel_id, []):
            if stored.id == message_id and not stored.ephemeral:
                return stored
        raise HttpError(404, 10008, "Unknown Message")

    async def _delete_event(self, stored: StoredMessage) -> None:
        if not stored.ephemeral and stored.payload.get("guild_id") is not None:
            data = {
                "id": stored.payload["id"],
                "channel_id": stored.payload["channel_id"],
                "guild_id": stored.payload["guild_id"],
            }
            await self._dispatch("MESSAGE_DELETE", data, GUILD_MESSAGES_INTENT)

    async def get_channel(self, ctx: Ctx) -> Reply:
        """``GET /channels/{id}`` (channels and threads)."""
        return Reply(copy.deepcopy(self._channel(ctx)))

    async def create_message(self, ctx: Ctx) -> Reply:
        """``POST /channels/{id}/messages`` (JSON or multipart with ``files[n]``)."""
        channel = self._channel(ctx)
        if channel["type"] not in TEXT_CHANNEL_TYPES:
            raise HttpError(400, 50008, "Cannot send messages in a non-text channel")
        body = ctx.body()
        self._check_message(body, ctx.files, creating=True)
        reference = body.get("message_reference")
        if (
            reference
            and reference.get("message_id")
            and self.state.find_message(int(reference["message_id"])) is None
        ):
            raise HttpError.form(
                [Issue(("message_reference",), "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message")]
            )
        key = self._nonce(body)
        if key is not None and key in self.state.nonces:
            sent, first = self.state.nonces[key]
            if time.monotonic() - sent < self.state.nonce_window and first.channel_id == int(channel["id"]):
                return Reply(copy.deepcopy(first.payload))  # Discord returns the first, creates nothing
        stored = self.state.create_message(int(channel["id"]), body, ctx.files)
        if key is not None:
            self.state.nonces[key] = (time.monotonic(), stored)
        await self._dispatch_message("MESSAGE_CREATE", stored)
        return Reply(copy.deepcopy(stored.payload))

    def _nonce(self, body: Mapping[str, Any]) -> tuple[int, str] | None:
        """Discord's rules: nonce an integer or a string of at most 25 characters; enforce_nonce
        a boolean, and with it the same author's same nonce is deduplicated for a few minutes."""
        nonce, enforce = body.get("nonce"), body.get("enforce_nonce", False)
        if nonce is not None and not (
            (isinstance(nonce, int) and not isinstance(nonce, bool))
            or (isinstance(nonce, str) and len(nonce) <= 25)
        ):
            raise HttpError.form(
                [Issue(("nonce",), "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")]
            )
        if not isinstance(enforce, bool):
            raise HttpError.form([Issue(("enforce_nonce",), "BASE_TYPE_BAD_TYPE", "Must be a boolean.")])
        if not enforce or nonce is None:
            return None
        return (self.state.bot_user.id, str(nonce))

    async def list_messages(self, ctx: Ctx) -> Reply:
        """``GET /channels/{id}/messages`` (newest first; ``limit`` ≤ 100, ``after``/``before``).

        As on Discord, fetched messages carry no nonce (only the create answer and the gateway do).
        """
        channel = self._channel(ctx)
        try:
            limit = int(ctx.query.get("limit", "50"))
        except ValueError:
            raise HttpError.form([Issue(("limit",), "NUMBER_TYPE_COERCE", "Not an integer.")]) from None
        if not 1 <= limit <= 100:
            raise HttpError.form([Issue(("limit",), "NUMBER_TYPE_MAX", "Must be between 1 and 100.")])
        found = self.state.messages_in(int(channel["id"]))
        if "after" in ctx.query:
            found = [m for m in found if m.id > int(ctx.query["after"])]
        if "before" in ctx.query:
            found = [m for m in found if m.id < int(ctx.query["before"])]
        newest = sorted(found, key=lambda m: m.id, reverse=True)
        only_after = "after" in ctx.query and "before" not in ctx.query
        newest = newest[-limit:] if only_after else newest[:limit]  # after: the oldest `limit` after it
        out = []
        for stored in newest:
            data = copy.deepcopy(stored.payload)
            data.pop("nonce", None)
            out.append(data)
        return Reply(out)

    async def get_message(self, ctx: Ctx) -> Reply:
        """``GET /channels/{id}/messages/{id}``."""
        return Reply(copy.deepcopy(self._message(ctx).payload))

    async def edit_message(self, ctx: Ctx) -> Reply:
        """``PATCH /channels/{id}/messages/{id}`` (only the bot's own messages).

        Non-ephemeral interaction responses are authored by the bot and stay editable here, which
        is how bots edit them after the 15-minute interaction token has expired.
        """
        stored = self._message(ctx)
        if stored.payload["author"]["id"] != str(self.state.bot_user.id):
            raise HttpError(403, 50005, "Cannot edit a message authored by another user")
        body = ctx.body()
        self._check_message(body, ctx.files, creating=False, stored=stored)
        self.state.edit_message(stored, body, ctx.files)
        await self._dispatch_message("MESSAGE_UPDATE", stored)
        return Reply(copy.deepcopy(stored.payload))

    async def delete_message(self, ctx: Ctx) -> Reply:
        """``DELETE /channels/{id}/messages/{id}``."""
        stored = self._message(ctx)
        self.state.delete_message(stored)
        await self._delete_event(stored)
        return Reply(None)

    def _thread_options(self, body: Mapping[str, Any]) -> tuple[str, int]:
        name = body.get("name")
        issues: list[Issue] = []
        if not isinstance(name, str) or not 1 <= len(name) <= MAX_THREAD_NAME:
            issues.append(
                Issue(
                    ("name",), "BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {MAX_THREAD_NAME} in length."
                )
            )
        archive = body.get("auto_archive_duration") or 1440
        if archive not in THREAD_ARCHIVE_DURATIONS:
            issues.append(
                Issue(
                    ("auto_archive_duration",),
                    "BASE_TYPE_CHOICES",
                    "Value must be one of {60, 1440, 4320, 10080}.",
                )
            )
        if issues:
            raise HttpError.form(issues)
        return str(name), int(archive)

    async def _register_thread(self, thread: JSON) -> None:
        thread_id = int(thread["id"])
        self.state.threads[thread_id] = thread
        self.state.channels[thread_id] = thread
        self.state.messages.setdefault(thread_id, [])
        self.state.notify()
        await self._dispatch("THREAD_CREATE", {**copy.deepcopy(thread), "newly_created": True}, GUILDS_INTENT)

    async def start_thread_from_message(self, ctx: Ctx) -> Reply:
        """``POST /channels/{id}/messages/{id}/threads``: the thread id is the message id."""
        channel = self._channel(ctx)
        stored = self._message(ctx)
        if channel["type"] not in (0, 5):
            raise HttpError(400, 50024, "Cannot execute action on this channel type")
        if "thread" in stored.payload or stored.id in self.state.threads:
            raise HttpError(400, 160004, "A thread has already been created for this message")
        name, archive = self._thread_options(ctx.body())
        kind = 10 if channel["type"] == 5 else 11
        thread = self.state.thread_payload(
            int(channel["guild_id"]), int(channel["id"]), stored.id, name, kind, archive
        )
        stored.payload["thread"] = copy.deepcopy(thread)
        await self._register_thread(thread)
        return Reply(copy.deepcopy(thread), 201)

    async def start_thread(self, ctx: Ctx) -> Reply:
        """``POST /channels/{id}/threads``: a thread without a message, or a forum post."""
        channel = self._channel(ctx)
        body = ctx.body()
        name, archive = self._thread_options(body)
        guild_id = int(channel["guild_id"])
        if channel["type"] in (15, 16):
            message = body.get("message")
            if not isinstance(message, dict):
                raise HttpError.form([Issue(("message",), "BASE_TYPE_REQUIRED", "This field is required")])
            self._check_message(message, ctx.files, creating=True, path=("message",))
            thread = self.state.thread_payload(
                guild_id, int(channel["id"]), self.state.next_id(), name, 11, archive
            )
            await self._register_thread(thread)
            # A forum post's starter message has the thread's id.
            stored = self.state.create_message(
                int(thread["id"]), message, ctx.files, message_id=int(thread["id"])
            )
            return Reply({**copy.deepcopy(thread), "message": copy.deepcopy(stored.payload)}, 201)
        if channel["type"] not in (0, 5):
            raise HttpError(400, 50024, "Cannot execute action on this channel type")
        kind = body.get("type", 12)
        if kind not in (10, 11, 12):
            raise HttpError.form(
                [Issue(("type",), "BASE_TYPE_CHOICES", "Value must be one of (10, 11, 12).")]
            )
        thread = self.state.thread_payload(
            guild_id, int(channel["id"]), self.state.next_id(), name, kind, archive
        )
        await self._register_thread(thread)
        return Reply(copy.deepcopy(thread), 201)

    async def typing(self, ctx: Ctx) -> Reply:
        """``POST /channels/{id}/typing``."""
        self._channel(ctx)
        return Reply(None)

    # -- guilds ------------------------------------------------------------------------------

    def _guild(self, ctx: Ctx) -> GuildState:
        guild = self.state.guilds.get(ctx.int_param("guild"))
        if guild is None:
            raise HttpError(404, 10004, "Unknown Guild")
        return guild

    async def get_guild(self, ctx: Ctx) -> Reply:
        """``GET /guilds/{id}``."""
        payload = self.state.guild_payload(self._guild(ctx))
        for key in ("channels", "threads", "members", "voice_states", "presences"):
            payload.pop(key, None)
        return Reply(payload)

    async def get_guild_channels(self, ctx: Ctx) -> Reply:
        """``GET /guilds/{id}/channels``."""
        return Reply([copy.deepcopy(c) for c in self._guild(ctx).channels.values()])

    async def get_member(self, ctx: Ctx) -> Reply:
        """``GET /guilds/{id}/members/{user}``."""
        guild = self._guild(ctx)
        user = guild.members.get(ctx.int_param("user"))
        if user is None:
            raise HttpError(404, 10007, "Unknown Member")
        member = self.state.member_payload(guild, user)
        member.pop("permissions")
        return Reply(member)
