"""Checkpoint forms as Slack modals, and their submissions back to `engine.submit_form`.

One input block per form input, whose block_id and action_id are the input's id: the engine's
`FormInvalid.errors` are keyed by input id, so they map 1:1 onto Slack's ``response_action:
errors`` (keyed by block_id). The modal's private_metadata carries the execution id and what the
clicked card showed (``42:0:<digest>``), so a form opened before a restart is still submitted to
the right checkpoint, and one opened from an out-of-date card is refused.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import aiohttp

from adapters.slack.context import SlackContext
from adapters.slack.render import Block, escape, section, truncate
from engine import messages
from engine.api import EditSpec, FormSpec, Seen
from engine.definitions import InputField
from engine.errors import EditInvalid, FormInvalid, PipebotError
from engine.forms import FileUpload

log = logging.getLogger("pipebot.slack")

FORM_CALLBACK = "pb_form"
FEEDBACK_CALLBACK = "pb_feedback"
FEEDBACK_BLOCK = "feedback"
# Decisions that ask for a word first: the reason of a rejection, an approval's comment, a new approver.
REJECT_CALLBACK, COMMENT_CALLBACK, REASSIGN_CALLBACK = "pb_reject", "pb_comment", "pb_reassign"
DECISION_CALLBACKS = (REJECT_CALLBACK, COMMENT_CALLBACK, REASSIGN_CALLBACK)
DECISION_BLOCK = "decision"
# Edit and approve: one input per editable file (block_id = the output's name), then a comment.
EDIT_CALLBACK, EDIT_COMMENT_BLOCK = "pb_edit", "_comment"  # no output is named "_comment"
TITLE_MAX = 24
LABEL_MAX = 2000
TEXT_INPUT_MAX = 3000  # plain_text_input max_length: Slack's own ceiling
DOWNLOAD_TIMEOUT = 2.0  # the submission must be answered within 3 s
METADATA = re.compile(r"^(?P<id>\d+)(?::(?P<revision>\d+):(?P<digest>[0-9a-f]{1,64}))?$")


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": truncate(text, limit)}


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _element(f: InputField, current: Any) -> dict[str, Any]:
    el: dict[str, Any] = {"action_id": f.id}
    if f.type in ("text", "multiline_text"):
        el["type"] = "plain_text_input"
        el["multiline"] = f.type == "multiline_text"
        el["max_length"] = min(f.max_length or TEXT_INPUT_MAX, TEXT_INPUT_MAX)
        if current not in (None, ""):
            el["initial_value"] = str(current)[: el["max_length"]]
    elif f.type == "number":
        numbers = [v for v in (f.min, f.max, current) if isinstance(v, int | float)]
        el["type"] = "number_input"
        el["is_decimal_allowed"] = any(not float(v).is_integer() for v in numbers)
        if f.min is not None:
            el["min_value"] = _number_text(f.min)
        if f.max is not None:
            el["max_value"] = _number_text(f.max)
        if isinstance(current, int | float) and not isinstance(current, bool):
            el["initial_value"] = _number_text(current)
    elif f.type == "boolean":
        option = {"text": _plain(f.label, 75), "value": "yes"}
        el["type"] = "checkboxes"
        el["options"] = [option]
        if current is True or str(current).lower() in ("yes", "true"):
            el["initial_options"] = [option]
    elif f.type == "select":
        options = [{"text": _plain(c, 75), "value": c[:150]} for c in (f.choices or [])][:100]
        el["type"] = "static_select"
        el["options"] = options
        chosen = [o for o in options if o["value"] == current]
        if chosen:
            el["initial_option"] = chosen[0]
    else:  # file
        el["type"] = "file_input"
        el["max_files"] = 1
    if f.placeholder and el["type"] in ("plain_text_input", "number_input", "static_select"):
        el["placeholder"] = _plain(f.placeholder, 150)
    return el


def metadata(execution_id: int, shown: Seen | None) -> str:
    """The modal's private_metadata: the execution and what the clicked card showed."""
    return f"{execution_id}:{shown.revision}:{shown.digest}" if shown else str(execution_id)


def parse_metadata(view: dict[str, Any]) -> tuple[int, Seen | None] | None:
    m = METADATA.match(str(view.get("private_metadata") or ""))
    if m is None:
        return None
    shown = Seen(int(m["revision"]), m["digest"]) if m["revision"] is not None else None
    return int(m["id"]), shown


