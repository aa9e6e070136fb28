"""Checkpoint forms as Discord modals, and modal submissions back to raw form values.

A modal holds at most five top-level components, so a form is split into pages of five inputs.
The modal's custom_id carries everything needed to handle its submission (``pbm:form:<execution>:
<page>``, ``pbm:revise:<execution>``, each followed by ``:r<revision>:<digest>``, what the clicked
card showed): submissions are routed by that id, never by the in-memory
``Modal`` object, so a modal opened before a restart is still handled after it.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import discord

from adapters.discord.render import clip
from engine import messages
from engine.api import EditableFile, EditSpec, FormSpec, Seen
from engine.definitions import InputField
from engine.forms import FileUpload

PAGE_SIZE = 5
MAX_TITLE = 45
MAX_LABEL = 45
MAX_DESCRIPTION = 100
MAX_PLACEHOLDER = 100
MAX_TEXT = 4000
MAX_OPTIONS = 25
MAX_OPTION = 100
MODAL_TIMEOUT = 15 * 60.0  # only bounds discord.py's in-memory copy; submissions are routed by custom_id
FEEDBACK = "feedback"
MODAL_ID = re.compile(
    r"^pbm:(?P<kind>form|revise|reject|comment|reassign|edit):(?P<id>\d+)(?::(?P<page>\d+))?"
    r"(?::r(?P<revision>\d+):(?P<digest>[0-9a-f]{1,64}))?$"
)
DECISION = "decision"  # the one field of the reject, approve-with-comment and reassign modals
YES_NO = (("yes", "Yes"), ("no", "No"))

Submitted = str | list[str] | list[dict[str, Any]] | None
Download = Callable[[Mapping[str, Any]], Awaitable[bytes]]


@dataclass(frozen=True)
class ModalRef:
    kind: Literal["form", "revise", "reject", "comment", "reassign", "edit"]
    execution_id: int
    page: int = 0
    seen: Seen | None = None  # what the clicked card showed (engine.seen)


def seen_suffix(shown: Seen | None) -> str:
    return f":r{shown.revision}:{shown.digest}" if shown else ""


def parse_seen(m: re.Match[str]) -> Seen | None:
    return Seen(int(m["revision"]), m["digest"]) if m["revision"] is not None else None


def form_modal_id(execution_id: int, page: int, shown: Seen | None = None) -> str:
    return f"pbm:form:{execution_id}:{page}{seen_suffix(shown)}"


def revision_modal_id(execution_id: int, shown: Seen | None = None) -> str:
    return f"pbm:revise:{execution_id}{seen_suffix(shown)}"


def parse_modal_id(custom_id: str) -> ModalRef | None:
    m = MODAL_ID.match(custom_id)
    if m is None or (m["kind"] == "form") != (m["page"] is not None):
        return None
    return ModalRef(m["kind"], int(m["id"]), int(m["page"] or 0), parse_seen(m))  # type: ignore[arg-type]


def pages(inputs: list[InputField]) -> list[list[InputField]]:
    return [inputs[i : i + PAGE_SIZE] for i in range(0, len(inputs), PAGE_SIZE)] or [[]]


def page_of(inputs: list[InputField], input_id: str) -> int:
    for number, page in enumerate(pages(inputs)):
        if any(f.id == input_id for f in page):
            return number
    return 0


class PipebotModal(discord.ui.Modal):
    """A modal whose submission is handled by the client's ``on_interaction`` (by custom_id)."""

    def __init__(self, title: str, custom_id: str) -> None:
        super().__init__(title=clip(title, MAX_TITLE), custom_id=custom_id, timeout=MODAL_TIMEOUT)


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, FileUpload | dict):
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _number_hint(f: InputField) -> str | None:
    if f.min is not None and f.max is not None:
        return f"{f.min:g}–{f.max:g}"
    if f.min is not None:
        return f"≥ {f.min:g}"
    return f"≤ {f.max:g}" if f.max is not None else None


