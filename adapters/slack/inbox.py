"""Slack requests as inbox rows, and their handling from those rows.

`take` only turns a payload into an `Interaction`, records it and acks;
`handle` does the work, in this process or in the engine process of `pipebot serve`, and also
for rows left by a crash. A click that opens a modal must do so within 3 s of the click (its
trigger_id expires): past that, the person is told privately to click again.
"""

from __future__ import annotations

import json
from typing import Any

from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError

from adapters.actions import decode
from adapters.slack import actions, commands, forms
from adapters.slack.context import SlackContext
from adapters.slack.directory import PLATFORM
from engine import logctx, messages
from engine.actors import Actor, Conversation
from engine.inbox import InboxItem, Interaction, digest

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


SUBMISSIONS = frozenset(
    (forms.FORM_CALLBACK, forms.FEEDBACK_CALLBACK, forms.EDIT_CALLBACK, *forms.DECISION_CALLBACKS)
)


def kind_of(body: dict[str, Any]) -> str | None:
    """Which of pipebot's own interactions a payload is (shape-checked by requests.shape_problem),
    or None: not ours, bolt's listeners take it (events, the workflow step)."""
    if "command" in body:
        return "command" if body["command"] == commands.COMMAND else None
    kind = body.get("type")
    if kind == "block_actions":
        return "click" if actions.BUTTON_ACTION.search(body["actions"][0]["action_id"]) else None
    if kind == "view_submission":
        return "submission" if body["view"].get("callback_id") in SUBMISSIONS else None
    return None


async def take(
    ctx: SlackContext, body: dict[str, Any], key: str | None, payload_json: str | None = None
) -> BoltResponse | None:
    """Record a command, click or form submission and answer Slack: the ack, or for a form its
    answer (errors under the fields), waited for briefly. None: not one of ours.

    No bolt dispatch here: recording and acking is all there is to do, and bolt's middleware
    and listener matching cost more than the rest of an ack together (bench/README.md)."""
    kind = kind_of(body)
    if kind is None:
        return None
    if kind == "submission":
        # Values of the wrong shape are the client's error (400): read them before they become a row.
        forms.raw_values(body["view"]["state"]["values"])
    with logctx.bound(platform="slack", user=_user(body)[0]):  # the ids follow the handling
        row_id = await ctx.engine.inbox.accept(interaction(kind, body, key, payload_json))
    if kind != "submission" or row_id is None:
        return BoltResponse(status=200, body="")
    found = await ctx.engine.inbox.result(row_id, ANSWER_WAIT)
    answer = json.loads(found) if found and found.startswith("{") else None
    return BoltResponse(status=200, body=answer or "")


def dedup_key(body: dict[str, Any]) -> str:
    """One delivery, where the transport gives no key: its trigger_id (unique per user action,
    the same in a retry or replay), else the payload itself."""
    trigger = str(body.get("trigger_id") or "")
    if trigger:
        return digest("slack-trigger", trigger)
    return digest("slack-request", json.dumps(body, sort_keys=True))


def _user(body: dict[str, Any]) -> tuple[str, str]:
    if "user_id" in body:  # slash command
        return str(body["user_id"]), str(body.get("user_name") or body["user_id"])
    user = body.get("user") or {}
    return str(user.get("id") or ""), str(user.get("username") or user.get("name") or user.get("id") or "")


def _channel(body: dict[str, Any]) -> str | None:
    found = body.get("channel_id") or (body.get("channel") or {}).get("id")
    return str(found) if found else None


def interaction(
    kind: str, body: dict[str, Any], key: str | None = None, payload_json: str | None = None
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
        payload_json=payload_json,
        dedup_key=key or dedup_key(body),
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