def modal(spec: FormSpec, shown: Seen | None = None) -> dict[str, Any]:
    blocks: list[Block] = []
    intro = f"*{escape(spec.checkpoint)}* · {escape(spec.run)}"
    if spec.instructions:
        intro += "\n" + escape(spec.instructions)
    blocks.append(section(intro))
    if spec.feedback:
        blocks.append(section("> " + escape(messages.FEEDBACK_TO_ADDRESS.format(feedback=spec.feedback))))
    for f in spec.inputs:
        current = spec.values.get(f.id, f.default)
        block: Block = {
            "type": "input",
            "block_id": f.id,
            "label": _plain(f.label, LABEL_MAX),
            "element": _element(f, current),
            # Slack enforces required inputs itself; a required checkbox must be ticked.
            "optional": not f.required,
        }
        if f.description:
            block["hint"] = _plain(f.description, LABEL_MAX)
        blocks.append(block)
    return {
        "type": "modal",
        "callback_id": FORM_CALLBACK,
        "private_metadata": metadata(spec.execution_id, shown),
        "title": _plain(spec.checkpoint, TITLE_MAX),
        "submit": _plain("Submit", TITLE_MAX),
        "close": _plain("Cancel", TITLE_MAX),
        "blocks": blocks[:100],
    }


def feedback_modal(execution_id: int, shown: Seen | None = None) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": FEEDBACK_CALLBACK,
        "private_metadata": metadata(execution_id, shown),
        "title": _plain("Request revision", TITLE_MAX),
        "submit": _plain("Send", TITLE_MAX),
        "close": _plain("Cancel", TITLE_MAX),
        "blocks": [
            {
                "type": "input",
                "block_id": FEEDBACK_BLOCK,
                "label": _plain(messages.FEEDBACK_PROMPT, LABEL_MAX),
                "element": {
                    "type": "plain_text_input",
                    "action_id": FEEDBACK_BLOCK,
                    "multiline": True,
                    "max_length": TEXT_INPUT_MAX,
                },
            }
        ],
    }


def decision_modal(action: str, execution_id: int, shown: Seen | None = None) -> dict[str, Any]:
    """Reject (a reason, required), approve with comment (optional), reassign (a users_select)."""
    element: dict[str, Any]
    if action == "reassign":
        callback, title, submit, label = REASSIGN_CALLBACK, "Reassign", "Hand over", messages.REASSIGN_PROMPT
        element = {"type": "users_select", "action_id": DECISION_BLOCK}
    else:
        callback, title, submit, label = (
            (REJECT_CALLBACK, "Reject", "Reject", messages.REASON_PROMPT)
            if action == "reject"
            else (COMMENT_CALLBACK, "Approve", "Approve", messages.COMMENT_PROMPT)
        )
        element = {
            "type": "plain_text_input",
            "action_id": DECISION_BLOCK,
            "multiline": True,
            "max_length": TEXT_INPUT_MAX,
        }
    return {
        "type": "modal",
        "callback_id": callback,
        "private_metadata": metadata(execution_id, shown),
        "title": _plain(title, TITLE_MAX),
        "submit": _plain(submit, TITLE_MAX),
        "close": _plain("Cancel", TITLE_MAX),
        "blocks": [
            {
                "type": "input",
                "block_id": DECISION_BLOCK,
                "label": _plain(label, LABEL_MAX),
                "element": element,
                "optional": callback == COMMENT_CALLBACK,
            }
        ],
    }


def too_long(spec: EditSpec) -> list[str]:
    """What the modal says of each file too long for one Slack text input."""
    return [
        messages.edit_too_long(f.filename, len(f.text), TEXT_INPUT_MAX, f.artifact_id)
        for f in spec.files
        if len(f.text) > TEXT_INPUT_MAX
    ]


