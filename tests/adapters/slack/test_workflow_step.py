"""The Workflow Builder step "Run a pipebot pipeline": Slack's function_executed event starts a run
(its form filled from the step's JSON), and the step completes when the run ends, even across a
restart of the app; a run that cannot start or that fails completes it with an error."""

from __future__ import annotations

import json
from typing import Any

from adapters.slack.workflow import CALLBACK_ID
from engine.actors import Actor
from engine.api import Engine
from tests.adapters.slack.conftest import CHANNEL, Harness, start_harness, stop_harness
from tests.adapters.slack.test_manifests import manifest
from tests.conftest import EXAMPLES
from tests.fakes.slack_api import FakeSlack

BOB = Actor("slack", "U0BEN", "Bob")
STEP: dict[str, Any] = manifest("slack.yaml")["functions"][CALLBACK_ID]


async def execute(h: Harness, inputs: dict[str, Any]) -> str:
    event = h.fake.function_executed(STEP, CALLBACK_ID, inputs)
    resp = await h.sim.event(h.url, event)
    assert resp.status == 200
    await h.settle()
    return str(event["function_execution_id"])


async def test_a_workflow_starts_a_run_and_waits_for_its_approvals(
    engine: Engine, fake: FakeSlack
) -> None:
    h = await start_harness(engine, fake)
    try:
        values = json.dumps({"topic": "Launch day", "words": 900})
        execution = await execute(h, {"pipeline": "blog-post", "channel": CHANNEL, "values": values})
        # The run lives in the channel like any other; the form was filled in by the workflow.
        assert h.run_message().text.startswith("blog-post#v1")
        assert "Brief" in h.last_with_button("approve_complete").text
        assert fake.executions[execution].status == "open"  # waiting for people
    finally:
        await stop_harness(h)
    # A restart: a new app, the same database. The step is completed when the run ends.
    h = await start_harness(engine, fake)
    try:
        for _ in range(10):  # every approval and form, as Bob, until the run ends
            items = engine.pending(BOB)
            if not items:
                break
            item = items[0]
            action = item.buttons[0].action
            if action == "open_form":
                engine.submit_form(item.execution_id, BOB, {"outline": "1. Intro"})
            elif action == "approve_start":
                engine.approve_start(item.execution_id, BOB)
            else:
                engine.approve_complete(item.execution_id, BOB)
            await h.settle()
        done = fake.executions[execution]
        assert engine.run("blog-post#v1").info.status == "completed"
        assert done.status == "completed" and done.result["run"] == "blog-post#v1"
        assert done.result["status"] == "completed" and done.result["link"].startswith(
            f"https://slack.com/archives/{CHANNEL}/p"
        )
        assert not fake.errors
    finally:
        await stop_harness(h)


async def test_a_step_that_cannot_start_a_run_completes_with_the_reason(h: Harness) -> None:
    missing = await execute(h, {"pipeline": "nope", "channel": CHANNEL})
    bad_json = await execute(h, {"pipeline": "blog-post", "channel": CHANNEL, "values": "{not json"})
    assert h.fake.executions[missing].status == "failed"
    assert "nope" in (h.fake.executions[missing].error or "")
    assert h.fake.executions[bad_json].status == "failed"


async def test_a_cancelled_run_completes_its_step_with_an_error(h: Harness) -> None:
    execution = await execute(h, {"pipeline": "blog-post", "channel": CHANNEL})
    await h.command("cancel blog-post#v1", user="U0ANA")
    await h.settle()
    step = h.fake.executions[execution]
    assert step.status == "failed" and step.error == "blog-post#v1 cancelled"


async def test_the_user_input_grants_nothing(h: Harness) -> None:
    # The workflow's author types `user` freely: naming a runner must not let the step start a run
    # that only that runner may start; the step acts as slack:workflow.
    text = (EXAMPLES / "blog-post.yaml").read_text().replace("id: blog-post", "id: gated", 1)
    h.engine.import_pipeline_text('runners: ["slack:U0ANA"]\n' + text, actor=None)
    refused = await execute(h, {"pipeline": "gated", "channel": CHANNEL, "user": "U0ANA"})
    assert h.fake.executions[refused].status == "failed"
    assert h.engine.runs("gated") == []
