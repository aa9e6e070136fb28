"""Notifications and replies as Discord messages: markdown, embeds, buttons, within Discord's limits.

Pure functions (no network): the deliverer and the interaction handlers send what these build.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

import discord

from engine.messages import progress_bar
from engine.notifications import (
    ApprovalCard,
    ArtifactsCard,
    Button,
    FormCard,
    NoticeCard,
    Notification,
    RunInfo,
    RunStatusCard,
)

MAX_CONTENT = 2000
MAX_EMBED_TITLE = 256
MAX_EMBED_DESCRIPTION = 4096
MAX_EMBED_FIELDS = 25
MAX_FIELD_NAME = 256
MAX_FIELD_VALUE = 1024
MAX_EMBED_TOTAL = 6000
MAX_BUTTONS = 25  # 5 action rows of 5
NO_MENTIONS = discord.AllowedMentions.none()

DECIDED_COLOR = 0x95A5A6
STATUS_COLORS = {
    "not_started": 0x95A5A6,
    "in_progress": 0x5865F2,
    "paused": 0xFEE75C,
    "completed": 0x57F287,
    "failed": 0xED4245,
    "cancelled": 0x95A5A6,
}
LEVEL_ICONS = {"info": "ℹ️", "success": "✅", "warning": "⚠️", "error": "❌"}
# Slack-style *bold* (the shared wording) is Discord's **bold**; _italic_ and `code` are the same.
_BOLD = re.compile(r"(?<![*\w])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![*\w])")


_CODE = re.compile(r"(```.*?```|`[^`\n]*`)", re.S)


def markdown(text: str) -> str:
    """Shared chat markup to Discord's, leaving code spans and blocks alone."""
    parts = _CODE.split(text)
    return "".join(p if i % 2 else _BOLD.sub(r"**\1**", p) for i, p in enumerate(parts))


def _units(text: str) -> int:
    # Discord counts UTF-16 code units; counting them keeps astral emoji from overflowing a limit.
    return len(text.encode("utf-16-le")) // 2


