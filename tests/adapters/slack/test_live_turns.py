"""Live agent turns in Slack: a debate streams into the run's thread, one streamed message per
speaker, each finished with its usage; refused streaming falls back to post-then-edit."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from adapters.slack.render import md_escape
from adapters.slack.stream import SlackTurns
from engine.api import Engine
from engine.llm import LLM
from engine.worker import Worker, WorkerConfig
from tests.adapters.slack.conftest import Harness
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_records import StreamCall

DEBATE = """\
id: debate
name: Debate
checkpoints:
  - id: argue
    mode: agent
    agent:
      mode: predefined
      discussion: debate
      rounds: 1
      agents:
        - {name: pro, role: Argues for}
        - {name: con, role: Argues against}
    human: {approval_to_complete: false}
    outputs: [{name: answer, format: md}]
"""
PRO = "## For\n\nShip it on *Monday*: the tests are green and <!here> should know.\n" + "- point\n" * 30
CON = "## Against\n\nWait: [the release notes](https://evil.example/x) are not done.\n\n"
CON += ("- " + "risk" * 25 + "\n") * 120  # longer than one message's Markdown
JUDGE = "# Verdict\n\nShip on Monday, with the notes.\n\n" + "A line of reasons for the verdict.\n" * 20


@pytest.fixture
async def openai_fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as fake:
        yield fake


def worker_for(engine: Engine, openai_fake: FakeOpenAI) -> Worker:
    return Worker(
        engine,
        lambda: LLM(api_key=openai_fake.api_key, base_url=openai_fake.base_url, max_tokens=10_000),
        WorkerConfig(heartbeat_seconds=0.5),
        name="test-worker",
    )


async def run_debate(h: Harness, openai_fake: FakeOpenAI) -> str:
    h.engine.import_pipeline_text(DEBATE, actor=None)
    openai_fake.script(PRO, CON, JUDGE)
    await h.command("run debate")
    await worker_for(h.engine, openai_fake).drain()
    await h.settle()
    return h.run_message().ts


def by_message(calls: list[StreamCall]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for call in calls:
        found.setdefault(call.ts, []).append(call.method)
    return found


async def test_a_debate_streams_each_turn_then_finishes_it_with_its_usage(
    h: Harness, openai_fake: FakeOpenAI
) -> None:
    h.engine.turn_sinks["slack"] = SlackTurns(h.slack.deliverer.client)
    thread = await run_debate(h, openai_fake)
    fake = h.fake
    # One streamed message per speaker, in the run's thread: start, appends, stop, in that order.
    order = by_message(fake.streams)
    assert len(order) == 3
    for methods in order.values():
        assert methods[0] == "chat.startStream" and methods[-1] == "chat.stopStream"
        assert set(methods[1:-1]) == {"chat.appendStream"} and len(methods) > 3  # word by word
    turns = [fake.get_message("C0PIPE", ts) for ts in order]
    assert all(m.thread_ts == thread and m.stream == "stopped" for m in turns)
    # Nothing in the stream can ping or hide a link.
    streamed = [fake.streamed_text(ts) for ts in order]
    assert "<!here>" not in streamed[0] and "&lt;!here&gt;" in streamed[0]
    assert "the release notes (https://evil.example/x)" in streamed[1]
    # The streamed text is the final artifact, exactly.
    (answer,) = [a for a in h.engine.artifacts("debate#v1") if a.name == "answer"]
    artifact = h.engine.artifact_path(answer.artifact_id).read_text()
    head = "**judge** · round 2\n\n"
    assert streamed[2].startswith(head) and streamed[2][len(head) :].strip() == md_escape(artifact).strip()
    # The outbox then made each streamed message the finished card: Markdown and exact usage.
    usage = [(r.prompt_tokens, r.completion_tokens) for r in openai_fake.completed]
    for message, (tokens_in, tokens_out) in zip(turns, usage, strict=True):
        markdown, context = message.blocks[:2]
        assert markdown["type"] == "markdown" and context["type"] == "context"
        assert f"{tokens_in}+{tokens_out} tokens" in context["elements"][0]["text"]
    assert "**pro** · round 1" in turns[0].blocks[0]["text"]
    # con's turn is longer than a message's 12,000 characters of Markdown: cut between
    # paragraphs, the whole turn attached next to it.
    assert len(turns[1].blocks[0]["text"]) < 12_000 and "riskrisk" not in turns[1].blocks[0]["text"]
    (whole,) = [f for f in fake.uploaded_files if f.name == "con-round1.md"]
    assert whole.content.decode() == CON and whole.thread_ts == thread
    assert len(h.thread()) == len({m.ts for m in h.thread()})  # no turn posted twice
    assert not fake.errors


async def test_refused_streaming_posts_then_edits_at_a_bounded_rate(
    h: Harness, openai_fake: FakeOpenAI
) -> None:
    h.engine.turn_sinks["slack"] = SlackTurns(h.slack.deliverer.client, edit_seconds=3600)
    h.fake.refuse_streaming = "not_allowed_token_type"
    await run_debate(h, openai_fake)
    assert h.fake.streams == []
    posted = [c for c in h.fake.calls if c.method == "chat.postMessage"]
    speakers = [m for m in h.thread() if m.blocks and m.blocks[0].get("text", "").startswith("**")]
    assert len(speakers) == 3
    for message in speakers:
        # Posted once as the model began; then edits: at most one within the hour, plus the final card.
        assert len(message.history) <= 2 and "tokens" in str(message.blocks)
    assert len(posted) >= 3
    assert len(h.fake.errors) == 1  # asked once; the next turns did not ask again
