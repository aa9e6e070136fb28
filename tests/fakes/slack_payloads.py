"""Data shaped the way Slack shapes it: saved blocks and interaction payload parts.

`with_generated_ids` fills in the block_id/action_id Slack generates when a message or view is
saved (the fake stores and returns blocks that way).

`build_action` is the ``actions[0]`` of a block_actions payload for an element that must exist
on screen; `build_state_values` is a view's ``state.values`` with one entry per input block, in
Slack's shape for each element type (plain_text_input ``value``, checkboxes
``selected_options``, static_select ``selected_option``, file_input ``files``...). Options are
echoed back as Slack does, with ``"emoji": true`` added to their plain_text objects.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.fakes.slack_state import SlackWorkspace


def iter_elements(blocks: object) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(block, element) for every interactive element: actions elements, accessories, inputs."""
    if not isinstance(blocks, list):
        return
    for block in blocks:
        if not isinstance(block, dict):
            continue
        candidates: list[object] = []
        if isinstance(block.get("elements"), list) and block.get("type") == "actions":
            candidates.extend(block["elements"])
        candidates.extend(block[k] for k in ("accessory", "element") if k in block)
        for el in candidates:
            if isinstance(el, dict) and el.get("type") not in ("image", "plain_text", "mrkdwn"):
                yield block, el


_id_counter = itertools.count(1)


def _generated_id(prefix: str) -> str:
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    n, out = next(_id_counter), ""
    while n:
        n, rem = divmod(n, len(alphabet))
        out = alphabet[rem] + out
    return f"{prefix}{out}"


def with_generated_ids(blocks: list[Any]) -> list[Any]:
    """Copy of `blocks` where missing block_id/action_id are filled in, as Slack does on save."""
    result: list[Any] = json.loads(json.dumps(blocks))
    for block in result:
        if isinstance(block, dict) and "block_id" not in block:
            block["block_id"] = _generated_id("b")
    for _, el in iter_elements(result):
        if "action_id" not in el:
            el["action_id"] = _generated_id("a")
    return result


def _slack_option(option: Mapping[str, Any]) -> dict[str, Any]:
    """An option as Slack echoes it back: plain_text objects gain ``"emoji": true``."""
    out = json.loads(json.dumps(option))
    for key in ("text", "description"):
        if isinstance(out.get(key), dict) and out[key].get("type") == "plain_text":
            out[key].setdefault("emoji", True)
    return dict(out)


def _pick(options: list[dict[str, Any]], value: str, where: str) -> dict[str, Any]:
    for option in options:
        if option.get("value") == value:
            return _slack_option(option)
    raise ValueError(f"{where}: no option with value {value!r} (have {[o.get('value') for o in options]})")


def build_action(
    blocks: list[dict[str, Any]], action_id: str, value: str | list[str] | None
) -> dict[str, Any]:
    """The ``actions[0]`` Slack sends when a user uses element `action_id`, which must be in `blocks`."""
    found = [(b, el) for b, el in iter_elements(blocks) if el.get("action_id") == action_id]
    if not found:
        have = [el.get("action_id") for _, el in iter_elements(blocks)]
        raise LookupError(f"no element with action_id {action_id!r} on screen (have {have})")
    block, el = found[0]
    kind = str(el.get("type"))
    action: dict[str, Any] = {"type": kind, "action_id": action_id, "block_id": block.get("block_id")}
    options = el.get("options", [])
    if kind == "button":
        if value is not None and value != el.get("value"):
            raise ValueError(f"button {action_id!r} carries value {el.get('value')!r}, not {value!r}")
        action["text"] = _slack_option({"text": el["text"]})["text"]
        action.update({k: el[k] for k in ("value", "style", "url") if k in el})
    elif kind in ("static_select", "radio_buttons", "overflow"):
        action["selected_option"] = _pick(options, str(value), action_id)
    elif kind in ("checkboxes", "multi_static_select"):
        values = value if isinstance(value, list) else [] if value is None else [value]
        action["selected_options"] = [_pick(options, v, action_id) for v in values]
    elif kind == "datepicker":
        action["selected_date"] = value
    elif kind == "users_select":
        action["selected_user"] = value
    else:
        action["value"] = value
    action["action_ts"] = f"{time.time():.6f}"
    return action


