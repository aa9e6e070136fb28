"""Tests of the fake Slack Web API, driven by slack_sdk's real AsyncWebClient."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack_api import FakeSlack

CHANNEL = "C0PIPE"


def section(text: str, block_id: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": text}}
    if block_id:
        block["block_id"] = block_id
    return block


def button(action_id: str, text: str = "Go", value: str = "v") -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": text},
        "value": value,
    }


def modal(
    title: str = "Run pipeline", blocks: list[dict[str, Any]] | None = None, **extra: Any
) -> dict[str, Any]:
    view: dict[str, Any] = {
        "type": "modal",
        "callback_id": "run",
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": "Run"},
        "blocks": blocks if blocks is not None else [section("Pick a pipeline")],
    }
    return {**view, **extra}


def text_input(action_id: str = "name", block_id: str = "name_block") -> dict[str, Any]:
    return {
        "type": "input",
        "block_id": block_id,
        "label": {"type": "plain_text", "text": "Name"},
        "element": {"type": "plain_text_input", "action_id": action_id},
    }


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as server:
        yield server


@pytest.fixture
def client(fake: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=fake.token, base_url=fake.api_url)


async def api_error(call: Awaitable[Any]) -> Any:
    """The response of a call slack_sdk must reject (it raises SlackApiError on ``ok: false``)."""
    with pytest.raises(SlackApiError) as info:
        await call
    return info.value.response


# -- messages ---------------------------------------------------------------------------------------


async def test_post_update_thread_and_ephemeral(fake: FakeSlack, client: AsyncWebClient) -> None:
    auth = await client.auth_test()
    assert (auth["user_id"], auth["bot_id"], auth["team_id"]) == (fake.bot_user_id, fake.bot_id, fake.team_id)

    posted = await client.chat_postMessage(
        channel=CHANNEL, text="Run #1 started", blocks=[section("*Run #1*")]
    )
    assert posted["channel"] == CHANNEL and posted["message"]["text"] == "Run #1 started"
    ts = posted["ts"]
    assert posted["message"]["blocks"][0]["block_id"]  # generated like Slack does

    reply = await client.chat_postMessage(channel=CHANNEL, text="step 1 ok", thread_ts=ts)
    nested = await client.chat_postMessage(channel=CHANNEL, text="step 2 ok", thread_ts=reply["ts"])
    assert nested["message"]["thread_ts"] == ts  # a reply to a reply lands in the parent's thread
    assert ts < reply["ts"] < nested["ts"]

    await client.chat_update(
        channel=CHANNEL, ts=ts, text="Run #1 done", blocks=[section("*Run #1* :white_check_mark:")]
    )
    await client.chat_update(channel=CHANNEL, ts=reply["ts"], text="step 1 ok (edited)")

    [top] = fake.messages_in(CHANNEL)
    assert (top.ts, top.text, top.edited) == (ts, "Run #1 done", True)
    assert top.blocks[0]["text"]["text"] == "*Run #1* :white_check_mark:"
    assert top.history[0][0] == "Run #1 started"
    assert [m.text for m in fake.messages_in(CHANNEL, thread_ts=ts)] == ["step 1 ok (edited)", "step 2 ok"]

    fake.add_user("U0ALICE", "Alice Liddell")
    eph = await client.chat_postEphemeral(channel=CHANNEL, user="U0ALICE", text="only you", thread_ts=ts)
    assert fake.ephemerals[0].user == "U0ALICE" and fake.ephemerals[0].ts == eph["message_ts"]

    dm = await client.chat_postMessage(channel="U0ALICE", text="hello")
    assert dm["channel"] == "D0ALICE" and fake.messages_in("D0ALICE")[0].text == "hello"
    assert [c.method for c in fake.calls].count("chat.postMessage") == 4
    fake.assert_all_ok()


async def test_update_unknown_message_is_rejected_and_reported(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    err = await api_error(client.chat_update(channel=CHANNEL, ts="1700000000.999999", text="x"))
    assert err["error"] == "message_not_found"
    assert any("message_not_found" in e for e in fake.errors)
    with pytest.raises(AssertionError, match="1 failed Slack call"):
        fake.assert_all_ok()
    fake.assert_all_ok(allow_errors={"message_not_found"})


async def test_message_argument_checks(fake: FakeSlack, client: AsyncWebClient) -> None:
    with pytest.warns(UserWarning, match="`text` argument is missing"):
        assert (await api_error(client.chat_postMessage(channel=CHANNEL)))["error"] == "no_text"
    too_long = await api_error(client.chat_postMessage(channel=CHANNEL, text="x" * 40_001))
    assert too_long["error"] == "msg_too_long"
    missing = await api_error(client.api_call("chat.postMessage", json={"text": "no channel"}))
    assert missing["error"] == "invalid_arguments"
    assert missing["response_metadata"]["messages"] == ["[ERROR] missing required field: channel"]
    bad_channel = await api_error(client.chat_postMessage(channel="#nowhere", text="x"))
    assert bad_channel["error"] == "channel_not_found"
    fake.add_user("U0BOB", "Bob")
    eph = await api_error(client.chat_postEphemeral(channel=CHANNEL, user="U0NOBODY", text="x"))
    assert eph["error"] == "user_not_found"


async def test_auth_is_required(fake: FakeSlack) -> None:
    anonymous = AsyncWebClient(base_url=fake.api_url)
    assert (await api_error(anonymous.auth_test()))["error"] == "not_authed"
    wrong = AsyncWebClient(token="xoxb-wrong", base_url=fake.api_url)
    assert (await api_error(wrong.chat_postMessage(channel=CHANNEL, text="x")))["error"] == "invalid_auth"
    assert not fake.messages
    unknown = AsyncWebClient(token=fake.token, base_url=fake.api_url)
    assert (await api_error(unknown.api_call("chat.scheduledNonsense")))["error"] == "unknown_method"


async def test_form_bodies_token_field_and_json_only_where_slack_reads_it(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    blocks = '[{"type": "section", "text": {"type": "mrkdwn", "text": "form"}}]'
    anonymous = AsyncWebClient(base_url=fake.api_url)
    sent = await anonymous.api_call(
        "chat.postMessage", data={"token": fake.token, "channel": CHANNEL, "text": "f", "blocks": blocks}
    )
    assert fake.get_message(CHANNEL, sent["ts"]).blocks[0]["text"]["text"] == "form"
    assert "token" not in fake.calls[-1].args

    fake.add_user("U0ALICE", "Alice")
    err = await api_error(client.api_call("users.info", json={"user": "U0ALICE"}))  # form-only method
    assert err["error"] == "invalid_arguments"
    assert any("application/json bodies are not read" in e for e in fake.errors)
    assert (await client.users_info(user="U0ALICE"))["user"]["real_name"] == "Alice"


# -- views and triggers -----------------------------------------------------------------------------


async def test_trigger_ids_are_single_use_and_expire() -> None:
    clock = Clock()
    async with FakeSlack(clock=clock, trigger_ttl=3.0) as fake:
        client = AsyncWebClient(token=fake.token, base_url=fake.api_url)
        trigger = fake.issue_trigger_id()
        opened = await client.views_open(trigger_id=trigger, view=modal())
        assert fake.opened_views[opened["view"]["id"]]["title"]["text"] == "Run pipeline"
        assert (await api_error(client.views_open(trigger_id=trigger, view=modal())))[
            "error"
        ] == "exchanged_trigger_id"

        late = fake.issue_trigger_id()
        clock.now += 3.01
        assert (await api_error(client.views_open(trigger_id=late, view=modal())))[
            "error"
        ] == "expired_trigger_id"
        bogus = await api_error(client.views_open(trigger_id="123.456.abc", view=modal()))
        assert bogus["error"] == "invalid_trigger_id"
        assert len(fake.opened_views) == 1


async def test_views_update_push_and_hash(fake: FakeSlack, client: AsyncWebClient) -> None:
    opened = (await client.views_open(trigger_id=fake.issue_trigger_id(), view=modal(external_id="run-1")))[
        "view"
    ]
    assert opened["state"] == {"values": {}} and opened["root_view_id"] == opened["id"]

    updated = (await client.views_update(view_id=opened["id"], hash=opened["hash"], view=modal("Step 2")))[
        "view"
    ]
    assert updated["id"] == opened["id"] and fake.opened_views[opened["id"]]["title"]["text"] == "Step 2"
    stale = await api_error(client.views_update(view_id=opened["id"], hash=opened["hash"], view=modal()))
    assert stale["error"] == "hash_conflict"
    by_external = await client.views_update(external_id="run-1", view=modal("Step 3"))
    assert by_external["view"]["title"]["text"] == "Step 3"
    assert (await api_error(client.views_update(view_id="V404", view=modal())))["error"] == "not_found"

    pushed = (await client.views_push(trigger_id=fake.issue_trigger_id(opened["id"]), view=modal("Details")))[
        "view"
    ]
    assert (pushed["previous_view_id"], pushed["root_view_id"]) == (opened["id"], opened["id"])
    outside = await api_error(client.views_push(trigger_id=fake.issue_trigger_id(), view=modal()))
    assert outside["error"] == "not_found"
    third = (await client.views_push(trigger_id=fake.issue_trigger_id(pushed["id"]), view=modal("3")))["view"]
    too_deep = await api_error(client.views_push(trigger_id=fake.issue_trigger_id(third["id"]), view=modal()))
    assert too_deep["error"] == "push_limit_reached"


# -- files ------------------------------------------------------------------------------------------


async def test_files_upload_v2_end_to_end(fake: FakeSlack, client: AsyncWebClient) -> None:
    parent = await client.chat_postMessage(channel=CHANNEL, text="report follows")
    result = await client.files_upload_v2(
        channel=CHANNEL,
        thread_ts=parent["ts"],
        filename="report.csv",
        content=b"a,b\n1,2\n",
        title="Run report",
        initial_comment="Here is the report",
    )
    [uploaded] = fake.uploaded_files
    assert (uploaded.name, uploaded.content, uploaded.title) == ("report.csv", b"a,b\n1,2\n", "Run report")
    assert (uploaded.channel, uploaded.thread_ts, uploaded.initial_comment) == (
        CHANNEL,
        parent["ts"],
        "Here is the report",
    )
    assert result["file"]["id"] == uploaded.id
    [share] = fake.messages_in(CHANNEL, thread_ts=parent["ts"])
    assert share.files == [uploaded.id] and share.text == "Here is the report"

    info = (await client.files_info(file=uploaded.id))["file"]
    assert info["size"] == 8 and info["mimetype"] == "text/csv" and info["channels"] == [CHANNEL]
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {fake.token}"}
        async with http.get(info["url_private_download"], headers=headers) as resp:
            assert await resp.read() == b"a,b\n1,2\n"
        async with http.get(info["url_private"]) as resp:  # no token: Slack's login page
            assert resp.content_type == "text/html"
    assert fake.downloads == [uploaded.id]
    with pytest.raises(AssertionError, match="1 other error"):
        fake.assert_all_ok()


async def test_upload_protocol_errors(fake: FakeSlack, client: AsyncWebClient) -> None:
    ticket = await client.files_getUploadURLExternal(filename="x.txt", length=5)
    early = await api_error(
        client.files_completeUploadExternal(files=[{"id": ticket["file_id"], "title": "x"}])
    )
    assert early["error"] == "file_not_found"
    async with aiohttp.ClientSession() as http:
        async with http.post(ticket["upload_url"], data=b"1234") as resp:
            assert resp.status == 400
        async with http.post(ticket["upload_url"], data=b"12345") as resp:
            assert (resp.status, await resp.text()) == (200, "OK - 5")
    done = await client.files_completeUploadExternal(files=[{"id": ticket["file_id"], "title": "x"}])
    assert done["files"] == [{"id": ticket["file_id"], "title": "x"}] and not fake.messages  # not shared
    unknown = await api_error(client.files_completeUploadExternal(files=[{"id": "F404"}], channel_id=CHANNEL))
    assert unknown["error"] == "file_not_found"
    zero = await api_error(client.files_getUploadURLExternal(filename="x.txt", length=0))
    assert zero["error"] == "invalid_arguments"
    assert any("got 4 bytes, announced 5" in e for e in fake.errors)


# -- directory --------------------------------------------------------------------------------------


async def test_users_usergroups_and_conversations(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.add_user("U0ALICE", "Alice Liddell", email="alice@example.com")
    fake.set_usergroup("S0REVIEWERS", ["U0ALICE", "U0BOB"])
    fake.add_channel(CHANNEL, "pipelines")
    assert (await client.users_info(user="U0ALICE"))["user"]["real_name"] == "Alice Liddell"
    assert (await client.usergroups_users_list(usergroup="S0REVIEWERS"))["users"] == ["U0ALICE", "U0BOB"]
    assert (await client.conversations_info(channel=CHANNEL))["channel"]["name"] == "pipelines"
    assert (await api_error(client.users_info(user="U0NOPE")))["error"] == "user_not_found"
    assert (await api_error(client.usergroups_users_list(usergroup="S0NOPE")))["error"] == "no_such_subteam"
    assert (await api_error(client.conversations_info(channel="C0NOPE")))["error"] == "channel_not_found"


# -- injected failures ------------------------------------------------------------------------------


async def test_rate_limit_raises_without_retry_handler(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.rate_limit("chat.postMessage", times=1, retry_after=7)
    err = await api_error(client.chat_postMessage(channel=CHANNEL, text="x"))
    assert err.status_code == 429 and err.headers["Retry-After"] == "7"
    assert err["error"] == "ratelimited"
    await client.chat_postMessage(channel=CHANNEL, text="x")
    assert [c.status for c in fake.calls_to("chat.postMessage")] == [429, 200]
    fake.assert_all_ok()  # injected failures are not the app's fault


async def test_rate_limit_is_retried_by_slack_sdk_handler(
    fake: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(random, "random", lambda: 0.0)  # the handler sleeps Retry-After + random()
    client = AsyncWebClient(
        token=fake.token,
        base_url=fake.api_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)],
    )
    fake.rate_limit("chat.postMessage", times=2, retry_after=0)
    posted = await client.chat_postMessage(channel=CHANNEL, text="eventually")
    assert [c.status for c in fake.calls_to("chat.postMessage")] == [429, 429, 200]
    assert fake.get_message(CHANNEL, posted["ts"]).text == "eventually"


async def test_fail_next_injects_platform_errors(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.fail_next("chat.postMessage", "internal_error")
    fake.fail_next("views.open", "service_unavailable", status=503)
    assert (await api_error(client.chat_postMessage(channel=CHANNEL, text="x")))["error"] == "internal_error"
    unavailable = await api_error(client.views_open(trigger_id=fake.issue_trigger_id(), view=modal()))
    assert unavailable.status_code == 503
    await client.chat_postMessage(channel=CHANNEL, text="x")
    assert len(fake.messages) == 1
    fake.assert_all_ok()


# -- waiting ----------------------------------------------------------------------------------------


async def test_wait_for_wakes_on_calls_and_times_out_with_a_report(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    async def bot() -> None:
        await asyncio.sleep(0.02)
        await client.chat_postMessage(channel=CHANNEL, text="done")

    task = asyncio.create_task(bot())
    [msg] = await fake.wait_for(lambda: fake.messages_in(CHANNEL), timeout=2)
    assert msg.text == "done"
    await task
    with pytest.raises(
        AssertionError, match=r"timed out after 0.05s waiting for a reply(.|\n)*chat.postMessage ok"
    ):
        await fake.wait_for(lambda: fake.messages_in(CHANNEL, thread_ts=msg.ts), timeout=0.05, what="a reply")


async def test_unescaped_mentions_are_reported(fake: FakeSlack, client: AsyncWebClient) -> None:
    escaped = [section("&lt;@U1&gt;")]
    await client.chat_postMessage(channel=CHANNEL, text="ok &lt;!channel&gt;", blocks=escaped)
    fake.assert_all_ok()  # escaped: shown as text
    await client.chat_postMessage(channel=CHANNEL, text="hi <!here>")
    await client.chat_postMessage(channel=CHANNEL, text="x", blocks=[section("see <http://evil|bank>")])
    assert [e.split(":")[0] for e in fake.errors] == ["mention", "mention"]
    with pytest.raises(AssertionError, match="would ping or link"):
        fake.assert_all_ok()
    fake.errors.clear()
    fake.mentions_allowed = True  # a test that means to post one
    await client.chat_postMessage(channel=CHANNEL, text="<@U1>")
    fake.assert_all_ok()
