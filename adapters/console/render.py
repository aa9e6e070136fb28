"""Notifications as terminal text. Buttons show a short id the user types to click."""

from __future__ import annotations

from datetime import UTC, datetime

from engine.messages import change_line, progress_bar
from engine.notifications import (
    ApprovalCard,
    ArtifactsCard,
    Button,
    ChangesCard,
    FormCard,
    NoticeCard,
    Notification,
    RunStatusCard,
    TurnCard,
)

SHORT = {
    "approve_start": "s",
    "approve_complete": "a",
    "request_revision": "r",
    "open_form": "f",
    "retry": "t",
    "reject": "x",
    "approve_with_comment": "w",
    "edit_and_approve": "e",
    "reassign": "g",
    "confirm_rollback": "c",
    "keep_rollback": "k",
    "history_page": "h",
    "show_changes": "d",
}
LONG = {v: k for k, v in SHORT.items()}
ICONS = {"info": "•", "success": "✔", "warning": "!", "error": "✖"}


def button_id(b: Button) -> str:
    return f"{SHORT[b.action]}{b.execution_id}" + (f".{b.page}" if b.page is not None else "")


def buttons_line(buttons: list[Button]) -> str:
    return "   ".join(f"[{button_id(b)}] {b.label}" for b in buttons)


def turn_head(agent: str, round_: int) -> str:
    return f"💬 {agent} ({f'round {round_}' if round_ else 'proposal'})"


def render(note: Notification, edited: bool = False) -> str:
    if isinstance(note, TurnCard) and edited:  # its text was streamed: only the usage is new
        return f"      ({note.tokens_in}+{note.tokens_out} tokens)"
    if isinstance(note, ChangesCard):  # printed as is: a diff's own * and ` are content
        return changes(note)
    prefix = "  ↻ " if edited else "  "
    lines: list[str]
    match note:
        case RunStatusCard(run=r):
            now = f" · now: {r.current}" if r.current and r.status in ("in_progress", "paused") else ""
            lines = [
                f"── {r.name} · {r.pipeline_title} ── {r.status.replace('_', ' ')} "
                f"{progress_bar(r.done, r.total)}{now}"
            ]
            prefix = "↻ " if edited else ""
        case ApprovalCard():
            count = f" ({note.approvals}/{note.required} approvals)" if note.required > 1 else ""
            lines = [f"? {note.text}{count}"]
            lines += [f"    {f.label}: {f.value}" for f in note.fields]
        case FormCard():
            lines = [f"✎ {note.text}"]
            if note.feedback:
                lines.append(f"    Feedback: {note.feedback}")
        case ArtifactsCard():
            lines = [f"📎 {note.checkpoint}: {len(note.artifacts)} artifact(s)"]
            for a in note.artifacts:
                lines.append(f"    {a.name}.{a.format} ({a.size} bytes) {a.path}")
                if a.preview:
                    lines += [f"      | {line}" for line in a.preview.splitlines()[:12]]
        case NoticeCard():
            who = " ".join(f"@{m.partition(':')[2]}" for m in note.mentions)
            lines = [f"{ICONS[note.level]} {who + ' ' if who else ''}{note.text}"]
            lines += [f"    ✉ to {d.partition(':')[2]}: {note.text}" for d in note.direct]
        case TurnCard():
            usage = f"{note.tokens_in}+{note.tokens_out} tokens"
            lines = [f"{turn_head(note.agent, note.round)}, {usage}:", *note.text.splitlines()]
    decided = getattr(note, "decided", None)
    lines = [ln.replace("*", "") for text in lines for ln in text.splitlines()]
    if edited and not isinstance(note, RunStatusCard):
        lines = lines[:1]  # an edit only changes the outcome: do not repeat the whole card
    if decided:
        lines.append(f"    → {decided}")
    due: datetime | None = getattr(note, "due_at", None)
    if due is not None and not decided:
        lines.append(f"    Due {local_time(due)}")
    buttons: list[Button] = getattr(note, "buttons", [])
    if buttons:
        lines.append("    " + buttons_line(buttons))
    return "\n".join(
        prefix + (line if i == 0 else "  " + line.lstrip() if not line.startswith("    ") else line)
        for i, line in enumerate(lines)
    )


def changes(note: ChangesCard) -> str:
    lines = [f"  🔍 {note.text.replace('*', '')}"]
    lines += [f"    {change_line(i.name, i.status, i.added, i.removed, i.note)}" for i in note.items]
    lines += [f"    {line}" for line in note.diff.splitlines()]
    return "\n".join(lines)


def local_time(when: datetime) -> str:
    """Naive UTC as ISO 8601 in this terminal's time zone, with its offset."""
    return when.replace(tzinfo=UTC).astimezone().isoformat(timespec="minutes")