def build_state_values(
    blocks: list[dict[str, Any]],
    values: Mapping[str, Any],
    fake: SlackWorkspace | None,
    *,
    enforce_required: bool = True,
) -> dict[str, dict[str, Any]]:
    """``view.state.values`` as Slack sends it, for every input block of `blocks`.

    `values` maps action_id to: str for text/number/email/url inputs (numbers accepted), option
    value(s) for selects/radios (str) and checkboxes/multi-selects (list[str]), a user id for
    users_select, "YYYY-MM-DD" for datepicker, and for file_input a list of file objects (from
    `fake.add_file`) or ``(name, bytes)`` pairs that are registered on the fake.
    """
    remaining = dict(values)
    state: dict[str, dict[str, Any]] = {}
    for block in blocks:
        el = block.get("element") if block.get("type") == "input" else None
        if not isinstance(el, dict):
            continue
        action_id, kind = str(el.get("action_id")), str(el.get("type"))
        given = remaining.pop(action_id, None)
        if enforce_required and not block.get("optional") and given in (None, "", []):
            raise ValueError(f"input {action_id!r} is required: Slack would not let the user submit")
        entry: dict[str, Any] = {"type": kind}
        options = el.get("options", [])
        if kind in ("plain_text_input", "email_text_input", "url_text_input", "number_input"):
            text = None if given in (None, "") else str(given)
            if text is not None:
                _check_typed_value(el, action_id, text)
            entry["value"] = text
        elif kind in ("static_select", "radio_buttons"):
            entry["selected_option"] = None if given is None else _pick(options, str(given), action_id)
        elif kind in ("checkboxes", "multi_static_select"):
            entry["selected_options"] = [_pick(options, str(v), action_id) for v in (given or [])]
        elif kind == "file_input":
            entry["files"] = [_as_file(f, fake) for f in (given or [])]
            _check_files(el, action_id, entry["files"])
        elif kind == "datepicker":
            entry["selected_date"] = given
        elif kind == "users_select":
            entry["selected_user"] = given
        elif kind == "multi_users_select":
            entry["selected_users"] = list(given or [])
        elif kind == "rich_text_input":
            entry["rich_text_value"] = given
        else:
            entry["value"] = given
        state[str(block.get("block_id"))] = {action_id: entry}
    if remaining:
        raise ValueError(f"no input element with action_id {sorted(remaining)} in the view")
    return state


def _check_typed_value(el: Mapping[str, Any], action_id: str, text: str) -> None:
    """The client-side checks Slack runs before letting a user submit."""
    if el.get("type") == "plain_text_input" and (
        len(text) < int(el.get("min_length", 0)) or len(text) > int(el.get("max_length", 3000))
    ):
        raise ValueError(f"{action_id!r}: length {len(text)} outside the input's min/max_length")
    if el.get("type") == "number_input":
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{action_id!r}: {text!r} is not a number") from None
        if not el.get("is_decimal_allowed") and not number.is_integer():
            raise ValueError(f"{action_id!r}: decimals are not allowed")
        low, high = el.get("min_value"), el.get("max_value")
        if (low is not None and number < float(low)) or (high is not None and number > float(high)):
            raise ValueError(f"{action_id!r}: {text} outside [{low}, {high}]")


def _check_files(el: Mapping[str, Any], action_id: str, files: list[dict[str, Any]]) -> None:
    """Slack's file picker enforces the input's `filetypes` and `max_files`."""
    if len(files) > int(el.get("max_files", 10)):
        raise ValueError(
            f"{action_id!r}: {len(files)} files, the input takes at most {el.get('max_files', 10)}"
        )
    allowed = el.get("filetypes")
    for file in files:
        if allowed and str(file.get("filetype")) not in allowed:
            raise ValueError(f"{action_id!r}: {file.get('name')!r} is not one of the types {allowed}")


def _as_file(item: object, fake: SlackWorkspace | None) -> dict[str, Any]:
    if isinstance(item, dict):
        return item
    if isinstance(item, tuple) and len(item) == 2 and fake is not None:
        name, content = item
        return fake.add_file(str(name), bytes(content))
    raise ValueError(
        f"file_input values are file objects (fake.add_file) or (name, bytes) pairs, not {item!r}"
    )
