"""Engine notifications and chat replies as Block Kit, always within Slack's limits.

Slack rejects a whole message when one block breaks a limit (50 blocks, 3000 characters per
section, 2000 per field, 75 per button label, 12,000 for all markdown blocks together), so every
piece of text is cut here, safely, rather than trusting the lengths of what users typed or agents
wrote. What agents write (turns, artifact previews) and run summaries go in ``markdown`` blocks,
standard Markdown as the models write it; mrkdwn stays where Block Kit requires it (context,
fields, buttons). Text too long for one message is cut between paragraphs, and the whole text is
attached to the message as a file.
"""

from __future__ import annotations

import re
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
    ChangesCard,
    FormCard,
    NoticeCard,
    Notification,
    RunStatusCard,
    TurnCard,
)

Block = dict[str, Any]

MAX_BLOCKS = 50
SECTION_TEXT_MAX = 3000
FIELD_TEXT_MAX = 2000
FIELDS_PER_SECTION = 10
BUTTON_TEXT_MAX = 75
BUTTONS_PER_ACTIONS = 25
FALLBACK_TEXT_MAX = 3900  # Slack truncates notification text past ~4000 characters
MARKDOWN_MAX = 12_000  # all markdown blocks of one message together
PREVIEW_LINES = 12
ICONS = {"info": ":information_source:", "success": ":white_check_mark:", "warning": ":warning:"}
ICONS["error"] = ":x:"


@dataclass
class Rendered:
    text: str  # fallback: notifications, screen readers, clients without Block Kit
    blocks: list[Block] = field(default_factory=list)
    file: tuple[str, str] | None = None  # (name, text): the whole of what the blocks had to cut


def escape(text: str) -> str:
    """Slack reads &, < and > as control characters in mrkdwn and plain text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# [label](url) and ![alt](url): a label can say anything, so the address is shown instead.
_MD_LINK = re.compile(r"!?\[([^\]\n]*)\]\(\s*<?([^)\s>]*)>?(?:\s+[\"'(][^)\n]*)?\)")
_MD_LINK_DEF = re.compile(r"^( {0,3}\[[^\]\n]+\]):", re.M)  # [ref]: url


def md_escape(text: str) -> str:
    """User or model text for a markdown block: no mention, no broadcast, no disguised link.

    ``<@U…>``, ``<!here>`` and ``<url|label>`` lose their brackets as in mrkdwn; a Markdown link
    shows where it goes (``label (url)``); reference definitions stop being definitions.
    """
    text = escape(text)
    text = _MD_LINK.sub(lambda m: m[2] if m[1].strip() in ("", m[2]) else f"{m[1]} ({m[2]})", text)
    return _MD_LINK_DEF.sub(r"\1 :", text)


def _paragraphs(text: str) -> list[str]:
    """Markdown split between paragraphs (blank lines), never inside a code fence."""
    parts: list[str] = []
    current: list[str] = []
    fenced = False
    for line in text.splitlines(keepends=True):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        current.append(line)
        if not fenced and not line.strip():
            parts.append("".join(current))
            current = []
    if current:
        parts.append("".join(current))
    return parts


def markdown_head(text: str, budget: int) -> tuple[str, bool]:
    """As many whole paragraphs of escaped ``text`` as fit ``budget``; whether any were left out."""
    out = ""
    for part in _paragraphs(text):
        shown = md_escape(part)
        if len(out) + len(shown) > budget:
            if not out:  # one paragraph longer than the budget: cut it at a line end
                out = truncate(shown[: budget - 8].rsplit("\n", 1)[0], budget - 8)
                if out.count("```") % 2:
                    out += "\n```"
            return out.rstrip() or "…", True
        out += shown
    return out.rstrip() or " ", False


def markdown_block(text: str) -> Block:
    return {"type": "markdown", "text": text}


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
    """The top-level ``text`` (what notifications show) of raw `text`: escaped like the blocks,
    so nobody's words can ping (``<!channel>``, ``<@U…>``) or disguise a link."""
    return truncate(escape(text.replace("*", "").strip()) or " ", FALLBACK_TEXT_MAX)


