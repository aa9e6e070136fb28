"""Who clicked: Slack user ids to engine Actors (display names and user group handles), cached.

Names come from users.info; groups ("@release-managers") from usergroups.list with
include_users. Groups are fetched only while some pipeline names a ``slack:@group`` approver:
most workspaces never pay for the call (and free workspaces have no user groups at all).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from engine.actors import Actor
from engine.api import Engine

log = logging.getLogger("pipebot.slack")
PLATFORM = "slack"
GROUP_PREFIX = f"{PLATFORM}:@"
LOOKUP_TIMEOUT = 1.5  # a click must still be acked (or a modal answered) within Slack's 3 s


class Directory:
    def __init__(
        self,
        client: AsyncWebClient,
        engine: Engine,
        *,
        name_ttl: float = 600.0,
        group_ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client, self.engine, self.clock = client, engine, clock
        self.name_ttl, self.group_ttl = name_ttl, group_ttl
        self._names: dict[str, tuple[float, str]] = {}
        self._groups: tuple[float, dict[str, frozenset[str]]] | None = None  # user id -> handles
        self._groups_needed: tuple[float, bool] | None = None
        self._lock = asyncio.Lock()

    async def actor(self, user_id: str, fallback_name: str | None = None) -> Actor:
        name, groups = await asyncio.gather(self.name(user_id, fallback_name), self.groups(user_id))
        return Actor(PLATFORM, user_id, name, groups)

    async def name(self, user_id: str, fallback: str | None = None) -> str:
        cached = self._names.get(user_id)
        if cached and cached[0] > self.clock():
            return cached[1]
        try:
            resp = await asyncio.wait_for(self.client.users_info(user=user_id), LOOKUP_TIMEOUT)
            user: dict[str, Any] = resp["user"]
            profile = user.get("profile") or {}
            name = str(profile.get("display_name") or profile.get("real_name") or user.get("name") or user_id)
        except (SlackApiError, TimeoutError, OSError) as exc:
            log.warning("users.info %s failed: %r", user_id, exc)
            return fallback or user_id  # not cached: the next click tries again
        self._names[user_id] = (self.clock() + self.name_ttl, name)
        return name

    async def groups(self, user_id: str) -> frozenset[str]:
        if not await self._need_groups():
            return frozenset()
        async with self._lock:  # one usergroups.list per expiry, however many clicks arrive
            if self._groups is None or self._groups[0] <= self.clock():
                members = await self._fetch_groups()
                if members is None:
                    return frozenset()
                self._groups = (self.clock() + self.group_ttl, members)
            return self._groups[1].get(user_id, frozenset())

    async def _need_groups(self) -> bool:
        if self._groups_needed is None or self._groups_needed[0] <= self.clock():
            needed = await asyncio.to_thread(self._pipelines_name_groups)
            self._groups_needed = (self.clock() + self.group_ttl, needed)
        return self._groups_needed[1]

    def _pipelines_name_groups(self) -> bool:
        # Admins, approvers, owners and runners may all name groups.
        return any(entry.startswith(GROUP_PREFIX) for entry in self.engine.principals())

    async def _fetch_groups(self) -> dict[str, frozenset[str]] | None:
        try:
            resp = await asyncio.wait_for(self.client.usergroups_list(include_users=True), LOOKUP_TIMEOUT)
        except (SlackApiError, TimeoutError, OSError) as exc:
            log.warning("usergroups.list failed (is usergroups:read granted?): %r", exc)
            return None
        members: dict[str, set[str]] = {}
        for group in resp.get("usergroups") or []:
            handle = f"@{group.get('handle')}"
            for uid in group.get("users") or []:
                members.setdefault(str(uid), set()).add(handle)
        return {uid: frozenset(handles) for uid, handles in members.items()}
