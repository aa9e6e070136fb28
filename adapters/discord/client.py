"""pipebot's discord.py client: guild-only intents, the /pipeline tree, restart-proof buttons and modals."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, cast

import discord

from adapters.discord.commands import build_tree
from adapters.discord.inbox import PLATFORM, Front, handle
from adapters.discord.interactions import ActionButton, PageButton, on_modal_submit
from adapters.discord.render import NO_MENTIONS
from engine.api import Engine

log = logging.getLogger("pipebot.discord")
# Longer rate limits than this are handed back to the outbox (RetryLater) instead of blocking it.
MAX_RATELIMIT_WAIT = 30.0


def intents() -> discord.Intents:
    """GUILDS only: slash commands and components arrive as interactions, so no message content
    and no privileged member intent are needed."""
    return discord.Intents(guilds=True)


class PipebotClient(discord.Client):
    def __init__(
        self, engine: Engine | None, *, front: bool = True, handle_here: bool = True, **options: Any
    ) -> None:
        """``engine`` None: a client that only syncs commands (``pipebot discord sync-commands``).

        ``front``: record and acknowledge pipebot's interactions from the gateway (the inbox's
        front); ``handle_here``: handle their inbox rows in this process (`pipebot serve` runs
        them in its engine process, with a REST-only client: front False).
        """
        options.setdefault("max_ratelimit_timeout", MAX_RATELIMIT_WAIT)
        super().__init__(intents=intents(), allowed_mentions=NO_MENTIONS, **options)
        self.engine = engine
        self.tree = build_tree(self)
        self.front = Front(self, engine) if engine is not None and front else None
        if engine is not None and handle_here:
            engine.inbox.register(PLATFORM, lambda item: handle(self, item))

    async def setup_hook(self) -> None:
        # Registered before the gateway connects, so clicks on messages from before a restart work.
        self.add_dynamic_items(ActionButton, PageButton)

    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        # discord.py keeps modals in memory only; pipebot's are routed by custom_id instead.
        if interaction.type is discord.InteractionType.modal_submit:
            try:
                await on_modal_submit(interaction)
            except Exception:
                data = cast(Mapping[str, Any], interaction.data or {})
                log.exception("modal submission %s failed", data.get("custom_id"))
