"""The outbox deliverer: engine notifications to Slack messages.

The run's status message ("run" key) goes in the channel the run was started from; everything
else goes in its thread. A notification whose key was delivered before edits that message
(chat.update) — that is how an approval request loses its buttons once decided. Artifacts are
shared into the thread with files_upload_v2 (getUploadURLExternal → upload →
completeUploadExternal); files over the size limit are announced with the CLI command to get them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import render, workflow
from adapters.slack.context import AcksFirst
from engine.api import Engine
from engine.errors import NotFound
from engine.notifications import ArtifactsCard, NoticeCard, RunStatusCard
from engine.outbox import Delivery, MessageRef, RetryLater

log = logging.getLogger("pipebot.slack")
EVENT_TYPE = "pipebot_outbox"  # message metadata: which outbox row a message delivers
DEFAULT_MAX_ARTIFACT_BYTES = 10 * 1024 * 1024


class SlackDeliverer:
    def __init__(
        self,
        client: AsyncWebClient,
        engine: Engine,
        max_artifact_bytes: int = DEFAULT_MAX_ARTIFACT_BYTES,
        acks_first: AcksFirst | None = None,
    ) -> None:
        self.client, self.engine, self.max_artifact_bytes = client, engine, max_artifact_bytes
        self.acks_first = acks_first or AcksFirst()

    async def deliver(self, delivery: Delivery) -> MessageRef | None:
        await self.acks_first.wait()
        try:
            if delivery.sending_since is not None and delivery.existing is None:
                # An earlier attempt may have posted it before pipebot could record it.
                found = await self._find(delivery)
                if found is not None:
                    return found
            if isinstance(delivery.note, ArtifactsCard) and delivery.existing is None:
                return await self._artifacts(delivery, delivery.note)
            ref = await self._message(delivery)
            if isinstance(delivery.note, RunStatusCard):  # a workflow step may wait for this run
                await workflow.finished(self.client, delivery.note.run, ref)
            return ref
        except SlackApiError as exc:
            if exc.response.status_code == 429:
                # Still limited after the client's own short waits: let the outbox wait.
                raise RetryLater(_retry_after(exc), "Slack rate limit") from exc
            raise

    @staticmethod
    def _where(delivery: Delivery) -> tuple[str, str | None]:
        """(channel, thread_ts) of a new message for this delivery."""
        if delivery.note.key != "run" and delivery.parent is not None:
            parent = delivery.parent
            return parent.channel, parent.thread_id or parent.message_id
        return delivery.conversation.channel, delivery.conversation.thread

    async def _message(self, delivery: Delivery) -> MessageRef:
        note = delivery.note
        groups = await self._group_ids() if isinstance(note, NoticeCard) and note.mentions else {}
        out = render.card(note, groups)
        if delivery.existing is not None:
            ref = delivery.existing
            await self.client.chat_update(
                channel=ref.channel, ts=ref.message_id, text=out.text, blocks=out.blocks
            )
        else:
            channel, thread = self._where(delivery)
            resp = await self.client.chat_postMessage(
                channel=channel,
                thread_ts=thread,
                text=out.text,
                blocks=out.blocks,
                unfurl_links=False,
                metadata=outbox_metadata(delivery.outbox_id),
            )
            ref = MessageRef(str(resp["channel"]), str(resp["ts"]), thread)
            if isinstance(note, NoticeCard) and note.direct:
                await self._direct(note, channel)
        if out.file is not None:  # what the message had to cut, whole, next to it in the thread
            name, content = out.file
            await self.client.files_upload_v2(
                content=content,
                filename=name,
                title=name,
                channel=ref.channel,
                thread_ts=ref.thread_id or ref.message_id,
            )
        return ref

    async def _direct(self, note: NoticeCard, channel: str) -> None:
        """A reminder also reaches each person as a direct message (to the user id: Slack opens the DM)."""
        text = f"{note.text} (in <#{channel}>, {note.run.name})"
        for principal in note.direct:
            platform, _, user = principal.partition(":")
            if platform != "slack":
                continue
            try:
                await self.client.chat_postMessage(channel=user, text=render.fallback(text))
            except SlackApiError as exc:  # a DM that cannot be sent must not repeat the thread post
                log.warning("direct message to %s failed: %s", user, exc.response.get("error"))

    async def _group_ids(self) -> dict[str, str]:
        """User group handles to ids, for <!subteam^ID> mentions (reminders are rare: no cache)."""
        try:
            resp = await self.client.usergroups_list()
        except SlackApiError as exc:
            log.warning("usergroups.list failed: %s", exc.response.get("error"))
            return {}
        return {str(g.get("handle")): str(g.get("id")) for g in resp.get("usergroups") or []}

    async def _find(self, delivery: Delivery) -> MessageRef | None:
        """The message an interrupted attempt posted: by the outbox id in its metadata (or, for
        a file share, which carries no metadata, by its comment); None if it never arrived."""
        channel, thread = self._where(delivery)
        if thread is not None:
            resp = await self.client.conversations_replies(
                channel=channel, ts=thread, include_all_metadata=True, limit=1000
            )
        else:
            resp = await self.client.conversations_history(
                channel=channel, include_all_metadata=True, limit=200
            )
        comment = None
        if isinstance(delivery.note, ArtifactsCard):
            comment = (await self._plan(delivery.note))[1].text
        for message in resp.get("messages") or []:
            meta = message.get("metadata") or {}
            ours = (
                meta.get("event_type") == EVENT_TYPE
                and (meta.get("event_payload") or {}).get("outbox_id") == delivery.outbox_id
            )
            shared = comment is not None and message.get("files") and message.get("text") == comment
            if ours or shared:
                log.info("outbox row %s was posted before a restart: adopting it", delivery.outbox_id)
                return MessageRef(channel, str(message["ts"]), thread, adopted=True)
        return None

    async def _plan(self, note: ArtifactsCard) -> tuple[list[dict[str, Any]], render.Rendered]:
        """The files to upload and the summary shared with them."""
        uploads: list[dict[str, Any]] = []
        too_big: dict[int, int] = {}
        missing: set[int] = set()
        for a in note.artifacts:
            path = await asyncio.to_thread(self._path, a.artifact_id)
            size = path.stat().st_size if path is not None else None
            if size is None:
                missing.add(a.artifact_id)
            elif size > self.max_artifact_bytes:
                too_big[a.artifact_id] = size
            else:
                name = render.artifact_file(a)
                uploads.append({"file": str(path), "filename": name, "title": name})
        return uploads, render.artifacts(note, too_big, missing)

    async def _artifacts(self, delivery: Delivery, note: ArtifactsCard) -> MessageRef | None:
        channel, thread = self._where(delivery)
        uploads, out = await self._plan(note)
        if not uploads:
            resp = await self.client.chat_postMessage(
                channel=channel,
                thread_ts=thread,
                text=out.text,
                blocks=out.blocks,
                metadata=outbox_metadata(delivery.outbox_id),
            )
            return MessageRef(str(resp["channel"]), str(resp["ts"]), thread)
        # One completeUploadExternal shares every file with the summary (its blocks: the previews
        # in Markdown): a retry after a failure re-sends the whole card, never half of it.
        await self.client.files_upload_v2(
            file_uploads=uploads, channel=channel, thread_ts=thread, blocks=json.dumps(out.blocks)
        )
        return None  # the share message's ts is not returned; artifact cards are never edited

    def _path(self, artifact_id: int) -> Path | None:
        try:
            path = self.engine.artifact_path(artifact_id)
        except NotFound:
            return None
        return path if path.is_file() else None


def outbox_metadata(outbox_id: int) -> dict[str, Any]:
    return {"event_type": EVENT_TYPE, "event_payload": {"outbox_id": outbox_id}}


def _retry_after(exc: SlackApiError) -> float:
    headers = exc.response.headers or {}
    for key, value in headers.items():
        if key.lower() == "retry-after":
            raw = value[0] if isinstance(value, list) else value
            try:
                return max(1.0, float(raw))
            except ValueError:
                break
    return 1.0
