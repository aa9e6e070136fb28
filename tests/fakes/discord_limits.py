"""Discord payload limits enforced by the Discord fake.

Each ``validate_*`` function returns a list of :class:`Issue` (an empty list means the payload is
accepted).  :func:`error_tree` turns issues into the nested ``errors`` object of Discord's
``{"code": 50035, "message": "Invalid Form Body", "errors": {...}}`` answers, e.g.
``{"content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "..."}]}}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_EMBED_TITLE = 256
MAX_EMBED_DESCRIPTION = 4096
MAX_EMBED_FIELDS = 25
MAX_EMBED_FIELD_NAME = 256
MAX_EMBED_FIELD_VALUE = 1024
MAX_EMBED_FOOTER = 2048
MAX_EMBED_AUTHOR = 256
MAX_EMBED_TOTAL = 6000
MAX_ACTION_ROWS = 5
MAX_BUTTONS_PER_ROW = 5
MAX_CUSTOM_ID = 100
MAX_BUTTON_LABEL = 80
MAX_SELECT_OPTIONS = 25
MAX_SELECT_OPTION_TEXT = 100
MAX_SELECT_PLACEHOLDER = 150
MAX_V2_COMPONENTS = 40
MAX_V2_TEXT = 4000  # all text displays of a message together
MAX_MODAL_TITLE = 45
MAX_MODAL_COMPONENTS = 5
MAX_TEXT_INPUT_LABEL = 45
MAX_LABEL_DESCRIPTION = 100
MAX_TEXT_INPUT_LENGTH = 4000
MAX_TEXT_INPUT_PLACEHOLDER = 100
MAX_ATTACHMENTS = 10
MAX_COMMAND_NAME = 32
MAX_COMMAND_DESCRIPTION = 100
MAX_COMMAND_OPTIONS = 25
MAX_COMMAND_CHOICES = 25
MAX_AUTOCOMPLETE_CHOICES = 25
MAX_THREAD_NAME = 100
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024

FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_COMPONENTS_V2 = 1 << 15

BUTTON = 2
STRING_SELECT = 3
TEXT_INPUT = 4
SELECT_TYPES = frozenset({3, 5, 6, 7, 8})
LABEL_CHILD_TYPES = frozenset({3, 4, 5, 6, 7, 8, 19, 21, 22, 23})
ACTION_ROW, SECTION, TEXT_DISPLAY, THUMBNAIL, MEDIA_GALLERY = 1, 9, 10, 11, 12
FILE, SEPARATOR, CONTAINER = 13, 14, 17
V2_TOP_TYPES = frozenset({ACTION_ROW, SECTION, TEXT_DISPLAY, MEDIA_GALLERY, FILE, SEPARATOR, CONTAINER})
V2_CONTAINER_TYPES = V2_TOP_TYPES - {CONTAINER}

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Issue:
    """One rejected field: where it is, Discord's error code for it and a readable message."""

    path: Path
    code: str
    message: str

    def describe(self) -> str:
        """``embeds.0.title: Must be 256 or fewer in length. (BASE_TYPE_MAX_LENGTH)``."""
        where = ".".join(str(p) for p in self.path) or "<root>"
        return f"{where}: {self.message} ({self.code})"


def error_tree(issues: Iterable[Issue]) -> dict[str, Any]:
    """Nest issues the way Discord does in the ``errors`` key of a 50035 answer."""
    tree: dict[str, Any] = {}
    for issue in issues:
        node = tree
        for part in issue.path:
            node = node.setdefault(str(part), {})
        node.setdefault("_errors", []).append({"code": issue.code, "message": issue.message})
    return tree


