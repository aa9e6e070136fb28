"""engine.llm against the fake OpenAI server, and the fake itself through the real openai client."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import openai
import pytest

from engine.errors import ProviderError, ProviderUnavailable, Retryable
from engine.llm import LLM
from tests.fakes.openai_server import FakeOpenAI

HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
async def llm(fake: FakeOpenAI) -> AsyncIterator[LLM]:
    client = LLM(
        api_key=fake.api_key, base_url=fake.base_url, model="gpt-4o", max_tokens=500, temperature=0.3
    )
    yield client
    await client.close()


async def test_complete_uses_defaults_and_reports_usage(fake: FakeOpenAI, llm: LLM) -> None:
    fake.script("four words of reply")
    c = await llm.complete([{"role": "system", "content": "be brief"}, *HELLO])
    assert (c.text, c.model, c.truncated) == ("four words of reply", "gpt-4o", False)
    [req] = fake.requests
    assert (req.model, req.temperature, req.max_tokens, req.stream) == ("gpt-4o", 0.3, 500, False)
    assert req.system == "be brief" and req.user == "hello"
    assert (c.tokens_in, c.tokens_out) == (req.prompt_tokens, 4)


async def test_per_call_overrides(fake: FakeOpenAI, llm: LLM) -> None:
    await llm.complete(HELLO, model="gpt-4o-mini", temperature=0.0, max_tokens=7)
    [req] = fake.requests
    assert (req.model, req.temperature, req.max_tokens) == ("gpt-4o-mini", 0.0, 7)


async def test_answer_cut_at_max_tokens_is_flagged(fake: FakeOpenAI, llm: LLM) -> None:
    fake.script("one two three four five")
    c = await llm.complete(HELLO, max_tokens=2)
    assert (c.text, c.tokens_out, c.truncated) == ("one two", 2, True)


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_rate_limits_and_server_errors_are_retryable_and_not_retried_by_the_sdk(
    fake: FakeOpenAI, llm: LLM, status: int
) -> None:
    fake.fail_next(status, retry_after=3)
    with pytest.raises(ProviderUnavailable) as caught:
        await llm.complete(HELLO)
    assert isinstance(caught.value, Retryable)
    assert caught.value.status == status and caught.value.retry_after == 3
    assert [r.status for r in fake.requests] == [status]  # max_retries=0: one request only
    assert (await llm.complete(HELLO)).text  # the next call goes through


async def test_timeout_is_retryable(fake: FakeOpenAI) -> None:
    fake.slow_next(1.0)
    llm = LLM(api_key=fake.api_key, base_url=fake.base_url, timeout_seconds=0.2)
    with pytest.raises(ProviderUnavailable, match="in time"):
        await llm.complete(HELLO)
    await llm.close()


async def test_connection_refused_is_retryable() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    llm = LLM(api_key="k", base_url=f"http://127.0.0.1:{port}/v1")
    with pytest.raises(ProviderUnavailable, match="cannot reach"):
        await llm.complete(HELLO)
    await llm.close()


async def test_bad_key_and_unknown_model_are_not_retryable(fake: FakeOpenAI, llm: LLM) -> None:
    with pytest.raises(ProviderError) as unknown:
        await llm.complete(HELLO, model="no-such-model")
    assert unknown.value.status == 404 and not isinstance(unknown.value, Retryable)
    assert "does not exist" in str(unknown.value)
    wrong = LLM(api_key="sk-wrong", base_url=fake.base_url)
    with pytest.raises(ProviderError) as denied:
        await wrong.complete(HELLO)
    assert denied.value.status == 401 and not isinstance(denied.value, Retryable)
    await wrong.close()


# -- the fake, through the openai client directly ------------------------------------------


@pytest.fixture
async def client(fake: FakeOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    c = openai.AsyncOpenAI(api_key=fake.api_key, base_url=fake.base_url, max_retries=0)
    yield c
    await c.close()


async def test_fake_streams_chunks_then_usage(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.script("streamed answer in five words")
    stream = await client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "go"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "streamed answer in five words"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 5
    assert all(c.usage is None for c in chunks[:-1])
    assert fake.requests[0].stream is True


async def test_fake_stream_without_usage(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "go"}], stream=True
    )
    chunks = [chunk async for chunk in stream]
    assert all(c.usage is None and c.choices for c in chunks)


async def test_fake_rejects_what_openai_rejects(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="role"):
        await client.chat.completions.create(model="gpt-4o", messages=[{"role": "boss", "content": "x"}])  # type: ignore[misc,list-item]
    with pytest.raises(openai.BadRequestError, match="stream_options"):
        await client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "x"}],
            stream_options={"include_usage": True},
        )
    with pytest.raises(openai.BadRequestError, match="non-empty"):
        await client.chat.completions.create(model="gpt-4o", messages=[])
    with pytest.raises(openai.BadRequestError, match="temperature"):
        await client.chat.completions.create(model="gpt-4o", messages=HELLO, temperature=3)  # type: ignore[arg-type]
    assert fake.requests == []
    models = await client.models.list()
    assert [m.id for m in models.data] == list(fake.models)


async def test_fake_scripted_replies_then_default(client: openai.AsyncOpenAI) -> None:
    async with FakeOpenAI(default=lambda body: f"echo {body['messages'][-1]['content']}") as fake:
        c = openai.AsyncOpenAI(api_key=fake.api_key, base_url=fake.base_url, max_retries=0)
        fake.script("first", lambda body: body["model"])
        answers = []
        for _ in range(3):
            r = await c.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
            )
            answers.append(r.choices[0].message.content)
        assert answers == ["first", "gpt-4o-mini", "echo hi"]
        await c.close()
