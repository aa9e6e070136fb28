"""A strict loopback fake of the Slack Web API for driving the bot in tests.

`FakeSlack` is an aiohttp server on 127.0.0.1 (random port) that answers the Web API methods
pipebot uses, as strictly as Slack does, so that slack_sdk's real `AsyncWebClient` (and bolt's
`AsyncApp`) can be pointed at it with ``base_url=fake.api_url``::

    async with FakeSlack() as fake:
        client = AsyncWebClient(token=fake.token, base_url=fake.api_url)
        await client.chat_postMessage(channel="C0PIPE", text="hi")
        [msg] = await fake.wait_for(lambda: fake.messages_in("C0PIPE"))
        fake.assert_all_ok()

Methods: auth.test, chat.postMessage/update/delete/postEphemeral, views.open/push/update/publish,
files.getUploadURLExternal (+ the upload URL) / completeUploadExternal / info,
usergroups.list / usergroups.users.list, users.info, conversations.info, apps.connections.open
(app-level token; Socket Mode through `fake.socket`, see `tests.fakes.slack_socket`); anything
else → `unknown_method`.
What is checked, like Slack:

* auth: ``Authorization: Bearer <token>`` (or a `token` form/query field) → `not_authed` /
  `invalid_auth`.
* arguments: query string, form-encoded and multipart bodies are read for every method; JSON
  bodies only for the methods Slack reads JSON for (`JSON_METHODS`); a missing required field →
  `invalid_arguments` with ``response_metadata.messages``; unknown users/channels/usergroups →
  `user_not_found`/`channel_not_found`/`no_such_subteam` (register them with `add_user`,
  `add_channel`, `set_usergroup`; conversation ids and user ids (DMs) are accepted for posting).
* Block Kit (`tests.fakes.slack_blocks`): message blocks → `invalid_blocks`, views →
  `invalid_arguments`, message text over 40,000 chars → `msg_too_long`, no text/blocks → `no_text`.
* messages: chat.update/delete of an unknown ts (or another user's message) → `message_not_found`
  (`cant_update_message`); a reply to a reply lands in the parent's thread.
* trigger ids: single use (`exchanged_trigger_id`), expire after `trigger_ttl` seconds
  (`expired_trigger_id`, clock injectable), unknown → `invalid_trigger_id`; views.push needs a
  trigger issued inside a modal, stacks at most 3 views; views.update honours `hash`.
* files: the upload URL checks the byte count announced to getUploadURLExternal; completing an
  unknown or not-yet-uploaded file → `file_not_found`; downloads (``url_private[_download]``)
  need the bot token (without it Slack serves an HTML login page, and so does the fake).
* response URLs (`issue_response_url`, used by `SlackClientSim`): JSON bodies, 5 uses,
  ``replace_original``/``delete_original``/``response_type: in_channel`` applied to the messages.

Every rejected request is explained in `fake.errors` and every call recorded in `fake.calls`.
Injected failures: `rate_limit()` (HTTP 429 + Retry-After) and `fail_next()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import Callable, Collection
from typing import Any, Self, TypeVar

from aiohttp import web

from tests.fakes.slack_methods import APP_TOKEN_METHODS, JSON_METHODS, SlackWebApi
from tests.fakes.slack_records import (
    ApiError,
    Call,
    Ephemeral,
    Message,
    ResponseUrlPost,
    UploadedFile,
)
from tests.fakes.slack_socket import SocketModeHub

_T = TypeVar("_T")
# fake.errors entries that are not the answer to a Web API call (those are judged through `calls`)
_NON_CALL_ERRORS = ("download:", "upload:", "ack:", "view_submission:", "mention:")
_LOGIN_PAGE = "<!DOCTYPE html><html><head><title>Slack</title></head><body>Sign in to Slack</body></html>"


class FakeSlack(SlackWebApi):
    """Loopback fake of slack.com/api plus the upload, download and response_url endpoints."""

    def __init__(
        self, token: str = "xoxb-test-token", *, app_token: str = "xapp-1-test-token", **options: Any
    ) -> None:
        super().__init__(token, **options)
        self.app_token = app_token  # app-level token: only apps.connections.open takes it
        self.init_streams()
        self.init_functions()
        self.socket = SocketModeHub(self.app_id)
        self.calls: list[Call] = []
        self.errors: list[str] = []  # why each rejected request was rejected
        self.responses: list[ResponseUrlPost] = []
        self.downloads: list[str] = []  # file ids served to an authorized client
        self._rate_limits: dict[str, list[int]] = {}
        self._failures: dict[str, list[tuple[str, int]]] = {}
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._methods = self.method_table()
        self.latency = 0.0  # seconds each Web API call takes (a slower Slack, for timing tests)

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/upload/v1/{key}", self._handle_upload)
        app.router.add_get("/files-pri/{key}/download/{name}", self._handle_download)
        app.router.add_get("/files-pri/{key}/{name}", self._handle_download)
        app.router.add_post("/{kind:commands|actions}/{team}/{rid}/{secret}", self._handle_response_url)
        app.router.add_get("/socket-mode/{ticket}", self.socket.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        self._base_url = f"http://127.0.0.1:{self._port}/"
        self.socket.base_url = f"ws://127.0.0.1:{self._port}/"

    async def stop(self) -> None:
        await self.socket.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        if not self._base_url:
            raise RuntimeError("FakeSlack is not started")
        return self._base_url

    @property
    def api_url(self) -> str:
        """The `base_url` to give slack_sdk's WebClient: ``http://127.0.0.1:{port}/api/``."""
        return f"{self.base_url}api/"

    # -- injection --------------------------------------------------------------------------------
    def rate_limit(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        """Answer the next `times` calls of `method` with HTTP 429 and ``Retry-After: retry_after``."""
        self._rate_limits.setdefault(method, []).extend([retry_after] * times)

    def fail_next(self, method: str, error: str, times: int = 1, status: int = 200) -> None:
        """Answer the next `times` calls of `method` with ``{"ok": false, "error": error}``."""
        self._failures.setdefault(method, []).extend([(error, status)] * times)

    def socket_url(self) -> str:
        return self.socket.issue_url()

    # -- queries for tests ------------------------------------------------------------------------
    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def wait_for(
        self,
        predicate: Callable[[], _T | None],
        timeout: float = 5.0,
        *,
        what: str = "",
        fail_on_error: bool = True,
    ) -> _T:
        """Wait until `predicate()` is truthy (re-checked on every request) and return its value.

        With `fail_on_error`, a request the fake rejects while waiting fails the wait at once
        (instead of after `timeout`), with the reason.
        """
        deadline = time.monotonic() + timeout
        known_errors = len(self.errors)
        while True:
            changed = self._changed
            result = predicate()
            if result:
                return result
            if fail_on_error and len(self.errors) > known_errors:
                raise AssertionError(
                    f"Slack rejected a request while waiting for {what or predicate}\n{self.describe()}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {what or predicate}\n{self.describe()}"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=min(remaining, 0.05))

    def describe(self, last: int = 20) -> str:
        """The last calls and all errors, for assertion messages."""
        lines = [f"last {min(last, len(self.calls))} of {len(self.calls)} calls:"]
        for c in self.calls[-last:]:
            outcome = "ok" if c.ok else f"ERROR {c.error}"
            lines.append(f"  {c.method} {outcome} {json.dumps(c.args, default=str)[:200]}")
        lines.extend(["errors:", *(f"  {e}" for e in self.errors)] if self.errors else [])
        return "\n".join(lines)

    def assert_all_ok(self, allow_errors: Collection[str] = ()) -> None:
        """Fail if a call (injected failures aside) or response_url post was rejected, a file
        upload/download went wrong, or (with `SlackClientSim`) an ack was late or a view answer bad.
        """
        bad = [c for c in self.calls if not c.ok and not c.injected and c.error not in allow_errors]
        bad_posts = [r for r in self.responses if r.error and r.error not in allow_errors]
        other = [e for e in self.errors if e.startswith(_NON_CALL_ERRORS)] + self.socket.errors
        if bad or bad_posts or other:
            raise AssertionError(
                f"{len(bad)} failed Slack call(s), {len(bad_posts)} failed response_url post(s), "
                f"{len(other)} other error(s)\n{self.describe()}"
            )

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _reject(self, where: str, error: ApiError) -> None:
        self.errors.extend(f"{where}: {error.error}: {d}" for d in error.details or [""])

    # -- HTTP: Web API ----------------------------------------------------------------------------
    async def _read_args(self, request: web.Request, method: str) -> tuple[dict[str, Any], str | None]:
        args: dict[str, Any] = dict(request.query)
        form_token = args.pop("token", None)
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except json.JSONDecodeError as exc:
                raise ApiError("invalid_json", f"body is not JSON: {exc}") from None
            if not isinstance(body, dict):
                raise ApiError("invalid_json", "a JSON body must be an object")
            if method in JSON_METHODS:
                args.update(body)
            else:
                self.errors.append(f"{method}: application/json bodies are not read by this method (ignored)")
        elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            args.update({k: v for k, v in form.items() if isinstance(v, str)})
            form_token = args.pop("token", form_token)
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else form_token
        return args, token

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if self.latency:
            await asyncio.sleep(self.latency)
        call = Call(method, {}, time.monotonic())
        self.calls.append(call)
        headers: dict[str, str] = {}
        try:
            try:
                call.args, token = await self._read_args(request, method)
            except ConnectionError:  # the client died while sending (a killed process): no call
                self.calls.remove(call)
                return web.Response(status=400)
            handler = self._methods.get(method)
            if handler is None:
                raise ApiError("unknown_method", f"{method} is not implemented by Slack or by this fake")
            if self._rate_limits.get(method):
                call.injected = True
                headers["Retry-After"] = str(self._rate_limits[method].pop(0))
                raise ApiError("ratelimited", status=429)
            if self._failures.get(method):
                call.injected = True
                error, status = self._failures[method].pop(0)
                raise ApiError(error, status=status)
            if not token:
                raise ApiError("not_authed", "no Authorization: Bearer header nor token argument")
            expected = self.app_token if method in APP_TOKEN_METHODS else self.token
            if token != expected:
                if token in (self.token, self.app_token):
                    raise ApiError("not_allowed_token_type", f"{method} does not take this kind of token")
                raise ApiError("invalid_auth", "the token is not the bot token")
            call.response = {"ok": True, **await handler(call.args)}
        except ApiError as exc:
            call.status = exc.status
            call.response = {"ok": False, "error": exc.error}
            if exc.details:
                call.response["response_metadata"] = {"messages": exc.details}
            if not call.injected:
                self._reject(method, exc)
        self._notify()
        return web.json_response(call.response, status=call.status, headers=headers)

    # -- HTTP: files ------------------------------------------------------------------------------
    async def _handle_upload(self, request: web.Request) -> web.Response:
        record = self.upload_target(request.match_info["key"])
        if request.content_type == "multipart/form-data":
            form = await request.post()
            parts = [v for v in form.values() if isinstance(v, web.FileField)]
            data = parts[0].file.read() if parts else b""
        else:
            data = await request.read()
        try:
            if record is None:
                raise ApiError("invalid_upload_url", status=404)
            if record.content is not None:
                raise ApiError("already_uploaded", f"{record.id} was already uploaded", status=400)
            if len(data) != record.length:
                raise ApiError(
                    "length_mismatch",
                    f"{record.id}: got {len(data)} bytes, announced {record.length}",
                    status=400,
                )
        except ApiError as exc:
            self._reject("upload", exc)
            self._notify()
            return web.Response(status=exc.status, text=exc.error, content_type="text/plain")
        record.content = data
        self._notify()
        return web.Response(text=f"OK - {len(data)}", content_type="text/plain")

    async def _handle_download(self, request: web.Request) -> web.Response:
        _, _, file_id = request.match_info["key"].partition("-")
        record = self.files.get(file_id)
        if record is None or record.content is None:
            return web.Response(status=404, text="file_not_found", content_type="text/plain")
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            self.errors.append(f"download: {file_id} requested without the bot token (Slack serves HTML)")
            self._notify()
            return web.Response(text=_LOGIN_PAGE, content_type="text/html")
        self.downloads.append(file_id)
        self._notify()
        return web.Response(body=record.content, content_type=record.mimetype)

    # -- HTTP: response_url -----------------------------------------------------------------------
    async def _handle_response_url(self, request: web.Request) -> web.Response:
        path = request.path.lstrip("/")
        post = ResponseUrlPost(f"{self.base_url}{path}", {}, time.monotonic(), 200)
        self.responses.append(post)
        try:
            target = self.response_targets.get(path)
            if target is None:
                raise ApiError("invalid_url", "this response_url was never issued", status=404)
            target.uses += 1
            if target.uses > 5:
                raise ApiError("used_url", "a response_url can be used 5 times", status=404)
            try:
                post.body = await request.json()
            except json.JSONDecodeError:
                raise ApiError("invalid_payload", "response_url takes a JSON body", status=400) from None
            if not isinstance(post.body, dict):
                raise ApiError("invalid_payload", "response_url takes a JSON object", status=400)
            self.apply_response_url_post(target, post.body)
        except ApiError as exc:
            post.status, post.error = exc.status, exc.error
            self._reject("response_url", exc)
            self._notify()
            return web.Response(status=exc.status, text=exc.error, content_type="text/plain")
        self._notify()
        return web.json_response({"ok": True})


__all__ = ["Call", "Ephemeral", "FakeSlack", "Message", "ResponseUrlPost", "UploadedFile"]
