"""Rendering within Discord's limits, and modals built from forms (checked by the fake's validators)."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.discord.forms import (
    form_modal,
    page_of,
    pages,
    parse_modal_id,
    revision_modal,
    submitted_values,
)
from adapters.discord.render import clip, embed, markdown
from engine.api import FormSpec
from engine.definitions import InputField
from engine.forms import FileUpload
from tests.fakes.discord_limits import validate_embeds, validate_modal


def test_markdown_turns_shared_bold_into_discord_bold() -> None:
    assert markdown("*Brief* is ready for review.") == "**Brief** is ready for review."
    assert markdown("2 * 3 * 4 and **kept** and `*code*`") == "2 * 3 * 4 and **kept** and `*code*`"
    assert markdown("```\n*x*\n``` *y*") == "```\n*x*\n``` **y**"


@pytest.mark.parametrize(
    ("text", "limit"),
    [("x" * 2500, 2000), ("```\n" + "y" * 3000, 2000), ("😀" * 1500, 2000), ("short", 2000), ("é" * 10, 5)],
)
def test_clip_respects_the_limit_in_utf16_units(text: str, limit: int) -> None:
    out = clip(text, limit)
    assert len(out.encode("utf-16-le")) // 2 <= limit
    assert out == text or out.endswith(("…", "…\n```"))
    assert out.count("```") % 2 == 0 or (text.count("```") % 2 == 1 and out == text)


def test_embed_stays_within_every_limit() -> None:
    fields = [(f"name {i} " * 40, "v" * 3000) for i in range(40)]
    e = embed(title="t" * 500, description="d" * 5000, fields=fields, footer="f" * 100)
    assert validate_embeds([e.to_dict()]) == []


def spec(
    inputs: list[InputField], values: dict[str, Any] | None = None, feedback: str | None = None
) -> FormSpec:
    return FormSpec(
        execution_id=42,
        run="r#v1",
        checkpoint="A checkpoint with a rather long title that goes on",
        instructions="Fill it in.",
        feedback=feedback,
        inputs=inputs,
        values=values or {},
    )


def test_every_page_of_a_large_form_is_a_valid_modal() -> None:
    inputs = [
        InputField(id=f"text{i}", label="L" * 80, type="text", max_length=9000, placeholder="p" * 150)
        for i in range(4)
    ]
    inputs += [
        InputField(id="many", label="Many", type="select", choices=[f"c{i}" for i in range(30)]),
        InputField(
            id="few", label="Few", type="select", choices=["a", "b"], default="b", description="d" * 300
        ),
        InputField(id="flag", label="Flag", type="boolean", required=True),
        InputField(id="n", label="N", type="number", min=1, max=9),
        InputField(id="long", label="Long", type="multiline_text"),
        InputField(id="f1", label="File", type="file", required=True),
        InputField(id="f2", label="File 2", type="file"),
    ]
    draft = {"text0": "x" * 5000, "few": "a", "flag": True, "f1": FileUpload("a.txt", b"abc")}
    form = spec(inputs, draft, feedback="Redo it")
    assert [len(p) for p in pages(inputs)] == [5, 5, 1] and page_of(inputs, "f2") == 2
    for page in range(3):
        data = form_modal(form, page).to_dict()
        assert validate_modal(data) == [], data
        assert parse_modal_id(data["custom_id"]) is not None
    first = form_modal(form, 0).to_dict()
    assert first["title"] == "A checkpoint with a rather long title… (1/3)" and len(first["title"]) <= 45
    many = first["components"][4]["component"]
    assert many["type"] == 4 and many["placeholder"].startswith("c0, c1")  # too many choices: typed
    second = {c["component"]["custom_id"]: c for c in form_modal(form, 1).to_dict()["components"]}
    assert [o["value"] for o in second["few"]["component"]["options"] if o.get("default")] == ["a"]
    assert [o["value"] for o in second["flag"]["component"]["options"] if o.get("default")] == ["yes"]
    assert second["f1"]["component"]["required"] is False and "keep a.txt" in second["f1"]["description"]
    assert validate_modal(revision_modal(42).to_dict()) == []


def test_modal_ids_and_submitted_values() -> None:
    assert parse_modal_id("pbm:form:7:2") is not None and parse_modal_id("pbm:form:7") is None
    assert parse_modal_id("pbm:revise:7:1") is None and parse_modal_id("other") is None
    attachment = {"id": "9", "filename": "f.txt", "url": "http://x/f.txt"}
    data: dict[str, Any] = {
        "custom_id": "pbm:form:7:0",
        "components": [
            {"type": 18, "component": {"type": 4, "custom_id": "a", "value": "text"}},
            {"type": 1, "components": [{"type": 4, "custom_id": "b", "value": ""}]},
            {"type": 18, "component": {"type": 3, "custom_id": "c", "values": ["x"]}},
            {"type": 18, "component": {"type": 19, "custom_id": "d", "values": ["9"]}},
            {"type": 10, "content": "shown"},
        ],
        "resolved": {"attachments": {"9": attachment}},
    }
    values = submitted_values(data)
    assert values == {"a": "text", "b": "", "c": ["x"], "d": [attachment]}
