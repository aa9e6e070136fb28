"""Block Kit validation for the loopback fake Slack Web API (`tests.fakes.slack_api`).

Real Slack rejects malformed Block Kit with `invalid_blocks` (messages) or `invalid_arguments`
(views), listing each violation as ``"<reason> [json-pointer:/blocks/3/text]"`` in
``response_metadata.messages``. This module reproduces that so a bug in how the bot builds its
messages and modals fails in tests, not in front of users.

Two layers of checks run on every block:

* slack_sdk's own models: `Block.parse(...)` then `to_dict()`, which runs every `JsonValidator`
  recursively (lengths, required fields, element types), and a round trip comparison: a field that
  the model drops is a field Slack does not know (typo, wrong nesting, or a JSON ``null``).
* the Slack limits and surface rules that slack_sdk does not check: blocks per surface, block_id
  uniqueness, input blocks only in modals/home tabs, plain_text where Slack demands it, option
  value lengths, initial options that must be among the options, number_input's required
  `is_decimal_allowed`, modal `submit` required with input blocks, request-only view fields.

Every function returns a list of violation strings (empty when valid); it never raises.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from typing import Any, Literal

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

Surface = Literal["message", "modal", "home"]
# What must never reach a markdown block unescaped: mentions and broadcasts (<@U…>, <!here>,
# <#C…>, <!subteam^…>), <url|label> links, and Markdown links whose label hides the address.
UNESCAPED_MENTION = re.compile(r"<[@#!][^>]*>|<https?:[^>]*>")
DISGUISED_LINK = re.compile(r"\[([^\]\n]+)\]\(([^)\s]+)[^)]*\)")

MAX_BLOCKS: dict[Surface, int] = {"message": 50, "modal": 100, "home": 100}
MESSAGE_TEXT_MAX = 40_000
SECTION_TEXT_MAX = 3000
SECTION_FIELD_MAX = 2000
SECTION_FIELDS_MAX = 10
HEADER_TEXT_MAX = 150
BUTTON_TEXT_MAX = 75
BUTTON_VALUE_MAX = 2000
URL_MAX = 3000
ACTION_ID_MAX = 255
BLOCK_ID_MAX = 255
OPTION_TEXT_MAX = 75
OPTION_VALUE_MAX = 150
LABEL_MAX = 2000
VIEW_TITLE_MAX = 24
VIEW_BUTTON_MAX = 24
PRIVATE_METADATA_MAX = 3000
CALLBACK_ID_MAX = 255
PLAIN_TEXT_INPUT_MAX = 3000
MARKDOWN_TOTAL_MAX = 12_000  # all markdown blocks of one payload together
FILE_INPUT_MAX_FILES = 10

INPUT_ELEMENT_TYPES = frozenset(
    {"plain_text_input", "number_input", "email_text_input", "url_text_input", "rich_text_input"}
    | {"checkboxes", "radio_buttons", "static_select", "multi_static_select", "external_select"}
    | {"multi_external_select", "users_select", "multi_users_select", "conversations_select"}
    | {"multi_conversations_select", "channels_select", "multi_channels_select", "file_input"}
    | {"datepicker", "timepicker", "datetimepicker"}
)
# Elements that only make sense inside an input block (not in actions blocks or as accessories).
INPUT_ONLY_ELEMENT_TYPES = frozenset(
    {"plain_text_input", "number_input", "email_text_input", "url_text_input", "file_input"}
)
# Fields a client may send in views.open/push/update/publish. `id`, `hash`, `state`, `team_id`...
# come back in responses and payloads but are rejected when sent.
VIEW_REQUEST_FIELDS = frozenset(
    {"type", "title", "blocks", "close", "submit", "private_metadata", "callback_id", "external_id"}
    | {"clear_on_close", "notify_on_close", "submit_disabled"}
)
_OPTION_LIMITS: dict[str, int] = {
    "checkboxes": 10,
    "radio_buttons": 10,
    "static_select": 100,
    "multi_static_select": 100,
    "overflow": 5,
}


def _at(reason: str, pointer: str) -> str:
    return f"{reason} [json-pointer:{pointer}]"


def decode_json_arg(value: object) -> object:
    """Form-encoded calls carry `blocks`, `view`, `files`... as JSON strings; JSON calls as values."""
    if isinstance(value, str):
        return json.loads(value)
    return value


def _text_of(obj: object) -> str | None:
    if isinstance(obj, Mapping) and isinstance(obj.get("text"), str):
        return str(obj["text"])
    return None


class _Checker:
    markdown_total = 0

    def __init__(self, surface: Surface) -> None:
        self.surface = surface
        self.errors: list[str] = []

    def add(self, reason: str, pointer: str) -> None:
        msg = _at(reason, pointer)
        if msg not in self.errors:
            self.errors.append(msg)

    # -- text objects -------------------------------------------------------------------------
    def text_obj(self, obj: object, pointer: str, *, max_len: int, plain_only: bool = False) -> None:
        if not isinstance(obj, Mapping):
            self.add("must be a text object", pointer)
            return
        kind = obj.get("type")
        if kind not in ("plain_text", "mrkdwn") or (plain_only and kind != "plain_text"):
            allowed = "plain_text" if plain_only else "plain_text or mrkdwn"
            self.add(f"text object type must be {allowed}, got {kind!r}", f"{pointer}/type")
        text = obj.get("text")
        if not isinstance(text, str) or not text:
            self.add("must be more than 0 characters", f"{pointer}/text")
        elif len(text) > max_len:
            self.add(f"must be less than {max_len + 1} characters (got {len(text)})", f"{pointer}/text")

    def walk_text_objects(self, node: object, pointer: str) -> None:
        """Every plain_text/mrkdwn object anywhere must carry non-empty text."""
        if isinstance(node, Mapping):
            if node.get("type") in ("plain_text", "mrkdwn"):
                text = node.get("text")
                if not isinstance(text, str) or not text:
                    self.add("must be more than 0 characters", f"{pointer}/text")
            for key, child in node.items():
                self.walk_text_objects(child, f"{pointer}/{key}")
        elif isinstance(node, list):
            for i, child in enumerate(node):
                self.walk_text_objects(child, f"{pointer}/{i}")

    # -- slack_sdk models ---------------------------------------------------------------------
    def sdk_block(self, block: Mapping[str, Any], pointer: str, *, report_invalid: bool) -> None:
        """slack_sdk's validators (reported when the precise checks found nothing) + unknown fields."""
        try:
            parsed = Block.parse(copy.deepcopy(dict(block)))
            if parsed is None:
                self.add(f"unsupported block type {block.get('type')!r}", f"{pointer}/type")
                return
            rendered = parsed.to_dict()
        except SlackObjectFormationError as exc:
            if report_invalid:
                self.add(str(exc), pointer)
            return
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            if report_invalid:
                self.add(f"invalid {block.get('type')} block: {exc}", pointer)
            return
        self.diff(block, rendered, pointer)

    def diff(self, sent: object, rendered: object, pointer: str) -> None:
        """Fields that slack_sdk's models drop are fields Slack does not accept."""
        if isinstance(sent, Mapping) and isinstance(rendered, Mapping):
            for key, value in sent.items():
                if value is None:
                    self.add(f"null is not allowed for {key!r}", f"{pointer}/{key}")
                elif key not in rendered:
                    if value in ([], {}, ""):
                        continue
                    self.add(f"unsupported field {key!r}", f"{pointer}/{key}")
                else:
                    self.diff(value, rendered[key], f"{pointer}/{key}")
        elif isinstance(sent, list) and isinstance(rendered, list):
            for i, (s, r) in enumerate(zip(sent, rendered, strict=False)):
                if r is None and s is not None:
                    kind = s.get("type") if isinstance(s, Mapping) else type(s).__name__
                    self.add(f"unsupported element {kind!r}", f"{pointer}/{i}")
                else:
                    self.diff(s, r, f"{pointer}/{i}")

    # -- blocks -------------------------------------------------------------------------------
    def blocks(self, blocks: object, pointer: str) -> None:
        if not isinstance(blocks, list):
            self.add("blocks must be an array", pointer)
            return
        limit = MAX_BLOCKS[self.surface]
        if len(blocks) > limit:
            self.add(f"no more than {limit} items allowed (got {len(blocks)})", pointer)
        seen_ids: dict[str, int] = {}
        for i, block in enumerate(blocks):
            bp = f"{pointer}/{i}"
            if not isinstance(block, Mapping):
                self.add("block must be an object", bp)
                continue
            block_id = block.get("block_id")
            if isinstance(block_id, str):
                if block_id in seen_ids:
                    self.add(f"duplicate block_id {block_id!r} (also block {seen_ids[block_id]})", bp)
                seen_ids.setdefault(block_id, i)
            self.block(block, bp)

    def block(self, block: Mapping[str, Any], pointer: str) -> None:
        kind = block.get("type")
        if not isinstance(kind, str):
            self.add("missing required field: type", pointer)
            return
        block_id = block.get("block_id")
        if block_id is not None and (not isinstance(block_id, str) or not 0 < len(block_id) <= BLOCK_ID_MAX):
            self.add(f"block_id must be a string of 1 to {BLOCK_ID_MAX} characters", f"{pointer}/block_id")
        before = len(self.errors)
        self.walk_text_objects(block, pointer)
        if kind == "section":
            self.section(block, pointer)
        elif kind == "header":
            self.text_obj(block.get("text"), f"{pointer}/text", max_len=HEADER_TEXT_MAX, plain_only=True)
        elif kind == "actions":
            self.element_list(block.get("elements"), f"{pointer}/elements", max_items=25)
        elif kind == "context":
            elements = block.get("elements")
            if isinstance(elements, list) and len(elements) > 10:
                self.add("no more than 10 items allowed", f"{pointer}/elements")
        elif kind == "input":
            self.input_block(block, pointer)
        elif kind == "markdown":
            self.markdown(block, pointer)
            return  # slack_sdk's model may predate the block: the checks above are Slack's
        self.sdk_block(block, pointer, report_invalid=len(self.errors) == before)

    def markdown(self, block: Mapping[str, Any], pointer: str) -> None:
        if self.surface != "message":
            self.add("markdown blocks are for messages", pointer)
        unknown = set(block) - {"type", "text", "block_id"}
        if unknown:
            self.add(f"unsupported field {sorted(unknown)[0]!r}", pointer)
        text = block.get("text")
        if not isinstance(text, str) or not text:
            self.add("markdown block needs text", f"{pointer}/text")
            return
        self.markdown_total += len(text)
        if self.markdown_total > MARKDOWN_TOTAL_MAX:
            self.add(
                f"markdown blocks must total at most {MARKDOWN_TOTAL_MAX} characters", f"{pointer}/text"
            )
        if found := UNESCAPED_MENTION.search(text):
            self.add(f"unescaped mention or link {found[0]!r} in a markdown block", f"{pointer}/text")
        for label, url in DISGUISED_LINK.findall(text):
            if label.strip() != url:
                self.add(f"link {url!r} disguised as {label!r} in a markdown block", f"{pointer}/text")

    def section(self, block: Mapping[str, Any], pointer: str) -> None:
        if "text" in block:
            self.text_obj(block["text"], f"{pointer}/text", max_len=SECTION_TEXT_MAX)
        fields = block.get("fields")
        if isinstance(fields, list):
            if len(fields) > SECTION_FIELDS_MAX:
                self.add(f"no more than {SECTION_FIELDS_MAX} items allowed", f"{pointer}/fields")
            for i, field in enumerate(fields):
                self.text_obj(field, f"{pointer}/fields/{i}", max_len=SECTION_FIELD_MAX)
        accessory = block.get("accessory")
        if isinstance(accessory, Mapping):
            if accessory.get("type") in INPUT_ONLY_ELEMENT_TYPES:
                self.add(f"{accessory.get('type')} is only allowed in input blocks", f"{pointer}/accessory")
            self.element(accessory, f"{pointer}/accessory")

    def element_list(self, elements: object, pointer: str, *, max_items: int) -> None:
        if not isinstance(elements, list):
            return
        if len(elements) > max_items:
            self.add(f"no more than {max_items} items allowed", pointer)
        action_ids: set[str] = set()
        for i, el in enumerate(elements):
            if not isinstance(el, Mapping):
                continue
            if el.get("type") in INPUT_ONLY_ELEMENT_TYPES:
                self.add(f"{el.get('type')} is only allowed in input blocks", f"{pointer}/{i}")
            action_id = el.get("action_id")
            if isinstance(action_id, str):
                if action_id in action_ids:
                    self.add(f"duplicate action_id {action_id!r} in block", f"{pointer}/{i}/action_id")
                action_ids.add(action_id)
            self.element(el, f"{pointer}/{i}")

    def input_block(self, block: Mapping[str, Any], pointer: str) -> None:
        if self.surface == "message":
            self.add("input blocks are only allowed in modals and home tabs, not in messages", pointer)
        self.text_obj(block.get("label"), f"{pointer}/label", max_len=LABEL_MAX, plain_only=True)
        if "hint" in block:
            self.text_obj(block["hint"], f"{pointer}/hint", max_len=LABEL_MAX, plain_only=True)
        element = block.get("element")
        if not isinstance(element, Mapping):
            self.add("missing required field: element", f"{pointer}/element")
            return
        kind = element.get("type")
        if kind not in INPUT_ELEMENT_TYPES:
            self.add(f"element type {kind!r} is not allowed in an input block", f"{pointer}/element/type")
        if kind == "file_input" and self.surface != "modal":
            self.add("file_input is only allowed in modals", f"{pointer}/element")
        self.element(element, f"{pointer}/element")

    # -- elements -----------------------------------------------------------------------------
    def element(self, el: Mapping[str, Any], pointer: str) -> None:
        kind = el.get("type")
        action_id = el.get("action_id")
        if action_id is not None and (
            not isinstance(action_id, str) or not 0 < len(action_id) <= ACTION_ID_MAX
        ):
            self.add(f"action_id must be a string of 1 to {ACTION_ID_MAX} characters", f"{pointer}/action_id")
        if "placeholder" in el:
            self.text_obj(el["placeholder"], f"{pointer}/placeholder", max_len=150, plain_only=True)
        if kind in ("button", "workflow_button"):
            self.button(el, pointer)
        elif kind in _OPTION_LIMITS:
            self.options(el, str(kind), pointer)
        elif kind == "plain_text_input":
            self.plain_text_input(el, pointer)
        elif kind == "number_input":
            self.number_input(el, pointer)
        elif kind == "file_input":
            max_files = el.get("max_files")
            if max_files is not None and (
                not isinstance(max_files, int) or not 1 <= max_files <= FILE_INPUT_MAX_FILES
            ):
                self.add(f"max_files must be between 1 and {FILE_INPUT_MAX_FILES}", f"{pointer}/max_files")
            filetypes = el.get("filetypes")
            if filetypes is not None and (
                not isinstance(filetypes, list) or not all(isinstance(f, str) for f in filetypes)
            ):
                self.add("filetypes must be an array of strings", f"{pointer}/filetypes")

    def button(self, el: Mapping[str, Any], pointer: str) -> None:
        self.text_obj(el.get("text"), f"{pointer}/text", max_len=BUTTON_TEXT_MAX, plain_only=True)
        value = el.get("value")
        if value is not None and (not isinstance(value, str) or len(value) > BUTTON_VALUE_MAX):
            self.add(f"value must be a string of at most {BUTTON_VALUE_MAX} characters", f"{pointer}/value")
        url = el.get("url")
        if url is not None and (not isinstance(url, str) or len(url) > URL_MAX):
            self.add(f"url must be a string of at most {URL_MAX} characters", f"{pointer}/url")
        style = el.get("style")
        if style is not None and style not in ("primary", "danger"):
            self.add(f"style must be 'primary' or 'danger', got {style!r}", f"{pointer}/style")

    def options(self, el: Mapping[str, Any], kind: str, pointer: str) -> None:
        options = el.get("options")
        if options is None:
            if "option_groups" not in el:
                self.add("missing required field: options", pointer)
            return
        if not isinstance(options, list) or not options:
            self.add("options must be a non-empty array", f"{pointer}/options")
            return
        limit = _OPTION_LIMITS[kind]
        if len(options) > limit:
            self.add(f"no more than {limit} items allowed (got {len(options)})", f"{pointer}/options")
        plain_only = kind not in ("checkboxes", "radio_buttons")
        values: set[str] = set()
        for i, opt in enumerate(options):
            op = f"{pointer}/options/{i}"
            if not isinstance(opt, Mapping):
                self.add("option must be an object", op)
                continue
            self.text_obj(opt.get("text"), f"{op}/text", max_len=OPTION_TEXT_MAX, plain_only=plain_only)
            value = opt.get("value")
            if not isinstance(value, str) or not 0 < len(value) <= OPTION_VALUE_MAX:
                self.add(
                    f"option value must be a string of 1 to {OPTION_VALUE_MAX} characters", f"{op}/value"
                )
            elif value in values:
                self.add(f"duplicate option value {value!r}", f"{op}/value")
            else:
                values.add(value)
        initial: list[tuple[str, object]] = []
        if "initial_option" in el:
            initial.append(("initial_option", el["initial_option"]))
        if isinstance(el.get("initial_options"), list):
            initial.extend((f"initial_options/{i}", o) for i, o in enumerate(el["initial_options"]))
        for where, opt in initial:
            if opt not in options:
                self.add("initial option must exactly match one of the options", f"{pointer}/{where}")

    def plain_text_input(self, el: Mapping[str, Any], pointer: str) -> None:
        bounds: dict[str, int] = {}
        for key in ("min_length", "max_length"):
            value = el.get(key)
            if value is None:
                continue
            low = 1 if key == "max_length" else 0
            if not isinstance(value, int) or not low <= value <= PLAIN_TEXT_INPUT_MAX:
                self.add(
                    f"{key} must be an integer between {low} and {PLAIN_TEXT_INPUT_MAX}", f"{pointer}/{key}"
                )
            else:
                bounds[key] = value
        if bounds.get("min_length", 0) > bounds.get("max_length", PLAIN_TEXT_INPUT_MAX):
            self.add("min_length must not exceed max_length", pointer)
        initial = el.get("initial_value")
        if isinstance(initial, str) and len(initial) > bounds.get("max_length", PLAIN_TEXT_INPUT_MAX):
            self.add("initial_value is longer than max_length", f"{pointer}/initial_value")

    def number_input(self, el: Mapping[str, Any], pointer: str) -> None:
        decimal = el.get("is_decimal_allowed")
        if not isinstance(decimal, bool):
            self.add("missing required field: is_decimal_allowed (boolean)", pointer)
        for key in ("min_value", "max_value", "initial_value"):
            raw = el.get(key)
            if raw is None:
                continue
            try:
                number = float(raw) if not isinstance(raw, bool) else None
            except (TypeError, ValueError):
                number = None
            if number is None or not isinstance(raw, str):
                self.add(f"{key} must be a string holding a number", f"{pointer}/{key}")
            elif decimal is False and not number.is_integer():
                self.add(f"{key} must be an integer when is_decimal_allowed is false", f"{pointer}/{key}")


