"""Default size limits: forms are re-asked, imports name the line; settings and max_length override."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.api import Engine
from engine.definitions import InputField, load_pipeline_file, parse_pipeline, pipeline_json_schema
from engine.errors import DefinitionProblem, FormInvalid
from engine.forms import validate_form
from engine.limits import Limits
from tests.conftest import HERE, person
from tests.engine.helpers import current

ADMIN = person("admin")


def many_checkpoints(n: int) -> str:
    return "id: big\ncheckpoints:\n" + "".join(f"  - id: c{i}\n" for i in range(n))


def many_inputs(n: int) -> str:
    fields = "".join(f"      - {{id: f{i}, label: F{i}}}\n" for i in range(n))
    return f"id: wide\ncheckpoints:\n  - id: form\n    inputs:\n{fields}"


def problem(text: str, limits: Limits = Limits(), **kw: int) -> str:
    with pytest.raises(DefinitionProblem) as err:
        parse_pipeline(text, "x.yaml", limits, **kw)
    return str(err.value)


def test_too_many_checkpoints_names_the_first_line_over() -> None:
    assert len(parse_pipeline(many_checkpoints(100)).checkpoints) == 100
    # Line 1 is the id, 2 "checkpoints:", so checkpoint 101 (index 100) is on line 103.
    assert problem(many_checkpoints(101)) == "x.yaml:103: checkpoints[100]: 101 checkpoints; the limit is 100"
    assert len(parse_pipeline(many_checkpoints(101), "x.yaml", Limits(checkpoints=200)).checkpoints) == 101


def test_too_many_inputs_per_checkpoint() -> None:
    assert len(parse_pipeline(many_inputs(50)).checkpoints[0].inputs) == 50
    assert problem(many_inputs(51)) == (
        "x.yaml:55: checkpoints[0].inputs[50]: 51 inputs; the limit is 50 per checkpoint"
    )


def test_import_text_and_file_size_limits(engine: Engine, tmp_path: Path) -> None:
    padding = "# " + "x" * 98 + "\n"  # 101 bytes a line
    text = "id: padded\ncheckpoints: [{id: one}]\n" + padding * 1100
    before = [p.slug for p in engine.pipelines()]
    with pytest.raises(
        DefinitionProblem, match=r"^<chat>:1016: the pipeline is larger than the limit of 102,400"
    ):
        engine.import_pipeline_text(text, actor=ADMIN)
    assert [p.slug for p in engine.pipelines()] == before
    path = tmp_path / "padded.yaml"
    path.write_text(text)
    assert engine.import_pipeline(path).slug == "padded"  # a file may be up to 1 MB
    path.write_text(text + padding * 10_000)
    with pytest.raises(DefinitionProblem, match="larger than the limit of 1,048,576 bytes"):
        load_pipeline_file(path)


def test_text_inputs_have_default_limits_overridable_per_field() -> None:
    text, notes = InputField(id="t", label="T"), InputField(id="n", label="N", type="multiline_text")
    validate_form([text, notes], {"t": "a" * 2000, "n": "b" * 20_000})
    with pytest.raises(FormInvalid) as err:
        validate_form([text, notes], {"t": "a" * 2001, "n": "b" * 20_001})
    assert err.value.errors == {
        "t": "must be at most 2,000 characters (got 2,001)",
        "n": "must be at most 20,000 characters (got 20,001)",
    }
    long = InputField(id="t", label="T", max_length=5000)
    assert validate_form([long], {"t": "a" * 5000}) == {"t": "a" * 5000}
    validate_form([text], {"t": "a" * 3000}, limits=Limits(text_chars=3000))  # the setting


def test_a_too_long_answer_is_asked_again_and_nothing_changes(engine: Engine) -> None:
    run = engine.start_run("blog-post", person("ana"), HERE).name
    form, _ = current(engine, run)
    values = {"topic": "Launch", "words": 800, "notes": "n" * 20_001, "tone": "formal"}
    with pytest.raises(FormInvalid) as err:
        engine.submit_form(form, person("ana"), values)
    assert err.value.errors == {"notes": "must be at most 20,000 characters (got 20,001)"}
    assert current(engine, run) == (form, "waiting_for_input")


def test_a_default_longer_than_the_limit_is_refused_at_import() -> None:
    text = (
        "id: d\ncheckpoints:\n  - id: a\n    inputs:\n      - {id: t, label: T, default: "
        + "x" * 2001
        + "}\n"
    )
    assert (
        problem(text)
        == "x.yaml:5: checkpoints[0].inputs[0].default: default is longer than max_length (2000)"
    )


def test_the_json_schema_documents_the_limits() -> None:
    schema = json.dumps(pipeline_json_schema())
    for words in ("at most 100 by default", "at most 50 per checkpoint", "2,000 characters", "20,000"):
        assert words in schema
