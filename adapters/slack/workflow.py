"""A Workflow Builder step: "Run a pipebot pipeline" (``functions.run_pipeline`` in the manifests).

Slack sends ``function_executed`` with the step's inputs (pipeline, channel, optional form values
as JSON); the run starts in that channel like ``/pipeline run`` and the step stays open while the
run waits for forms and approvals, for as long as that takes. The function execution id is kept
with the run (its finish hook), so the step is completed when the run ends, also after restarts:
the deliverer sees the run's status card go to completed (``functions.completeSuccess`` with the
run's name, status and a link to its thread) or failed/cancelled (``functions.completeError``).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.context import SlackContext
from adapters.slack.directory import PLATFORM
from engine.actors import Actor, Conversation
from engine.errors import PipebotError
from engine.notifications import RunInfo
from engine.outbox import MessageRef

log = logging.getLogger("pipebot.slack")
CALLBACK_ID = "run_pipeline"
HOOK = "slack-function:"  # a run's finish_hook: this prefix and the function execution id
FINISHED = {"completed", "failed", "cancelled"}
WORKFLOW = "Workflow Builder"


def register(app: AsyncApp, ctx: SlackContext) -> None:
    async def run_pipeline(event: dict[str, Any]) -> None:  # Bolt acknowledges the event first
        ctx.spawn(start(ctx, event), "workflow step")

    app.function(CALLBACK_ID)(run_pipeline)


async def start(ctx: SlackContext, event: dict[str, Any]) -> None:
    execution = str(event.get("function_execution_id") or "")
    inputs: dict[str, Any] = event.get("inputs") or {}
    pipeline, channel = str(inputs.get("pipeline") or "").strip(), str(inputs.get("channel") or "")
    # Whoever builds the workflow chooses its `user` input freely, so it names the run's owner but
    # never grants anything: the step acts as the principal slack:workflow (runners must name it).
    user = str(inputs.get("user") or "")[:100]
    actor = Actor(PLATFORM, "workflow", f"{WORKFLOW} for {user}" if user else WORKFLOW)
    try:
        values = json.loads(inputs["values"]) if inputs.get("values") else {}
        if not isinstance(values, dict):
            raise ValueError("form values must be a JSON object")
        info = await ctx.call(
            ctx.engine.start_run, pipeline, actor, Conversation(PLATFORM, channel), None, HOOK + execution
        )
        if values:  # the first checkpoint's form, filled in by the workflow
            view = await ctx.call(ctx.engine.run, info.name)
            first = view.executions[0]
            if first.status != "waiting_for_input":
                raise PipebotError(f"{info.name} does not start with a form; the values were not used")
            await ctx.call(ctx.engine.submit_form, first.execution_id, actor, values)
    except (PipebotError, ValueError) as exc:  # the engine's own words (no pipeline, not allowed...)
        await _complete_error(ctx.client, execution, str(exc))
        return
    log.info("workflow step %s started %s", execution, info.name)


def link(ref: MessageRef) -> str:
    return f"https://slack.com/archives/{ref.channel}/p{ref.message_id.replace('.', '')}"


async def finished(client: AsyncWebClient, run: RunInfo, ref: MessageRef | None) -> None:
    """The run's status card went out: complete the step waiting for the run, if it ended."""
    hook = run.finish_hook or ""
    if not hook.startswith(HOOK) or run.status not in FINISHED:
        return
    execution = hook[len(HOOK) :]
    if run.status == "completed":
        outputs = {"run": run.name, "status": run.status, "link": link(ref) if ref else ""}
        try:
            await client.functions_completeSuccess(function_execution_id=execution, outputs=outputs)
        except SlackApiError as exc:
            if not _already_done(exc):
                raise
        return
    await _complete_error(client, execution, f"{run.name} {run.status.replace('_', ' ')}")


async def _complete_error(client: AsyncWebClient, execution: str, error: str) -> None:
    try:
        await client.functions_completeError(function_execution_id=execution, error=error)
    except SlackApiError as exc:
        if not _already_done(exc):
            raise


def _already_done(exc: SlackApiError) -> bool:
    # A card edited again after the end, or a retry after a lost answer: the step is done already.
    done = ("function_execution_not_found", "function_execution_already_completed")
    return exc.response.get("error") in done
