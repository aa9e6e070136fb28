"""What a request must be before any listener sees it: signed, readable, of the shape the
listeners read, and not seen before.

* Unreadable bodies (payload not JSON, a JSON list, broken JSON) are answered 400 here, not
  left to bolt's parser to raise (a 500).
* `shape_problem` checks the few fields bolt and the listeners rely on, before bolt dispatches;
  a request without them is answered 400 (in Socket Mode it is acked and dropped, or Slack
  would send it again).
* Every request takes effect once: its key is the dedup key of its inbox row (engine.inbox; the
  listeners record commands, clicks and submissions, this middleware records events), and a
  replay or a retry of a recorded key is answered 200 without effect. Over HTTP the key is
  the body's digest: the signature is an HMAC of timestamp and body, so a captured request
  replayed byte for byte and Slack's own retry (re-signed, X-Slack-Retry-Num, same body) share
  it, while two real requests never do (each carries its own trigger_id / action_ts /
  event_id). In Socket Mode it is the envelope id; for events, the event id.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_bolt_request
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.signature import SignatureVerifier

from adapters.slack.directory import PLATFORM
from engine import logctx
from engine.actors import Actor
from engine.api import Engine
from engine.inbox import Interaction, digest

log = logging.getLogger("pipebot.slack")
ENVELOPE_HEADER = "x-pipebot-envelope-id"  # set by our Socket Mode handler only
PAYLOAD_JSON = "pipebot_payload_json"  # request context: the payload as the inbox records it
# What reading a payload of the wrong shape raises in a listener: a client error, not ours.
SHAPE_ERRORS = (KeyError, IndexError, TypeError, ValueError, AttributeError)


class BadRequest(ValueError):
    """The request is signed but cannot be read as the payload it claims to be."""


async def read(request: web.Request, verifier: SignatureVerifier | None) -> AsyncBoltRequest | web.Response:
    """The bolt request, or the answer to a request that is unsigned (401) or unreadable (400)."""
    raw = await request.read()
    if verifier is not None:
        try:
            valid = verifier.is_valid_request(raw, dict(request.headers))
        except (ValueError, UnicodeDecodeError):  # a timestamp that is not a number, ...
            valid = False
        if not valid:
            return web.Response(status=401, text="invalid signature")
    try:
        bolt_req = await to_bolt_request(request)
    except (*SHAPE_ERRORS, json.JSONDecodeError) as exc:
        log.warning("slack: unreadable request: %r", exc)
        return web.Response(status=400, text="unreadable request")
    # Checked before bolt dispatches: its own middleware reads some of these fields too. The
    # payload's JSON is made once here: the check reads it, and it is what the inbox records.
    dumped = json.dumps(bolt_req.body, separators=(",", ":")) if isinstance(bolt_req.body, dict) else None
    problem = shape_problem(bolt_req.body, dumped)
    if problem:
        log.warning("slack: malformed request: %s", problem)
        return web.Response(status=400, text=problem)
    bolt_req.context[PAYLOAD_JSON] = dumped
    return bolt_req


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


def _unicode(body: Any, dumped: str | None = None) -> bool:
    """JSON may escape lone surrogates ("\\ud800"): no text field, file or database can hold them,
    so every command given one would fail inside the engine instead of being refused.

    ``dumped``: the body as json.dumps writes it (ASCII, every surrogate escaped as \\udXXX):
    without such an escape it holds no surrogate at all, and the full check is skipped."""
    if dumped is not None and "\\ud" not in dumped:
        return True
    try:
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def shape_problem(body: Any, dumped: str | None = None) -> str | None:
    """What is wrong with the fields the listeners read, or None (``dumped``: see _unicode)."""
    if not isinstance(body, dict):
        return "the payload is not an object"
    if not _unicode(body, dumped):
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


def request_key(req: AsyncBoltRequest) -> str | None:
    """The key that makes this request take effect once (see the module docstring)."""
    body = req.body
    if body.get("type") == "event_callback":
        return f"slack-event:{body['event_id']}"
    if req.mode == "socket_mode":
        envelope = (req.headers.get(ENVELOPE_HEADER) or [""])[0]
        return f"slack-envelope:{envelope}" if envelope else None
    return "slack-request:" + hashlib.sha256(req.raw_body.encode()).hexdigest()


def retry_num(req: AsyncBoltRequest) -> int:
    # Socket Mode mirrors retry_attempt into this header too, as "0" on the first delivery.
    values = req.headers.get("x-slack-retry-num") or ["0"]
    try:
        return int(values[0])
    except ValueError:
        return 1


Middleware = Callable[..., Awaitable[BoltResponse | None]]


KEY = "pipebot_request_key"  # where the listeners find the request's dedup key (bolt's context)


def once(engine: Engine) -> Middleware:
    """A middleware: ack replays and retries without acting on them.

    Commands, clicks and submissions are recorded by their listeners (adapters.slack.inbox),
    under the key computed here; an event's row is recorded here, as handled, only for its key.
    """

    async def middleware(
        req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        if req.body.get("type") == "event_callback" and retry_num(req) > 0:
            return BoltResponse(status=200, body="")  # Slack re-sends events it thinks were missed
        key = request_key(req)
        req.context[KEY] = digest(key) if key is not None else None
        if key is not None and req.body.get("type") == "event_callback":
            event = req.body.get("event") or {}
            row = Interaction(
                PLATFORM,
                "event",
                Actor(PLATFORM, str(event.get("user") or ""), ""),
                None,
                {"event_id": req.body.get("event_id"), "type": event.get("type")},
                dedup_key=digest(key),
            )
            if await engine.inbox.accept(row, handled="event") is None:
                log.info("slack: %s seen before: acked without effect", key[:40])
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
