"""A real `pipebot serve` (front and engine process) reads what Slack may send: a click and a
form whose payload JSON spans many lines and holds raw non-ASCII text. The front keeps the
payload's JSON as it came for the inbox row, and hands the row to the engine process one line
per row: such a payload must still arrive whole, and the form's answer come back for its ack."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bot.test_serve_crash import CHANNEL, SECRET, free_port, serving, with_blog_post
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_signing import SlackClientSim

pytestmark = pytest.mark.slow
TOPIC = "Café — naïve ✓"


async def test_pretty_printed_unicode_payloads_reach_the_engine_process(tmp_path: Path) -> None:
    base = with_blog_post(tmp_path / "pipelines")
    async with FakeSlack() as fake, SlackClientSim(SECRET, fake) as sim:
        port = free_port()
        url = f"http://127.0.0.1:{port}/slack/events"
        async with serving(base, fake, port):
            resp = await sim.slash_command(url, text="run blog-post", user_id="U0ANA", channel_id=CHANNEL)
            assert resp.status == 200

            def form_button() -> tuple[str, str] | None:
                for m in fake.messages.values():
                    for block in m.blocks:
                        for el in block.get("elements", []):
                            if str(el.get("action_id", "")).startswith("pb:open_form:"):
                                return str(el["action_id"]), m.ts
                return None

            action_id, ts = await fake.wait_for(form_button, timeout=30, what="the form's button")
            resp = await sim.block_action(
                url, "U0ANA", action_id, channel_id=CHANNEL, message_ts=ts, pretty=True
            )
            assert resp.status == 200
            view = await fake.wait_for(
                lambda: next(iter(fake.opened_views.values()), None), timeout=30, what="the modal"
            )

            # The answer comes from the engine process, through the front, in the ack.
            values = {"topic": "   ", "words": "900"}
            resp = await sim.view_submission(url, "U0ANA", view, values, pretty=True)
            assert resp.status == 200 and resp.body["response_action"] == "errors", resp
            assert resp.body["errors"] == {"topic": "is required"}

            resp = await sim.view_submission(url, "U0ANA", view, {**values, "topic": TOPIC}, pretty=True)
            assert resp.status == 200 and resp.body == "", resp
            brief = await fake.wait_for(
                lambda: next((f for f in fake.uploaded_files if f.name == "brief.json"), None),
                timeout=30,
                what="the brief's artifact",
            )
            assert json.loads(brief.content)["topic"] == TOPIC
    fake.assert_all_ok()
