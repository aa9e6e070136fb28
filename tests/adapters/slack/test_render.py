"""Block Kit rendering stays within Slack's limits whatever the content (checked by the fake's validator)."""

from __future__ import annotations

from adapters.slack import forms, render
from engine.api import FormSpec
from engine.definitions import InputField
from engine.notifications import (
    ApprovalCard,
    ArtifactInfo,
    ArtifactsCard,
    Button,
    Field_,
    NoticeCard,
    RunInfo,
    TurnCard,
)
from tests.fakes.slack_blocks import validate_blocks, validate_view

RUN = RunInfo(
    run_id=1,
    name="blog-post#v1",
    pipeline_title="Blog",
    status="in_progress",
    done=1,
    total=3,
    started_by="ana",
)
APPROVE = Button(action="approve_complete", execution_id=7, label="Approve " * 20, style="primary")


def test_huge_notice_is_cut_to_fit() -> None:
    out = render.card(NoticeCard(key="n", run=RUN, text="word " * 10_000 + "\n" + "line\n" * 5000))
    assert validate_blocks(out.blocks, "message") == []
    assert len(out.blocks) <= 50 and len(out.text) <= render.FALLBACK_TEXT_MAX


def test_approval_keeps_its_buttons_when_fields_overflow() -> None:
    fields = [Field_(label=f"Field {i} <x>", value="v&" * 3000) for i in range(600)]
    note = ApprovalCard(
        key="a", run=RUN, execution_id=7, stage="complete", checkpoint="Brief", text="*Brief* is ready.",
        fields=fields, approvals=1, required=2, buttons=[APPROVE],
    )  # fmt: skip
    out = render.card(note)
    assert validate_blocks(out.blocks, "message") == []
    assert out.blocks[-1]["type"] == "actions" and "(1/2 approvals)" in out.text
    assert out.blocks[0] == {"type": "markdown", "text": "**Brief** is ready. (1/2 approvals)"}
    assert out.blocks[1]["fields"][0]["type"] == "mrkdwn"  # Block Kit's fields take mrkdwn only
    assert "&lt;x&gt;" in str(out.blocks[1]) and "<x>" not in str(out.blocks[1])


def test_truncate_never_splits_an_escape_or_leaves_a_fence_open() -> None:
    assert render.truncate("a" * 10 + "&amp;" + "b" * 10, 14) == "a" * 10 + "…"
    cut = render.truncate("```" + "x" * 100 + "```", 50)
    assert len(cut) <= 50 and cut.endswith("…```") and cut.count("```") == 2


def test_artifact_previews_and_oversize_notes() -> None:
    note = ArtifactsCard(
        key="x", run=RUN, execution_id=7, checkpoint="Draft",
        artifacts=[
            ArtifactInfo(
                artifact_id=1, name="draft", format="md", size=30, path="p", preview="```\n" + "x" * 5000
            ),
            ArtifactInfo(artifact_id=2, name="video", format="bin", size=99, path="p"),
        ],
    )  # fmt: skip
    out = render.artifacts(note, {2: 50 * 1024 * 1024}, set())
    assert validate_blocks(out.blocks, "message") == []
    assert "pipebot artifacts get 2" in out.text and "50.0 MB" in out.text
    assert out.text.count("```") % 2 == 0


def turn(text: str) -> TurnCard:
    return TurnCard(
        key="t", run=RUN, execution_id=7, checkpoint="Draft", agent="writer", round=1, text=text,
        tokens_in=120, tokens_out=3400,
    )  # fmt: skip


def test_a_turn_is_markdown_with_its_usage_and_nothing_in_it_pings_or_spoofs() -> None:
    text = "# Plan\n\nTell <!channel> and <@U0BEN> to read [the spec](https://evil.example/spec).\n"
    out = render.card(turn(text + "\n[ref]: https://evil.example/ref\n"))
    assert validate_blocks(out.blocks, "message") == []
    markdown, usage = out.blocks
    assert markdown["type"] == "markdown" and markdown["text"].startswith("**writer** · round 1\n\n# Plan")
    assert "the spec (https://evil.example/spec)" in markdown["text"]
    assert "&lt;!channel&gt;" in markdown["text"]
    assert usage["type"] == "context" and "120+3400 tokens" in usage["elements"][0]["text"]
    assert out.file is None and "<!channel>" not in out.text


def test_a_long_turn_is_cut_between_paragraphs_and_attached_whole() -> None:
    fence = "```python\n" + "print('x')\n\n" * 600 + "```\n"  # blank lines inside: not a boundary
    text = "Intro.\n\n" + "A paragraph of words. " * 300 + "\n\n" + fence + "\nOutro.\n"
    out = render.card(turn(text))
    assert validate_blocks(out.blocks, "message") == []
    shown = out.blocks[0]["text"]
    assert len(shown) <= render.MARKDOWN_MAX and shown.endswith("A paragraph of words.")
    assert shown.count("```") % 2 == 0 and out.file == ("writer-round1.md", text)
    assert "attached" in str(out.blocks[-1])


def test_form_modal_within_limits() -> None:
    spec = FormSpec(
        execution_id=3, run="r#v1", checkpoint="A very long checkpoint title indeed",
        instructions="<do> & go", feedback="more", values={"n": 2.5},
        inputs=[
            InputField(id="t", label="L" * 80, type="text", max_length=20000, placeholder="p"),
            InputField(id="n", label="N", type="number", min=0, max=10),
            InputField(id="s", label="S", type="select", choices=[f"c{i}" for i in range(150)], default="c3"),
            InputField(id="b", label="B", type="boolean", required=True, default=True),
            InputField(id="f", label="F", type="file"),
        ],
    )  # fmt: skip
    view = forms.modal(spec)
    assert validate_view(view) == []
    by_id = {b.get("block_id"): b for b in view["blocks"]}
    assert by_id["n"]["element"]["is_decimal_allowed"] is True  # 2.5 is the current value
    assert by_id["t"]["element"]["max_length"] == 3000
    assert by_id["b"]["element"]["initial_options"] and not by_id["b"]["optional"]
    assert "&lt;do&gt; &amp; go" in view["blocks"][0]["text"]["text"]
