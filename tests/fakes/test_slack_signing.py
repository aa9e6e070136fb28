"""Tests of the Slack request simulator: signatures, payload shapes, and a real bolt app over HTTP."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_signing import SlackClientSim, sign

SECRET = "test-signing-secret"
CHANNEL = "C0PIPE"


def test_sign_is_accepted_by_slack_sdk_verifier() -> None:
    body = b"token=x&command=%2Fpipeline&text=run+nightly"
    verifier = SignatureVerifier(SECRET)
    headers = sign(body, SECRET)
    assert verifier.is_valid_request(body, headers)
    assert headers["X-Slack-Signature"].startswith("v0=")
    assert not verifier.is_valid_request(body, sign(body, "another-secret"))
    assert not verifier.is_valid_request(body + b"x", headers)
    assert not verifier.is_valid_request(body, sign(body, SECRET, timestamp=int(time.time()) - 600))
    fixed = sign(b"{}", SECRET, timestamp=1_700_000_000)
    assert verifier.is_valid(b"{}", "1700000000", fixed["X-Slack-Signature"]) is False  # stale
    assert fixed == sign(b"{}", SECRET, timestamp=1_700_000_000)  # deterministic


@dataclass
class Seen:
    """What the bolt listeners of the test app received."""

    commands: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    submissions: list[dict[str, Any]] = field(default_factory=list)
    downloads: list[bytes] = field(default_factory=list)


def build_app(fake: FakeSlack, seen: Seen) -> AsyncApp:
    client = AsyncWebClient(token=fake.token, base_url=fake.api_url)
    app = AsyncApp(client=client, signing_secret=SECRET)

    @app.command("/pipeline")
    async def on_command(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        seen.commands.append(command)
        await respond(text=f"Starting {command['text']}")

    @app.action("approve")
    async def on_approve(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        seen.actions.append(body)
        form = {
            "type": "modal",
            "callback_id": "approve_form",
            "title": {"type": "plain_text", "text": "Approve run"},
            "submit": {"type": "plain_text", "text": "Approve"},
            "blocks": [
                {
                    "type": "input",
                    "block_id": "why",
                    "label": {"type": "plain_text", "text": "Why?"},
                    "element": {"type": "plain_text_input", "action_id": "reason", "max_length": 50},
                },
                {
                    "type": "input",
                    "block_id": "n",
                    "label": {"type": "plain_text", "text": "Retries"},
                    "element": {"type": "number_input", "action_id": "retries", "is_decimal_allowed": False},
                },
                {
                    "type": "input",
                    "block_id": "env",
                    "label": {"type": "plain_text", "text": "Environment"},
                    "element": {
                        "type": "static_select",
                        "action_id": "env",
                        "options": [
                            {"text": {"type": "plain_text", "text": e}, "value": e}
                            for e in ("staging", "prod")
                        ],
                    },
                },
                {
                    "type": "input",
                    "block_id": "flags",
                    "optional": True,
                    "label": {"type": "plain_text", "text": "Flags"},
                    "element": {
                        "type": "checkboxes",
                        "action_id": "flags",
                        "options": [{"text": {"type": "mrkdwn", "text": "*dry run*"}, "value": "dry"}],
                    },
                },
                {
                    "type": "input",
                    "block_id": "data",
                    "label": {"type": "plain_text", "text": "Data"},
                    "element": {"type": "file_input", "action_id": "data", "filetypes": ["csv"]},
                },
            ],
        }
        await client.views_open(trigger_id=body["trigger_id"], view=form)

    @app.view("approve_form")
    async def on_submit(ack: AsyncAck, view: dict[str, Any], client: AsyncWebClient) -> None:
        values = view["state"]["values"]
        if values["why"]["reason"]["value"] == "invalid":
            await ack(response_action="errors", errors={"why": "Give a real reason"})
            return
        await ack()
        seen.submissions.append(view)
        file_url = values["data"]["data"]["files"][0]["url_private_download"]
        async with (
            aiohttp.ClientSession() as http,
            http.get(file_url, headers={"Authorization": f"Bearer {fake.token}"}) as resp,
        ):
            seen.downloads.append(await resp.read())

    @app.event("app_home_opened")
    async def on_home(event: dict[str, Any], client: AsyncWebClient) -> None:
        home = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Hi"}}]}
        await client.views_publish(user_id=event["user"], view=home)

    return app


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as server:
        yield server


@pytest.fixture
async def seen() -> Seen:
    return Seen()


@pytest.fixture
async def app_url(fake: FakeSlack, seen: Seen) -> AsyncIterator[str]:
    """A bolt AsyncApp served by aiohttp on a loopback port, talking to the fake."""
    runner = web.AppRunner(build_app(fake, seen).web_app(path="/slack/events"), access_log=None)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/slack/events"
    finally:
        await runner.cleanup()


@pytest.fixture
async def sim(fake: FakeSlack) -> AsyncIterator[SlackClientSim]:
    async with SlackClientSim(SECRET, fake) as client:
        yield client


async def test_bolt_accepts_signed_slash_command_and_rejects_forgeries(
    fake: FakeSlack, seen: Seen, sim: SlackClientSim, app_url: str
) -> None:
    status, body = await sim.slash_command(app_url, text="nightly", user_id="U0ALICE", user_name="alice")
    assert (status, body) == (200, "")
    [command] = seen.commands
    assert (command["command"], command["text"], command["user_id"]) == ("/pipeline", "nightly", "U0ALICE")
    assert command["team_id"] == fake.team_id and command["response_url"].startswith(fake.base_url)
    [reply] = await fake.wait_for(lambda: fake.ephemerals)
    assert (reply.text, reply.user, reply.channel) == ("Starting nightly", "U0ALICE", CHANNEL)

    assert (await sim.slash_command(app_url, forge_signature=True)).status == 401
    assert (await sim.slash_command(app_url, timestamp=int(time.time()) - 600)).status == 401
    retried = await sim.slash_command(app_url, text="again", retry_num=1, retry_reason="http_timeout")
    assert retried.status == 200 and sim.sent[-1].headers["X-Slack-Retry-Num"] == "1"
    assert len(seen.commands) == 2
    await fake.wait_for(lambda: len(fake.ephemerals) == 2)
    assert [c.method for c in fake.calls] == ["auth.test"]
    fake.assert_all_ok()


async def test_button_modal_submission_round_trip(
    fake: FakeSlack, seen: Seen, sim: SlackClientSim, app_url: str
) -> None:
    poster = AsyncWebClient(token=fake.token, base_url=fake.api_url)
    approve = {
        "type": "button",
        "action_id": "approve",
        "text": {"type": "plain_text", "text": "Approve"},
        "value": "run-7",
    }
    msg = await poster.chat_postMessage(
        channel=CHANNEL, text="Run 7 awaits approval", blocks=[{"type": "actions", "elements": [approve]}]
    )

    with pytest.raises(LookupError, match="no element with action_id 'reject'"):
        await sim.block_action(app_url, "U0ALICE", "reject", channel_id=CHANNEL, message_ts=msg["ts"])
    with pytest.raises(ValueError, match="carries value 'run-7'"):
        await sim.block_action(
            app_url, "U0ALICE", "approve", "run-8", channel_id=CHANNEL, message_ts=msg["ts"]
        )

    status, _ = await sim.block_action(
        app_url, "U0ALICE", "approve", channel_id=CHANNEL, message_ts=msg["ts"]
    )
    assert status == 200
    [view] = (await fake.wait_for(lambda: fake.opened_views)).values()
    [body] = seen.actions
    assert body["type"] == "block_actions" and body["container"]["message_ts"] == msg["ts"]
    action = body["actions"][0]
    assert (action["action_id"], action["value"], action["type"]) == ("approve", "run-7", "button")
    assert action["block_id"] == body["message"]["blocks"][0]["block_id"]  # generated by the fake

    with pytest.raises(ValueError, match="'data' is required"):
        await sim.view_submission(app_url, "U0ALICE", view, {"reason": "ok", "retries": 2, "env": "prod"})
    with pytest.raises(ValueError, match="decimals are not allowed"):
        await sim.view_submission(
            app_url, "U0ALICE", view, {"reason": "ok", "retries": "1.5", "env": "prod", "data": []}
        )

    values = {"reason": "invalid", "retries": 2, "env": "prod", "data": [("in.csv", b"x,y\n")]}
    refused = await sim.view_submission(app_url, "U0ALICE", view, values)
    assert refused.body == {"response_action": "errors", "errors": {"why": "Give a real reason"}}
    assert view["id"] in fake.opened_views  # still open, showing the error

    values["reason"] = "looks good"
    values["flags"] = ["dry"]
    accepted = await sim.view_submission(app_url, "U0ALICE", view, values)
    assert accepted == (200, "")
    assert view["id"] not in fake.opened_views  # a bare ack closes the modal
    [submitted] = seen.submissions
    state = submitted["state"]["values"]
    assert state["why"]["reason"] == {"type": "plain_text_input", "value": "looks good"}
    assert state["n"]["retries"] == {"type": "number_input", "value": "2"}
    assert state["env"]["env"]["selected_option"] == {
        "text": {"type": "plain_text", "text": "prod", "emoji": True},
        "value": "prod",
    }
    assert [o["value"] for o in state["flags"]["flags"]["selected_options"]] == ["dry"]
    assert state["data"]["data"]["files"][0]["name"] == "in.csv"
    assert (await fake.wait_for(lambda: seen.downloads)) == [b"x,y\n"]
    fake.assert_all_ok()


async def test_events_and_response_url_semantics(fake: FakeSlack, sim: SlackClientSim, app_url: str) -> None:
    status, _ = await sim.event(app_url, {"type": "app_home_opened", "user": "U0ALICE", "tab": "home"})
    assert status == 200
    home = await fake.wait_for(lambda: fake.home_views.get("U0ALICE"))
    assert home["type"] == "home"

    # A response_url from a click on a message can replace the message, like Slack's.
    msg = fake.post_message(CHANNEL, "original", [])
    url = fake.issue_response_url(CHANNEL, "U0ALICE", msg.ts)
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json={"replace_original": True, "text": "replaced"}) as resp:
            assert resp.status == 200
        async with http.post(url, json={"response_type": "in_channel", "text": "for all"}) as resp:
            assert resp.status == 200
        bad = {"text": "x", "blocks": [{"type": "input", "label": {"type": "plain_text", "text": "l"}}]}
        async with http.post(url, json=bad) as resp:
            assert resp.status == 400
    assert [m.text for m in fake.messages_in(CHANNEL)] == ["replaced", "for all"]
    assert fake.responses[-1].error == "invalid_blocks"
    with pytest.raises(AssertionError, match="1 failed response_url post"):
        fake.assert_all_ok()


@pytest.fixture
async def scripted_app() -> AsyncIterator[tuple[str, list[dict[str, Any]], list[Any]]]:
    """A bare HTTP app answering interactions with scripted JSON bodies (or a bare ack)."""
    received: list[dict[str, Any]] = []
    answers: list[Any] = []

    async def handle(request: web.Request) -> web.Response:
        form = await request.post()
        received.append(json.loads(str(form["payload"])))
        return web.json_response(answers.pop(0)) if answers else web.Response()

    app = web.Application()
    app.router.add_post("/slack/events", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/slack/events", received, answers
    finally:
        await runner.cleanup()


async def test_modal_lifecycle_follows_slack(
    fake: FakeSlack, sim: SlackClientSim, scripted_app: tuple[str, list[dict[str, Any]], list[Any]]
) -> None:
    url, received, answers = scripted_app
    client = AsyncWebClient(token=fake.token, base_url=fake.api_url)
    details = {
        "type": "button",
        "action_id": "details",
        "text": {"type": "plain_text", "text": "Details"},
    }
    upload = {"type": "file_input", "action_id": "csv", "filetypes": ["csv"], "max_files": 1}
    form = {
        "type": "modal",
        "callback_id": "f",
        "notify_on_close": True,
        "title": {"type": "plain_text", "text": "Form"},
        "submit": {"type": "plain_text", "text": "Send"},
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": "Upload"}, "accessory": details},
            {
                "type": "input",
                "block_id": "up",
                "label": {"type": "plain_text", "text": "CSV"},
                "element": upload,
            },
        ],
    }
    view = (await client.views_open(trigger_id=fake.issue_trigger_id(), view=form))["view"]

    await sim.block_action(url, "U0ALICE", "details", view_id=view["id"])
    clicked = received[-1]
    assert (
        clicked["container"] == {"type": "view", "view_id": view["id"]}
        and clicked["view"]["id"] == view["id"]
    )
    pushed = (await client.views_push(trigger_id=clicked["trigger_id"], view={**form, "callback_id": "g"}))[
        "view"
    ]
    assert pushed["previous_view_id"] == view["id"]

    with pytest.raises(ValueError, match="not one of the types"):
        await sim.view_submission(url, "U0ALICE", view, {"csv": [("notes.txt", b"x")]})
    with pytest.raises(ValueError, match="at most 1"):
        await sim.view_submission(url, "U0ALICE", view, {"csv": [("a.csv", b"1"), ("b.csv", b"2")]})

    answers.append(
        {"response_action": "update", "view": {**form, "title": {"type": "plain_text", "text": "x" * 30}}}
    )
    await sim.view_submission(url, "U0ALICE", view, {"csv": [("a.csv", b"1")]})
    assert any("response_action update" in e and "title" in e for e in fake.errors)

    answers.append(
        {"response_action": "update", "view": {**form, "title": {"type": "plain_text", "text": "Thanks"}}}
    )
    status, body = await sim.view_submission(url, "U0ALICE", view, {"csv": [("a.csv", b"1")]})
    assert status == 200 and body["response_action"] == "update"
    assert fake.opened_views[view["id"]]["title"]["text"] == "Thanks"
    assert received[-1]["view"]["state"]["values"]["up"]["csv"]["files"][0]["filetype"] == "csv"

    with pytest.raises(ValueError, match="notify_on_close"):
        await sim.view_closed(url, "U0ALICE", {**pushed, "notify_on_close": False})
    await sim.view_closed(url, "U0ALICE", fake.opened_views[view["id"]])
    assert received[-1]["type"] == "view_closed" and view["id"] not in fake.opened_views
    with pytest.raises(LookupError, match="is not open"):
        await sim.view_submission(url, "U0ALICE", view, {"csv": [("a.csv", b"1")]})
    with pytest.raises(AssertionError, match="1 other error"):  # the bad response_action update
        fake.assert_all_ok()
