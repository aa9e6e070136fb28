"""Rendering within Discord's limits, and modals built from forms (checked by the fake's validators)."""

from __future__ import annotations

import io
from typing import Any

import discord
import pytest

from adapters.discord.forms import (
    form_modal,
    page_of,
    pages,
    parse_modal_id,
    revision_modal,
    submitted_values,
)
from adapters.discord.layout import layout_of
from adapters.discord.render import Rendered, clip, markdown, render
from engine.api import FormSpec
from engine.definitions import InputField
from engine.forms import FileUpload
from engine.notifications import ApprovalCard, Button, Field_, RunInfo, RunStatusCard
from tests.fakes.discord_limits import FLAG_COMPONENTS_V2, validate_message, validate_modal


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


RUN = RunInfo(
    run_id=1,
    name="r#v1",
    pipeline_title="R",
    status="in_progress",
    done=1,
    total=3,
    current="Draft",
    started_by="Ana",
)


def components_of(view: discord.ui.LayoutView) -> list[dict[str, Any]]:
    return list(view.to_components())  # type: ignore[no-untyped-call]


def v2(components: list[Any], files: list[str] | None = None) -> dict[str, Any]:
    attachments = [{"id": i, "filename": f} for i, f in enumerate(files or [])]
    return {"flags": FLAG_COMPONENTS_V2, "components": components, "attachments": attachments}


def test_a_huge_card_stays_within_every_v2_limit() -> None:
    buttons = [Button(action="approve_complete", execution_id=i, label="A" * 100) for i in range(40)]
    note = ApprovalCard(
        key="k",
        run=RUN,
        execution_id=1,
        stage="complete",
        checkpoint="c",
        text="t" * 5000,
        fields=[Field_(label=f"f{i}", value="v" * 900) for i in range(50)],
        buttons=buttons,
    )
    card = render(note)
    components = components_of(layout_of(card))
    assert validate_message(v2(components)) == []
    (container,) = components
    assert container["type"] == 17 and [c["type"] for c in container["components"]][-2:] == [1, 1]
    files = [discord.File(io.BytesIO(b"x"), filename=f"a{i}.md") for i in range(12)]
    many = components_of(layout_of(Rendered(["x" * 3000] * 50), files))
    assert validate_message(v2(many, [f.filename or "" for f in files[:10]])) == []


def test_status_card_is_one_container_with_title_progress_and_step() -> None:
    (container,) = components_of(layout_of(render(RunStatusCard(key="run", run=RUN))))
    texts = [c["content"] for c in container["components"] if c["type"] == 10]
    assert texts[0] == "### r#v1 · R" and "▰▰▰" in texts[1] and "Now: **Draft**" in texts[1]


def test_the_fake_refuses_what_discord_refuses_in_v2() -> None:
    text = {"type": 10, "content": "hi"}
    assert validate_message({**v2([text]), "content": "legacy"})
    assert validate_message({**v2([text]), "embeds": [{"title": "x"}]})
    assert validate_message(v2([text] * 41))
    assert validate_message(v2([{"type": 10, "content": "x" * 2001}] * 2))
    assert validate_message(v2([{"type": 17, "components": [{"type": 17, "components": [text]}]}]))
    assert validate_message(v2([{"type": 13, "file": {"url": "attachment://a.md"}}]))
    assert validate_message(v2([{"type": 13, "file": {"url": "attachment://a.md"}}], ["a.md"])) == []


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