def _item(f: InputField, value: Any) -> tuple[discord.ui.Item[PipebotModal], str | None]:
    """The component for one input and the Label description to show above it."""
    current = value if value is not None else f.default
    described = clip(f.description, MAX_DESCRIPTION) if f.description else None
    if f.type == "file":
        kept = value if isinstance(value, FileUpload) else None
        item: discord.ui.Item[PipebotModal] = discord.ui.FileUpload(
            custom_id=f.id, required=f.required and kept is None, max_values=1
        )
        if kept is not None:
            described = clip(f"Leave empty to keep {kept.filename} ({len(kept.data)} bytes)", MAX_DESCRIPTION)
        return item, described
    if f.type in ("select", "boolean") and len(f.choices or YES_NO) <= MAX_OPTIONS:
        chosen = _text(current)
        pairs = YES_NO if f.type == "boolean" else [(c, c) for c in f.choices or []]
        required = f.required and chosen is None
        options = [
            discord.SelectOption(label=clip(label, MAX_OPTION), value=v, default=v == chosen)
            for v, label in pairs
        ]
        select = discord.ui.Select[PipebotModal](
            custom_id=f.id, options=options, required=required, min_values=1 if required else 0, max_values=1
        )
        return select, described
    paragraph = f.type == "multiline_text"
    limit = min(f.max_length or MAX_TEXT, MAX_TEXT)
    prefill = _text(current)
    placeholder = f.placeholder or (_number_hint(f) if f.type == "number" else None)
    if f.type == "select":  # more choices than a select holds: type one
        placeholder = placeholder or ", ".join(f.choices or [])
    text = discord.ui.TextInput[PipebotModal](
        style=discord.TextStyle.paragraph if paragraph else discord.TextStyle.short,
        custom_id=f.id,
        default=prefill[:limit] if prefill else None,
        placeholder=clip(placeholder, MAX_PLACEHOLDER) if placeholder else None,
        required=f.required and f.default is None,
        max_length=limit,
    )
    return text, described


def form_modal(spec: FormSpec, page: int, shown: Seen | None = None) -> PipebotModal:
    """Page ``page`` of a form, prefilled with ``spec.values`` (the stored values and any draft)."""
    all_pages = pages(spec.inputs)
    fields = all_pages[page]
    suffix = f" ({page + 1}/{len(all_pages)})" if len(all_pages) > 1 else ""
    modal = PipebotModal(
        clip(spec.checkpoint, MAX_TITLE - len(suffix)) + suffix, form_modal_id(spec.execution_id, page, shown)
    )
    intro = f"**Feedback to address:** {spec.feedback}" if spec.feedback else spec.instructions
    if page == 0 and intro and len(fields) < PAGE_SIZE:
        modal.add_item(discord.ui.TextDisplay[Any](clip(intro, MAX_TEXT)))
    for f in fields:
        item, described = _item(f, spec.values.get(f.id))
        modal.add_item(discord.ui.Label(text=clip(f.label, MAX_LABEL), component=item, description=described))
    return modal


def revision_modal(
    execution_id: int, title: str = "Request revision", shown: Seen | None = None
) -> PipebotModal:
    """The feedback dialog of the "Request revision" button (titled with the engine's label)."""
    modal = PipebotModal(title, revision_modal_id(execution_id, shown))
    box = discord.ui.TextInput[PipebotModal](
        style=discord.TextStyle.paragraph, custom_id=FEEDBACK, required=True, max_length=MAX_TEXT
    )
    modal.add_item(discord.ui.Label(text="What should change?", component=box))
    return modal


def decision_modal(action: str, execution_id: int, shown: Seen | None = None) -> PipebotModal:
    """Reject (a reason, required), approve with comment (optional), reassign (a user select)."""
    kind = {"reject": "reject", "approve_with_comment": "comment", "reassign": "reassign"}[action]
    title = {"reject": "Reject", "comment": "Approve with comment", "reassign": "Reassign"}[kind]
    modal = PipebotModal(title, f"pbm:{kind}:{execution_id}{seen_suffix(shown)}")
    item: discord.ui.Item[PipebotModal]
    if kind == "reassign":
        item = discord.ui.UserSelect[PipebotModal](custom_id=DECISION, min_values=1, max_values=1)
        label = messages.REASSIGN_PROMPT
    else:
        item = discord.ui.TextInput[PipebotModal](
            style=discord.TextStyle.paragraph,
            custom_id=DECISION,
            required=kind == "reject",
            max_length=MAX_TEXT,
        )
        label = messages.REASON_PROMPT if kind == "reject" else messages.COMMENT_PROMPT
    modal.add_item(discord.ui.Label(text=clip(label, MAX_LABEL), component=item))
    return modal


# Edit and approve: a modal holds at most five text inputs of 4,000 characters, so a file is cut
# into pages (at a line end when it can be: custom_id ``<output>.<page>.n``, rejoined with a newline;
# else mid-line: ``.c``, rejoined as is); a file that does not fit in what is left is named instead.
EDIT_PAGE = re.compile(r"^(?P<name>[a-z0-9][a-z0-9_-]*)\.(?P<page>\d+)\.(?P<join>[nc])$")


def _cut(text: str) -> list[tuple[str, str]]:
    """``text`` as (page, join) pairs of at most MAX_TEXT characters each."""
    pages: list[tuple[str, str]] = []
    while len(text) > MAX_TEXT:
        at = text.rfind("\n", 0, MAX_TEXT + 1)
        if at > 0:
            pages.append((text[:at], "n"))
            text = text[at + 1 :]
        else:
            pages.append((text[:MAX_TEXT], "c"))
            text = text[MAX_TEXT:]
    return [*pages, (text, "n")]


