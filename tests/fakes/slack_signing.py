"""Drive a Slack app over HTTP exactly as Slack does: signed requests with Slack's real payloads.

* `sign(body, secret, timestamp)` returns the ``X-Slack-Signature`` (v0, HMAC-SHA256 of
  ``v0:{timestamp}:{body}``) and ``X-Slack-Request-Timestamp`` headers.
* `SlackClientSim` posts slash commands (form-encoded), interactions (form field ``payload``
  holding JSON: block_actions, view_submission, view_closed) and Events API envelopes (JSON) to the
  app's request URL and returns ``SimResponse(status, body)``, the body parsed as JSON when it is.

With a `FakeSlack`, the simulator behaves like the Slack client on top of it: trigger ids and
response URLs come from the fake, a button can only be clicked if it is in the message as the fake
currently holds it, a modal submission carries the view as the fake holds it and ``state.values``
in Slack's shape per element type, required inputs and number/length bounds are enforced before
"submitting" (Slack's client would not let the user submit), and the app's answer to a
view_submission (close, ``response_action`` update/push/clear/errors) is applied to the fake.
Acknowledgements slower than 3 s are recorded in `fake.errors` (Slack shows the user an error).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, Self, TypedDict, Unpack
from urllib.parse import urlencode

import aiohttp

from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_blocks import validate_view
from tests.fakes.slack_payloads import build_action, build_state_values
from tests.fakes.slack_records import ApiError, Ephemeral

ACK_DEADLINE = 3.0


def sign(body: bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """Slack's request signing headers for `body` (`timestamp` defaults to now)."""
    ts = int(time.time()) if timestamp is None else timestamp
    base = b"v0:" + str(ts).encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Signature": f"v0={digest}", "X-Slack-Request-Timestamp": str(ts)}


class SimResponse(NamedTuple):
    status: int
    body: Any  # parsed JSON, or the text ("" for a bare ack)


class Delivery(TypedDict, total=False):
    """How a request is delivered: retries, stale timestamps, forged signatures."""

    retry_num: int  # adds X-Slack-Retry-Num / X-Slack-Retry-Reason
    retry_reason: str  # default "http_timeout"
    timestamp: int  # signing timestamp, e.g. int(time.time()) - 600 for a replay
    forge_signature: bool  # sign with a wrong secret
    pretty: bool  # the payload's JSON indented over many lines, non-ASCII text unescaped


@dataclass
class SentRequest:
    url: str
    headers: dict[str, str]
    body: bytes
    payload: dict[str, Any]


