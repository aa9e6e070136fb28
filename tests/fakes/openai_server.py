"""A loopback OpenAI-compatible server for tests: strict about what it receives, scripted replies.

    async with FakeOpenAI() as fake:
        fake.script("first reply", lambda body: "second")
        client = AsyncOpenAI(api_key=fake.api_key, base_url=fake.base_url)

``fake.requests`` records every request that passed authentication and the request checks
(those fail with 401/400/404 as OpenAI would), with ``status`` saying how it was answered
(200, or an injected 429/500). Token counts are deterministic: one per whitespace-separated
word, plus 4 per message and 3 per request for the prompt (roughly OpenAI's chat framing).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Responder = Callable[[dict[str, Any]], str]
ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
KNOWN_PARAMS = {
    "model", "messages", "temperature", "top_p", "n", "stream", "stream_options", "stop", "max_tokens",
    "max_completion_tokens", "presence_penalty", "frequency_penalty", "logit_bias", "logprobs",
    "top_logprobs", "user", "seed", "tools", "tool_choice", "response_format", "parallel_tool_calls",
    "metadata", "store", "reasoning_effort", "service_tier", "modalities", "prediction",
}  # fmt: skip
ERROR_TYPES = {429: ("requests", "rate_limit_exceeded"), 500: ("server_error", None)}


@dataclass
class RecordedRequest:
    model: str
    messages: list[dict[str, Any]]
    temperature: float | None
    max_tokens: int | None
    stream: bool
    body: dict[str, Any]
    status: int = 200
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def content(self, role: str) -> str:
        """All text of the messages with this role, joined."""
        return "\n".join(_text(m.get("content")) for m in self.messages if m.get("role") == role)

    @property
    def system(self) -> str:
        return self.content("system")

    @property
    def user(self) -> str:
        return self.content("user")


@dataclass
class _Failure:
    status: int
    retry_after: float | None
    message: str


@dataclass
class FakeOpenAI:
    api_key: str = "sk-test-key"
    default: Responder | None = None
    models: tuple[str, ...] = ("gpt-4o", "gpt-4o-mini", "test-model")
    requests: list[RecordedRequest] = field(default_factory=list)
    _replies: deque[str | Responder] = field(default_factory=deque)
    _failures: deque[_Failure] = field(default_factory=deque)
    _delays: deque[float] = field(default_factory=deque)
    _runner: web.AppRunner | None = None
    _port: int = 0
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- control -------------------------------------------------------------------------

    def script(self, *replies: str | Responder) -> None:
        """Queue replies (text, or a function of the request body), used before the default."""
        self._replies.extend(replies)

    def fail_next(self, status: int = 429, times: int = 1, retry_after: float | None = None) -> None:
        message = "Rate limit reached, please retry" if status == 429 else "The server had an error"
        self._failures.extend(_Failure(status, retry_after, message) for _ in range(times))

    def slow_next(self, seconds: float) -> None:
        self._delays.append(seconds)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/v1"

    @property
    def completed(self) -> list[RecordedRequest]:
        """The requests that were answered with a completion."""
        return [r for r in self.requests if r.status == 200]

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> FakeOpenAI:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)  # slow_next handlers
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- handlers ------------------------------------------------------------------------

    async def _models(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._auth(request)) is not None:
            return denied
        data = [{"id": m, "object": "model", "created": 1700000000, "owned_by": "fake"} for m in self.models]
        return web.json_response({"object": "list", "data": data})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._auth(request)) is not None:
            return denied
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return _error(400, "We could not parse the JSON body of your request.", None)
        if not isinstance(body, dict):
            return _error(400, "The request body must be a JSON object.", None)
        if (invalid := _check(body, self.models)) is not None:
            return invalid
        record = RecordedRequest(
            model=body["model"],
            messages=body["messages"],
            temperature=body.get("temperature"),
            max_tokens=body.get("max_tokens", body.get("max_completion_tokens")),
            stream=bool(body.get("stream")),
            body=body,
        )
        self.requests.append(record)
        if self._delays:
            await asyncio.sleep(self._delays.popleft())
        if self._failures:
            failure = self._failures.popleft()
            record.status = failure.status
            kind, code = ERROR_TYPES.get(failure.status, ("server_error", None))
            headers = {} if failure.retry_after is None else {"retry-after": f"{failure.retry_after:g}"}
            return _error(failure.status, failure.message, None, kind, code, headers)
        reply = self._next_reply(body)
        words = reply.split()
        finish = "stop"
        if record.max_tokens is not None and len(words) > record.max_tokens:
            reply, finish = " ".join(words[: record.max_tokens]), "length"
        record.prompt_tokens = 3 + sum(4 + _tokens(_text(m.get("content"))) for m in body["messages"])
        record.completion_tokens = _tokens(reply)
        usage = {
            "prompt_tokens": record.prompt_tokens,
            "completion_tokens": record.completion_tokens,
            "total_tokens": record.prompt_tokens + record.completion_tokens,
        }
        base = {"id": f"chatcmpl-fake{next(self._ids)}", "created": int(time.time()), "model": body["model"]}
        base["system_fingerprint"] = "fp_fake"
        if record.stream:
            return await _stream(request, base, reply, finish, usage, body.get("stream_options") or {})
        message = {"role": "assistant", "content": reply, "refusal": None}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
        return web.json_response({**base, "object": "chat.completion", "choices": [choice], "usage": usage})

    def _next_reply(self, body: dict[str, Any]) -> str:
        if self._replies:
            reply = self._replies.popleft()
            return reply if isinstance(reply, str) else reply(body)
        if self.default is not None:
            return self.default(body)
        return f"reply {len(self.completed)}"

    def _auth(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        if not header:
            return _error(401, "You didn't provide an API key.", None, code=None)
        if header != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided.", None, code="invalid_api_key")
        return None


def _check(body: dict[str, Any], models: tuple[str, ...]) -> web.Response | None:
    """The request checks OpenAI makes, with its error wording."""
    for key in body:
        if key not in KNOWN_PARAMS:
            return _error(400, f"Unrecognized request argument supplied: {key}", key)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return _error(400, "you must provide a model parameter", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return _error(400, "'messages' must be a non-empty array", "messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            return _error(400, f"Invalid value for 'messages[{i}].role'", f"messages[{i}].role")
        content = m.get("content")
        if not (isinstance(content, str) or _parts_ok(content)) and not m.get("tool_calls"):
            return _error(400, f"Invalid type for 'messages[{i}].content'", f"messages[{i}].content")
    temperature = body.get("temperature")
    if temperature is not None and not (isinstance(temperature, int | float) and 0 <= temperature <= 2):
        return _error(400, "temperature must be between 0 and 2", "temperature")
    for key in ("max_tokens", "max_completion_tokens"):
        value = body.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            return _error(400, f"Invalid '{key}': must be a positive integer", key)
    if body.get("n", 1) != 1:
        return _error(400, "this fake supports n=1 only", "n")
    if body.get("stream_options") is not None and not body.get("stream"):
        return _error(400, "The 'stream_options' parameter is only allowed when 'stream' is enabled.", None)
    if model not in models:
        msg = f"The model `{model}` does not exist or you do not have access to it."
        return _error(404, msg, None, code="model_not_found")
    return None


async def _stream(
    request: web.Request,
    base: dict[str, Any],
    reply: str,
    finish: str,
    usage: dict[str, int],
    options: dict[str, Any],
) -> web.StreamResponse:
    """Server-sent events as OpenAI sends them: role chunk, content chunks, finish chunk, usage, [DONE]."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    include_usage = bool(options.get("include_usage"))

    async def send(delta: dict[str, Any], finish_reason: str | None) -> None:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        chunk: dict[str, Any] = {**base, "object": "chat.completion.chunk", "choices": [choice]}
        if include_usage:
            chunk["usage"] = None
        await response.write(f"data: {json.dumps(chunk)}\n\n".encode())

    await send({"role": "assistant", "content": "", "refusal": None}, None)
    pieces = [p + " " for p in reply.split(" ")]
    pieces[-1] = pieces[-1][:-1]
    for piece in pieces:
        if piece:
            await send({"content": piece}, None)
    await send({}, finish)
    if include_usage:
        chunk = {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}
        await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


def _error(
    status: int,
    message: str,
    param: str | None,
    kind: str = "invalid_request_error",
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return web.json_response(body, status=status, headers=headers)


def _parts_ok(content: Any) -> bool:
    return isinstance(content, list) and all(isinstance(p, dict) and "type" in p for p in content)


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def _tokens(text: str) -> int:
    return len(text.split())
