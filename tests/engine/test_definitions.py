from __future__ import annotations

from pathlib import Path

import pytest

from engine.api import Engine
from engine.definitions import load_pipeline_file, parse_pipeline, pipeline_json_schema
from engine.errors import DefinitionProblem
from tests.conftest import EXAMPLES

GOOD = """\
id: demo
checkpoints:
  - id: brief
    inputs:
      - {id: topic, label: Topic, type: text}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(DefinitionProblem) as err:
        parse_pipeline(text, "demo.yaml")
    return str(err.value).splitlines()


def test_examples_are_valid() -> None:
    files = sorted(EXAMPLES.glob("*.yaml"))
    assert len(files) >= 2
    for path in files:
        assert load_pipeline_file(path).checkpoints


def test_bad_enum_names_file_line_and_field() -> None:
    text = GOOD + "  - id: draft\n    inputs:\n      - id: words\n        label: Words\n        type: nmber\n"
    assert problems(text) == [
        "demo.yaml:10: checkpoints[1].inputs[0].type: 'nmber' is not one of text, multiline_text, number, "
        "boolean, select, file"
    ]


def test_unknown_field_and_missing_field_are_reported_with_lines() -> None:
    text = "id: demo\ncheckpoints:\n  - id: a\n    nmae: A\n  - name: B\n"
    out = problems(text)
    assert "demo.yaml:4: checkpoints[0].nmae: unknown field (check the spelling)" in out
    assert "demo.yaml:5: checkpoints[1].id: field required" in out


def test_yaml_syntax_error_names_line() -> None:
    out = problems("id: demo\ncheckpoints: [\n  - id: a\n")
    assert out[0].startswith("demo.yaml:3: not valid YAML")


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        (
            "      - {id: n, label: N, type: number, min: 5, max: 1}",
            "inputs[0].min: min (5) is greater than max (1)",
        ),
        ("      - {id: s, label: S, type: select}", "inputs[0].choices: a select input needs choices"),
        (
            "      - {id: n, label: N, type: number, max: 3, default: 9}",
            "inputs[0].default: default 9 is outside",
        ),
        ("      - {id: b, label: B, type: boolean, default: maybe}", "default 'maybe' is not true or false"),
        ("      - {id: s, label: S, type: select, choices: [a], default: z}", "default 'z' is not one of"),
        (
            "      - {id: t, label: T, type: text}\n      - {id: t, label: U, type: text}",
            "6: checkpoints[0].inputs[1].id: duplicate input id 't'",
        ),
    ],
)
def test_cross_checks(snippet: str, expected: str) -> None:
    text = "id: demo\ncheckpoints:\n  - id: a\n    inputs:\n" + snippet + "\n"
    out = problems(text)
    assert any(expected in line and line.startswith(("demo.yaml:5:", "demo.yaml:6:")) for line in out), out


def test_duplicate_checkpoint_and_context_reference() -> None:
    text = (
        GOOD + "  - id: brief\n"
        "  - id: draft\n    mode: agent\n    agent: {context: {checkpoints: [nowhere]}}\n"
    )
    out = problems(text)
    assert any("checkpoints[1].id: duplicate checkpoint id 'brief'" in line for line in out)
    assert any(
        "checkpoints[2].agent.context.checkpoints[0]: 'nowhere' is not an earlier checkpoint" in line
        for line in out
    )


def test_bad_approver_format() -> None:
    out = problems("id: demo\napprovers: [bob]\ncheckpoints: [{id: a}]\n")
    assert out[0].startswith("demo.yaml:2: approvers[0]:")


def test_json_schema_describes_the_file() -> None:
    schema = pipeline_json_schema()
    assert schema["title"] == "pipebot pipeline"
    assert {"id", "checkpoints", "approvers", "required_approvals"} <= set(schema["properties"])
    assert "InputField" in schema["$defs"]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DefinitionProblem, match="cannot read"):
        load_pipeline_file(tmp_path / "nope.yaml")


def test_a_bad_file_imports_nothing(engine: Engine, tmp_path: Path) -> None:
    before = engine.pipelines()
    bad = tmp_path / "broken.yaml"
    bad.write_text("id: broken\ncheckpoints:\n  - id: a\n    mode: scirpt\n")
    with pytest.raises(
        DefinitionProblem, match=r"broken.yaml:4: checkpoints\[0\].mode: 'scirpt' is not one of"
    ):
        engine.import_pipeline(bad)
    assert engine.pipelines() == before
    assert not (engine.ws.base / "broken").exists()