def _max_len(value: Any, limit: int, path: Path) -> list[Issue]:
    if isinstance(value, str) and len(value) > limit:
        return [Issue(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")]
    return []


def _bad_len(value: Any, low: int, high: int, path: Path, *, required: bool = True) -> list[Issue]:
    if value is None:
        return [Issue(path, "BASE_TYPE_REQUIRED", "This field is required")] if required else []
    if not isinstance(value, str):
        return [Issue(path, "STRING_TYPE_CONVERT", "Could not interpret value as string.")]
    if not low <= len(value) <= high:
        return [Issue(path, "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length.")]
    return []


def _list_len(value: Any, high: int, path: Path, *, low: int = 0) -> list[Issue]:
    if value is None:
        return []
    if not isinstance(value, list):
        return [Issue(path, "LIST_TYPE_CONVERT", "Must be an array.")]
    if not low <= len(value) <= high:
        return [Issue(path, "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length.")]
    return []


def embed_length(embed: Mapping[str, Any]) -> int:
    """Characters counted towards the 6000 limit (title, description, fields, footer, author)."""
    total = 0
    for key in ("title", "description"):
        total += len(embed.get(key) or "")
    for field in embed.get("fields") or []:
        total += len(field.get("name") or "") + len(field.get("value") or "")
    total += len((embed.get("footer") or {}).get("text") or "")
    total += len((embed.get("author") or {}).get("name") or "")
    return total


def validate_embeds(embeds: Any, path: Path = ("embeds",)) -> list[Issue]:
    """Count and size limits of a message's ``embeds`` list."""
    issues = _list_len(embeds, MAX_EMBEDS, path)
    if issues or not embeds:
        return issues
    total = 0
    for index, embed in enumerate(embeds):
        here = (*path, index)
        if not isinstance(embed, Mapping):
            issues.append(Issue(here, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType"))
            continue
        issues += _max_len(embed.get("title"), MAX_EMBED_TITLE, (*here, "title"))
        issues += _max_len(embed.get("description"), MAX_EMBED_DESCRIPTION, (*here, "description"))
        fields = embed.get("fields") or []
        issues += _list_len(fields, MAX_EMBED_FIELDS, (*here, "fields"))
        for f_index, field in enumerate(fields if isinstance(fields, list) else []):
            f_path = (*here, "fields", f_index)
            issues += _bad_len(field.get("name"), 1, MAX_EMBED_FIELD_NAME, (*f_path, "name"))
            issues += _bad_len(field.get("value"), 1, MAX_EMBED_FIELD_VALUE, (*f_path, "value"))
        issues += _max_len(
            (embed.get("footer") or {}).get("text"), MAX_EMBED_FOOTER, (*here, "footer", "text")
        )
        issues += _max_len(
            (embed.get("author") or {}).get("name"), MAX_EMBED_AUTHOR, (*here, "author", "name")
        )
        total += embed_length(embed)
    if total > MAX_EMBED_TOTAL:
        issues.append(
            Issue(path, "MAX_EMBED_SIZE_EXCEEDED", f"Embed size exceeds maximum size of {MAX_EMBED_TOTAL}")
        )
    return issues


def _validate_select(comp: Mapping[str, Any], path: Path) -> list[Issue]:
    issues = _bad_len(comp.get("custom_id"), 1, MAX_CUSTOM_ID, (*path, "custom_id"))
    issues += _max_len(comp.get("placeholder"), MAX_SELECT_PLACEHOLDER, (*path, "placeholder"))
    for key, low, high in (("min_values", 0, 25), ("max_values", 1, 25)):
        value = comp.get(key)
        if value is not None and not (isinstance(value, int) and low <= value <= high):
            issues.append(Issue((*path, key), "NUMBER_TYPE_MAX", f"Must be between {low} and {high}."))
    if comp.get("type") == STRING_SELECT:
        options = comp.get("options")
        issues += _list_len(options, MAX_SELECT_OPTIONS, (*path, "options"), low=1)
        for o_index, option in enumerate(options if isinstance(options, list) else []):
            o_path = (*path, "options", o_index)
            issues += _bad_len(option.get("label"), 1, MAX_SELECT_OPTION_TEXT, (*o_path, "label"))
            issues += _bad_len(option.get("value"), 1, MAX_SELECT_OPTION_TEXT, (*o_path, "value"))
            issues += _max_len(option.get("description"), MAX_SELECT_OPTION_TEXT, (*o_path, "description"))
    return issues


def _validate_button(comp: Mapping[str, Any], path: Path) -> list[Issue]:
    issues = _max_len(comp.get("label"), MAX_BUTTON_LABEL, (*path, "label"))
    style = comp.get("style")
    if style == 5:
        if not comp.get("url"):
            issues.append(Issue((*path, "url"), "BASE_TYPE_REQUIRED", "This field is required"))
        if comp.get("custom_id") is not None:
            issues.append(
                Issue(
                    (*path, "custom_id"),
                    "COMPONENT_LINK_BUTTON_CUSTOM_ID",
                    "Link buttons cannot have custom_id",
                )
            )
    elif style == 6:
        if comp.get("sku_id") is None:
            issues.append(Issue((*path, "sku_id"), "BASE_TYPE_REQUIRED", "This field is required"))
    elif style in (1, 2, 3, 4):
        issues += _bad_len(comp.get("custom_id"), 1, MAX_CUSTOM_ID, (*path, "custom_id"))
        if comp.get("label") is None and comp.get("emoji") is None:
            issues.append(Issue((*path, "label"), "BASE_TYPE_REQUIRED", "A button needs a label or an emoji"))
    else:
        issues.append(
            Issue(
                (*path, "style"),
                "BASE_TYPE_CHOICES",
                f"Value must be one of (1, 2, 3, 4, 5, 6), got {style!r}.",
            )
        )
    return issues


def iter_components(components: Any) -> Iterator[Mapping[str, Any]]:
    """Every component of a (possibly nested) component list, depth first."""
    for comp in components if isinstance(components, list) else []:
        if not isinstance(comp, Mapping):
            continue
        yield comp
        yield from iter_components(comp.get("components"))
        for key in ("component", "accessory"):
            child = comp.get(key)
            if isinstance(child, Mapping):
                yield from iter_components([child])


def _duplicate_custom_ids(components: Any, path: Path) -> list[Issue]:
    seen: set[str] = set()
    issues: list[Issue] = []
    for comp in iter_components(components):
        custom_id = comp.get("custom_id")
        if isinstance(custom_id, str):
            if custom_id in seen:
                issues.append(
                    Issue(
                        path,
                        "COMPONENT_CUSTOM_ID_DUPLICATED",
                        f"Component custom id {custom_id!r} is duplicated",
                    )
                )
            seen.add(custom_id)
    return issues


def _v2_children(comp: Mapping[str, Any], allowed: frozenset[int], path: Path) -> list[Issue]:
    issues: list[Issue] = []
    children = comp.get("components")
    if not isinstance(children, list) or not children:
        return [Issue((*path, "components"), "BASE_TYPE_BAD_LENGTH", "Must be at least 1 in length.")]
    for index, child in enumerate(children):
        kind = child.get("type") if isinstance(child, Mapping) else None
        if kind not in allowed:
            issues.append(
                Issue(
                    (*path, "components", index, "type"),
                    "UNION_TYPE_CHOICES",
                    f"Component type {kind!r} is not allowed here",
                )
            )
    return issues


def validate_v2_components(components: list[Any], path: Path, attachments: set[str]) -> list[Issue]:
    """The IS_COMPONENTS_V2 tree: allowed types where they stand, 40 components, 4,000 characters
    of text displays in all, file components naming an attachment of the same message."""
    issues: list[Issue] = []
    total = sum(1 for _ in iter_components(components))
    if total > MAX_V2_COMPONENTS:
        issues.append(Issue(path, "BASE_TYPE_BAD_LENGTH", f"Must be {MAX_V2_COMPONENTS} or fewer in total."))
    for index, comp in enumerate(components):
        kind = comp.get("type") if isinstance(comp, Mapping) else None
        if kind not in V2_TOP_TYPES:
            issues.append(
                Issue((*path, index, "type"), "UNION_TYPE_CHOICES", f"Component type {kind!r} is not allowed")
            )
    text = 0
    for comp in iter_components(components):
        kind = comp.get("type")
        if kind == CONTAINER:
            issues += _v2_children(comp, V2_CONTAINER_TYPES, path)
        elif kind == ACTION_ROW:
            children = comp.get("components") or []
            issues += _v2_children(comp, frozenset({BUTTON} | SELECT_TYPES), path)
            if len(children) > MAX_BUTTONS_PER_ROW:
                message = f"Must be between 1 and {MAX_BUTTONS_PER_ROW} in length."
                issues.append(Issue(path, "BASE_TYPE_BAD_LENGTH", message))
        elif kind == TEXT_DISPLAY:
            content = comp.get("content")
            if not isinstance(content, str) or not content:
                issues.append(Issue(path, "BASE_TYPE_REQUIRED", "A text display needs content."))
            else:
                text += len(content.encode("utf-16-le")) // 2
        elif kind == FILE:
            url = str((comp.get("file") or {}).get("url") or "")
            if not url.startswith("attachment://") or url[len("attachment://") :] not in attachments:
                issues.append(
                    Issue(path, "UNFURLED_MEDIA_ITEM_INVALID", f"File component {url!r} names no attachment")
                )
        elif kind == BUTTON:
            issues += _validate_button(comp, path)
        elif kind in SELECT_TYPES:
            issues += _validate_select(comp, path)
    if text > MAX_V2_TEXT:
        issues.append(
            Issue(path, "BASE_TYPE_MAX_LENGTH", f"Text displays must be {MAX_V2_TEXT} or fewer in total.")
        )
    return issues + _duplicate_custom_ids(components, path)


def validate_message_components(
    components: Any, flags: int, path: Path = ("components",), attachments: set[str] | None = None
) -> list[Issue]:
    """Action rows, buttons and selects of a message (or the components-v2 tree)."""
    if components is None:
        return []
    if not isinstance(components, list):
        return [Issue(path, "LIST_TYPE_CONVERT", "Must be an array.")]
    issues: list[Issue] = []
    if flags & FLAG_COMPONENTS_V2:
        return validate_v2_components(components, path, attachments or set())

    issues += _list_len(components, MAX_ACTION_ROWS, path)
    for r_index, row in enumerate(components):
        r_path = (*path, r_index)
        if not isinstance(row, Mapping) or row.get("type") != 1:
            issues.append(
                Issue(
                    (*r_path, "type"),
                    "UNION_TYPE_CHOICES",
                    "Top-level message components must be action rows (type 1)",
                )
            )
            continue
        children = row.get("components")
        if not isinstance(children, list) or not children:
            issues.append(
                Issue((*r_path, "components"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length.")
            )
            continue
        selects = [c for c in children if c.get("type") in SELECT_TYPES]
        if selects and len(children) > 1:
            issues.append(
                Issue(
                    (*r_path, "components"),
                    "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                    "A select menu must be alone in its action row",
                )
            )
        if len(children) > MAX_BUTTONS_PER_ROW:
            issues.append(
                Issue(
                    (*r_path, "components"),
                    "BASE_TYPE_BAD_LENGTH",
                    f"Must be between 1 and {MAX_BUTTONS_PER_ROW} in length.",
                )
            )
        for c_index, comp in enumerate(children):
            c_path = (*r_path, "components", c_index)
            kind = comp.get("type")
            if kind == BUTTON:
                issues += _validate_button(comp, c_path)
            elif kind in SELECT_TYPES:
                issues += _validate_select(comp, c_path)
            else:
                issues.append(
                    Issue(
                        (*c_path, "type"),
                        "UNION_TYPE_CHOICES",
                        f"Component type {kind!r} is not allowed in a message action row",
                    )
                )
    return issues + _duplicate_custom_ids(components, path)


def validate_message(
    payload: Mapping[str, Any],
    path: Path = (),
    *,
    file_count: int = 0,
    stored_flags: int = 0,
    stored_files: Iterable[str] = (),
) -> list[Issue]:
    """Content, embeds, components and attachment count of a create/edit message payload.

    ``stored_flags``/``stored_files``: those of the message being edited (a V2 message stays one).
    """
    flags = payload.get("flags") or 0
    flags = (flags if isinstance(flags, int) else 0) | (stored_flags & FLAG_COMPONENTS_V2)
    issues = _max_len(payload.get("content"), MAX_CONTENT, (*path, "content"))
    issues += validate_embeds(payload.get("embeds"), (*path, "embeds"))
    named = {str(a.get("filename")) for a in payload.get("attachments") or [] if isinstance(a, Mapping)}
    issues += validate_message_components(
        payload.get("components"), flags, (*path, "components"), named | set(stored_files)
    )
    attachments = payload.get("attachments")
    count = max(file_count, len(attachments) if isinstance(attachments, list) else 0)
    if count > MAX_ATTACHMENTS:
        issues.append(
            Issue(
                (*path, "attachments"),
                "BASE_TYPE_MAX_LENGTH",
                f"Must be {MAX_ATTACHMENTS} or fewer in length.",
            )
        )
    if flags & FLAG_COMPONENTS_V2:
        for key in ("content", "embeds"):
            if payload.get(key):
                issues.append(
                    Issue(
                        (*path, key),
                        "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
                        f"{key} cannot be used with IS_COMPONENTS_V2",
                    )
                )
    return issues


def is_empty_message(payload: Mapping[str, Any], file_count: int) -> bool:
    """Discord answers 50006 "Cannot send an empty message" for these."""
    return not (
        payload.get("content")
        or payload.get("embeds")
        or payload.get("components")
        or payload.get("sticker_ids")
        or payload.get("poll")
        or file_count
    )


def _validate_text_input(comp: Mapping[str, Any], path: Path, *, in_label: bool) -> list[Issue]:
    issues = _bad_len(comp.get("custom_id"), 1, MAX_CUSTOM_ID, (*path, "custom_id"))
    if comp.get("style") not in (1, 2):
        issues.append(Issue((*path, "style"), "BASE_TYPE_CHOICES", "Value must be one of (1, 2)."))
    label = comp.get("label")
    if in_label:
        if label is not None:
            issues.append(
                Issue(
                    (*path, "label"),
                    "COMPONENT_INVALID_FIELD",
                    "A text input inside a Label must not have its own label",
                )
            )
    else:
        issues += _bad_len(label, 1, MAX_TEXT_INPUT_LABEL, (*path, "label"))
    for key, low in (("min_length", 0), ("max_length", 1)):
        value = comp.get(key)
        if value is not None and not (isinstance(value, int) and low <= value <= MAX_TEXT_INPUT_LENGTH):
            issues.append(
                Issue((*path, key), "NUMBER_TYPE_MAX", f"Must be between {low} and {MAX_TEXT_INPUT_LENGTH}.")
            )
    issues += _max_len(comp.get("value"), MAX_TEXT_INPUT_LENGTH, (*path, "value"))
    issues += _max_len(comp.get("placeholder"), MAX_TEXT_INPUT_PLACEHOLDER, (*path, "placeholder"))
    return issues


def _validate_modal_child(comp: Mapping[str, Any], path: Path) -> list[Issue]:
    kind = comp.get("type")
    if kind == TEXT_INPUT:
        return _validate_text_input(comp, path, in_label=True)
    if kind in SELECT_TYPES:
        return _validate_select(comp, path)
    if kind in LABEL_CHILD_TYPES:
        issues = _bad_len(comp.get("custom_id"), 1, MAX_CUSTOM_ID, (*path, "custom_id"))
        if kind == 19:
            for key, low in (("min_values", 0), ("max_values", 1)):
                value = comp.get(key)
                if value is not None and not (isinstance(value, int) and low <= value <= 10):
                    issues.append(Issue((*path, key), "NUMBER_TYPE_MAX", f"Must be between {low} and 10."))
        return issues
    return [
        Issue((*path, "type"), "UNION_TYPE_CHOICES", f"Component type {kind!r} is not allowed inside a Label")
    ]


def validate_modal(payload: Mapping[str, Any], path: Path = ()) -> list[Issue]:
    """Title, custom_id and components of an interaction MODAL (callback type 9) response."""
    issues = _bad_len(payload.get("title"), 1, MAX_MODAL_TITLE, (*path, "title"))
    issues += _bad_len(payload.get("custom_id"), 1, MAX_CUSTOM_ID, (*path, "custom_id"))
    components = payload.get("components")
    c_path = (*path, "components")
    issues += _list_len(components, MAX_MODAL_COMPONENTS, c_path, low=1)
    if components is None:
        issues.append(Issue(c_path, "BASE_TYPE_REQUIRED", "This field is required"))
    for index, comp in enumerate(components if isinstance(components, list) else []):
        here = (*c_path, index)
        kind = comp.get("type")
        if kind == 1:
            children = comp.get("components")
            if not isinstance(children, list) or len(children) != 1 or children[0].get("type") != TEXT_INPUT:
                issues.append(
                    Issue(
                        (*here, "components"),
                        "BASE_TYPE_BAD_LENGTH",
                        "A modal action row holds exactly one text input",
                    )
                )
                continue
            issues += _validate_text_input(children[0], (*here, "components", 0), in_label=False)
        elif kind == 18:
            issues += _bad_len(comp.get("label"), 1, MAX_TEXT_INPUT_LABEL, (*here, "label"))
            issues += _max_len(comp.get("description"), MAX_LABEL_DESCRIPTION, (*here, "description"))
            child = comp.get("component")
            if not isinstance(child, Mapping):
                issues.append(Issue((*here, "component"), "BASE_TYPE_REQUIRED", "This field is required"))
            else:
                issues += _validate_modal_child(child, (*here, "component"))
        elif kind == 10:
            issues += _bad_len(comp.get("content"), 1, 4000, (*here, "content"))
        else:
            issues.append(
                Issue(
                    (*here, "type"),
                    "UNION_TYPE_CHOICES",
                    f"Component type {kind!r} is not allowed at the top level of a modal",
                )
            )
    return issues + _duplicate_custom_ids(components, c_path)


def validate_autocomplete(payload: Mapping[str, Any], path: Path = ()) -> list[Issue]:
    """Choices of an APPLICATION_COMMAND_AUTOCOMPLETE_RESULT (callback type 8)."""
    choices = payload.get("choices")
    c_path = (*path, "choices")
    if choices is None:
        return [Issue(c_path, "BASE_TYPE_REQUIRED", "This field is required")]
    issues = _list_len(choices, MAX_AUTOCOMPLETE_CHOICES, c_path)
    for index, choice in enumerate(choices if isinstance(choices, list) else []):
        issues += _bad_len(choice.get("name"), 1, 100, (*c_path, index, "name"))
        issues += _max_len(choice.get("value"), 100, (*c_path, index, "value"))
    return issues


def _valid_chat_input_name(name: str) -> bool:
    return name == name.lower() and all(ch.isalnum() or ch in "-_'" for ch in name)


def _validate_command_options(options: Any, path: Path, depth: int) -> list[Issue]:
    issues = _list_len(options, MAX_COMMAND_OPTIONS, path)
    if issues or not options:
        return issues
    seen_optional = False
    names: set[str] = set()
    for index, option in enumerate(options):
        here = (*path, index)
        name = option.get("name")
        issues += _bad_len(name, 1, MAX_COMMAND_NAME, (*here, "name"))
        if isinstance(name, str) and not _valid_chat_input_name(name):
            issues.append(
                Issue((*here, "name"), "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
            )
        if name in names:
            issues.append(
                Issue(
                    (*here, "name"),
                    "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS",
                    "Option name already exists",
                )
            )
        names.add(str(name))
        issues += _bad_len(option.get("description"), 1, MAX_COMMAND_DESCRIPTION, (*here, "description"))
        kind = option.get("type")
        if kind not in range(1, 12):
            issues.append(Issue((*here, "type"), "BASE_TYPE_CHOICES", "Value must be one of (1 .. 11)."))
        if kind in (1, 2):
            if depth >= 2 or (kind == 2 and depth >= 1):
                issues.append(
                    Issue(
                        (*here, "type"),
                        "APPLICATION_COMMAND_OPTION_INVALID_NESTING",
                        "Sub-command nesting is too deep",
                    )
                )
            issues += _validate_command_options(option.get("options"), (*here, "options"), depth + 1)
        else:
            if option.get("required"):
                if seen_optional:
                    issues.append(
                        Issue(
                            (*here, "required"),
                            "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                            "Required options must be placed before non-required options",
                        )
                    )
            else:
                seen_optional = True
            issues += _list_len(option.get("choices"), MAX_COMMAND_CHOICES, (*here, "choices"))
            if option.get("choices") and option.get("autocomplete"):
                issues.append(
                    Issue(
                        (*here, "autocomplete"),
                        "APPLICATION_COMMAND_AUTOCOMPLETE_CHOICES",
                        "Autocomplete cannot be set with choices",
                    )
                )
    return issues


def validate_command(payload: Mapping[str, Any], path: Path = ()) -> list[Issue]:
    """Name, description and options of one application command (create or bulk overwrite)."""
    kind = payload.get("type", 1)
    name = payload.get("name")
    issues = _bad_len(name, 1, MAX_COMMAND_NAME, (*path, "name"))
    if kind == 1:
        if isinstance(name, str) and not _valid_chat_input_name(name):
            issues.append(
                Issue((*path, "name"), "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
            )
        issues += _bad_len(payload.get("description"), 1, MAX_COMMAND_DESCRIPTION, (*path, "description"))
        issues += _validate_command_options(payload.get("options"), (*path, "options"), 0)
    elif kind in (2, 3):
        if payload.get("description"):
            issues.append(
                Issue(
                    (*path, "description"),
                    "APPLICATION_COMMAND_INVALID_DESCRIPTION",
                    "Context menu commands cannot have a description",
                )
            )
        if payload.get("options"):
            issues.append(
                Issue(
                    (*path, "options"),
                    "APPLICATION_COMMAND_INVALID_OPTIONS",
                    "Context menu commands cannot have options",
                )
            )
    else:
        issues.append(Issue((*path, "type"), "BASE_TYPE_CHOICES", "Value must be one of (1, 2, 3)."))
    return issues


def validate_command_list(commands: Sequence[Any]) -> list[Issue]:
    """A bulk overwrite: every command plus name uniqueness per command type."""
    issues: list[Issue] = []
    seen: set[tuple[Any, Any]] = set()
    for index, command in enumerate(commands):
        if not isinstance(command, Mapping):
            issues.append(Issue((index,), "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType"))
            continue
        issues += validate_command(command, (index,))
        key = (command.get("type", 1), command.get("name"))
        if key in seen:
            issues.append(
                Issue(
                    (index, "name"),
                    "APPLICATION_COMMANDS_DUPLICATE_NAME",
                    "Application command names must be unique",
                )
            )
        seen.add(key)
    return issues
