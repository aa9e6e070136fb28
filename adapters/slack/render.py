"""Engine notifications and chat replies as Block Kit, always within Slack's limits.

Slack rejects a whole message when one block breaks a limit (50 blocks, 3000 characters per
section, 2000 per field, 75 per button label), so every piece of text is cut here, safely, rather
than trusting the lengths of what users typed or agents wrote.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from adapters.actions import encode
from adapters.chat import run_line
from engine import messages
from engine.notifications import (
    ApprovalCard,
    ArtifactInfo,
    ArtifactsCard,
    Button,
    FormCard,
    NoticeCard,
    Notification,
    RunStatusCard,
)

Block = dict[str, Any]

MAX_BLOCKS = 50
SECTION_TEXT_MAX = 3000
FIELD_TEXT_MAX = 2000
FIELDS_PER_SECTION = 10
BUTTON_TEXT_MAX = 75
BUTTONS_PER_ACTIONS = 25
FALLBACK_TEXT_MAX = 3900  # Slack truncates notification text past ~4000 characters
PREVIEW_LINES = 12
ICONS = {"info": ":information_source:", "success": ":white_check_mark:", "warning": ":warning:"}
ICONS["error"] = ":x:"


@dataclass
class Rendered:
    text: str  # fallback: notifications, screen readers, clients without Block Kit
    blocks: list[Block] = field(default_factory=list)


def escape(text: str) -> str:
    """Slack reads &, < and > as control characters in mrkdwn and plain text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    # Never leave half an escape (&amp;) or half a code fence behind; close an open fence.
    cut = text[: limit - 4].rstrip("`")
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + ("…```" if cut.count("```") % 2 else "…")


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text or " ", SECTION_TEXT_MAX)}}


def context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(text, SECTION_TEXT_MAX)}]}


def text_sections(text: str, max_blocks: int = MAX_BLOCKS) -> list[Block]:
    """Long text as several sections split on line ends, so nothing is cut mid-list."""
    chunks: list[str] = []
    current = ""
    for line in text.splitlines() or [""]:
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > SECTION_TEXT_MAX and current:
            chunks.append(current)
            current = line
        else:
            current = candidate
    chunks.append(current)
    return [section(c) for c in chunks[:max_blocks]]


def button(b: Button) -> Block:
    element: Block = {
        "type": "button",
        "action_id": encode(b),
        "value": encode(b),
        "text": {"type": "plain_text", "text": truncate(b.label, BUTTON_TEXT_MAX)},
    }
    if b.style:
        element["style"] = b.style
    return element


def actions(buttons: Iterable[Button]) -> list[Block]:
    items = [button(b) for b in buttons]
    return [
        {"type": "actions", "elements": items[i : i + BUTTONS_PER_ACTIONS]}
        for i in range(0, len(items), BUTTONS_PER_ACTIONS)
    ]


def fit(blocks: list[Block], reserved: list[Block] | None = None) -> list[Block]:
    """At most MAX_BLOCKS blocks; `reserved` (buttons, outcome) always survives the cut."""
    tail = reserved or []
    room = MAX_BLOCKS - len(tail)
    if len(blocks) > room:
        blocks = [*blocks[: room - 1], context("… (shortened: too long for one Slack message)")]
    return [*blocks, *tail][:MAX_BLOCKS]


def fallback(text: str) -> str:
    return truncate(text.replace("*", "").strip() or " ", FALLBACK_TEXT_MAX)


# -- notifications ---------------------------------------------------------------------------------


def mention(principal: str, groups: dict[str, str]) -> str:
    """``slack:U1`` as <@U1>; ``slack:@handle`` as <!subteam^ID> when the group's id is known."""
    who = principal.partition(":")[2]
    if not who.startswith("@"):
        return f"<@{who}>"
    group_id = groups.get(who.removeprefix("@"))
    return f"<!subteam^{group_id}>" if group_id else escape(who)