class SlackClientSim:
    """Signed HTTP requests to a Slack app, shaped like Slack's (see module docstring)."""

    def __init__(
        self,
        signing_secret: str,
        fake: FakeSlack | None = None,
        *,
        team_domain: str = "fake-workspace",
        verification_token: str = "verification_token",
    ) -> None:
        self.signing_secret = signing_secret
        self.fake = fake
        self.team_id = fake.team_id if fake else "T0FAKE"
        self.api_app_id = fake.app_id if fake else "A0FAKE"
        self.team_domain = team_domain
        self.verification_token = verification_token
        self.sent: list[SentRequest] = []
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- transport --------------------------------------------------------------------------------
    async def post(
        self, url: str, body: bytes, content_type: str, payload: dict[str, Any], **delivery: Unpack[Delivery]
    ) -> SimResponse:
        secret = self.signing_secret + ("-forged" if delivery.get("forge_signature") else "")
        headers = {"Content-Type": content_type, **sign(body, secret, delivery.get("timestamp"))}
        if "retry_num" in delivery:
            headers["X-Slack-Retry-Num"] = str(delivery["retry_num"])
            headers["X-Slack-Retry-Reason"] = delivery.get("retry_reason", "http_timeout")
        return await self._send(url, body, headers, payload)

    async def replay(self, sent: SentRequest, *, retry_num: int | None = None) -> SimResponse:
        """Send `sent` again: byte for byte with its own signature (what whoever captured it can
        do), or, with `retry_num`, as Slack's own retry: the same body signed anew."""
        headers = dict(sent.headers)
        if retry_num is not None:
            headers.update(sign(sent.body, self.signing_secret))
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        return await self._send(sent.url, sent.body, headers, sent.payload)

    async def _send(
        self, url: str, body: bytes, headers: dict[str, str], payload: dict[str, Any]
    ) -> SimResponse:
        self.sent.append(SentRequest(url, headers, body, payload))
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        started = time.monotonic()
        async with self._session.post(url, data=body, headers=headers) as resp:
            text = await resp.text()
            parsed: Any = text
            if text and resp.content_type == "application/json":
                parsed = json.loads(text)
        elapsed = time.monotonic() - started
        if self.fake is not None and elapsed > ACK_DEADLINE:
            self.fake.errors.append(f"ack: {payload.get('type', 'command')} took {elapsed:.2f}s (> 3 s)")
        return SimResponse(resp.status, parsed)

    async def _post_form(self, url: str, fields: dict[str, str], **delivery: Unpack[Delivery]) -> SimResponse:
        body = urlencode(fields).encode()
        return await self.post(url, body, "application/x-www-form-urlencoded", dict(fields), **delivery)

    async def _post_payload(
        self, url: str, payload: dict[str, Any], **delivery: Unpack[Delivery]
    ) -> SimResponse:
        if delivery.get("pretty"):  # what any JSON encoder may write: Slack does not promise a style
            text = json.dumps(payload, indent=2, ensure_ascii=False)
        else:
            text = json.dumps(payload)
        body = urlencode({"payload": text}).encode()
        return await self.post(url, body, "application/x-www-form-urlencoded", payload, **delivery)

    # -- shared payload parts ---------------------------------------------------------------------
    def _trigger_id(self, view_id: str | None = None) -> str:
        if self.fake is not None:
            return self.fake.issue_trigger_id(view_id)
        return f"{int(time.time())}.{secrets.randbelow(10**9)}.{secrets.token_hex(16)}"

    def _response_url(self, channel_id: str, user_id: str, message_ts: str | None = None) -> str:
        if self.fake is not None:
            return self.fake.issue_response_url(channel_id, user_id, message_ts)
        return f"https://hooks.slack.com/commands/{self.team_id}/1/{secrets.token_urlsafe(12)}"

    def _user(self, user_id: str, user_name: str | None) -> dict[str, str]:
        name = user_name or user_id.lower()
        if self.fake is not None and user_id not in self.fake.users:
            self.fake.add_user(user_id, name.replace(".", " ").title(), name=name)
        return {"id": user_id, "username": name, "name": name, "team_id": self.team_id}

    def _channel_name(self, channel_id: str) -> str:
        if self.fake is not None:
            return str(
                self.fake.channels.get(channel_id, {}).get("name")
                or self.fake.add_channel(channel_id, channel_id.lower())["name"]
            )
        return channel_id.lower()

    def _envelope(self, kind: str, user: dict[str, str]) -> dict[str, Any]:
        return {
            "type": kind,
            "user": user,
            "api_app_id": self.api_app_id,
            "token": self.verification_token,
            "team": {"id": self.team_id, "domain": self.team_domain},
            "enterprise": None,
            "is_enterprise_install": False,
        }

    # -- slash commands ---------------------------------------------------------------------------
    async def slash_command(
        self,
        url: str,
        command: str = "/pipeline",
        text: str = "",
        user_id: str = "U0USER",
        channel_id: str = "C0PIPE",
        user_name: str = "user",
        **delivery: Unpack[Delivery],
    ) -> SimResponse:
        self._user(user_id, user_name)
        fields = {
            "token": self.verification_token,
            "team_id": self.team_id,
            "team_domain": self.team_domain,
            "channel_id": channel_id,
            "channel_name": self._channel_name(channel_id),
            "user_id": user_id,
            "user_name": user_name,
            "command": command,
            "text": text,
            "api_app_id": self.api_app_id,
            "is_enterprise_install": "false",
            "response_url": self._response_url(channel_id, user_id),
            "trigger_id": self._trigger_id(),
        }
        return await self._post_form(url, fields, **delivery)

    # -- block actions ----------------------------------------------------------------------------
    async def block_action(
        self,
        url: str,
        user_id: str,
        action_id: str,
        value: str | list[str] | None = None,
        channel_id: str | None = None,
        message_ts: str | None = None,
        *,
        view_id: str | None = None,
        message: dict[str, Any] | None = None,
        user_name: str | None = None,
        **delivery: Unpack[Delivery],
    ) -> SimResponse:
        """Click/select `action_id` in a message (`channel_id`+`message_ts`) or a modal/home tab (`view_id`).

        `value`: for a button, must match the button's value if given; for selects/radios/overflow
        the chosen option value; for checkboxes/multi-selects a list of values; else the raw value.
        """
        user = self._user(user_id, user_name)
        payload = self._envelope("block_actions", user)
        if view_id is not None:
            homes = {v["id"]: v for v in self.fake.home_views.values()} if self.fake else {}
            if self.fake is None or (view_id not in self.fake.opened_views and view_id not in homes):
                raise LookupError(f"view {view_id!r} is not open (nor a published home tab) in the fake")
            view = self.fake.opened_views.get(view_id) or homes[view_id]
            blocks = view["blocks"]
            payload["container"] = {"type": "view", "view_id": view_id}
            payload["view"] = view
            payload["trigger_id"] = self._trigger_id(view_id)
        else:
            if channel_id is None or message_ts is None:
                raise ValueError("block_action needs channel_id and message_ts (or view_id)")
            if self.fake is not None:
                try:
                    message = self.fake.get_message(channel_id, message_ts).to_api(self.team_id)
                except ApiError as exc:
                    raise LookupError(f"cannot click in a message the fake does not hold: {exc}") from None
            if message is None:
                raise ValueError("without a FakeSlack, pass the clicked message (with its blocks)")
            blocks = message.get("blocks", [])
            payload["container"] = {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": channel_id,
                "is_ephemeral": False,
            }
            payload["channel"] = {"id": channel_id, "name": self._channel_name(channel_id)}
            payload["message"] = message
            payload["response_url"] = self._response_url(channel_id, user_id, message_ts)
            payload["trigger_id"] = self._trigger_id()
        payload["state"] = {"values": {}}
        payload["actions"] = [build_action(blocks, action_id, value)]
        return await self._post_payload(url, payload, **delivery)

    async def ephemeral_action(
        self,
        url: str,
        user_id: str,
        ephemeral: Ephemeral,
        action_id: str,
        *,
        user_name: str | None = None,
        **delivery: Unpack[Delivery],
    ) -> SimResponse:
        """Click a button of an ephemeral message (shown only to ``ephemeral.user``). Slack sends
        no ``message`` for these: the container says ``is_ephemeral``; answers go to response_url."""
        if ephemeral.user != user_id:
            raise LookupError(f"{user_id} cannot see an ephemeral message shown to {ephemeral.user}")
        payload = self._envelope("block_actions", self._user(user_id, user_name))
        payload["container"] = {
            "type": "message",
            "message_ts": ephemeral.ts,
            "channel_id": ephemeral.channel,
            "is_ephemeral": True,
        }
        payload["channel"] = {"id": ephemeral.channel, "name": self._channel_name(ephemeral.channel)}
        payload["response_url"] = self._response_url(ephemeral.channel, user_id, ephemeral.ts)
        payload["trigger_id"] = self._trigger_id()
        payload["state"] = {"values": {}}
        payload["actions"] = [build_action(ephemeral.blocks, action_id, None)]
        return await self._post_payload(url, payload, **delivery)

    # -- modals -----------------------------------------------------------------------------------
    async def view_submission(
        self,
        url: str,
        user_id: str,
        view: dict[str, Any],
        values: Mapping[str, Any],
        *,
        user_name: str | None = None,
        enforce_required: bool = True,
        **delivery: Unpack[Delivery],
    ) -> SimResponse:
        """Submit `view` with `values` keyed by action_id (see `build_state_values` for value types)."""
        if self.fake is not None and "id" in view:
            if view["id"] not in self.fake.opened_views:
                raise LookupError(
                    f"view {view['id']!r} is not open (closed, or never opened through the fake)"
                )
            view = self.fake.opened_views[view["id"]]  # the user submits what is on screen
        payload = self._envelope("view_submission", self._user(user_id, user_name))
        state = build_state_values(
            view.get("blocks", []), values, self.fake, enforce_required=enforce_required
        )
        payload["trigger_id"] = self._trigger_id(view.get("id"))
        payload["view"] = {**view, "state": {"values": state}}
        payload["response_urls"] = []
        response = await self._post_payload(url, payload, **delivery)
        if self.fake is not None and view.get("id") in self.fake.opened_views:
            self._apply_view_answer(view, response)
        return response

    async def view_closed(
        self, url: str, user_id: str, view: dict[str, Any], **delivery: Unpack[Delivery]
    ) -> SimResponse:
        """The user closes (cancels) `view`; Slack only tells apps that set ``notify_on_close``."""
        if not view.get("notify_on_close"):
            raise ValueError("Slack sends view_closed only for views with notify_on_close: true")
        payload = self._envelope("view_closed", self._user(user_id, None))
        payload["view"] = view
        payload["is_cleared"] = False
        if self.fake is not None:
            self.fake.opened_views.pop(str(view.get("id")), None)
        return await self._post_payload(url, payload, **delivery)

    def _apply_view_answer(self, view: dict[str, Any], response: SimResponse) -> None:
        """What Slack does with the app's answer to a view_submission."""
        assert self.fake is not None
        fake, body = self.fake, response.body
        if response.status != 200:
            fake.errors.append(f"view_submission: app answered HTTP {response.status}: {body!r}")
            return
        action = body.get("response_action") if isinstance(body, dict) else None
        if action is None:
            fake.opened_views.pop(view["id"], None)
        elif action == "clear":
            for vid in [
                v for v, data in fake.opened_views.items() if data["root_view_id"] == view["root_view_id"]
            ]:
                fake.opened_views.pop(vid)
        elif action == "errors":
            input_ids = {b.get("block_id") for b in view.get("blocks", []) if b.get("type") == "input"}
            unknown = set(body.get("errors", {})) - input_ids
            if unknown or not body.get("errors"):
                fake.errors.append(
                    f"view_submission: errors for unknown/non-input block_ids {sorted(unknown)}"
                )
        elif action in ("update", "push"):
            problems = validate_view(body.get("view"))
            if problems:
                fake.errors.extend(f"view_submission: response_action {action}: {p}" for p in problems)
                return
            previous = view if action == "push" else fake.opened_views.get(view["previous_view_id"] or "")
            stored = fake.store_view(
                body["view"], previous=previous, view_id=None if action == "push" else view["id"]
            )
            fake.opened_views[stored["id"]] = stored
        else:
            fake.errors.append(f"view_submission: unknown response_action {action!r}")

    # -- events -----------------------------------------------------------------------------------
    async def event(self, url: str, event: dict[str, Any], **delivery: Unpack[Delivery]) -> SimResponse:
        """Post an Events API `event_callback` envelope around `event` (e.g. app_home_opened)."""
        if isinstance(event.get("user"), str):
            self._user(event["user"], None)  # whoever triggers an event is a workspace member
        now = time.time()
        payload: dict[str, Any] = {
            "token": self.verification_token,
            "team_id": self.team_id,
            "api_app_id": self.api_app_id,
            "event": {"event_ts": f"{now:.6f}", **event},
            "type": "event_callback",
            "event_id": f"Ev{secrets.token_hex(5).upper()}",
            "event_time": int(now),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.team_id,
                    "user_id": self.fake.bot_user_id if self.fake else "U0BOT",
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": f"4-{secrets.token_urlsafe(24)}",
        }
        return await self.post(url, json.dumps(payload).encode(), "application/json", payload, **delivery)
