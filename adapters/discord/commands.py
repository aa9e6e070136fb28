"""The ``/pipeline`` application command: real subcommands and options, autocomplete, and sync.

Each subcommand rebuilds the shared command text (``run blog-post extend:2``) and hands it to
:func:`adapters.chat.handle`, so parsing, validation, help and wording stay the same on every
platform; this module only adds what Discord's typed options and autocomplete give.
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord import app_commands

from adapters import chat
from adapters.discord.interactions import actor_of, conversation_of, engine_of, view_of
from adapters.discord.render import NO_MENTIONS, reply_text
from engine import messages
from engine.errors import PipebotError

MAX_CHOICES = 25
# Replies these subcommands post for everyone when they succeed (the rest answer only the caller).
PUBLIC = frozenset({"pause", "resume", "cancel", "restore", "import", "delete"})


def _describe(name: str) -> str:
    return chat.SUBCOMMANDS[name][1]


def _choice(name: str, value: str) -> app_commands.Choice[str]:
    return app_commands.Choice(name=name[:100], value=value[:100])


async def pipeline_choices(
    interaction: discord.Interaction[Any], current: str
) -> list[app_commands.Choice[str]]:
    items = await asyncio.to_thread(engine_of(interaction).pipelines)
    wanted = current.lower()
    found = [p for p in items if wanted in p.slug.lower() or wanted in p.title.lower()]
    return [_choice(f"{p.slug} — {p.title}", p.slug) for p in found[:MAX_CHOICES]]


async def run_choices(interaction: discord.Interaction[Any], current: str) -> list[app_commands.Choice[str]]:
    items = await asyncio.to_thread(engine_of(interaction).runs, None, False, 100)
    wanted = current.lower()
    found = [r for r in items if wanted in r.name.lower()]
    return [_choice(f"{r.name} — {r.status.replace('_', ' ')}", r.name) for r in found[:MAX_CHOICES]]


async def checkpoint_choices(
    interaction: discord.Interaction[Any], current: str
) -> list[app_commands.Choice[str]]:
    run = getattr(interaction.namespace, "run", None)
    if not run:
        return []
    try:
        view = await asyncio.to_thread(engine_of(interaction).run, str(run))
    except PipebotError:
        return []
    seen: dict[str, str] = {e.checkpoint_id: e.title for e in view.executions}
    wanted = current.lower()
    found = [(i, t) for i, t in seen.items() if wanted in i.lower() or wanted in t.lower()]
    return [_choice(f"{i} — {t}", i) for i, t in found[:MAX_CHOICES]]


async def execute(
    interaction: discord.Interaction[Any],
    name: str,
    *args: str,
    raw: Callable[[], Awaitable[str]] | None = None,
) -> None:
    """Acknowledge at once, run the shared command, then answer with its reply.

    ``raw`` produces free text appended unquoted (import's YAML), after the acknowledgement
    because reading an attachment may take longer than Discord's 3 seconds.
    """
    public = name in PUBLIC
    if not interaction.response.is_done():  # the inbox's front defers before recording
        await interaction.response.defer(ephemeral=not public, thinking=True)
    text = " ".join([name, *(shlex.quote(a) for a in args)])
    if raw is not None:
        text += " " + await raw()
    reply = await chat.handle(
        engine_of(interaction), actor_of(interaction), conversation_of(interaction), text
    )
    if reply.ephemeral == public:
        # A refusal of a public command (or the reverse): the "thinking" message cannot change
        # its visibility, so it is removed and the answer sent with the right one.
        await interaction.delete_original_response()
    view = view_of(reply.buttons)
    content = reply_text(reply.text)
    if view is None:
        await interaction.followup.send(content, ephemeral=reply.ephemeral, allowed_mentions=NO_MENTIONS)
    else:
        await interaction.followup.send(
            content, ephemeral=reply.ephemeral, allowed_mentions=NO_MENTIONS, view=view
        )


class PipelineGroup(app_commands.Group):
    """``/pipeline <subcommand>``; descriptions come from the shared subcommand table."""

    def __init__(self) -> None:
        # Guild only: a run lives in a channel thread, and approvers are guild members or roles.
        super().__init__(
            name="pipeline",
            description="Run, steer and approve pipelines of checkpoints",
            guild_only=True,
            allowed_contexts=app_commands.AppCommandContext(guild=True),
            allowed_installs=app_commands.AppInstallationType(guild=True),
        )

    @app_commands.command(name="help", description=_describe("help"))
    async def help_(self, interaction: discord.Interaction[Any]) -> None:
        await execute(interaction, "help")

    @app_commands.command(name="list", description=_describe("list"))
    async def list_(self, interaction: discord.Interaction[Any]) -> None:
        await execute(interaction, "list")

    @app_commands.command(name="show", description=_describe("show"))
    @app_commands.describe(pipeline="Pipeline id")
    @app_commands.autocomplete(pipeline=pipeline_choices)
    async def show(self, interaction: discord.Interaction[Any], pipeline: str) -> None:
        await execute(interaction, "show", pipeline)

    @app_commands.command(name="run", description=_describe("run"))
    @app_commands.describe(pipeline="Pipeline id", extend="Build on this earlier version (its artifacts)")
    @app_commands.autocomplete(pipeline=pipeline_choices)
    async def run(
        self,
        interaction: discord.Interaction[Any],
        pipeline: str,
        extend: app_commands.Range[int, 1, None] | None = None,
    ) -> None:
        await execute(interaction, "run", pipeline, *([f"extend:{extend}"] if extend else []))

    @app_commands.command(name="status", description=_describe("status"))
    @app_commands.describe(run="Run name, like blog-post#v3")
    @app_commands.autocomplete(run=run_choices)
    async def status(self, interaction: discord.Interaction[Any], run: str | None = None) -> None:
        await execute(interaction, "status", *([run] if run else []))

    @app_commands.command(name="runs", description=_describe("runs"))
    @app_commands.describe(pipeline="Only this pipeline's runs")
    @app_commands.autocomplete(pipeline=pipeline_choices)
    async def runs(self, interaction: discord.Interaction[Any], pipeline: str | None = None) -> None:
        await execute(interaction, "runs", *([pipeline] if pipeline else []))

    @app_commands.command(name="pause", description=_describe("pause"))
    @app_commands.describe(run="Run name, like blog-post#v3")
    @app_commands.autocomplete(run=run_choices)
    async def pause(self, interaction: discord.Interaction[Any], run: str) -> None:
        await execute(interaction, "pause", run)

    @app_commands.command(name="resume", description=_describe("resume"))
    @app_commands.describe(run="Run name, like blog-post#v3")
    @app_commands.autocomplete(run=run_choices)
    async def resume(self, interaction: discord.Interaction[Any], run: str) -> None:
        await execute(interaction, "resume", run)

    @app_commands.command(name="rollback", description=_describe("rollback"))
    @app_commands.describe(
        run="Run name, like blog-post#v3",
        checkpoint="Checkpoint id to redo from (none: every later run is archived, back to this one)",
    )
    @app_commands.autocomplete(run=run_choices, checkpoint=checkpoint_choices)
    async def rollback(
        self, interaction: discord.Interaction[Any], run: str, checkpoint: str | None = None
    ) -> None:
        await execute(interaction, "rollback", run, *([checkpoint] if checkpoint else []))

    @app_commands.command(name="rollbacks", description=_describe("rollbacks"))
    @app_commands.describe(target="A run (blog-post#v3) or a pipeline (blog-post)")
    @app_commands.autocomplete(target=run_choices)
    async def rollbacks(self, interaction: discord.Interaction[Any], target: str) -> None:
        await execute(interaction, "rollbacks", target)

    @app_commands.command(name="restore", description=_describe("restore"))
    @app_commands.describe(rollback="The rollback's number (see /pipeline rollbacks)")
    async def restore(
        self, interaction: discord.Interaction[Any], rollback: app_commands.Range[int, 1, None]
    ) -> None:
        await execute(interaction, "restore", str(rollback))

    @app_commands.command(name="history", description=_describe("history"))
    @app_commands.describe(run="Run name, like blog-post#v3", page="Page of the history")
    @app_commands.autocomplete(run=run_choices)
    async def history(
        self,
        interaction: discord.Interaction[Any],
        run: str,
        page: app_commands.Range[int, 1, None] | None = None,
    ) -> None:
        await execute(interaction, "history", run, *([str(page)] if page else []))

    @app_commands.command(name="cancel", description=_describe("cancel"))
    @app_commands.describe(run="Run name, like blog-post#v3")
    @app_commands.autocomplete(run=run_choices)
    async def cancel(self, interaction: discord.Interaction[Any], run: str) -> None:
        await execute(interaction, "cancel", run)

    @app_commands.command(name="artifacts", description=_describe("artifacts"))
    @app_commands.describe(run="Run name, like blog-post#v3")
    @app_commands.autocomplete(run=run_choices)
    async def artifacts(self, interaction: discord.Interaction[Any], run: str) -> None:
        await execute(interaction, "artifacts", run)

    @app_commands.command(name="pending", description=_describe("pending"))
    async def pending(self, interaction: discord.Interaction[Any]) -> None:
        await execute(interaction, "pending")

    @app_commands.command(name="import", description=_describe("import"))
    @app_commands.describe(yaml="The pipeline as YAML (flow style) text", file="The pipeline file (.yaml)")
    async def import_(
        self,
        interaction: discord.Interaction[Any],
        yaml: str | None = None,
        file: discord.Attachment | None = None,
    ) -> None:
        limit = engine_of(interaction).config.limits.import_bytes
        if file is not None and file.size > limit:  # refused before it is downloaded
            refusal = messages.IMPORT_FILE_TOO_LARGE.format(name=file.filename, size=file.size, limit=limit)
            await interaction.response.send_message(refusal, ephemeral=True, allowed_mentions=NO_MENTIONS)
            return

        async def text() -> str:
            if file is None:
                return yaml or ""
            return (await file.read()).decode("utf-8", errors="replace")

        await execute(interaction, "import", raw=text)

    @app_commands.command(name="delete", description=_describe("delete"))
    @app_commands.describe(pipeline="Pipeline id", cancel_runs="Cancel its active runs too")
    @app_commands.autocomplete(pipeline=pipeline_choices)
    async def delete(
        self, interaction: discord.Interaction[Any], pipeline: str, cancel_runs: bool = False
    ) -> None:
        await execute(interaction, "delete", pipeline, *(["cancel-runs"] if cancel_runs else []))


def build_tree(client: discord.Client) -> app_commands.CommandTree[Any]:
    tree: app_commands.CommandTree[Any] = app_commands.CommandTree(client)
    tree.add_command(PipelineGroup())
    return tree


def command_payload(tree: app_commands.CommandTree[Any]) -> list[dict[str, Any]]:
    """The JSON ``tree.sync`` sends (what manifests/discord.json records)."""
    return [command.to_dict(tree) for command in tree.get_commands()]


async def sync(tree: app_commands.CommandTree[Any], guild_ids: list[int]) -> list[str]:
    """Register the commands globally, or per guild (available at once, unlike global ones)."""
    if not guild_ids:
        await tree.sync()
        return ["global"]
    for guild_id in guild_ids:
        guild = discord.Object(guild_id)
        tree.copy_global_to(guild=guild)
        await tree.sync(guild=guild)
    return [f"guild {g}" for g in guild_ids]
