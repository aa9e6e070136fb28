"""The app manifests match what the adapter serves and calls."""

from __future__ import annotations

from typing import Any

import yaml

from adapters.slack.commands import COMMAND
from adapters.slack.service import EVENTS_PATH
from adapters.slack.workflow import CALLBACK_ID
from tests.conftest import ROOT

SCOPES = [
    "commands",
    "chat:write",
    "chat:write.public",
    "files:write",
    "files:read",
    "users:read",
    "usergroups:read",
    "channels:history",
    "groups:history",
]


def manifest(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "manifests" / name).read_text())
    return data


def test_http_manifest_points_every_request_url_at_the_events_path() -> None:
    m = manifest("slack.yaml")
    [command] = m["features"]["slash_commands"]
    urls = [command["url"], m["settings"]["event_subscriptions"]["request_url"]]
    urls.append(m["settings"]["interactivity"]["request_url"])
    assert all(u == f"https://YOUR_HOST{EVENTS_PATH}" for u in urls)
    assert command["command"] == COMMAND and command["usage_hint"]
    assert m["settings"]["socket_mode_enabled"] is False


def test_socket_manifest_has_no_request_urls() -> None:
    m = manifest("slack-socket.yaml")
    assert m["settings"]["socket_mode_enabled"] is True
    assert "YOUR_HOST" not in (ROOT / "manifests" / "slack-socket.yaml").read_text()


def test_both_manifests_ask_for_the_same_exact_scopes_and_events() -> None:
    for name in ("slack.yaml", "slack-socket.yaml"):
        m = manifest(name)
        assert m["oauth_config"]["scopes"]["bot"] == SCOPES
        assert m["settings"]["event_subscriptions"]["bot_events"] == ["app_home_opened", "function_executed"]
        assert m["features"]["app_home"]["home_tab_enabled"] is True
        assert m["settings"]["interactivity"]["is_enabled"] is True


def test_the_workflow_step_is_declared_as_the_adapter_serves_it() -> None:
    for name in ("slack.yaml", "slack-socket.yaml"):
        m = manifest(name)
        step = m["functions"][CALLBACK_ID]
        assert step["title"] == "Run a pipebot pipeline"
        assert {k: v["is_required"] for k, v in step["input_parameters"].items()} == {
            "pipeline": True, "channel": True, "values": False, "user": False
        }  # fmt: skip
        assert step["input_parameters"]["channel"]["type"] == "slack#/types/channel_id"
        assert list(step["output_parameters"]) == ["run", "status", "link"]
        assert m["settings"]["function_runtime"] == "remote" and m["settings"]["org_deploy_enabled"] is True