def edit_modal(spec: EditSpec, shown: Seen | None = None) -> dict[str, Any]:
    """Each file that fits in a text input (3,000 characters), prefilled; the others are named."""
    blocks: list[Block] = [section(f"*{escape(spec.checkpoint)}* · {escape(spec.run)}")]
    for f in spec.files:
        if len(f.text) > TEXT_INPUT_MAX:
            continue
        element: dict[str, Any] = {
            "type": "plain_text_input",
            "action_id": f.name,
            "multiline": True,
            "max_length": TEXT_INPUT_MAX,
        }
        if f.text:
            element["initial_value"] = f.text
        blocks.append(
            {"type": "input", "block_id": f.name, "label": _plain(f.filename, LABEL_MAX), "element": element}
        )
    blocks += [section(escape(line)) for line in too_long(spec)]
    blocks.append(
        {
            "type": "input",
            "block_id": EDIT_COMMENT_BLOCK,
            "label": _plain(messages.COMMENT_PROMPT, LABEL_MAX),
            "element": {
                "type": "plain_text_input",
                "action_id": EDIT_COMMENT_BLOCK,
                "max_length": TEXT_INPUT_MAX,
            },
            "optional": True,
        }
    )
    return {
        "type": "modal",
        "callback_id": EDIT_CALLBACK,
        # An edit names the version it was made on (the engine refuses one that does not).
        "private_metadata": metadata(spec.execution_id, shown or Seen(spec.revision, spec.digest)),
        "title": _plain("Edit and approve", TITLE_MAX),
        "submit": _plain("Approve", TITLE_MAX),
        "close": _plain("Cancel", TITLE_MAX),
        "blocks": blocks[:100],
    }


def notice_view(title: str, text: str) -> dict[str, Any]:
    """What replaces a modal when the engine refuses it (already submitted, run over, ...)."""
    return {
        "type": "modal",
        "title": _plain(title, TITLE_MAX),
        "close": _plain("Close", TITLE_MAX),
        "blocks": [section(escape(text))],
    }


# -- submissions -----------------------------------------------------------------------------------