def edit_layout(
    spec: EditSpec,
) -> tuple[list[tuple[EditableFile, list[tuple[str, str]]]], list[EditableFile]]:
    """The files that fit in one modal (with their pages), and those that do not."""
    for slots in (PAGE_SIZE, PAGE_SIZE - 1):  # one slot goes to the note naming what did not fit
        shown: list[tuple[EditableFile, list[tuple[str, str]]]] = []
        left_out: list[EditableFile] = []
        free = slots
        for f in spec.files:
            cut = _cut(f.text)
            if len(cut) <= free:
                shown.append((f, cut))
                free -= len(cut)
            else:
                left_out.append(f)
        if not left_out or slots < PAGE_SIZE:
            return shown, left_out
    raise AssertionError("unreachable")


def too_long(files: list[EditableFile]) -> list[str]:
    return [
        messages.edit_too_long(f.filename, len(f.text), PAGE_SIZE * MAX_TEXT, f.artifact_id) for f in files
    ]


def edit_modal(spec: EditSpec, shown: Seen | None = None) -> PipebotModal:
    files, left_out = edit_layout(spec)
    shown = shown or Seen(spec.revision, spec.digest)  # an edit names the version it was made on
    modal = PipebotModal("Edit and approve", f"pbm:edit:{spec.execution_id}{seen_suffix(shown)}")
    for f, cut in files:
        for number, (page, join) in enumerate(cut):
            suffix = f" ({number + 1}/{len(cut)})" if len(cut) > 1 else ""
            box = discord.ui.TextInput[PipebotModal](
                style=discord.TextStyle.paragraph,
                custom_id=f"{f.name}.{number}.{join}",
                required=False,
                max_length=MAX_TEXT,
                default=page or None,
            )
            label = clip(f.filename, MAX_LABEL - len(suffix)) + suffix
            modal.add_item(discord.ui.Label(text=label, component=box))
    if left_out:
        modal.add_item(discord.ui.TextDisplay[Any](clip(" ".join(too_long(left_out)), MAX_TEXT)))
    return modal


def edited_texts(submitted: Mapping[str, Submitted]) -> dict[str, str]:
    """The edit modal's pages rejoined into one text per output."""
    parts: dict[str, list[tuple[int, str, str]]] = {}
    for custom_id, value in submitted.items():
        m = EDIT_PAGE.match(custom_id)
        if m is not None:
            parts.setdefault(m["name"], []).append(
                (int(m["page"]), m["join"], value if isinstance(value, str) else "")
            )
    texts = {}
    for name, pages in parts.items():
        pages.sort()
        texts[name] = (
            "".join(text + ("\n" if join == "n" else "") for _, join, text in pages[:-1]) + pages[-1][2]
        )
    return texts


def submitted_values(data: Mapping[str, Any]) -> dict[str, Submitted]:
    """``{custom_id: value}`` of a MODAL_SUBMIT: text, chosen values, or resolved attachments."""
    attachments: Mapping[str, Any] = (data.get("resolved") or {}).get("attachments") or {}
    out: dict[str, Submitted] = {}

    def walk(components: list[Mapping[str, Any]]) -> None:
        for comp in components:
            if comp.get("type") == 1:
                walk(comp.get("components") or [])
            elif comp.get("type") == 18 and comp.get("component"):
                walk([comp["component"]])
            elif "custom_id" in comp:
                if comp.get("type") == 19:
                    out[comp["custom_id"]] = [
                        attachments[i] for i in comp.get("values") or [] if i in attachments
                    ]
                elif "values" in comp:
                    out[comp["custom_id"]] = [str(v) for v in comp["values"]]
                else:
                    out[comp["custom_id"]] = comp.get("value")

    walk(list(data.get("components") or []))
    return out


async def page_values(
    fields: list[InputField], submitted: Mapping[str, Submitted], download: Download
) -> dict[str, Any]:
    """Raw values for the engine: text as typed, the chosen option, a FileUpload; None when empty."""
    values: dict[str, Any] = {}
    for f in fields:
        raw = submitted.get(f.id)
        if isinstance(raw, list):
            if f.type == "file":
                files = [a for a in raw if isinstance(a, Mapping)]
                values[f.id] = (
                    FileUpload(
                        str(files[0].get("filename") or "file"),
                        await download(files[0]),
                        str(files[0].get("content_type") or "application/octet-stream"),
                    )
                    if files
                    else None
                )
            else:
                values[f.id] = str(raw[0]) if raw else None
        else:
            values[f.id] = raw
    return values
