"""Slack requests as inbox rows, and their handling from those rows.

The listeners (commands, actions) only turn a payload into an `Interaction`, record it and ack;
`handle` does the work, in this process or in the engine process of `pipebot serve`, and also
for rows left by a crash. A click that opens a modal must do so within 3 s of the click (its
trigger_id expires): past that, the person is told privately to click again.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError

from adapters.actions import decode
from adapters.slack import actions, commands, forms, requests
from adapters.slack.context import SlackContext
from adapters.slack.directory import PLATFORM
from engine import messages
from engine.actors import Actor, Conversation
from engine.inbox import InboxItem, Interaction

ANSWER_WAIT = 2.0  # a form's ack waits this long for its answer (errors under the fields)
TRIGGER_SECONDS = 3.0  # a trigger_id opens a modal this long after the click
MODAL_ACTIONS = actions.MODALS  # clicks whose answer is a modal: 3 s from the click
BUTTON_LABELS = {
    "open_form": "Open form",
    "request_revision": "Request revision",
    "reject": "Reject",
    "approve_with_comment": "Approve with comment",
    "reassign": "Reassign",
    "edit_and_approve": "Edit and approve",
}


def register(app: AsyncApp, ctx: SlackContext) -> None:
    """Commands, clicks and form submissions: recorded, then acked; the work runs from the row."""

    async def record(kind: str, body: dict[str, Any], request: AsyncBoltRequest) -> int | None:
        key = request.context.get(requests.KEY)  # set by requests.once: a replay's key is the same
        return await ctx.engine.inbox.accept(interaction(kind, body, request, key))

    async def on_command(ack: AsyncAck, body: dict[str, Any], request: AsyncBoltRequest) -> None:
        await record("command", body, request)
        await ack()

    async def on_click(ack: AsyncAck, body: dict[str, Any], request: AsyncBoltRequest) -> None:
        await record("click", body, request)
        await ack()

    async def on_submission(ack: AsyncAck, body: dict[str, Any], request: AsyncBoltRequest) -> None:
        # Values of the wrong shape are the client's error (400, see requests.on_error): read
        # them here, before they become a row.
        forms.raw_values(body["view"]["state"]["values"])
        # The answer to a submission is its result (errors under the fields): wait for it, briefly.
        row_id = await record("submission", body, request)
        found = await ctx.engine.inbox.result(row_id, ANSWER_WAIT) if row_id is not None else None
        answer = json.loads(found) if found and found.startswith("{") else None
        await (ack(**answer) if answer else ack())

    app.command(commands.COMMAND)(on_command)
    app.action(actions.BUTTON_ACTION)(on_click)
    app.view(forms.FORM_CALLBACK)(on_submission)
    app.view(forms.FEEDBACK_CALLBACK)(on_submission)
    app.view(forms.EDIT_CALLBACK)(on_submission)
    for callback in forms.DECISION_CALLBACKS:
        app.view(callback)(on_submission)


def dedup_key(body: dict[str, Any], request: AsyncBoltRequest | None) -> str:
    """One delivery: its trigger_id (unique per user action, the same in a retry or replay),
    else the request's signature and timestamp."""
    trigger = str(body.get("trigger_id") or "")
    if trigger:
        return _digest("slack-trigger", trigger)
    headers = request.headers if request is not None else {}
    parts = [str((headers.get(h) or [""])[0]) for h in ("x-slack-request-timestamp", "x-slack-signature")]
    return _digest("slack-request", *parts, json.dumps(body, sort_keys=True))


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def _user(body: dict[str, Any]) -> tuple[str, str]:
    if "user_id" in body:  # slash command
        return str(body["user_id"]), str(body.get("user_name") or body["user_id"])
    user = body.get("user") or {}
    return str(user.get("id") or ""), str(user.get("username") or user.get("name") or user.get("id") or "")


def _channel(body: dict[str, Any]) -> str | None:
    found = body.get("channel_id") or (body.get("channel") or {}).get("id")
    return str(found) if found else None


def interaction(
    kind: str, body: dict[str, Any], request: AsyncBoltRequest | None, key: str | None = None
) -> Interaction:
    user_id, name = _user(body)
    channel = _channel(body)
    answer_within = None
    if kind == "submission" or (kind == "click" and _modal_click(body)):
        answer_within = TRIGGER_SECONDS
    return Interaction(
        platform=PLATFORM,
        kind=kind,
        actor=Actor(PLATFORM, user_id, name),
        conversation=Conversation(PLATFORM, channel) if channel else None,
        payload=body,
        payload_json=request.context.get(requests.PAYLOAD_JSON) if request is not None else None,
        dedup_key=key or dedup_key(body, request),
        answer_within=answer_within,
    )


def _modal_click(body: dict[str, Any]) -> str | None:
    action = (body.get("actions") or [{}])[0]
    ref = decode(str(action.get("value") or action.get("action_id") or ""))
    return ref.action if ref is not None and ref.action in MODAL_ACTIONS else None


async def handle(ctx: SlackContext, item: InboxItem) -> str | None:
    """Handle one inbox row; the result is stored with it (a form's answer for the waiting ack)."""
    await ctx.acks_first.wait()  # in one process with the listeners: let the acks go first
    body, kind = item.interaction.payload, item.interaction.kind
    if kind == "command":
        await commands.run_command(ctx, body)
        return "done"
    if kind == "click":
        modal = _modal_click(body)
        if modal and item.expired(ctx.engine.clock()):
            await _too_late(ctx, body, modal)
            return "trigger expired: told the person"
        try:
            await actions.click(ctx, body)
        except SlackApiError as exc:
            if modal and exc.response.get("error") == "expired_trigger_id":
                await _too_late(ctx, body, modal)
                return "trigger expired: told the person"
            raise
        return "done"
    callback = body["view"].get("callback_id")
    submit = {
        forms.FORM_CALLBACK: forms.submit,
        forms.FEEDBACK_CALLBACK: forms.submit_feedback,
        forms.EDIT_CALLBACK: forms.submit_edit,
    }.get(callback, forms.submit_decision)
    answer = await submit(ctx, body)
    if answer is not None and answer.get("response_action") == "errors" and item.expired(ctx.engine.clock()):
        # The ack went without these errors (the modal closed): say them in a message instead.
        # (A refusal needs no message: the form is closed or over, its card says so.)
        await ctx.tell(body, actions.text(messages.FORM_NOT_SAVED.format(problems=_problems(answer))))
    return json.dumps(answer) if answer is not None else None


async def _too_late(ctx: SlackContext, body: dict[str, Any], action: str) -> None:
    text = messages.RESTARTED_BEFORE_FORM.format(button=BUTTON_LABELS[action])
    await ctx.tell(body, actions.text(text))


def _problems(answer: dict[str, Any]) -> str:
    if answer.get("response_action") == "errors":
        return "; ".join(f"{k}: {v}" for k, v in (answer.get("errors") or {}).items())
    view = answer.get("view") or {}
    texts = [b.get("text", {}).get("text", "") for b in view.get("blocks", []) if b.get("type") == "section"]
    return " ".join(t for t in texts if t) or "it was refused"
