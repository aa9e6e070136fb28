"""What a request must be before anything acts on it: signed, readable, of the shape that is
read, and not seen before.

* Unreadable bodies (payload not JSON, a JSON list, broken JSON) are answered 400 here, not
  left to a parser to raise (a 500).
* `shape_problem` checks the few fields bolt and pipebot's own code rely on, before either
  reads them; a request without them is answered 400 (in Socket Mode it is acked and dropped,
  or Slack would send it again).
* Every request takes effect once: its key is the dedup key of its inbox row (engine.inbox;
  adapters.slack.inbox records commands, clicks and submissions, the `once` middleware events),
  and a replay or a retry of a recorded key is answered 200 without effect. Over HTTP the key
  is the body's digest (`Incoming.key`): the signature is an HMAC of timestamp and body, so a
  captured request replayed byte for byte and Slack's own retry (re-signed, X-Slack-Retry-Num,
  same body) share it, while two real requests never do (each carries its own trigger_id /
  action_ts / event_id). In Socket Mode it is the envelope id; for events, the event id.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.signature import SignatureVerifier
from yarl import URL

from adapters.slack.directory import PLATFORM
from engine import logctx
from engine.actors import Actor
from engine.api import Engine
from engine.inbox import Interaction, digest

log = logging.getLogger("pipebot.slack")
# What reading a payload of the wrong shape raises in a listener: a client error, not ours.
SHAPE_ERRORS = (KeyError, IndexError, TypeError, ValueError, AttributeError)


@dataclass(frozen=True)
class Incoming:
    """A verified request, read once: its body as sent, the payload, and the payload's JSON text
    as it came (what the inbox records; None where it cannot be reused as one line of JSON)."""

    text: str
    body: dict[str, Any]
    payload_json: str | None
    request: web.Request

    @property
    def key(self) -> str:
        return digest("slack-request:" + hashlib.sha256(self.text.encode()).hexdigest())

    def for_bolt(self) -> AsyncBoltRequest:
        """The request as bolt reads it (events and what else is not recorded here: rare)."""
        return AsyncBoltRequest(body=self.text, query=self.request.query_string, headers=self.request.headers)  # type: ignore[arg-type]


async def read(request: web.Request, verifier: SignatureVerifier | None) -> Incoming | web.Response:
    """The request, or the answer to a request that is unsigned (401) or unreadable (400)."""
    raw = await request.read()
    if verifier is not None:
        try:
            valid = verifier.is_valid_request(raw, dict(request.headers))
        except (ValueError, UnicodeDecodeError):  # a timestamp that is not a number, ...
            valid = False
        if not valid:
            return web.Response(status=401, text="invalid signature")
    try:
        text = raw.decode(request.charset or "utf-8")
        body, payload_json = parse(text, request.content_type)
    except (*SHAPE_ERRORS, LookupError, json.JSONDecodeError) as exc:
        log.warning("slack: unreadable request: %r", exc)
        return web.Response(status=400, text="unreadable request")
    # Checked before anything reads it, bolt's own middleware included.
    problem = shape_problem(body, payload_json)
    if problem:
        log.warning("slack: malformed request: %s", problem)
        return web.Response(status=400, text=problem)
    return Incoming(text, body, payload_json, request)


def parse(text: str, content_type: str | None) -> tuple[Any, str | None]:
    """The payload and its JSON text, as bolt's parser reads a body (JSON, or a form whose
    `payload` field is JSON) but with yarl's C decoder for the form: Python's own
    (urllib.parse) took longer than everything else an ack does."""
    if not text:
        return {}, None
    payload = text
    if content_type != "application/json" and not text.startswith("{"):
        fields = dict(URL.build(query_string=text, encoded=True).query.items())
        if "payload" not in fields:  # a slash command: the fields themselves
            return fields, None
        payload = fields["payload"]
    # The pipe to the engine process carries a row per line (see engine.inbox.encode_item).
    return json.loads(payload), payload if "\n" not in payload else None


def _text(d: Mapping[str, Any], key: str, *, required: bool = True) -> str | None:
    value = d.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        return f"{key} is not a string"
    return None


def _obj(d: Mapping[str, Any], key: str, *, required: bool = True) -> str | None:
    value = d.get(key)
    if value is None and not required:
        return None
    return None if isinstance(value, dict) else f"{key} is not an object"


def _unicode(body: Any, source: str | None = None) -> bool:
    """JSON may escape lone surrogates ("\\ud800"): no text field, file or database can hold them,
    so every command given one would fail inside the engine instead of being refused.

    ``source``: the JSON text the body was read from (decoded from UTF-8, which cannot hold a
    surrogate): without a \\ud escape it holds none, and the full check is skipped."""
    if source is not None and "\\ud" not in source and "\\uD" not in source:
        return True
    try:
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def shape_problem(body: Any, source: str | None = None) -> str | None:
    """What is wrong with the fields the listeners read, or None (``source``: see _unicode)."""
    if not isinstance(body, dict):
        return "the payload is not an object"
    if not _unicode(body, source):
        return "the payload holds text that is not Unicode (a lone surrogate)"
    kind = body.get("type")
    if "command" in body:  # a slash command: form fields, all strings
        return _text(body, "user_id") or _text(body, "channel_id") or _text(body, "text", required=False)
    if kind in ("block_actions", "view_submission", "view_closed"):
        problem = _obj(body, "user") or _text(body["user"], "id")
        if problem:
            return f"user: {problem}"
    if kind == "block_actions":
        actions = body.get("actions")
        if not isinstance(actions, list) or not actions or not all(isinstance(a, dict) for a in actions):
            return "actions is not a list of actions"
        return (
            _text(actions[0], "action_id")
            or _text(actions[0], "value", required=False)
            or _obj(body, "container", required=False)
            or _obj(body, "view", required=False)
        )
    if kind in ("view_submission", "view_closed"):
        view = body.get("view")
        if not isinstance(view, dict):
            return "view is not an object"
        problem = _text(view, "callback_id", required=False) or _text(
            view, "private_metadata", required=False
        )
        if problem or kind == "view_closed":
            return problem
        state = view.get("state")
        values = state.get("values") if isinstance(state, dict) else None
        if not isinstance(values, dict) or not all(
            isinstance(block, dict) and all(isinstance(el, dict) for el in block.values())
            for block in values.values()
        ):
            return "view.state.values is not an object of objects"
    if kind == "event_callback":
        return _obj(body, "event") or _text(body, "event_id")
    return None


def retry_num(req: AsyncBoltRequest) -> int:
    # Socket Mode mirrors retry_attempt into this header too, as "0" on the first delivery.
    values = req.headers.get("x-slack-retry-num") or ["0"]
    try:
        return int(values[0])
    except ValueError:
        return 1


Middleware = Callable[..., Awaitable[BoltResponse | None]]


def once(engine: Engine) -> Middleware:
    """A middleware for what bolt dispatches (events): each event takes effect once. Its row is
    recorded here, as handled, only for its key (the event id); retries are acked at once."""

    async def middleware(
        req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        if req.body.get("type") == "event_callback":
            if retry_num(req) > 0:
                return BoltResponse(status=200, body="")  # Slack re-sends events it thinks were missed
            event = req.body.get("event") or {}
            row = Interaction(
                PLATFORM,
                "event",
                Actor(PLATFORM, str(event.get("user") or ""), ""),
                None,
                {"event_id": req.body.get("event_id"), "type": event.get("type")},
                dedup_key=digest(f"slack-event:{req.body['event_id']}"),
            )
            if await engine.inbox.accept(row, handled="event") is None:
                log.info("slack: event %s seen before: acked without effect", req.body["event_id"])
                return BoltResponse(status=200, body="")
        with logctx.bound(platform="slack", user=req.context.user_id):
            await next()  # the ids follow the work the handlers spawn (contextvars)
        return None

    return middleware


async def on_error(error: Exception, request: AsyncBoltRequest) -> BoltResponse | None:
    """Bolt's error handler: a payload of the wrong shape is the client's error (400)."""
    if isinstance(error, SHAPE_ERRORS):
        log.warning("slack: request of an unexpected shape: %r", error)
        return BoltResponse(status=200 if request.mode == "socket_mode" else 400, body="")
    log.error("slack: request failed", exc_info=error)
    return None
