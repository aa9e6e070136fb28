"""Tests of the Discord fake, driven by the real discord.py client where possible.

Each test starts its own fake and client; ``configure_endpoints`` is restored by a fixture so tests
stay independent.  No fixed sleeps: everything waits on events or ``fake.wait_for``.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import discord
import discord.gateway
import discord.http
import pytest
from discord import app_commands

from adapters.discord.endpoints import DEFAULT_API_URL, DEFAULT_GATEWAY_URL, configure_endpoints
from tests.fakes.discord_fake import (
    CommandSync,
    FakeChannel,
    FakeDiscord,
    FakeFile,
    FakeRole,
    FakeUser,
)
from tests.fakes.discord_limits import validate_message, validate_modal

TOKEN = "fake-bot-token"
GUILD = 900000000000000001
CHANNEL = 900000000000000010
ROLE = 900000000000000020
ALICE = FakeUser(700000000000000001, "alice", roles=(ROLE,))
GUILD_OBJ = discord.Object(GUILD)


@pytest.fixture
def restore_endpoints() -> Iterator[None]:
    """Undo configure_endpoints (process-wide class attributes of discord.py)."""
    base = discord.http.Route.BASE
    gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    yield
    discord.http.Route.BASE = base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = gateway


@pytest.fixture
async def fake(restore_endpoints: None) -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(token=TOKEN) as server:
        server.add_guild(
            GUILD,
            name="pipebot-tests",
            channels=[FakeChannel(CHANNEL, "general")],
            roles=[FakeRole(ROLE, "operators", permissions=1 << 11)],
            members=[ALICE],
        )
        configure_endpoints(server.api_url, server.gateway_url)
        yield server


class Harness(discord.Client):
    """A minimal bot: guild-only intents, a command tree synced to GUILD in setup_hook."""

    def __init__(self) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        super().__init__(intents=intents, guild_ready_timeout=0.05)
        self.tree = app_commands.CommandTree(self)
        self.became_ready = asyncio.Event()
        self.resumed = asyncio.Event()
        self.seen: dict[str, Any] = {}

    async def setup_hook(self) -> None:
        await self.tree.sync(guild=GUILD_OBJ)

    async def on_ready(self) -> None:
        self.became_ready.set()

    async def on_resumed(self) -> None:
        self.resumed.set()


@pytest.fixture
def bot() -> Harness:
    return Harness()


@asynccontextmanager
async def running(client: Harness, token: str = TOKEN) -> AsyncIterator[Harness]:
    """Run ``client.start`` in the background until on_ready; close it afterwards."""
    task = asyncio.create_task(client.start(token))
    ready = asyncio.create_task(client.became_ready.wait())
    done, _ = await asyncio.wait({task, ready}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
    if ready not in done:
        ready.cancel()
        if task in done:
            task.result()
        task.cancel()
        raise TimeoutError("discord.py did not become ready")
    try:
        yield client
    finally:
        await client.close()
        await asyncio.wait_for(task, 5)


def text_channel(client: Harness) -> discord.TextChannel:
    channel = client.get_channel(CHANNEL)
    assert isinstance(channel, discord.TextChannel)
    return channel


# -- configure_endpoints ---------------------------------------------------------------------


def test_configure_endpoints_sets_and_restores_defaults(restore_endpoints: None) -> None:
    configure_endpoints("http://proxy.local:8080/api/v10/", "ws://proxy.local:8080/gw?v=9")
    assert discord.http.Route("GET", "/users/@me").url == "http://proxy.local:8080/api/v10/users/@me"
    assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == "ws://proxy.local:8080/gw"
    configure_endpoints(None, None)
    assert discord.http.Route.BASE == DEFAULT_API_URL
    assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == DEFAULT_GATEWAY_URL
    with pytest.raises(ValueError):
        configure_endpoints("ftp://x", None)
    with pytest.raises(ValueError):
        configure_endpoints(None, "https://gateway.example")


# -- discord.py end to end -------------------------------------------------------------------


async def test_login_ready_guild_and_compressed_gateway(fake: FakeDiscord, bot: Harness) -> None:
    async with running(bot):
        guild = bot.get_guild(GUILD)
        assert guild is not None and guild.name == "pipebot-tests"
        assert text_channel(bot).name == "general"
        assert guild.get_role(ROLE) is not None and guild.default_role.id == GUILD
        assert bot.user is not None and bot.user.id == fake.bot_user.id
        assert bot.application_id == fake.application_id
        assert fake.intents == bot.intents.value == discord.Intents(guilds=True).value
        assert fake.gateway.connections[0].query["v"] == "10"
        assert fake.gateway.connections[0].compress == "zlib-stream"
        await fake.wait_for(lambda: fake.gateway.heartbeats >= 1)
        routes = [r.route for r in fake.requests]
        assert routes[:2] == ["GET /users/@me", "GET /oauth2/applications/@me"]
        assert all(r.authorization == f"Bot {TOKEN}" for r in fake.requests)
    fake.assert_no_errors()


async def test_wrong_token_is_a_login_failure(fake: FakeDiscord, bot: Harness) -> None:
    with pytest.raises(discord.LoginFailure):
        async with running(bot, token="not-the-token"):
            pass
    await bot.close()
    assert fake.errors[0].status == 401


async def test_tree_sync_to_guild_is_recorded(fake: FakeDiscord, bot: Harness) -> None:
    @bot.tree.command(name="pipeline", description="Run a pipeline", guild=GUILD_OBJ)
    @app_commands.describe(name="Pipeline name", dry_run="Only plan")
    async def pipeline(interaction: discord.Interaction, name: str, dry_run: bool = False) -> None:
        await interaction.response.send_message("ok")

    async with running(bot):
        assert fake.command_syncs == [CommandSync(GUILD, ["pipeline"])]
        registered = fake.guild_commands[GUILD]["pipeline"]
        assert registered["description"] == "Run a pipeline"
        assert [(o["name"], o["type"], o.get("required")) for o in registered["options"]] == [
            ("name", 3, True),
            ("dry_run", 5, False),
        ]
        assert fake.commands == {}
    fake.assert_no_errors()


async def test_slash_command_send_message_reaches_callback(fake: FakeDiscord, bot: Harness) -> None:
    @bot.tree.command(name="pipeline", description="Run a pipeline", guild=GUILD_OBJ)
    async def pipeline(interaction: discord.Interaction, name: str) -> None:
        assert isinstance(interaction.user, discord.Member)
        bot.seen["roles"] = [r.id for r in interaction.user.roles]
        bot.seen["channel"] = interaction.channel_id
        await interaction.response.send_message(f"starting {name}")

    async with running(bot):
        interaction_id = await fake.send_slash_command(GUILD, CHANNEL, ALICE, "pipeline", {"name": "build"})
        body = await fake.wait_response(interaction_id)
        assert body["type"] == 4 and body["data"]["content"] == "starting build"
        assert ROLE in bot.seen["roles"] and bot.seen["channel"] == CHANNEL
        (message,) = fake.messages[CHANNEL]
        assert message.content == "starting build"
        assert message.payload["interaction_metadata"]["user"]["id"] == str(ALICE.id)
        assert message.payload["type"] == 20
        callback = fake.requests_to(f"/interactions/{interaction_id}/")[0]
        assert callback.query.get("with_response") in ("1", "true") and callback.authorization is None
    fake.assert_no_errors()


async def test_defer_then_followups_via_webhook(fake: FakeDiscord, bot: Harness) -> None:
    done = asyncio.Event()

    @bot.tree.command(name="pipeline", description="Run a pipeline", guild=GUILD_OBJ)
    async def pipeline(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        first = await interaction.followup.send("step 1 ok", wait=True)
        await interaction.followup.send("step 2 ok")
        await interaction.edit_original_response(content="pipeline finished")
        bot.seen["first"] = first.id
        done.set()

    async with running(bot):
        interaction_id = await fake.send_slash_command(GUILD, CHANNEL, ALICE)
        assert (await fake.wait_response(interaction_id))["type"] == 5
        await asyncio.wait_for(done.wait(), 5)
        original, second = fake.messages[CHANNEL]
        # The first follow-up after a "thinking" defer replaces the loading message.
        assert bot.seen["first"] == original.id
        assert original.content == "pipeline finished" and not original.flags & (1 << 7)
        assert second.content == "step 2 ok"
        assert fake.interactions[interaction_id].followup_ids == [second.id]
        assert len(fake.requests_to(f"POST /webhooks/{fake.application_id}/")) == 2
    fake.assert_no_errors()


class ApproveView(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=30)

    @discord.ui.button(label="Approve", custom_id="approve", style=discord.ButtonStyle.success)
    async def approve(self, interaction: discord.Interaction, button: discord.ui.Button[ApproveView]) -> None:
        await interaction.response.edit_message(content=f"approved by {interaction.user.name}", view=None)


async def test_button_click_answered_with_edit_message(fake: FakeDiscord, bot: Harness) -> None:
    @bot.tree.command(name="pipeline", description="Run a pipeline", guild=GUILD_OBJ)
    async def pipeline(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("approve deploy?", view=ApproveView())

    async with running(bot):
        await fake.wait_response(await fake.send_slash_command(GUILD, CHANNEL, ALICE))
        (message,) = fake.messages[CHANNEL]
        assert message.custom_ids() == ["approve"]
        click = await fake.click_button(CHANNEL, message.id, "approve", ALICE)
        body = await fake.wait_response(click)
        assert body["type"] == 7
        assert message.content == "approved by alice" and message.components == [] and message.edits == 1
        assert fake.interactions[click].payload["message"]["id"] == str(message.id)
        with pytest.raises(LookupError):
            await fake.click_button(CHANNEL, message.id, "approve", ALICE)
    fake.assert_no_errors()


class EnvView(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=30)

    @discord.ui.select(
        custom_id="env",
        options=[
            discord.SelectOption(label="Production", value="prod"),
            discord.SelectOption(label="Staging", value="staging"),
        ],
    )
    async def env(self, interaction: discord.Interaction, select: discord.ui.Select[EnvView]) -> None:
        await interaction.response.defer()
        await interaction.edit_original_response(content=f"env={select.values[0]}", view=None)


async def test_select_deferred_update_then_edit_original(fake: FakeDiscord, bot: Harness) -> None:
    async with running(bot):
        await text_channel(bot).send("pick an environment", view=EnvView())
        (message,) = fake.messages[CHANNEL]
        with pytest.raises(ValueError):
            await fake.select_menu(CHANNEL, message.id, "env", ["qa"], ALICE)
        chosen = await fake.select_menu(CHANNEL, message.id, "env", ["staging"], ALICE)
        assert (await fake.wait_response(chosen))["type"] == 6
        await fake.wait_for(lambda: message.content == "env=staging")
        assert message.components == []
    fake.assert_no_errors()


async def test_autocomplete_choices(fake: FakeDiscord, bot: Harness) -> None:
    @bot.tree.command(name="pipeline", description="Run a pipeline", guild=GUILD_OBJ)
    async def pipeline(interaction: discord.Interaction, name: str) -> None:
        await interaction.response.send_message(name)

    @pipeline.autocomplete("name")
    async def complete_name(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        names = ("build", "build-docs", "deploy")
        return [app_commands.Choice(name=n, value=n) for n in names if n.startswith(current)]

    async with running(bot):
        assert fake.guild_commands[GUILD]["pipeline"]["options"][0]["autocomplete"] is True
        asked = await fake.autocomplete(GUILD, CHANNEL, ALICE, "pipeline", {"name": "bu"}, focused="name")
        body = await fake.wait_response(asked)
        assert body["type"] == 8
        assert [c["value"] for c in body["data"]["choices"]] == ["build", "build-docs"]
        with pytest.raises(KeyError):
            await fake.send_slash_command(GUILD, CHANNEL, ALICE, "pipeline", {"stage": "x"})
        with pytest.raises(LookupError):
            await fake.send_slash_command(GUILD, CHANNEL, ALICE, "unknown")
    fake.assert_no_errors()


class DeployModal(discord.ui.Modal, title="Deploy pipeline"):
    def __init__(self, seen: dict[str, Any]) -> None:
        super().__init__(custom_id="deploy-modal")
        self.seen = seen
        self.reason = discord.ui.TextInput[DeployModal](label="Reason", custom_id="reason", max_length=200)
        self.env = discord.ui.Select[DeployModal](
            custom_id="env",
            options=[
                discord.SelectOption(label="Production", value="prod"),
                discord.SelectOption(label="Staging", value="staging"),
            ],
        )
        self.artifact = discord.ui.FileUpload[DeployModal](custom_id="artifact")
        self.add_item(self.reason)
        self.add_item(discord.ui.Label(text="Environment", component=self.env))
        self.add_item(discord.ui.Label(text="Artifact", component=self.artifact))

    async def on_submit(self, interaction: discord.Interaction) -> None:
        self.seen["reason"] = self.reason.value
        self.seen["env"] = self.env.values
        upload = self.artifact.values[0]
        self.seen["artifact"] = (upload.filename, await upload.read())
        await interaction.response.send_message("deploying", ephemeral=True)


async def test_modal_sent_and_submission_parsed(fake: FakeDiscord, bot: Harness) -> None:
    @bot.tree.command(name="deploy", description="Deploy", guild=GUILD_OBJ)
    async def deploy(interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(DeployModal(bot.seen))

    async with running(bot):
        opened = await fake.wait_response(await fake.send_slash_command(GUILD, CHANNEL, ALICE, "deploy"))
        assert opened["type"] == 9 and opened["data"]["title"] == "Deploy pipeline"
        assert [c["type"] for c in opened["data"]["components"]] == [1, 18, 18]
        submit = await fake.submit_modal(
            CHANNEL,
            "deploy-modal",
            {"reason": "hotfix", "env": ["staging"], "artifact": [FakeFile("build.zip", b"PK\x03\x04zip")]},
            ALICE,
        )
        answer = await fake.wait_response(submit)
        assert answer["type"] == 4 and answer["data"]["flags"] == 64
        assert bot.seen == {
            "reason": "hotfix",
            "env": ["staging"],
            "artifact": ("build.zip", b"PK\x03\x04zip"),
        }
        assert fake.messages[CHANNEL][-1].ephemeral
        with pytest.raises(LookupError):
            await fake.submit_modal(CHANNEL, "deploy-modal", {"reason": "again"}, ALICE)
    fake.assert_no_errors()


async def test_rate_limited_post_is_retried_by_discord_py_once(fake: FakeDiscord, bot: Harness) -> None:
    async with running(bot):
        fake.rate_limit(f"POST /channels/{CHANNEL}/messages", times=1, retry_after=0.2)
        loop = asyncio.get_running_loop()
        started = loop.time()
        sent = await text_channel(bot).send("hello")
        assert loop.time() - started >= 0.2
        assert sent.content == "hello"
        assert [r.status for r in fake.requests_to(f"POST /channels/{CHANNEL}/messages")] == [429, 200]
        assert [m.content for m in fake.messages[CHANNEL]] == ["hello"]
    fake.assert_no_errors()


async def test_content_over_2000_is_rejected_and_recorded(fake: FakeDiscord, bot: Harness) -> None:
    async with running(bot):
        with pytest.raises(discord.HTTPException) as caught:
            await text_channel(bot).send("x" * 2001)
    assert caught.value.status == 400 and caught.value.code == 50035
    (violation,) = fake.errors
    assert (
        violation.code == 50035
        and violation.errors["content"]["_errors"][0]["code"] == "BASE_TYPE_MAX_LENGTH"
    )
    assert fake.messages[CHANNEL] == []


async def test_thread_from_message_and_attachment_upload(fake: FakeDiscord, bot: Harness) -> None:
    async with running(bot):
        message = await text_channel(bot).send("run #1")
        thread = await message.create_thread(name="run #1 logs")
        assert thread.id == message.id and fake.threads[thread.id]["name"] == "run #1 logs"
        guild = bot.get_guild(GUILD)
        assert guild is not None
        await fake.wait_for(lambda: guild.get_thread(thread.id))
        sent = await thread.send(
            "log attached", file=discord.File(io.BytesIO(b"line 1\n"), filename="run.log")
        )
        (stored,) = fake.messages[thread.id]
        assert stored.attachments[0].data == b"line 1\n" and stored.attachments[0].filename == "run.log"
        assert await sent.attachments[0].read() == b"line 1\n"
    fake.assert_no_errors()


async def test_reconnect_resumes_and_interactions_still_flow(fake: FakeDiscord, bot: Harness) -> None:
    @bot.tree.command(name="pipeline", description="Run a pipeline", guild=GUILD_OBJ)
    async def pipeline(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("still here")

    async with running(bot):
        await fake.request_reconnect()
        await asyncio.wait_for(bot.resumed.wait(), 5)
        assert fake.gateway.connections[-1].resumed and len(fake.identifies) == 1
        body = await fake.wait_response(await fake.send_slash_command(GUILD, CHANNEL, ALICE))
        assert body["data"]["content"] == "still here"
    fake.assert_no_errors()


# -- strictness checked with plain HTTP ------------------------------------------------------


@asynccontextmanager
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bot {TOKEN}"}) as session:
        yield session


async def test_auth_unknown_routes_and_json_content_type(fake: FakeDiscord) -> None:
    async with aiohttp.ClientSession() as anonymous, anonymous.get(f"{fake.api_url}/users/@me") as resp:
        assert resp.status == 401 and resp.headers["Content-Type"] == "application/json"
    async with http() as session:
        async with session.get(f"{fake.api_url}/users/@me") as resp:
            assert resp.status == 200 and resp.headers["Content-Type"] == "application/json"
        async with session.get(f"{fake.api_url}/guilds/{GUILD}/bans") as resp:
            assert resp.status == 404
        async with session.get(f"{fake.api_url}/gateway/bot") as resp:
            assert (await resp.json())["url"] == fake.gateway_url
    assert [(e.status, e.path) for e in fake.errors] == [(401, "/users/@me"), (404, f"/guilds/{GUILD}/bans")]


async def test_dm_channel_is_one_per_member_and_takes_messages(fake: FakeDiscord) -> None:
    dms = f"{fake.api_url}/users/@me/channels"
    async with http() as session:
        async with session.post(dms, json={"recipient_id": str(ALICE.id)}) as resp:
            channel = await resp.json()
            assert resp.status == 200 and channel["type"] == 1
            assert channel["recipients"][0]["id"] == str(ALICE.id)
        async with session.post(dms, json={"recipient_id": ALICE.id}) as resp:
            assert (await resp.json())["id"] == channel["id"]  # the same channel again
        message = {"content": "hello", "allowed_mentions": {"parse": []}}
        async with session.post(f"{fake.api_url}/channels/{channel['id']}/messages", json=message) as resp:
            assert resp.status == 200 and "guild_id" not in await resp.json()
        async with session.post(dms, json={}) as resp:
            assert resp.status == 400 and "recipient_id" in (await resp.json())["errors"]
        async with session.post(dms, json={"recipient_id": "alice"}) as resp:
            assert resp.status == 400
        async with session.post(dms, json={"recipient_id": "42"}) as resp:  # nobody the bot knows
            assert resp.status == 400 and (await resp.json())["code"] == 50033
    assert [m.content for m in fake.direct_messages(ALICE.id)] == ["hello"]
    assert [e.status for e in fake.errors] == [400, 400, 400]


async def test_double_and_late_interaction_callbacks(fake: FakeDiscord) -> None:
    record = fake.new_interaction(2, {"id": "1", "name": "pipeline", "type": 1}, CHANNEL, ALICE)
    url = f"{fake.api_url}/interactions/{record.id}/{record.token}/callback?with_response=true"
    async with http() as session:
        async with session.post(url, json={"type": 4, "data": {"content": "hi"}}) as resp:
            body = await resp.json()
            assert (
                resp.status == 200
                and body["interaction"]["response_message_id"] == body["resource"]["message"]["id"]
            )
        async with session.post(url, json={"type": 4, "data": {"content": "again"}}) as resp:
            assert resp.status == 400 and (await resp.json())["code"] == 40060

        late = fake.new_interaction(2, {"id": "1", "name": "pipeline", "type": 1}, CHANNEL, ALICE)
        late.created_at -= fake.interaction_deadline + 0.01
        late_url = f"{fake.api_url}/interactions/{late.id}/{late.token}/callback"
        async with session.post(late_url, json={"type": 5}) as resp:
            assert resp.status == 404 and (await resp.json())["code"] == 10062

        expired = fake.new_interaction(2, {"id": "1", "name": "pipeline", "type": 1}, CHANNEL, ALICE)
        async with session.post(
            f"{fake.api_url}/interactions/{expired.id}/{expired.token}/callback", json={"type": 5}
        ) as resp:
            assert resp.status == 204
        expired.created_at -= fake.interaction_token_ttl + 1
        async with session.post(
            f"{fake.api_url}/webhooks/{fake.application_id}/{expired.token}", json={"content": "late"}
        ) as resp:
            assert resp.status == 401 and (await resp.json())["code"] == 50027
    assert [e.code for e in fake.errors] == [40060, 10062, 50027]


async def test_invalid_commands_and_oversized_uploads_are_rejected(fake: FakeDiscord) -> None:
    commands = [
        {
            "name": "Pipeline",
            "description": "x" * 101,
            "options": [{"name": f"o{i}", "description": "d", "type": 3} for i in range(26)],
        }
    ]
    async with http() as session:
        async with session.put(
            f"{fake.api_url}/applications/{fake.application_id}/guilds/{GUILD}/commands", json=commands
        ) as resp:
            body = await resp.json()
        assert resp.status == 400 and body["code"] == 50035
        assert set(body["errors"]["0"]) == {"name", "description", "options"}

        fake.upload_limit = 16
        form = aiohttp.FormData(quote_fields=False)
        form.add_field("payload_json", '{"content": "big"}', content_type="application/json")
        form.add_field("files[0]", b"x" * 17, filename="big.bin", content_type="application/octet-stream")
        async with session.post(f"{fake.api_url}/channels/{CHANNEL}/messages", data=form) as resp:
            assert resp.status == 413 and (await resp.json())["code"] == 40005
    assert fake.command_syncs == [] and fake.messages[CHANNEL] == []


@pytest.mark.parametrize(
    ("payload", "path"),
    [
        ({"embeds": [{"title": "t"}] * 11}, "embeds"),
        ({"embeds": [{"title": "t" * 257}]}, "embeds.0.title"),
        ({"embeds": [{"description": "d" * 4097}]}, "embeds.0.description"),
        ({"embeds": [{"fields": [{"name": "n", "value": "v"}] * 26}]}, "embeds.0.fields"),
        ({"embeds": [{"description": "d" * 4000}, {"description": "d" * 2001}]}, "embeds"),
        (
            {
                "components": [
                    {"type": 1, "components": [{"type": 2, "style": 1, "label": "b", "custom_id": "c"}]}
                ]
                * 6
            },
            "components",
        ),
        (
            {
                "components": [
                    {
                        "type": 1,
                        "components": [
                            {"type": 2, "style": 1, "label": "b", "custom_id": f"c{i}"} for i in range(6)
                        ],
                    }
                ]
            },
            "components.0.components",
        ),
        (
            {
                "components": [
                    {"type": 1, "components": [{"type": 2, "style": 1, "label": "b", "custom_id": "c" * 101}]}
                ]
            },
            "components.0.components.0.custom_id",
        ),
        (
            {
                "components": [
                    {"type": 1, "components": [{"type": 2, "style": 1, "label": "l" * 81, "custom_id": "c"}]}
                ]
            },
            "components.0.components.0.label",
        ),
        (
            {
                "components": [
                    {
                        "type": 1,
                        "components": [
                            {
                                "type": 3,
                                "custom_id": "s",
                                "options": [{"label": "o", "value": str(i)} for i in range(26)],
                            }
                        ],
                    }
                ]
            },
            "components.0.components.0.options",
        ),
    ],
)
def test_message_limits(payload: dict[str, Any], path: str) -> None:
    assert path in [".".join(str(p) for p in issue.path) for issue in validate_message(payload)]


@pytest.mark.parametrize(
    ("payload", "path"),
    [
        ({"title": "t" * 46, "custom_id": "m", "components": [{"type": 10, "content": "x"}]}, "title"),
        ({"title": "t", "custom_id": "m", "components": [{"type": 10, "content": "x"}] * 6}, "components"),
        (
            {
                "title": "t",
                "custom_id": "m",
                "components": [
                    {"type": 1, "components": [{"type": 4, "style": 1, "custom_id": "a", "label": "l" * 46}]}
                ],
            },
            "components.0.components.0.label",
        ),
    ],
)
def test_modal_limits(payload: dict[str, Any], path: str) -> None:
    assert path in [".".join(str(p) for p in issue.path) for issue in validate_modal(payload)]
