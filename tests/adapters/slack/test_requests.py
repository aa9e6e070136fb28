"""Requests into the app: signatures, unknown subcommands, retries, App Home, pending, healthz."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import aiohttp
import pytest

from adapters import chat
from adapters.slack.service import run_slack
from bot.settings import Settings
from engine.api import Engine
from tests.adapters.slack.conftest import CHANNEL, SECRET, Harness
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_signing import SlackClientSim


async def test_forged_and_stale_signatures_are_refused(h: Harness) -> None:
    forged = await h.sim.slash_command(h.url, text="run blog-post", forge_signature=True)
    stale = await h.sim.slash_command(h.url, text="run blog-post", timestamp=int(time.time()) - 600)
    click = await h.sim.post(
        h.url, b"payload=%7B%7D", "application/x-www-form-urlencoded", {}, forge_signature=True
    )
    assert (forged.status, stale.status, click.status) == (401, 401, 401)
    await h.settle()
    assert h.engine.runs() == [] and h.fake.calls == []


async def test_unknown_subcommand_lists_the_valid_ones(h: Harness) -> None:
    resp = await h.command("bogus")
    assert resp.body == ""  # acked at once; the answer follows through the response_url
    [answer] = h.ephemerals_for("U0ANA")
    assert answer == f"Unknown subcommand 'bogus'. Valid: {', '.join(chat.SUBCOMMANDS)}."
    assert h.fake.messages_in(CHANNEL) == []  # only the user saw it

    await h.command("help")
    help_blocks = str(h.fake.ephemerals[-1].blocks)
    assert "`/pipeline run &lt;pipeline&gt; [extend:&lt;version&gt;]" in help_blocks
    h.fake.assert_all_ok()


async def test_pending_lists_buttons_and_app_home_publishes_them(h: Harness) -> None:
    await h.command("run blog-post")
    await h.command("pending", user="U0BEN")
    pending = h.fake.ephemerals[-1]
    assert pending.user == "U0BEN" and "blog-post#v1 · Brief: fill in the form" in pending.text
    assert any(b["type"] == "actions" for b in pending.blocks)

    event = {"type": "app_home_opened", "user": "U0BEN", "channel": "D0BEN", "tab": "home"}
    resp = await h.sim.event(h.url, event)
    assert resp.status == 200
    await h.settle()
    home = h.fake.home_views["U0BEN"]
    assert "What waits for you" in str(home["blocks"][0])
    open_form = [el for b in home["blocks"] if b["type"] == "actions" for el in b["elements"]]
    assert [el["value"].rsplit(":", 2)[0] for el in open_form] == [
        f"pb:open_form:{h.engine.run('blog-post#v1').executions[0].execution_id}"
    ]

    # A retried delivery of an event is acked and not acted on again.
    retried = await h.sim.event(h.url, event, retry_num=1, retry_reason="http_timeout")
    assert retried.status == 200
    await h.settle()
    assert len(h.fake.calls_to("views.publish")) == 1

    # A click in the App Home opens the modal, then refreshes the tab.
    await h.sim.block_action(h.url, "U0BEN", open_form[0]["action_id"], view_id=home["id"])
    await h.settle()
    assert len(h.fake.opened_views) == 1 and len(h.fake.calls_to("views.publish")) == 2
    h.fake.assert_all_ok()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
async def test_run_slack_serves_healthz_and_events(engine: Engine, fake: FakeSlack, tmp_path: Path) -> None:
    port = free_port()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        base_pipelines_path=tmp_path,
        slack_bot_token=fake.token,
        slack_signing_secret=SECRET,
        slack_api_url=fake.api_url,
        pipebot_http_port=port,
    )
    stop = asyncio.Event()
    service = asyncio.create_task(run_slack(engine, settings, stop))
    dispatcher = asyncio.create_task(engine.outbox.run(stop))
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(200):  # readiness probe: the server binds in a few ms
                try:
                    async with session.get(f"{base}/healthz") as health:
                        assert health.status == 200
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.01)
            else:
                pytest.fail("the Slack server did not come up")
        async with SlackClientSim(SECRET, fake) as sim:
            answer = await sim.slash_command(f"{base}/slack/events", text="run blog-post", user_id="U0ANA")
        assert answer.status == 200
        # The dispatcher (started by serve, here by the test) posts the run message.
        await fake.wait_for(lambda: fake.messages_in(CHANNEL), what="the run message")
    finally:
        stop.set()
        await asyncio.gather(service, dispatcher)
    fake.assert_all_ok()