# -- notifications ---------------------------------------------------------------------------------


def mention(principal: str, groups: dict[str, str]) -> str:
    """``slack:U1`` as <@U1>; ``slack:@handle`` as <!subteam^ID> when the group's id is known."""
    who = principal.partition(":")[2]
    if not who.startswith("@"):
        return f"<@{who}>" if who.isalnum() else escape(who)  # never let an id close the mention
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
            if note.mentions:  # mrkdwn: the one place pipebot mentions people (<@U…>, <!subteam^…>)
                who = " ".join(mention(m, groups or {}) for m in note.mentions)
                text = f"{ICONS[note.level]} {who} {escape(note.text)}"
                return Rendered(fallback(note.text), fit(text_sections(text), actions(note.buttons)))
            body, cut = markdown_head(slack_bold(note.text), MARKDOWN_MAX - 40)
            blocks = [markdown_block(f"{ICONS[note.level]} {body}")]
            if cut:
                blocks.append(context("… (shortened: too long for one Slack message)"))
            return Rendered(fallback(note.text), fit(blocks, actions(note.buttons)))
        case TurnCard():
            return turn(note)
        case ChangesCard():
            return changes(note)


_BOLD = re.compile(r"(?<![*\w])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![*\w])")
_CODE = re.compile(r"(```.*?```|`[^`\n]*`)", re.S)


def slack_bold(text: str) -> str:
    """The shared wording's *bold* as Markdown's **bold**, leaving code alone."""
    parts = _CODE.split(text)
    return "".join(p if i % 2 else _BOLD.sub(r"**\1**", p) for i, p in enumerate(parts))


def _run(note: RunStatusCard) -> Rendered:
    r = note.run
    summary = md_escape(slack_bold(run_line(r)))
    blocks = [
        markdown_block(summary),
        context(f"{escape(r.pipeline_title)} · started by {escape(r.started_by)}"),
    ]
    return Rendered(fallback(run_line(r)), blocks)


def turn_title(note: TurnCard) -> str:
    said = f"round {note.round}" if note.round else "proposal"
    return f"**{md_escape(note.agent)}** · {said}"


def turn_usage(note: TurnCard) -> str:
    return f"{escape(note.checkpoint)} · {note.tokens_in}+{note.tokens_out} tokens"


def turn_file(note: TurnCard) -> str:
    return f"{note.agent}-round{note.round}.md"


def turn(note: TurnCard) -> Rendered:
    """An agent's turn: its Markdown, its usage; the whole turn as a file when it is too long."""
    title = turn_title(note)
    body, cut = markdown_head(note.text, MARKDOWN_MAX - len(title) - 2)
    blocks = [markdown_block(f"{title}\n\n{body}"), context(turn_usage(note))]
    if cut:
        blocks.append(context(f"The whole turn is attached: {escape(turn_file(note))}"))
    file = (turn_file(note), note.text) if cut else None
    return Rendered(fallback(f"{note.agent}: {note.text}"), blocks, file)


def _outcome(decided: str | None, buttons: list[Button], due_at: datetime | None = None) -> list[Block]:
    if decided:
        return [context(f":ballot_box_with_check: {escape(decided)}")]
    due = [context(f":alarm_clock: Due {local_time(due_at)}")] if due_at else []
    return due + actions(buttons)


def _approval(note: ApprovalCard) -> Rendered:
    count = f" ({note.approvals}/{note.required} approvals)" if note.required > 1 else ""
    blocks = [markdown_block(markdown_head(slack_bold(note.text), MARKDOWN_MAX - 100)[0] + count)]
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
    text = note.text + count + (f" — {note.decided}" if note.decided else "")
    return Rendered(fallback(text), fit(blocks, _outcome(note.decided, note.buttons, note.due_at)))


