"""Output validation: presence, emptiness, sizes, patterns, JSON/YAML syntax and JSON Schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.definitions import OutputSpec, ValidationConfig
from engine.validation import validate_outputs

SCHEMA = {"type": "object", "required": ["title"], "properties": {"title": {"type": "string"}}}


def spec(name: str, fmt: str = "md", **kwargs: Any) -> OutputSpec:
    return OutputSpec.model_validate({"name": name, "format": fmt, **kwargs})


def files(tmp_path: Path, **contents: str | bytes) -> dict[str, Path]:
    out = {}
    for filename, content in contents.items():
        path = tmp_path / filename.replace("_", ".")
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        out[path.name] = path
    return out


def test_valid_outputs_pass(tmp_path: Path) -> None:
    specs = [spec("draft"), spec("meta", "json", schema=SCHEMA, regex="title"), spec("conf", "yaml")]
    given = files(
        tmp_path, draft_md="# Post\n", meta_json='{"title": "t"}', conf_yaml="a: 1\n", extra_txt="x"
    )
    assert validate_outputs(specs, given, ValidationConfig()) == []


def test_missing_outputs_unless_not_required(tmp_path: Path) -> None:
    specs = [spec("draft"), spec("report", "json")]
    given = files(tmp_path, draft_txt="wrong extension")
    assert validate_outputs(specs, given, ValidationConfig()) == [
        "draft.md: missing (expected in the outputs folder)",
        "report.json: missing (expected in the outputs folder)",
    ]
    assert validate_outputs(specs, given, ValidationConfig(require_outputs=False)) == []


def test_empty_output(tmp_path: Path) -> None:
    assert validate_outputs([spec("draft")], files(tmp_path, draft_md=" \n"), ValidationConfig()) == [
        "draft.md: is empty"
    ]


def test_json_must_parse_and_match_the_schema(tmp_path: Path) -> None:
    bad = files(tmp_path, meta_json='{"title": 1,}')
    [problem] = validate_outputs([spec("meta", "json")], bad, ValidationConfig())
    assert problem.startswith("meta.json: is not valid JSON") and "line 1" in problem
    wrong = files(tmp_path, meta_json='{"title": 3}')
    assert validate_outputs([spec("meta", "json", schema=SCHEMA)], wrong, ValidationConfig()) == [
        "meta.json: does not match the schema at /title: 3 is not of type 'string'"
    ]
    missing = files(tmp_path, meta_json="{}")
    [problem] = validate_outputs([spec("meta", "json", schema=SCHEMA)], missing, ValidationConfig())
    assert "'title' is a required property" in problem


def test_invalid_schema_in_the_pipeline_is_reported(tmp_path: Path) -> None:
    given = files(tmp_path, meta_json="{}")
    [problem] = validate_outputs([spec("meta", "json", schema={"type": "thing"})], given, ValidationConfig())
    assert "schema in the pipeline file is not valid" in problem


def test_yaml_must_parse(tmp_path: Path) -> None:
    [problem] = validate_outputs(
        [spec("conf", "yaml")], files(tmp_path, conf_yaml="a: [1,\n"), ValidationConfig()
    )
    assert problem.startswith("conf.yaml: is not valid YAML")


@pytest.mark.parametrize(
    ("output", "rules", "expected"),
    [
        ({"min_bytes": 10}, {}, "is 5 bytes, at least 10 required"),
        ({"max_bytes": 3}, {}, "is 5 bytes, at most 3 allowed"),
        ({}, {"min_bytes": 6}, "is 5 bytes, at least 6 required"),
        ({}, {"max_bytes": 4}, "is 5 bytes, at most 4 allowed"),
        ({"regex": "^#"}, {}, "does not match the pattern '^#'"),
        ({}, {"regex": "world"}, "does not match the pattern 'world'"),
    ],
)
def test_size_and_pattern_rules(
    tmp_path: Path, output: dict[str, Any], rules: dict[str, Any], expected: str
) -> None:
    given = files(tmp_path, draft_md="hello")
    assert validate_outputs([spec("draft", **output)], given, ValidationConfig.model_validate(rules)) == [
        f"draft.md: {expected}"
    ]


def test_binary_garbage_in_a_text_format(tmp_path: Path) -> None:
    given = files(tmp_path, draft_md=b"\xff\xfe\x00bad")
    assert validate_outputs([spec("draft")], given, ValidationConfig()) == ["draft.md: is not UTF-8 text"]