def validate_blocks(blocks: object, surface: Surface, pointer: str = "/blocks") -> list[str]:
    """Violations of a `blocks` array shown on `surface`; empty when Slack would accept it."""
    checker = _Checker(surface)
    checker.blocks(blocks, pointer)
    return checker.errors


def validate_message_text(text: object, pointer: str = "/text") -> list[str]:
    if not isinstance(text, str):
        return [_at("text must be a string", pointer)]
    if len(text) > MESSAGE_TEXT_MAX:
        return [_at(f"text must be at most {MESSAGE_TEXT_MAX} characters (got {len(text)})", pointer)]
    return []


def validate_view(view: object, pointer: str = "/view") -> list[str]:
    """Violations of a `view` sent to views.open/push/update/publish; empty when valid."""
    if not isinstance(view, Mapping):
        return [_at("view must be an object", pointer)]
    kind = view.get("type")
    if kind not in ("modal", "home"):
        return [_at(f"view type must be 'modal' or 'home', got {kind!r}", f"{pointer}/type")]
    checker = _Checker("modal" if kind == "modal" else "home")
    for key, value in view.items():
        if value is None:
            checker.add(f"null is not allowed for {key!r}", f"{pointer}/{key}")
        if key not in VIEW_REQUEST_FIELDS:
            checker.add(
                f"unsupported field {key!r} (views take {sorted(VIEW_REQUEST_FIELDS)})", f"{pointer}/{key}"
            )
    sdk_problem = None
    try:
        View(**copy.deepcopy(dict(view))).validate_json()
    except SlackObjectFormationError as exc:
        sdk_problem = str(exc)
    except (TypeError, ValueError, AttributeError) as exc:
        sdk_problem = f"invalid view: {exc}"
    blocks = view.get("blocks")
    if blocks is None:
        checker.add("missing required field: blocks", f"{pointer}/blocks")
    else:
        checker.blocks(blocks, f"{pointer}/blocks")
    if kind == "modal":
        checker.text_obj(view.get("title"), f"{pointer}/title", max_len=VIEW_TITLE_MAX, plain_only=True)
        for key in ("submit", "close"):
            if key in view:
                checker.text_obj(view[key], f"{pointer}/{key}", max_len=VIEW_BUTTON_MAX, plain_only=True)
        has_input = isinstance(blocks, list) and any(
            isinstance(b, Mapping) and b.get("type") == "input" for b in blocks
        )
        if has_input and "submit" not in view:
            checker.add("submit is required when a modal contains input blocks", pointer)
    else:
        for key in ("submit", "close"):
            if key in view:
                checker.add(f"home tabs cannot have {key}", f"{pointer}/{key}")
    for key, limit in (("private_metadata", PRIVATE_METADATA_MAX), ("callback_id", CALLBACK_ID_MAX)):
        value = view.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            checker.add(f"must be a string of at most {limit} characters", f"{pointer}/{key}")
    external_id = view.get("external_id")
    if external_id is not None and (not isinstance(external_id, str) or len(external_id) > 255):
        checker.add("must be a string of at most 255 characters", f"{pointer}/external_id")
    if sdk_problem and not checker.errors:  # a rule the precise checks above do not know
        checker.add(sdk_problem, pointer)
    return checker.errors
