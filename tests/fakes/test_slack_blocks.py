"""Tests of the fake's Block Kit validation: what Slack rejects is rejected, and explained."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack_api import FakeSlack
from tests.fakes.test_slack_api import CHANNEL, api_error, button, modal, section, text_input


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as server:
        yield server


@pytest.fixture
def client(fake: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=fake.token, base_url=fake.api_url)


INVALID_MESSAGE_BLOCKS: list[tuple[str, list[dict[str, Any]], str]] = [
    ("51 blocks", [section(f"b{i}") for i in range(51)], "no more than 50 items allowed"),
    ("input in a message", [text_input()], "input blocks are only allowed in modals"),
    ("long section", [section("x" * 3001)], "must be less than 3001 characters"),
    ("long header", [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}], "less than 151"),
    ("mrkdwn header", [{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}], "must be plain_text"),
    ("long button text", [{"type": "actions", "elements": [button("a", text="t" * 76)]}], "less than 76"),
    (
        "long button value",
        [{"type": "actions", "elements": [button("a", value="v" * 2001)]}],
        "value must be",
    ),
    ("long action_id", [{"type": "actions", "elements": [button("a" * 256)]}], "action_id"),
    ("duplicate block_id", [section("a", "same"), section("b", "same")], "duplicate block_id 'same'"),
    (
        "duplicate action_id",
        [{"type": "actions", "elements": [button("a"), button("a")]}],
        "duplicate action_id",
    ),
    ("unknown field", [{"type": "divider", "colour": "red"}], "unsupported field 'colour'"),
    ("null field", [{"type": "section", "text": {"type": "mrkdwn", "text": "a"}, "block_id": None}], "null"),
    ("unknown block", [{"type": "carousel_of_doom"}], "unsupported block type"),
    ("markdown over 12,000", [{"type": "markdown", "text": "m" * 6001}] * 2, "total at most 12000"),
    ("empty markdown", [{"type": "markdown", "text": ""}], "markdown block needs text"),
    ("mention in markdown", [{"type": "markdown", "text": "hi <@U0ANA>"}], "unescaped mention"),
    ("broadcast in markdown", [{"type": "markdown", "text": "<!channel> look"}], "unescaped mention"),
    ("spoofed link", [{"type": "markdown", "text": "[docs](https://evil.example)"}], "disguised as"),
    ("empty text", [section("")], "must be more than 0 characters"),
    ("unknown element", [{"type": "actions", "elements": [{"type": "buton", "action_id": "a"}]}], "element"),
    (
        "text input in actions",
        [{"type": "actions", "elements": [{"type": "plain_text_input", "action_id": "a"}]}],
        "only allowed in input blocks",
    ),
    (
        "long option value",
        [
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "static_select",
                        "action_id": "s",
                        "placeholder": {"type": "plain_text", "text": "p"},
                        "options": [{"text": {"type": "plain_text", "text": "o"}, "value": "v" * 151}],
                    }
                ],
            }
        ],
        "option value",
    ),
]


@pytest.mark.parametrize(
    ("blocks", "reason"),
    [(b, r) for _, b, r in INVALID_MESSAGE_BLOCKS],
    ids=[i for i, _, _ in INVALID_MESSAGE_BLOCKS],
)
async def test_invalid_message_blocks_are_rejected(
    fake: FakeSlack, client: AsyncWebClient, blocks: list[dict[str, Any]], reason: str
) -> None:
    err = await api_error(client.chat_postMessage(channel=CHANNEL, text="fallback", blocks=blocks))
    assert err["error"] == "invalid_blocks"
    assert any(reason in m for m in err["response_metadata"]["messages"]), err
    assert any(reason in e and e.startswith("chat.postMessage: invalid_blocks") for e in fake.errors), (
        fake.errors
    )
    assert not fake.messages


async def test_a_rich_valid_message_is_accepted(client: AsyncWebClient, fake: FakeSlack) -> None:
    fake.mentions_allowed = True  # the context below mentions a user on purpose
    options = [{"text": {"type": "plain_text", "text": n}, "value": n} for n in ("daily", "weekly")]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Pipeline"}},
        section("*Status*: running", "status"),
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "*Step*\n1/3"}]},
        {"type": "divider"},
        {
            "type": "actions",
            "block_id": "controls",
            "elements": [
                {**button("approve", "Approve", "run-1"), "style": "primary"},
                {
                    "type": "static_select",
                    "action_id": "schedule",
                    "placeholder": {"type": "plain_text", "text": "Schedule"},
                    "options": options,
                    "initial_option": options[0],
                },
            ],
        },
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "started by <@U0ALICE>"}]},
    ]
    await client.chat_postMessage(channel=CHANNEL, text="Pipeline running", blocks=blocks)
    fake.assert_all_ok()


INVALID_VIEWS: list[tuple[str, dict[str, Any], str]] = [
    (
        "25-char title",
        modal(title="t" * 25),
        "less than 25 characters (got 25) [json-pointer:/view/title/text]",
    ),
    (
        "long submit",
        modal(submit={"type": "plain_text", "text": "s" * 25}),
        "[json-pointer:/view/submit/text]",
    ),
    ("long metadata", modal(private_metadata="m" * 3001), "private_metadata"),
    ("long callback_id", modal(callback_id="c" * 256), "callback_id"),
    ("101 blocks", modal(blocks=[section(f"b{i}") for i in range(101)]), "no more than 100 items"),
    ("null submit", {**modal(blocks=[text_input()]), "submit": None}, "null"),
    (
        "no submit with inputs",
        {k: v for k, v in modal(blocks=[text_input()]).items() if k != "submit"},
        "submit is required",
    ),
    (
        "response fields sent back",
        modal(id="V123", hash="1.abc", state={"values": {}}),
        "unsupported field 'id'",
    ),
    (
        "button in an input block",
        modal(blocks=[{**text_input(), "element": button("b")}]),
        "not allowed in an input block",
    ),
    (
        "number_input without is_decimal_allowed",
        modal(blocks=[{**text_input(), "element": {"type": "number_input", "action_id": "n"}}]),
        "is_decimal_allowed",
    ),
    (
        "initial option not among options",
        modal(
            blocks=[
                {
                    **text_input(),
                    "element": {
                        "type": "checkboxes",
                        "action_id": "c",
                        "options": [{"text": {"type": "plain_text", "text": "a"}, "value": "a"}],
                        "initial_options": [{"text": {"type": "plain_text", "text": "b"}, "value": "b"}],
                    },
                }
            ]
        ),
        "initial option must exactly match",
    ),
]


@pytest.mark.parametrize(
    ("view", "reason"), [(v, r) for _, v, r in INVALID_VIEWS], ids=[i for i, _, _ in INVALID_VIEWS]
)
async def test_invalid_views_are_rejected(
    fake: FakeSlack, client: AsyncWebClient, view: dict[str, Any], reason: str
) -> None:
    err = await api_error(client.views_open(trigger_id=fake.issue_trigger_id(), view=view))
    assert err["error"] == "invalid_arguments"
    assert any(reason in e for e in fake.errors), fake.errors
    assert not fake.opened_views


async def test_home_tab_rules(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.add_user("U0ALICE", "Alice")
    file_input = {**text_input(), "element": {"type": "file_input", "action_id": "f"}}
    err = await api_error(
        client.views_publish(user_id="U0ALICE", view={"type": "home", "blocks": [file_input]})
    )
    assert err["error"] == "invalid_arguments"
    assert any("file_input is only allowed in modals" in e for e in fake.errors)
    home = {"type": "home", "blocks": [section("Your pipelines"), text_input()]}
    first = await client.views_publish(user_id="U0ALICE", view=home)
    again = await client.views_publish(user_id="U0ALICE", view=home)
    assert first["view"]["id"] == again["view"]["id"] == fake.home_views["U0ALICE"]["id"]
