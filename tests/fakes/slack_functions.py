"""Workflow Builder custom steps for the fake Slack Web API: ``function_executed`` events built the
way Slack sends them (and Bolt's ``app.function`` reads them), and functions.completeSuccess /
completeError, which close an open execution once, with outputs that match the step's manifest."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.slack_blocks import decode_json_arg
from tests.fakes.slack_records import ApiError
from tests.fakes.slack_streams import SlackStreams


@dataclass
class FunctionExecution:
    id: str
    callback_id: str
    inputs: dict[str, Any]
    outputs: list[str]  # the names the manifest declares
    required: list[str]
    status: str = "open"  # then "completed" or "failed"
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


class SlackFunctions(SlackStreams):
    executions: dict[str, FunctionExecution]

    def init_functions(self) -> None:
        self.executions = {}

    def function_executed(
        self, manifest_function: dict[str, Any], callback_id: str, inputs: dict[str, Any]
    ) -> dict[str, Any]:
        """A ``function_executed`` event for the step ``callback_id`` (its manifest definition)."""
        outputs = manifest_function.get("output_parameters") or {}
        execution = FunctionExecution(
            f"Fx{secrets.token_hex(5).upper()}",
            callback_id,
            inputs,
            list(outputs),
            [name for name, p in outputs.items() if p.get("is_required")],
        )
        self.executions[execution.id] = execution
        params = manifest_function.get("input_parameters") or {}
        now = int(time.time())
        return {
            "type": "function_executed",
            "function": {
                "id": f"Fn{secrets.token_hex(5).upper()}",
                "callback_id": callback_id,
                "title": manifest_function.get("title", callback_id),
                "description": manifest_function.get("description", ""),
                "type": "app",
                "input_parameters": [{"name": name, **p} for name, p in params.items()],
                "output_parameters": [{"name": name, **p} for name, p in outputs.items()],
                "app_id": self.app_id,
                "date_created": now,
                "date_updated": now,
                "date_deleted": 0,
            },
            "inputs": inputs,
            "function_execution_id": execution.id,
            "workflow_execution_id": f"Wx{secrets.token_hex(5).upper()}",
            "bot_access_token": f"xwfp-{secrets.token_hex(8)}",
        }

    def _open_execution(self, args: dict[str, Any]) -> FunctionExecution:
        execution = self.executions.get(str(args.get("function_execution_id") or ""))
        if execution is None:
            raise ApiError("function_execution_not_found", "no such function execution")
        if execution.status != "open":
            raise ApiError("function_execution_already_completed", f"already {execution.status}")
        return execution

    async def _functions_complete_success(self, args: dict[str, Any]) -> dict[str, Any]:
        execution = self._open_execution(args)
        try:
            outputs = decode_json_arg(args.get("outputs"))
        except (ValueError, TypeError):
            outputs = None
        if not isinstance(outputs, dict):
            raise ApiError("invalid_arguments", "[ERROR] outputs must be an object")
        unknown = set(outputs) - set(execution.outputs)
        missing = [name for name in execution.required if outputs.get(name) in (None, "")]
        if unknown or missing:
            raise ApiError("invalid_arguments", f"unknown outputs {sorted(unknown)}, missing {missing}")
        execution.status, execution.result = "completed", outputs
        return {}

    async def _functions_complete_error(self, args: dict[str, Any]) -> dict[str, Any]:
        execution = self._open_execution(args)
        error = args.get("error")
        if not isinstance(error, str) or not error:
            raise ApiError("invalid_arguments", "[ERROR] error is required")
        execution.status, execution.error = "failed", error
        return {}
