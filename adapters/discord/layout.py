"""A rendered card as a Components V2 message: one container holding text, buttons and files.

Discord refuses a V2 message with content or embeds, more than 40 components, or more than 4,000
characters of text displays, so the card is cut here: text within its budget, at most 25 buttons,
file components only for the attachments sent with the same message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import discord

from adapters.discord.interactions import ActionButton
from adapters.discord.render import MAX_BUTTONS, MAX_COMPONENTS, MAX_FILES, Rendered

ROW = 5  # buttons per action row


def layout_of(card: Rendered, files: Sequence[discord.File] = ()) -> discord.ui.LayoutView:
    """A persistent (no timeout) layout: the container, then nothing else."""
    texts = card.fitted()
    buttons = card.buttons[:MAX_BUTTONS]
    rows = [buttons[i : i + ROW] for i in range(0, len(buttons), ROW)]
    # container + texts + separator + rows + buttons + files <= 40: files give way first, then text.
    fixed = 1 + (1 + len(rows) + len(buttons) if buttons else 0)
    files = list(files)[: max(0, min(MAX_FILES, MAX_COMPONENTS - fixed - len(texts)))]
    texts = texts[: max(0, MAX_COMPONENTS - fixed - len(files))]
    container: discord.ui.Container[Any] = discord.ui.Container(accent_colour=card.accent)
    for text in texts:
        container.add_item(discord.ui.TextDisplay(text))
    for f in files:
        container.add_item(discord.ui.File(f"attachment://{f.filename}"))
    if rows:
        container.add_item(discord.ui.Separator())
        for row in rows:
            container.add_item(discord.ui.ActionRow(*(ActionButton.of(b) for b in row)))
    view = discord.ui.LayoutView(timeout=None)
    view.add_item(container)
    return view
