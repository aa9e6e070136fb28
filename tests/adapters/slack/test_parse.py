"""How a request's body is read: as bolt reads it (the listeners bolt still runs see the same
payload), faster, and keeping the payload's JSON text for the inbox."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from slack_bolt.request.internals import parse_body

from adapters.slack.requests import parse
from engine import messages
from tests.adapters.slack.conftest import Harness

FORM = "application/x-www-form-urlencoded"
CLICK = {"type": "block_actions", "user": {"id": "U1", "name": "zoë"}, "actions": [{"action_id": "pb:x"}]}
BODIES = {
    "a click": urlencode({"payload": json.dumps(CLICK)}),
    "a click, raw UTF-8 and indented": urlencode(
        {"payload": json.dumps(CLICK, indent=2, ensure_ascii=False)}
    ),
    "a command": urlencode({"command": "/pipeline", "text": "run a+b & c=d %41", "user_id": "U1"}),
    "an event": json.dumps({"type": "event_callback", "event_id": "Ev1", "event": {"type": "x"}}),
    "repeated fields: the last wins": "a=1&a=2&b=%zz&c",
    "empty": "",
}


@pytest.mark.parametrize("name", list(BODIES))
def test_bodies_read_as_bolt_reads_them(name: str) -> None:
    text = BODIES[name]
    content_type = "application/json" if text.startswith("{") else FORM
    assert parse(text, content_type)[0] == parse_body(text, content_type)


def test_the_payload_json_is_kept_as_it_came_unless_it_spans_lines() -> None:
    compact = json.dumps(CLICK, ensure_ascii=False)
    assert parse(urlencode({"payload": compact}), FORM) == (CLICK, compact)
    pretty = json.dumps(CLICK, indent=2)  # one row is one line on the pipe to the engine process
    assert parse(urlencode({"payload": pretty}), FORM) == (CLICK, None)
    assert parse(urlencode({"command": "/pipeline"}), FORM) == ({"command": "/pipeline"}, None)


async def test_a_command_that_mentions_payload_is_still_a_command(h: Harness) -> None:
    """bolt's parser reads any form body containing "payload" as a `payload` field (here none:
    an empty payload, answered 404 as unhandled); pipebot reads the fields."""
    text = "run payload-builder"
    assert parse_body(urlencode({"command": "/pipeline", "text": text}), FORM) == {}
    resp = await h.command(text)
    assert resp.status == 200
    assert h.ephemerals_for("U0ANA") == [messages.NO_PIPELINE.format(slug="payload-builder")]
