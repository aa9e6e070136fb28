"""Live agent turns in Slack: each turn streams into the run's thread as the model writes it.

``chat_stream`` (chat.startStream / appendStream / stopStream) shows the text as it comes, one
message per turn; the outbox then edits that message into the finished turn (its Markdown cut to
Slack's limits, the usage). Where streaming is refused (a workspace without it, a rate limit), the
turn is posted and then edited at most once every ``edit_seconds``. Text is sent by whole lines,
escaped like every other model text, so no mention or disguised link can form across two appends.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_chat_stream import AsyncChatStream
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.render import MARKDOWN_MAX, fallback, markdown_block, md_escape, turn_title
from engine.notifications import TurnCard
from engine.outbox import MessageRef
from engine.streams import TurnHeader

log = logging.getLogger("pipebot.slack")
FLUSH_CHARS = 80  # send once this much text (in whole lines) is waiting
LIVE_MAX = MARKDOWN_MAX - 1000  # past this the live text stops; the final card shows the rest
RETRY_STREAMING_SECONDS = 600.0  # after a refusal, post-then-edit for this long before asking again


class SlackTurns:
    """The Slack adapter's ``TurnSink``."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        edit_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client, self.edit_seconds, self.clock = client, edit_seconds, clock
        self._team: str | None = None
        self.refused_at: float | None = None

    def may_stream(self) -> bool:
        return self.refused_at is None or self.clock() - self.refused_at > RETRY_STREAMING_SECONDS

    async def team_id(self) -> str:
        if self._team is None:
            self._team = str((await self.client.auth_test()).get("team_id") or "")
        return self._team

    async def open(self, header: TurnHeader) -> SlackTurn | None:
        parent = header.target.parent
        if parent is None:  # no status message yet: the outbox posts the whole turn
            return None
        return SlackTurn(self, header, parent.channel, parent.thread_id or parent.message_id)


class SlackTurn:
    def __init__(self, turns: SlackTurns, header: TurnHeader, channel: str, thread: str) -> None:
        self.turns, self.header, self.channel, self.thread = turns, header, channel, thread
        self.pending = ""  # received, not yet shown (an unfinished line)
        self.shown = ""  # escaped Markdown shown so far, title included
        self.raw = ""  # the same, as received (the top-level text escapes it itself)
        self.stream: AsyncChatStream | None = None
        self.streaming = turns.may_stream()
        self.ts: str | None = None  # the message, once there is one
        self.edited_at = 0.0
        self.dirty = False

    async def append(self, text: str) -> None:
        self.pending += text
        if len(self.pending) < FLUSH_CHARS or "\n" not in self.pending:
            return
        lines, _, self.pending = self.pending.rpartition("\n")
        await self._show(lines + "\n")

    async def _show(self, raw: str) -> None:
        if len(self.shown) >= LIVE_MAX:
            return
        text = md_escape(raw)
        self.raw += raw
        if not self.shown:
            text = f"{turn_title(self._card())}\n\n{text}"
        self.shown += text
        if self.streaming:
            try:
                await self._stream(text)
                return
            except SlackApiError as exc:
                log.info("streaming refused (%s): posting and editing instead", exc.response.get("error"))
                self.streaming = False
                self.turns.refused_at = self.turns.clock()
                if self.stream is not None and self.ts:  # end what was streamed; edits go on from it
                    with contextlib.suppress(SlackApiError):
                        await self.stream.stop()
        self.dirty = True
        await self._edit(final=False)

    async def _stream(self, text: str) -> None:
        if self.stream is None:
            user = self.header.target.started_by.removeprefix("slack:")  # the actor's key
            self.stream = await self.turns.client.chat_stream(
                channel=self.channel,
                thread_ts=self.thread,
                recipient_user_id=user if user.startswith(("U", "W")) else None,
                recipient_team_id=await self.turns.team_id() or None,
                buffer_size=1,  # this class buffers (whole lines); every append is sent
            )
        answer = await self.stream.append(markdown_text=text)
        if answer is not None and self.ts is None:  # chat.startStream's answer names the message
            self.ts = str(answer["ts"])

    async def _edit(self, *, final: bool) -> None:
        """Post-then-edit: at most one edit every ``edit_seconds`` (and one at the end)."""
        if not self.dirty or (not final and self.turns.clock() - self.edited_at < self.turns.edit_seconds):
            return
        blocks = [markdown_block(self.shown[:MARKDOWN_MAX])]
        text = fallback(f"{self.header.agent}: {self.raw}")
        if self.ts is None:
            resp = await self.turns.client.chat_postMessage(
                channel=self.channel, thread_ts=self.thread, text=text, blocks=blocks, unfurl_links=False
            )
            self.ts = str(resp["ts"])
        else:
            await self.turns.client.chat_update(channel=self.channel, ts=self.ts, text=text, blocks=blocks)
        self.edited_at, self.dirty = self.turns.clock(), False

    async def finish(self, card: TurnCard) -> MessageRef | None:
        if self.pending:
            await self._show(self.pending)
            self.pending = ""
        if self.stream is not None and self.streaming:
            await self.stream.stop()
        else:
            await self._edit(final=True)
        return MessageRef(self.channel, self.ts, self.thread) if self.ts else None

    async def abort(self) -> None:
        if self.stream is not None and self.streaming and self.ts:
            await self.stream.stop(markdown_text="\n…")

    def _card(self) -> TurnCard:
        h = self.header
        return TurnCard(
            key=h.key, run=h.target.info, execution_id=h.execution_id, checkpoint=h.checkpoint,
            agent=h.agent, role=h.role, round=h.round, text="",
        )  # fmt: skip
