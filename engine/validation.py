"""Checks on a checkpoint's output files before they become artifacts.

``files`` maps a file name relative to the outputs folder to its path; a declared output
``{name, format}`` is the file ``{name}.{format}``. Every problem is one readable line, so the
list can be shown in chat and handed to the next attempt as its validation error.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from engine.definitions import OutputSpec, ValidationConfig


def validate_outputs(specs: list[OutputSpec], files: dict[str, Path], rules: ValidationConfig) -> list[str]:
    problems: list[str] = []
    for spec in specs:
        filename = f"{spec.name}.{spec.format}"
        path = files.get(filename)
        if path is None or not path.is_file():
            if rules.require_outputs:
                problems.append(f"{filename}: missing (expected in the outputs folder)")
            continue
        problems += [f"{filename}: {p}" for p in _check_file(spec, path.read_bytes(), rules)]
    return problems


def check_output(spec: OutputSpec, data: bytes, rules: ValidationConfig) -> list[str]:
    """The problems of one output's content, checked as an agent's or a script's would be."""
    return _check_file(spec, data, rules)


def _check_file(spec: OutputSpec, data: bytes, rules: ValidationConfig) -> list[str]:
    if not data.strip():
        return ["is empty"]
    problems = _sizes(len(data), spec.min_bytes, spec.max_bytes)
    problems += [p for p in _sizes(len(data), rules.min_bytes, rules.max_bytes) if p not in problems]
    try:  # every output format is text
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return [*problems, "is not UTF-8 text"]
    for pattern in (spec.regex, rules.regex):
        if pattern is not None and re.search(pattern, text) is None:
            problems.append(f"does not match the pattern {pattern!r}")
    if spec.format in ("json", "yaml"):
        problems += _structured(spec, text)
    return problems


def _sizes(size: int, low: int | None, high: int | None) -> list[str]:
    if low is not None and size < low:
        return [f"is {size} bytes, at least {low} required"]
    if high is not None and size > high:
        return [f"is {size} bytes, at most {high} allowed"]
    return []


def _structured(spec: OutputSpec, text: str) -> list[str]:
    value: Any
    try:
        value = json.loads(text) if spec.format == "json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        return [f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"]
    except yaml.YAMLError as exc:
        return [f"is not valid YAML: {exc}"]
    if spec.json_schema is None:
        return []
    validator_class = jsonschema.validators.validator_for(spec.json_schema)
    try:
        validator_class.check_schema(spec.json_schema)
    except jsonschema.SchemaError as exc:
        return [f"its schema in the pipeline file is not valid: {exc.message}"]
    validator = validator_class(spec.json_schema)
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    return [f"does not match the schema at {_where(e)}: {e.message}" for e in errors[:5]]


def _where(error: jsonschema.ValidationError) -> str:
    return "/" + "/".join(str(p) for p in error.absolute_path)
