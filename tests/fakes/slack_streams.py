"""chat.startStream / chat.appendStream / chat.stopStream for the fake Slack Web API.

Strict about order: a stream starts in a thread (channels also need the recipient user and team),
text is appended only while it streams, it is stopped once, and a message still streaming cannot
be edited. Every accepted call is recorded in ``streams``; ``refuse_streaming`` makes
``chat.startStream`` answer with that error (as a workspace without streaming would).
"""

from __future__ import annotations

from typing import Any

from tests.fakes.slack_blocks import validate_blocks
from tests.fakes.slack_records import ApiError, Message, StreamCall
from tests.fakes.slack_state import SlackWorkspace

MARKDOWN_TEXT_MAX = 12_000


def _text(args: dict[str, Any]) -> str:
    """``markdown_text``, or the text of ``markdown_text`` chunks (newer slack_sdk sends chunks)."""
    text = args.get("markdown_text") or ""
    chunks = args.get("chunks") or []
    if not isinstance(text, str) or not isinstance(chunks, list):
        raise ApiError("invalid_arguments", "[ERROR] markdown_text must be a string, chunks an array")
    for chunk in chunks:
        if not isinstance(chunk, dict) or chunk.get("type") != "markdown_text":
            raise ApiError("invalid_chunks", f"[ERROR] unsupported chunk {chunk!r}")
        text += str(chunk.get("text") or "")
    if len(text) > MARKDOWN_TEXT_MAX:
        raise ApiError("msg_too_long", f"markdown_text must be at most {MARKDOWN_TEXT_MAX} characters")
    return text


class SlackStreams(SlackWorkspace):
    streams: list[StreamCall]
    refuse_streaming: str | None

    def init_streams(self) -> None:
        self.streams, self.refuse_streaming = [], None

    def _streaming(self, args: dict[str, Any]) -> Message:
        channel, ts = args.get("channel"), args.get("ts")
        if not isinstance(channel, str) or not isinstance(ts, str):
            raise ApiError("invalid_arguments", "[ERROR] channel and ts are required")
        msg = self.get_message(channel, ts)
        if msg.stream != "streaming":
            raise ApiError("message_not_in_streaming_state", f"message {ts} is not streaming")
        return msg

    async def _chat_start_stream(self, args: dict[str, Any]) -> dict[str, Any]:
        if self.refuse_streaming:
            raise ApiError(self.refuse_streaming, "streaming refused (fake.refuse_streaming)")
        channel = self.resolve_channel(str(args.get("channel") or ""))
        thread_ts = args.get("thread_ts")
        if not isinstance(thread_ts, str) or not thread_ts:
            raise ApiError("invalid_arguments", "[ERROR] streamed messages are replies: thread_ts required")
        recipient = args.get("recipient_user_id") and args.get("recipient_team_id")
        if channel.startswith(("C", "G")) and not recipient:
            raise ApiError("missing_recipient", "recipient user and team are needed in channels")
        text = _text(args)
        msg = self.post_message(channel, text, [], thread_ts=thread_ts)
        msg.stream = "streaming"
        self.streams.append(StreamCall("chat.startStream", channel, msg.ts, text))
        return {"channel": channel, "ts": msg.ts}

    async def _chat_append_stream(self, args: dict[str, Any]) -> dict[str, Any]:
        msg = self._streaming(args)
        text = _text(args)
        if not text:
            raise ApiError("invalid_arguments", "[ERROR] markdown_text is required")
        msg.text += text
        self.streams.append(StreamCall("chat.appendStream", msg.channel, msg.ts, text))
        return {"channel": msg.channel, "ts": msg.ts}

    async def _chat_stop_stream(self, args: dict[str, Any]) -> dict[str, Any]:
        msg = self._streaming(args)
        text = _text(args)
        blocks: list[dict[str, Any]] = []
        if args.get("blocks"):
            blocks = args["blocks"] if isinstance(args["blocks"], list) else []
            if problems := validate_blocks(blocks, "message"):
                raise ApiError("invalid_blocks", *problems)
        msg.text += text
        msg.blocks = blocks
        msg.stream = "stopped"
        self.streams.append(StreamCall("chat.stopStream", msg.channel, msg.ts, text, blocks))
        return {"channel": msg.channel, "ts": msg.ts, "message": msg.to_api(self.team_id)}

    def streamed_text(self, ts: str) -> str:
        """All text streamed into one message, in order."""
        return "".join(c.markdown_text for c in self.streams if c.ts == ts)