def raw_values(state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """``view.state.values`` as the engine's raw values, plus the file objects to fetch."""
    values: dict[str, Any] = {}
    files: dict[str, dict[str, Any]] = {}
    for block_id, elements in state.items():
        for el in elements.values():
            kind = el.get("type")
            if kind in ("plain_text_input", "number_input"):
                values[block_id] = el.get("value")
            elif kind == "checkboxes":
                values[block_id] = bool(el.get("selected_options"))
            elif kind == "static_select":
                option = el.get("selected_option")
                values[block_id] = option.get("value") if option else None
            elif kind == "file_input":
                chosen = el.get("files") or []
                values[block_id] = None
                if chosen:
                    files[block_id] = chosen[0]
    return values, files


async def fetch_file(ctx: SlackContext, file: dict[str, Any], limit: int) -> FileUpload | str:
    """Download a file_input file with the bot token (Slack's file URLs are private)."""
    try:
        size = int(file.get("size") or 0)
    except (TypeError, ValueError):
        return messages.FILE_UNAVAILABLE  # not a file Slack described
    if size > limit:
        return messages.file_too_big(size, limit)  # do not download what will be refused
    url = file.get("url_private_download") or file.get("url_private")
    if not url:
        return messages.FILE_UNAVAILABLE
    headers = {"Authorization": f"Bearer {ctx.bot_token}"}
    try:
        timeout = aiohttp.ClientTimeout(total=DOWNLOAD_TIMEOUT)
        async with ctx.http.get(url, headers=headers, timeout=timeout) as resp:
            # Without a valid token Slack answers 200 with its HTML sign-in page.
            if resp.status != 200 or resp.content_type == "text/html":
                log.warning("file download %s answered %s %s", file.get("id"), resp.status, resp.content_type)
                return messages.FILE_UNAVAILABLE
            data = await resp.content.read(limit + 1)
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("file download %s failed: %r", file.get("id"), exc)
        return messages.FILE_UNAVAILABLE
    name = str(file.get("name") or file.get("title") or "upload")
    return FileUpload(name, data, str(file.get("mimetype") or "application/octet-stream"))


def _unreadable(view: dict[str, Any]) -> dict[str, Any]:
    title = (view.get("title") or {}).get("text") if isinstance(view.get("title"), dict) else None
    return {"response_action": "update", "view": notice_view(str(title or "Form"), messages.UNREADABLE_FORM)}


async def submit(ctx: SlackContext, body: dict[str, Any]) -> dict[str, Any] | None:
    """Submit the form; the answer for Slack: None (close the modal) or a response_action."""
    view = body["view"]
    target = parse_metadata(view)
    if target is None:
        return _unreadable(view)
    execution_id, shown = target
    user = body["user"]
    values, files = raw_values(view["state"]["values"])
    errors: dict[str, str] = {}
    limit = ctx.engine.config.max_file_bytes
    for block_id, file in files.items():
        fetched = await fetch_file(ctx, file, limit)
        if isinstance(fetched, str):
            errors[block_id] = fetched
        else:
            values[block_id] = fetched
    if errors:
        return {"response_action": "errors", "errors": errors}
    actor = await ctx.directory.actor(user["id"], user.get("username"))
    try:
        await ctx.call(ctx.engine.submit_form, execution_id, actor, values, shown)
    except FormInvalid as exc:
        return {"response_action": "errors", "errors": exc.errors}
    except PipebotError as exc:
        return {"response_action": "update", "view": notice_view(str(view["title"]["text"]), str(exc))}
    return None


async def submit_feedback(ctx: SlackContext, body: dict[str, Any]) -> dict[str, Any] | None:
    view = body["view"]
    target = parse_metadata(view)
    if target is None:
        return _unreadable(view)
    execution_id, shown = target
    user = body["user"]
    feedback = (view["state"]["values"].get(FEEDBACK_BLOCK, {}).get(FEEDBACK_BLOCK) or {}).get("value") or ""
    actor = await ctx.directory.actor(user["id"], user.get("username"))
    try:
        await ctx.call(ctx.engine.request_revision, execution_id, actor, feedback, shown)
    except PipebotError as exc:
        # Shown under the feedback box: a refusal (not an approver, no revisions left) or a bad value.
        return {"response_action": "errors", "errors": {FEEDBACK_BLOCK: str(exc)[:2000]}}
    return None


async def submit_decision(ctx: SlackContext, body: dict[str, Any]) -> dict[str, Any] | None:
    """A reject, approve-with-comment or reassign modal: the engine decides; refusals stay in it."""
    view = body["view"]
    target = parse_metadata(view)
    if target is None:
        return _unreadable(view)
    execution_id, shown = target
    user = body["user"]
    value = (view["state"]["values"].get(DECISION_BLOCK, {}).get(DECISION_BLOCK)) or {}
    actor = await ctx.directory.actor(user["id"], user.get("username"))
    engine = ctx.engine
    try:
        if view["callback_id"] == REJECT_CALLBACK:
            await ctx.call(engine.reject, execution_id, actor, value.get("value") or "", shown)
        elif view["callback_id"] == COMMENT_CALLBACK:
            await ctx.call(engine.approve, execution_id, actor, value.get("value"), shown)
        else:
            chosen = str(value.get("selected_user") or "")
            if not chosen:
                return {"response_action": "errors", "errors": {DECISION_BLOCK: "Choose someone."}}
            to = await ctx.directory.actor(chosen)
            await ctx.call(engine.reassign, execution_id, actor, to)
    except PipebotError as exc:
        return {"response_action": "errors", "errors": {DECISION_BLOCK: str(exc)[:2000]}}
    return None


async def submit_edit(ctx: SlackContext, body: dict[str, Any]) -> dict[str, Any] | None:
    """Edit and approve: the engine checks each edited file; its problems stay under the file."""
    view = body["view"]
    target = parse_metadata(view)
    if target is None:
        return _unreadable(view)
    execution_id, shown = target
    texts: dict[str, str] = {}
    comment: str | None = None
    for block_id, elements in view["state"]["values"].items():
        element: dict[str, Any] = next(iter(elements.values()), {})
        value = element.get("value")
        if block_id == EDIT_COMMENT_BLOCK:
            comment = value
        else:
            texts[block_id] = value or ""
    user = body["user"]
    actor = await ctx.directory.actor(user["id"], user.get("username"))
    try:
        await ctx.call(ctx.engine.edit_and_approve, execution_id, actor, texts, shown, comment)
    except EditInvalid as exc:
        return {"response_action": "errors", "errors": {k: v[:2000] for k, v in exc.errors.items()}}
    except PipebotError as exc:
        return {"response_action": "update", "view": notice_view("Edit and approve", str(exc))}
    return None
