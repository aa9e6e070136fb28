"""Form validation: raw values from any chat (strings, numbers, lists) to typed values."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.definitions import InputField
from engine.errors import FormInvalid
from engine.limits import DEFAULT as DEFAULT_LIMITS
from engine.limits import Limits

TRUE = {"true", "yes", "y", "1", "on", "checked"}
FALSE = {"false", "no", "n", "0", "off", ""}
DEFAULT_MAX_FILE_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class FileUpload:
    filename: str
    data: bytes
    content_type: str = "application/octet-stream"


def validate_form(
    inputs: list[InputField],
    values: Mapping[str, Any],
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    limits: Limits = DEFAULT_LIMITS,
) -> dict[str, Any]:
    """Return clean values, or raise FormInvalid naming every bad field."""
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    unknown = set(values) - {f.id for f in inputs}
    for name in sorted(unknown):
        errors[name] = "is not a field of this form"
    for field in inputs:
        try:
            clean[field.id] = _one(field, values.get(field.id), max_file_bytes, limits)
        except ValueError as exc:
            errors[field.id] = str(exc)
    if errors:
        raise FormInvalid(errors)
    return clean


def _blank(raw: Any) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip()) or raw == []


def _one(field: InputField, raw: Any, max_file_bytes: int, limits: Limits) -> Any:
    if _blank(raw) and field.type != "boolean":
        if field.default is not None:
            return field.default
        if field.required:
            raise ValueError("is required")
        return None
    match field.type:
        case "text" | "multiline_text":
            text = str(raw).strip() if field.type == "text" else str(raw).rstrip()
            limit = limits.text_limit(field.type, field.max_length)
            if limit is not None and len(text) > limit:
                raise ValueError(f"must be at most {limit:,} characters (got {len(text):,})")
            return text
        case "number":
            return _number(field, raw)
        case "boolean":
            return _boolean(field, raw)
        case "select":
            value = str(raw).strip()
            choices = field.choices or []
            if value not in choices:
                raise ValueError(f"must be one of {', '.join(choices)}")
            return value
        case "file":
            if not isinstance(raw, FileUpload):
                raise ValueError("must be a file")
            limit = field.max_bytes or max_file_bytes
            if len(raw.data) > limit:
                raise ValueError(f"file is {len(raw.data)} bytes; the limit is {limit}")
            if not raw.data:
                raise ValueError("file is empty")
            return raw
    raise ValueError(f"unsupported input type {field.type}")  # pragma: no cover - Literal is exhaustive


def _number(field: InputField, raw: Any) -> int | float:
    if isinstance(raw, bool):
        raise ValueError("must be a number")
    try:
        value = float(str(raw).strip().replace(",", "")) if not isinstance(raw, int | float) else float(raw)
    except ValueError:
        raise ValueError(f"{str(raw)!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    if field.min is not None and value < field.min:
        raise ValueError(f"must be at least {field.min:g}")
    if field.max is not None and value > field.max:
        raise ValueError(f"must be at most {field.max:g}")
    return int(value) if value.is_integer() else value


def _boolean(field: InputField, raw: Any) -> bool:
    if isinstance(raw, bool):
        value = raw
    elif isinstance(raw, list):  # a checkbox group: checked when any option is selected
        value = bool(raw)
    elif raw is None:
        value = bool(field.default) if field.default is not None else False
    elif str(raw).strip().lower() in TRUE:
        value = True
    elif str(raw).strip().lower() in FALSE:
        value = False
    else:
        raise ValueError("must be yes or no")
    if field.required and not value:
        raise ValueError("must be checked")
    return value