def local_time(when: datetime) -> str:
    """A time each reader sees in their own time zone (the fallback is UTC)."""
    stamp = int(when.replace(tzinfo=UTC).timestamp())
    return f"<!date^{stamp}^{{date_short_pretty}} {{time}}|{when:%Y-%m-%d %H:%M} UTC>"


def card(note: Notification, groups: dict[str, str] | None = None) -> Rendered:
    match note:
        case RunStatusCard():
            return _run(note)
        case ApprovalCard():
            return _approval(note)
        case FormCard():
            return _form(note)
        case ArtifactsCard():
            return artifacts(note, {}, set())
        case NoticeCard():
            who = " ".join(mention(m, groups or {}) for m in note.mentions)
            text = f"{ICONS[note.level]} {who + ' ' if who else ''}{escape(note.text)}"
            return Rendered(fallback(note.text), fit(text_sections(text), actions(note.buttons)))


def _run(note: RunStatusCard) -> Rendered:
    r = note.run
    line = escape(run_line(r))
    blocks = [section(line), context(f"{escape(r.pipeline_title)} · started by {escape(r.started_by)}")]
    return Rendered(fallback(line), blocks)


def _outcome(decided: str | None, buttons: list[Button], due_at: datetime | None = None) -> list[Block]:
    if decided:
        return [context(f":ballot_box_with_check: {escape(decided)}")]
    due = [context(f":alarm_clock: Due {local_time(due_at)}")] if due_at else []
    return due + actions(buttons)


def _approval(note: ApprovalCard) -> Rendered:
    count = f" ({note.approvals}/{note.required} approvals)" if note.required > 1 else ""
    head = escape(note.text) + count
    blocks = text_sections(head)
    for i in range(0, len(note.fields), FIELDS_PER_SECTION):
        chunk = note.fields[i : i + FIELDS_PER_SECTION]
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {
                        "type": "mrkdwn",
                        "text": truncate(f"*{escape(f.label)}*\n{escape(f.value)}", FIELD_TEXT_MAX),
                    }
                    for f in chunk
                ],
            }
        )
    text = head + (f" — {note.decided}" if note.decided else "")
    return Rendered(fallback(text), fit(blocks, _outcome(note.decided, note.buttons, note.due_at)))


def _form(note: FormCard) -> Rendered:
    blocks = text_sections(escape(note.text))
    if note.feedback:
        blocks.append(section("> " + escape(messages.FEEDBACK_TO_ADDRESS.format(feedback=note.feedback))))
    text = note.text + (f" — {note.decided}" if note.decided else "")
    return Rendered(fallback(text), fit(blocks, _outcome(note.decided, note.buttons, note.due_at)))


def artifact_file(a: ArtifactInfo) -> str:
    return f"{a.name}.{a.format}"


def artifacts(note: ArtifactsCard, too_big: dict[int, int], missing: set[int]) -> Rendered:
    """The summary posted with the files: previews of short text files, notes on the others."""
    head = f":paperclip: *{escape(note.checkpoint)}*: {len(note.artifacts)} artifact(s)"
    lines = [head]
    for a in note.artifacts:
        name = escape(artifact_file(a))
        if a.artifact_id in missing:
            lines.append("• " + messages.ARTIFACT_MISSING.format(file=name))
        elif a.artifact_id in too_big:
            size = messages.size_text(too_big[a.artifact_id])
            lines.append(
                "• " + messages.ARTIFACT_TOO_BIG.format(file=name, size=size, artifact_id=a.artifact_id)
            )
        else:
            lines.append(f"• {name} ({messages.size_text(a.size)})")
            if a.preview:
                preview = "\n".join(a.preview.splitlines()[:PREVIEW_LINES]).replace("```", "ˋˋˋ")
                lines.append("```" + truncate(escape(preview), 1200) + "```")
    text = "\n".join(lines)
    return Rendered(truncate(text, FALLBACK_TEXT_MAX), fit(text_sections(text)))


# -- command replies -------------------------------------------------------------------------------


def reply(text: str, buttons: list[Button]) -> Rendered:
    return Rendered(fallback(text), fit(text_sections(escape(text)), actions(buttons)))
