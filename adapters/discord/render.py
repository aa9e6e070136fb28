"""Notifications as Components V2 cards (one container: text, buttons, files), within Discord's limits.

Pure functions (no network): the deliverer and the interaction handlers send what these build.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

import discord

from engine.messages import CHANGES_ATTACHED, CHANGES_NO_DIFF, change_line, progress_bar
from engine.notifications import (
    ApprovalCard,
    ArtifactsCard,
    Button,
    ChangesCard,
    FormCard,
    NoticeCard,
    Notification,
    RunInfo,
    RunStatusCard,
    TurnCard,
)

MAX_CONTENT = 2000
MAX_TEXT_TOTAL = 4000  # all text displays of one Components V2 message together
MAX_COMPONENTS = 40  # every component of a V2 message, nested ones included
MAX_BUTTONS = 25  # 5 action rows of 5
MAX_FILES = 10  # attachments (file components) per message
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
    """At most ``limit`` characters, cut with an ellipsis; a cut code block is closed again.

    Every text pipebot shows passes here, so this is also where mentions are defused:
    ``@everyone``, ``@here`` and ``<@id>`` typed by people or written by agents and scripts
    show as text (allowed_mentions already keeps them from pinging; this keeps them from
    looking like pings too).
    """
    text = discord.utils.escape_mentions(text)
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
    """One card: text displays in order, an accent colour, buttons and files inside one container."""

    texts: list[str] = field(default_factory=list)
    accent: int | None = None
    buttons: list[Button] = field(default_factory=list)
    # Nobody is pinged, except those a reminder or an escalation names: exactly them.
    mentions: discord.AllowedMentions = field(default_factory=discord.AllowedMentions.none)
    lead: str = ""  # the mentions themselves (<@id> <@&role>), put before the first text unescaped
    file: tuple[str, str] | None = None  # (name, text) sent with the card as an attachment

    def fitted(self, budget: int = MAX_TEXT_TOTAL) -> list[str]:
        """The texts clipped so that together they stay within the message's text budget."""
        out: list[str] = []
        budget -= _units(self.lead)
        for text in self.texts:
            if budget <= 1 or not text:
                break
            out.append(clip(text, budget))
            budget -= _units(out[-1])
        if self.lead and out:
            out[0] = self.lead + out[0]
        return out


def run_texts(run: RunInfo) -> list[str]:
    now = f"\nNow: **{run.current}**" if run.current and run.status in ("in_progress", "paused") else ""
    return [
        f"### {run.name} · {run.pipeline_title}",
        f"**{status_text(run.status)}**  {progress_bar(run.done, run.total)}{now}",
        f"-# Started by {run.started_by}",
    ]


def thread_name(run: RunInfo) -> str:
    return clip(f"{run.name} · {run.pipeline_title}", 100)


def render(note: Notification) -> Rendered:
    """A notification as a card (artifacts: the text only; the deliverer adds the file components)."""
    accent = DECIDED_COLOR if getattr(note, "decided", None) else STATUS_COLORS["in_progress"]
    match note:
        case RunStatusCard(run=run):
            return Rendered(run_texts(run), STATUS_COLORS.get(run.status))
        case ApprovalCard():
            texts = [markdown(note.text)]
            texts += [f"**{f.label}**\n{f.value}" for f in note.fields]
            if note.required > 1:
                texts.append(f"-# {note.approvals} of {note.required} approvals")
            texts += _due(note.due_at, note.decided)
            return _decided(Rendered(texts, accent, note.buttons), note.decided)
        case FormCard():
            texts = [markdown(note.text)]
            if note.feedback:
                texts.append(f"**Feedback:** {note.feedback}")
            texts += _due(note.due_at, note.decided)
            return _decided(Rendered(texts, accent, note.buttons), note.decided)
        case ArtifactsCard():
            return Rendered([f"📎 **{note.checkpoint}**: {len(note.artifacts)} artifact(s)"])
        case NoticeCard():
            who, allowed = mentions(note.mentions)
            icon = LEVEL_ICONS[note.level]
            if who:  # the icon, then the people named, then the text (defused as any other)
                return Rendered([markdown(note.text)], None, note.buttons, allowed, f"{icon} {who}")
            return Rendered([f"{icon} {markdown(note.text)}"], None, note.buttons)
        case TurnCard():
            return Rendered([f"{turn_title(note)}\n{turn_usage(note)}", note.text or "…"])
        case ChangesCard():
            return changes(note)
    raise TypeError(f"unknown notification {type(note).__name__}")  # pragma: no cover


INLINE_DIFF_MAX = MAX_CONTENT - 200  # a diff shown inline fits one message with its summary


def changes(note: ChangesCard) -> Rendered:
    """Show changes: the summary, then the diff in a code block when short, else attached."""
    texts = [f"🔍 {markdown(note.text)}"]
    texts.append(
        "\n".join("• " + change_line(i.name, i.status, i.added, i.removed, i.note) for i in note.items)
    )
    code = note.diff.replace("```", "ˋˋˋ")
    file = None
    if not note.diff:
        texts.append(f"-# {CHANGES_NO_DIFF}")
    elif _units(code) + 12 <= INLINE_DIFF_MAX:
        texts.append(f"```diff\n{code}```")
    else:
        texts.append(f"-# {CHANGES_ATTACHED.format(file=note.filename)}")
        file = (note.filename, note.diff)
    return Rendered(texts, file=file)


def turn_title(note: TurnCard) -> str:
    return f"💬 **{note.agent}** · {f'round {note.round}' if note.round else 'proposal'}"


def turn_usage(note: TurnCard) -> str:
    return f"-# {note.checkpoint} · {note.tokens_in}+{note.tokens_out} tokens"


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
    return text + " ", allowed


def _due(due_at: datetime | None, decided: str | None) -> list[str]:
    """Discord shows <t:…> in each reader's own time zone."""
    if due_at is None or decided:
        return []
    stamp = int(due_at.replace(tzinfo=UTC).timestamp())
    return [f"-# ⏰ Due <t:{stamp}:f> (<t:{stamp}:R>)"]


def _decided(card: Rendered, decided: str | None) -> Rendered:
    """A decided card loses its buttons; who decided comes first, so no clipping can hide it."""
    if decided:
        return Rendered([f"**{decided}**", *card.texts], card.accent)
    return card


def reply_text(text: str) -> str:
    """A shared-command reply (Slack-style markup) as Discord message content."""
    return clip(markdown(text), MAX_CONTENT) or "…"
