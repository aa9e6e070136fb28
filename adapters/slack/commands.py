"""The `/pipeline` slash command, run from its inbox row through the shared `adapters.chat`.

Parsing, help and the wording of every answer live in `adapters.chat`; here a slash command
becomes (actor, conversation, text) and the `Reply` becomes Block Kit, ephemeral or in channel.
"""

from __future__ import annotations

from typing import Any

from adapters import chat
from adapters.slack import home, render
from adapters.slack.context import SlackContext
from adapters.slack.directory import PLATFORM
from engine.actors import Conversation

COMMAND = "/pipeline"


async def run_command(ctx: SlackContext, body: dict[str, Any]) -> None:
    actor = await ctx.directory.actor(body["user_id"], body.get("user_name"))
    where = Conversation(PLATFORM, body["channel_id"])
    text = str(body.get("text") or "")
    reply = await chat.handle(ctx.engine, actor, where, text)
    message = render.reply(reply.text, reply.buttons)
    if reply.ok and reply.buttons and text.split()[:1] == ["pending"]:
        # One section per item with its own buttons, as in the App Home.
        items = await ctx.call(ctx.engine.pending, actor)
        message.blocks = home.pending_message(items)
    await ctx.tell(body, message, ephemeral=reply.ephemeral)