def _form(note: FormCard) -> Rendered:
    blocks = [markdown_block(markdown_head(slack_bold(note.text), MARKDOWN_MAX // 2)[0])]
    if note.feedback:  # quoted, line by line (the quote marks are added after escaping)
        feedback = messages.FEEDBACK_TO_ADDRESS.format(feedback=note.feedback)
        said, _ = markdown_head(feedback, MARKDOWN_MAX // 3)
        blocks.append(markdown_block("\n".join("> " + line for line in said.splitlines())))
    text = note.text + (f" — {note.decided}" if note.decided else "")
    return Rendered(fallback(text), fit(blocks, _outcome(note.decided, note.buttons, note.due_at)))


def artifact_file(a: ArtifactInfo) -> str:
    return f"{a.name}.{a.format}"


def artifacts(note: ArtifactsCard, too_big: dict[int, int], missing: set[int]) -> Rendered:
    """The summary shared with the files: previews of short text files (Markdown as Markdown,
    other formats as code), notes on the others; all within one message's markdown budget."""
    head = f":paperclip: *{escape(note.checkpoint)}*: {len(note.artifacts)} artifact(s)"
    lines = [head]
    parts = [f"📎 **{md_escape(note.checkpoint)}**: {len(note.artifacts)} artifact(s)"]
    for a in note.artifacts:
        name = escape(artifact_file(a))
        if a.artifact_id in missing:
            item = messages.ARTIFACT_MISSING.format(file=name)
        elif a.artifact_id in too_big:
            size = messages.size_text(too_big[a.artifact_id])
            item = messages.ARTIFACT_TOO_BIG.format(file=name, size=size, artifact_id=a.artifact_id)
        else:
            item = f"{name} ({messages.size_text(a.size)})"
        lines.append("• " + item)
        parts.append("- " + md_escape(item.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")))
        if a.preview and a.artifact_id not in missing and a.artifact_id not in too_big:
            preview = a.preview.replace("```", "ˋˋˋ")
            parts.append(preview if a.format == "md" else f"```{a.format}\n{preview}\n```")
    budget = MARKDOWN_MAX
    shown: list[str] = []
    for part in parts:
        text, cut = (part, False) if part.startswith(("📎", "- ")) else markdown_head(part, budget - 60)
        if len(text) + 2 > budget:
            break
        shown.append(text + ("\n…" if cut else ""))
        budget -= len(shown[-1]) + 2
    fallback_text = truncate("\n".join(lines), FALLBACK_TEXT_MAX)
    return Rendered(fallback_text, [markdown_block("\n\n".join(shown))])


def changes(note: ChangesCard) -> Rendered:
    """Show changes: what changed in each artifact, then the diff as a code block when it fits
    one section, else attached whole as a .diff file (files are never read as mrkdwn)."""
    lines = [f":mag: {escape(note.text)}"]
    lines += [
        "• " + escape(messages.change_line(i.name, i.status, i.added, i.removed, i.note)) for i in note.items
    ]
    blocks = text_sections("\n".join(lines), MAX_BLOCKS - 2)
    code = escape(note.diff.replace("```", "ˋˋˋ"))
    file = None
    if not note.diff:
        blocks.append(context(escape(messages.CHANGES_NO_DIFF)))
    elif len(code) + 8 <= SECTION_TEXT_MAX:
        blocks.append(section(f"```\n{code}```"))
    else:
        blocks.append(context(escape(messages.CHANGES_ATTACHED.format(file=note.filename))))
        file = (note.filename, note.diff)
    return Rendered(fallback(note.text), fit(blocks), file)


# -- command replies -------------------------------------------------------------------------------


def reply(text: str, buttons: list[Button]) -> Rendered:
    return Rendered(fallback(text), fit(text_sections(escape(text)), actions(buttons)))
