"""Correctly signed but malformed requests get 400 (or a polite answer), never a 500, and the
server keeps serving."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest

from adapters.slack.forms import FORM_CALLBACK
from engine import messages
from tests.adapters.slack.conftest import CHANNEL, Harness
from tests.fakes.slack_signing import SimResponse

FORM = "application/x-www-form-urlencoded"
USER = {"id": "U0ANA", "username": "ana", "name": "ana", "team_id": "T0FAKE"}


async def post_form(h: Harness, fields: dict[str, str]) -> SimResponse:
    return await h.sim.post(h.url, urlencode(fields).encode(), FORM, {})


async def post_payload(h: Harness, payload: Any) -> SimResponse:
    return await post_form(h, {"payload": json.dumps(payload)})


def click(**overrides: Any) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "user": USER,
        "team": {"id": "T0FAKE"},
        "trigger_id": "1.2.3",
        "container": {"type": "message", "message_ts": "1.1", "channel_id": CHANNEL},
        "channel": {"id": CHANNEL},
        "actions": [{"type": "button", "action_id": "pb:approve_start:1", "value": "pb:approve_start:1"}],
        **overrides,
    }


def submission(view: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    base = {
        "type": "modal",
        "id": "V0X",
        "callback_id": FORM_CALLBACK,
        "title": {"type": "plain_text", "text": "Form"},
    }
    return {
        "type": "view_submission",
        "user": USER,
        "team": {"id": "T0FAKE"},
        "view": {**base, **view},
        **overrides,
    }


MALFORMED: dict[str, tuple[bytes, str]] = {
    "payload not JSON": (b"payload=not-json", FORM),
    "payload a JSON list": (urlencode({"payload": "[1, 2]"}).encode(), FORM),
    "payload a JSON string": (urlencode({"payload": '"x"'}).encode(), FORM),
    "invalid JSON body": (b'{"type": "event_callback", ', "application/json"),
    "JSON body a list": (b"[1]", "application/json"),
    "empty actions": (urlencode({"payload": json.dumps(click(actions=[]))}).encode(), FORM),
    "actions not objects": (urlencode({"payload": json.dumps(click(actions=["x"]))}).encode(), FORM),
    "action_id a number": (
        urlencode({"payload": json.dumps(click(actions=[{"action_id": 5}]))}).encode(),
        FORM,
    ),
    "user a string": (urlencode({"payload": json.dumps(click(user="U0ANA"))}).encode(), FORM),
    "view a list": (
        urlencode({"payload": json.dumps({"type": "view_submission", "user": USER, "view": []})}).encode(),
        FORM,
    ),
    "state.values not an object": (
        urlencode(
            {"payload": json.dumps(submission({"private_metadata": "1", "state": {"values": "x"}}))}
        ).encode(),
        FORM,
    ),
    "state.values of strings": (
        urlencode(
            {"payload": json.dumps(submission({"private_metadata": "1", "state": {"values": {"a": "b"}}}))}
        ).encode(),
        FORM,
    ),
    "private_metadata a number": (
        urlencode(
            {"payload": json.dumps(submission({"private_metadata": 7, "state": {"values": {}}}))}
        ).encode(),
        FORM,
    ),
    # Any JSON encoder may write a lone surrogate's escape in capitals; the check is not fooled.
    "a lone surrogate escaped in capitals": (
        urlencode(
            {"payload": json.dumps(click(user={**USER, "name": "NAME"})).replace('"NAME"', '"x\\uD800"')}
        ).encode(),
        FORM,
    ),
    "command without a user": (
        urlencode({"command": "/pipeline", "text": "run blog-post", "channel_id": CHANNEL}).encode(),
        FORM,
    ),
    "event without an event": (
        json.dumps({"type": "event_callback", "event_id": "Ev1"}).encode(),
        "application/json",
    ),
}


@pytest.mark.parametrize("name", list(MALFORMED))
async def test_malformed_requests_get_400(h: Harness, name: str) -> None:
    body, content_type = MALFORMED[name]
    resp = await h.sim.post(h.url, body, content_type, {})
    assert resp.status == 400, (name, resp)
    await h.settle()
    assert h.engine.runs() == []


async def test_bad_values_in_well_formed_envelopes_get_polite_answers(h: Harness) -> None:
    await h.command("run release", user="U0CAROL")
    [ex] = h.engine.run("release#v1").executions
    values = {
        "version": {"version": {"type": "plain_text_input", "value": "1.0"}},
        "changelog": {
            "changelog": {"type": "file_input", "files": [{"id": "F1", "name": "c.txt", "size": "big"}]}
        },
    }
    resp = await post_payload(h, submission({"private_metadata": "abc", "state": {"values": values}}))
    assert resp.status == 200 and resp.body["response_action"] == "update"
    assert messages.UNREADABLE_FORM in json.dumps(resp.body["view"]["blocks"])

    resp = await post_payload(
        h, submission({"private_metadata": str(ex.execution_id), "state": {"values": values}})
    )
    assert resp.status == 200
    assert resp.body == {"response_action": "errors", "errors": {"changelog": messages.FILE_UNAVAILABLE}}

    # A selected option of the wrong type: read as a client error, not a crash.
    values["risk"] = {"risk": {"type": "static_select", "selected_option": "low"}}
    resp = await post_payload(
        h, submission({"private_metadata": str(ex.execution_id), "state": {"values": values}})
    )
    assert resp.status == 400

    # A click whose button is not ours is answered privately.
    resp = await post_payload(
        h, click(actions=[{"type": "button", "action_id": "pb:nonsense", "value": "x"}])
    )
    assert resp.status == 200
    await h.settle()
    assert h.engine.run("release#v1").executions[0].status == "waiting_for_input"


async def test_unsigned_garbage_is_401_and_the_server_keeps_serving(h: Harness) -> None:
    for body, content_type in MALFORMED.values():
        assert (await h.sim.post(h.url, body, content_type, {}, forge_signature=True)).status == 401
    headers = {"Content-Type": FORM, "X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": "v0=x"}
    resp = await h.sim._send(h.url, b"payload=%7B%7D", headers, {})
    assert resp.status == 401
    await h.command("run blog-post")
    assert [r.name for r in h.engine.runs()] == ["blog-post#v1"]
    h.fake.assert_all_ok()


async def test_numbers_too_large_for_the_database_are_unknown_ids(h: Harness) -> None:
    """SQLite cannot bind 2**64: such a number names nothing, it must not crash (a 500 or no answer)."""
    huge = "99999999999999999999999"
    await h.command("run release", user="U0CAROL")
    resp = await post_payload(h, submission({"private_metadata": huge, "state": {"values": {}}}))
    assert resp.status == 200 and resp.body["response_action"] == "update"
    for text in ("status release#v", "restore ", "run release extend:", "rollback release#v"):
        await h.command(text + huge, user="U0CAROL")
    assert h.ephemerals_for("U0CAROL")[-4:] == [messages.NUMBER_TOO_LARGE] * 4
    assert [r.name for r in h.engine.runs()] == ["release#v1"]
