"""Button clicks and modal submissions: decode the button, call the engine, answer the clicker.

Every button's action_id and value is `adapters.actions.encode(button)` ("pb:approve_start:42:0:
<digest>"): the click carries all it needs, so buttons on messages posted before a restart keep
working, and a click on an out-of-date card is refused by the engine.
Clicks are recorded in the inbox and acked at once (adapters.slack.inbox), then handled here from
their row; modals are opened first of all, because a click's trigger_id expires 3 s after the click.
"""

from __future__ import annotations

import re
from typing import Any

from slack_sdk.errors import SlackApiError

from adapters import chat
from adapters.actions import ActionRef, decode
from adapters.slack import forms, home, render
from adapters.slack.context import SlackContext, log
from adapters.slack.render import Rendered, escape, section
from engine import messages
from engine.errors import PipebotError
from engine.human import Outcome

BUTTON_ACTION = re.compile(r"^pb:")
# Buttons that open a modal first (a click's trigger_id is valid for 3 s only).
MODALS = ("open_form", "request_revision", "reject", "approve_with_comment", "reassign", "edit_and_approve")


async def click(ctx: SlackContext, body: dict[str, Any]) -> None:
    action = (body.get("actions") or [{}])[0]
    ref = decode(str(action.get("value") or action.get("action_id") or ""))
    if ref is None:
        await ctx.tell(body, text(messages.UNKNOWN_BUTTON))
        return
    if ref.action in chat.CHAT_BUTTONS:  # rollback Confirm / Keep, history pages
        user = body["user"]
        actor = await ctx.directory.actor(user["id"], user.get("username"))
        reply = await chat.click(ctx.engine, actor, ref.action, ref.execution_id, ref.page)
        await ctx.tell(body, render.reply(reply.text, reply.buttons), ephemeral=reply.ephemeral)
        return
    try:
        if ref.action in MODALS:
            await _open_modal(ctx, body, ref)
        else:
            # Success needs no answer of its own: the message is edited to show the outcome
            # ("Approved by …", "1/2 approvals"); only refusals are told to the clicker.
            await _decide(ctx, body, ref)
    except PipebotError as exc:
        # Not an approver, already decided ("Already approved by Ana at 14:02."), run over...
        await ctx.tell(body, text(str(exc)))
    if (body.get("container") or {}).get("type") == "view" and body.get("view", {}).get("type") == "home":
        await home.publish(ctx, body["user"]["id"])


async def _open_modal(ctx: SlackContext, body: dict[str, Any], ref: ActionRef) -> None:
    if ref.action == "open_form":
        spec = await ctx.call(ctx.engine.form, ref.execution_id)  # Refused when the form is closed
        view = forms.modal(spec, ref.seen)
    elif ref.action == "request_revision":
        view = forms.feedback_modal(ref.execution_id, ref.seen)
    elif ref.action == "edit_and_approve":
        user = body["user"]
        actor = await ctx.directory.actor(user["id"], user.get("username"))
        # Refused (not an approver, decided, stale card) before anything opens: said privately.
        edit = await ctx.call(ctx.engine.edit_spec, ref.execution_id, actor, ref.seen)
        if not any(len(f.text) <= forms.TEXT_INPUT_MAX for f in edit.files):
            await ctx.tell(body, text(" ".join(forms.too_long(edit))))
            return
        view = forms.edit_modal(edit, ref.seen)
    else:
        view = forms.decision_modal(ref.action, ref.execution_id, ref.seen)
    try:
        await ctx.client.views_open(trigger_id=body["trigger_id"], view=view)
    except SlackApiError as exc:
        log.warning("views.open for %s failed: %s", ref.encode(), exc.response.get("error"))
        raise


async def _decide(ctx: SlackContext, body: dict[str, Any], ref: ActionRef) -> Outcome | None:
    user = body["user"]
    actor = await ctx.directory.actor(user["id"], user.get("username"))
    engine = ctx.engine
    if ref.action == "approve_start":
        return await ctx.call(engine.approve_start, ref.execution_id, actor, ref.seen)
    if ref.action == "approve_complete":
        return await ctx.call(engine.approve_complete, ref.execution_id, actor, ref.seen)
    if ref.action == "show_changes":  # posts to the thread once; a later click is answered privately
        outcome: Outcome = await ctx.call(engine.show_changes, ref.execution_id, actor, ref.seen)
        if not outcome.changed:
            await ctx.tell(body, text(outcome.message))
        return outcome
    return await ctx.call(engine.retry, ref.execution_id, actor)


def text(text: str) -> Rendered:
    return Rendered(escape(text), [section(escape(text))])