def _prefix(text: str, units: int) -> str:
    cut = text[:units]
    while _units(cut) > units:
        cut = cut[: -max(1, (_units(cut) - units) // 2)]
    return cut


def clip(text: str, limit: int) -> str:
    """At most ``limit`` characters, cut with an ellipsis; a cut code block is closed again."""
    if _units(text) <= limit:
        return text
    cut = _prefix(text, limit - 1).rstrip(" ")
    if cut.count("```") % 2 == 0:
        return cut + "…"
    return _prefix(text, limit - 5).rstrip(" ") + "…\n```"


def status_text(status: str) -> str:
    return status.replace("_", " ")


@dataclass
class Rendered:
    """What one message shows; ``content=None`` clears the text on an edit."""

    content: str | None = None
    embeds: list[discord.Embed] = field(default_factory=list)
    buttons: list[Button] = field(default_factory=list)
    # Nobody is pinged, except those a reminder or an escalation names: exactly them.
    mentions: discord.AllowedMentions = field(default_factory=discord.AllowedMentions.none)


def embed(
    *,
    title: str | None = None,
    description: str | None = None,
    color: int | None = None,
    fields: list[tuple[str, str]] | None = None,
    footer: str | None = None,
) -> discord.Embed:
    """An embed clipped to Discord's per-field limits and its 6000-character total."""
    e = discord.Embed(
        title=clip(title, MAX_EMBED_TITLE) if title else None,
        description=clip(description, MAX_EMBED_DESCRIPTION) if description else None,
        color=color,
    )
    budget = MAX_EMBED_TOTAL - len(e.title or "") - len(e.description or "") - len(footer or "")
    for name, value in (fields or [])[:MAX_EMBED_FIELDS]:
        name, value = clip(name or "—", MAX_FIELD_NAME), clip(value or "—", MAX_FIELD_VALUE)
        if len(name) + len(value) > budget:
            break
        budget -= len(name) + len(value)
        e.add_field(name=name, value=value, inline=len(value) <= 40)
    if footer:
        e.set_footer(text=footer)
    return e


def run_embed(run: RunInfo) -> discord.Embed:
    fields = [("Now", run.current)] if run.current and run.status in ("in_progress", "paused") else []
    return embed(
        title=f"{run.name} · {run.pipeline_title}",
        description=f"**{status_text(run.status)}**  {progress_bar(run.done, run.total)}",
        color=STATUS_COLORS.get(run.status),
        fields=[(n, v) for n, v in fields if v],
        footer=f"Started by {run.started_by}",
    )


def thread_name(run: RunInfo) -> str:
    return clip(f"{run.name} · {run.pipeline_title}", 100)


def render(note: Notification) -> Rendered:
    """A notification as a message (artifacts: the text only; the deliverer attaches the files)."""
    match note:
        case RunStatusCard(run=run):
            return Rendered(None, [run_embed(run)])
        case ApprovalCard():
            footer = f"{note.approvals} of {note.required} approvals" if note.required > 1 else None
            card = embed(
                description=markdown(note.text) + _due(note.due_at, note.decided),
                color=DECIDED_COLOR if note.decided else STATUS_COLORS["in_progress"],
                fields=[(f.label, f.value) for f in note.fields],
                footer=footer,
            )
            return Rendered(_decided(note.decided), [card], [] if note.decided else note.buttons)
        case FormCard():
            text = markdown(note.text)
            if note.feedback:
                text += f"\n\n**Feedback:** {note.feedback}"
            text += _due(note.due_at, note.decided)
            card = embed(
                description=text, color=DECIDED_COLOR if note.decided else STATUS_COLORS["in_progress"]
            )
            return Rendered(_decided(note.decided), [card], [] if note.decided else note.buttons)
        case ArtifactsCard():
            return Rendered(clip(f"📎 **{note.checkpoint}**: {len(note.artifacts)} artifact(s)", MAX_CONTENT))
        case NoticeCard():
            who, allowed = mentions(note.mentions)
            return Rendered(
                clip(f"{LEVEL_ICONS[note.level]} {who}{markdown(note.text)}", MAX_CONTENT),
                [],
                note.buttons,
                allowed,
            )
    raise TypeError(f"unknown notification {type(note).__name__}")  # pragma: no cover


def mentions(principals: list[str]) -> tuple[str, discord.AllowedMentions]:
    """``discord:123`` as <@123>, ``discord:role:9`` as <@&9>; allowed_mentions names exactly them."""
    users: list[discord.Object] = []
    roles: list[discord.Object] = []
    for p in principals:
        who = p.partition(":")[2]
        if who.startswith("role:") and who[5:].isdigit():
            roles.append(discord.Object(int(who[5:])))
        elif who.isdigit():
            users.append(discord.Object(int(who)))
    if not users and not roles:
        return "", NO_MENTIONS
    text = " ".join([*(f"<@{u.id}>" for u in users), *(f"<@&{r.id}>" for r in roles)])
    allowed = discord.AllowedMentions(everyone=False, users=users, roles=roles, replied_user=False)
    return (text + " " if text else ""), allowed


def _due(due_at: datetime | None, decided: str | None) -> str:
    """Discord shows <t:…> in each reader's own time zone."""
    if due_at is None or decided:
        return ""
    stamp = int(due_at.replace(tzinfo=UTC).timestamp())
    return f"\n\n⏰ Due <t:{stamp}:f> (<t:{stamp}:R>)"


def _decided(decided: str | None) -> str | None:
    return clip(f"**{decided}**", MAX_CONTENT) if decided else None


def reply_text(text: str) -> str:
    """A shared-command reply (Slack-style markup) as Discord message content."""
    return clip(markdown(text), MAX_CONTENT) or "…"
