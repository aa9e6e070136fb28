"""A small wrapper over ``openai.AsyncOpenAI``: defaults, per-call overrides and typed errors.

Works with any OpenAI-compatible endpoint (``base_url``). Transient provider failures
become :class:`ProviderUnavailable` (retryable), everything else :class:`ProviderError`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import openai
from openai.types.chat import ChatCompletionMessageParam

from engine.errors import ProviderError, ProviderUnavailable

Message = dict[str, str]  # {"role": ..., "content": ...}
OnDelta = Callable[[str], Awaitable[None]]  # text as the model generates it


@dataclass(frozen=True)
class Completion:
    text: str
    tokens_in: int
    tokens_out: int
    model: str
    truncated: bool = False  # the answer hit max_tokens


class LLM:
    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None = None,
        model: str = "gpt-4o",
        max_tokens: int = 8000,
        temperature: float = 0.7,
        timeout_seconds: float = 300.0,
        client: openai.AsyncOpenAI | None = None,
    ) -> None:
        self.model, self.max_tokens, self.temperature = model, max_tokens, temperature
        # max_retries=0: retries belong to the worker, which applies the checkpoint's retry
        # policy (attempts recorded and shown, backoff survives restarts). SDK retries on top
        # would silently multiply attempts and hide waits of minutes inside one "attempt".
        self._client = client or openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout_seconds
        )

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        on_delta: OnDelta | None = None,
    ) -> Completion:
        model = model or self.model
        if on_delta is not None:
            return await self._stream(messages, model, temperature, max_tokens, on_delta)
        try:
            response = await self._client.chat.completions.create(
                model=model,
                messages=cast(list[ChatCompletionMessageParam], list(messages)),
                temperature=self.temperature if temperature is None else temperature,
                max_tokens=max_tokens or self.max_tokens,
            )
        except openai.APIError as exc:
            raise _engine_error(exc, model) from exc
        if not response.choices:
            raise ProviderUnavailable(f"model {model} answered without a choice")
        choice = response.choices[0]
        usage = response.usage
        return Completion(
            text=choice.message.content or "",
            tokens_in=usage.prompt_tokens if usage else 0,
            tokens_out=usage.completion_tokens if usage else 0,
            model=response.model or model,
            truncated=choice.finish_reason == "length",
        )

    async def _stream(
        self,
        messages: Sequence[Message],
        model: str,
        temperature: float | None,
        max_tokens: int | None,
        on_delta: OnDelta,
    ) -> Completion:
        """The same call, streamed: ``on_delta`` sees the text as it comes; the usage is the one the
        provider reports in its last chunk (``include_usage``), so token counts stay exact."""
        parts: list[str] = []
        finish: str | None = None
        tokens_in = tokens_out = 0
        answered = model
        try:
            stream = await self._client.chat.completions.create(
                model=model,
                messages=cast(list[ChatCompletionMessageParam], list(messages)),
                temperature=self.temperature if temperature is None else temperature,
                max_tokens=max_tokens or self.max_tokens,
                stream=True,
                stream_options={"include_usage": True},
            )
            async for chunk in stream:
                answered = chunk.model or answered
                if chunk.usage is not None:
                    tokens_in, tokens_out = chunk.usage.prompt_tokens, chunk.usage.completion_tokens
                for choice in chunk.choices[:1]:
                    finish = choice.finish_reason or finish
                    if choice.delta.content:
                        parts.append(choice.delta.content)
                        await on_delta(choice.delta.content)
        except openai.APIError as exc:
            raise _engine_error(exc, model) from exc
        if finish is None:
            raise ProviderUnavailable(f"model {model} ended its answer without finishing it")
        return Completion("".join(parts), tokens_in, tokens_out, answered, finish == "length")

    async def close(self) -> None:
        await self._client.close()


def _engine_error(exc: openai.APIError, model: str) -> ProviderError:
    if isinstance(exc, openai.APITimeoutError):
        return ProviderUnavailable(f"model {model}: the provider did not answer in time")
    if isinstance(exc, openai.APIConnectionError):
        return ProviderUnavailable(f"model {model}: cannot reach the provider ({exc.message})")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        detail = f"model {model}: provider error {status}: {_message(exc)}"
        if status in (408, 409, 429) or status >= 500:  # what the SDK itself would retry
            return ProviderUnavailable(detail, status, _retry_after(exc.response.headers.get("retry-after")))
        return ProviderError(detail, status)
    return ProviderError(f"model {model}: unexpected provider answer ({exc.message})")


def _message(exc: openai.APIStatusError) -> str:
    body: Any = exc.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return exc.message


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:  # an HTTP date: not worth parsing, the retry policy's backoff applies
        return None
