"""The App Home tab, and `/pipeline pending`: what waits for the user, each item with its buttons."""

from __future__ import annotations

from typing import Any

from slack_bolt.app.async_app import AsyncApp

from adapters.chat import NOTHING_PENDING, pending_line
from adapters.slack.context import SlackContext
from adapters.slack.render import Block, actions, context, escape, fit, section
from engine.api import PendingItem

HOME_MAX_BLOCKS = 100
TITLE = "*What waits for you*"


def pending_blocks(items: list[PendingItem], max_blocks: int) -> list[Block]:
    blocks: list[Block] = []
    for item in items:
        if len(blocks) + 2 > max_blocks - 1:
            blocks.append(context(f"… and {len(items) - len(blocks) // 2} more: /pipeline pending"))
            break
        blocks.append(section(escape(pending_line(item))))
        blocks.extend(actions(item.buttons))
    return blocks or [section(NOTHING_PENDING)]


def home_view(items: list[PendingItem]) -> dict[str, Any]:
    blocks = [section(TITLE), *pending_blocks(items, HOME_MAX_BLOCKS - 2)]
    hint = "Start a run in any channel with `/pipeline run <pipeline>`; `/pipeline help` for more."
    blocks.append(context(escape(hint)))
    return {"type": "home", "blocks": blocks}


def pending_message(items: list[PendingItem]) -> list[Block]:
    return fit(pending_blocks(items, 50))


async def publish(ctx: SlackContext, user_id: str) -> None:
    actor = await ctx.directory.actor(user_id)
    items = await ctx.call(ctx.engine.pending, actor)
    await ctx.client.views_publish(user_id=user_id, view=home_view(items))


def register(app: AsyncApp, ctx: SlackContext) -> None:
    async def on_home_opened(event: dict[str, Any]) -> None:
        # Bolt acks events when this returns: publish after, so Slack never waits on it.
        if event.get("tab", "home") == "home":
            ctx.spawn(publish(ctx, event["user"]), "home")

    app.event("app_home_opened")(on_home_opened)
