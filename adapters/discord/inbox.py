"""Discord interactions as inbox rows, and their handling from those rows.

pipebot's interactions (``/pipeline``, its buttons, its modals) are taken from the gateway's
INTERACTION_CREATE before discord.py dispatches them: each is deferred (the "thinking"
acknowledgement, within Discord's 3 s) and its raw payload recorded with it (the insert follows
the deferral at once: the handler answers through the token, which needs the deferral done
first), and the work runs from the row through
the interaction token (valid 15 min), in this process or in `pipebot serve`'s engine process,
and after a crash too. A click that opens a modal is the exception: its acknowledgement *is*
the modal, so it is answered here at once and its row is recorded as handled.
Autocomplete and anything not pipebot's go to discord.py as before.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import discord
from discord import app_commands

from adapters import actions
from adapters.discord import interactions as ix
from adapters.discord.commands import PUBLIC, execute
from adapters.discord.forms import parse_modal_id, parse_seen
from adapters.discord.render import NO_MENTIONS, reply_text
from engine import messages
from engine.actors import Actor, Conversation
from engine.api import Engine
from engine.inbox import InboxItem, Interaction

log = logging.getLogger("pipebot.discord")
PLATFORM = ix.PLATFORM
TOKEN_SECONDS = 15 * 60.0  # an interaction token answers follow-ups this long
THREAD_TYPES = (10, 11, 12)
COMMAND = "pipeline"
# Clicks answered with a modal (the modal is the acknowledgement: the front sends it).
MODAL_ACTIONS = (
    "open_form",
    "request_revision",
    "reject",
    "approve_with_comment",
    "reassign",
    "edit_and_approve",
)
PAGE = re.compile(
    r"^pbf:(?P<id>\d+):(?P<page>\d+)(?::r(?P<revision>\d+):(?P<digest>[0-9a-f]+))?$"
)  # PageButton


def kind_of(data: Mapping[str, Any]) -> str | None:
    """'command' | 'click' | 'submission' | 'modal' (a click whose answer is a modal) | None."""
    inner = data.get("data") or {}
    if data.get("type") == 2 and inner.get("name") == COMMAND:
        return "command"
    if data.get("type") == 3:
        custom_id = str(inner.get("custom_id") or "")
        if PAGE.match(custom_id):
            return "modal"
        ref = actions.decode(custom_id)
        if ref is not None:
            return "modal" if ref.action in MODAL_ACTIONS else "click"
    if data.get("type") == 5 and parse_modal_id(str(inner.get("custom_id") or "")) is not None:
        return "submission"
    return None


def actor_of(data: Mapping[str, Any]) -> Actor:
    member = data.get("member") or {}
    user = member.get("user") or data.get("user") or {}
    name = member.get("nick") or user.get("global_name") or user.get("username") or str(user.get("id"))
    roles = frozenset(f"role:{r}" for r in member.get("roles") or [])
    return Actor(PLATFORM, str(user.get("id")), str(name), roles)


def conversation_of(data: Mapping[str, Any]) -> Conversation:
    channel = data.get("channel") or {}
    if channel.get("type") in THREAD_TYPES and channel.get("parent_id"):
        return Conversation(PLATFORM, str(channel["parent_id"]), str(channel["id"]))
    return Conversation(PLATFORM, str(data.get("channel_id") or channel.get("id")))


def interaction_row(kind: str, data: Mapping[str, Any]) -> Interaction:
    return Interaction(
        platform=PLATFORM,
        kind=kind,
        actor=actor_of(data),
        conversation=conversation_of(data),
        payload=dict(data),
        dedup_key=f"discord:{data['id']}",  # Discord sends each interaction once (a resume may repeat it)
        answer_within=TOKEN_SECONDS,
    )


def rebuild(client: discord.Client, data: Mapping[str, Any], deferred: bool) -> discord.Interaction[Any]:
    """A discord.py Interaction for `data`; `deferred`: its first response was already sent."""
    interaction: discord.Interaction[Any] = discord.Interaction(
        data=data,  # type: ignore[arg-type]
        state=client._connection,
    )
    interaction.extras["actor"] = actor_of(data)  # roles without the guild cache (engine process)
    interaction.extras["conversation"] = conversation_of(data)
    if deferred:
        interaction.response._response_type = discord.InteractionResponseType.deferred_channel_message
    return interaction


class Front:
    """The gateway side: record, acknowledge, and leave the work to whoever handles the inbox."""

    def __init__(self, client: discord.Client, engine: Engine) -> None:
        self.client, self.engine = client, engine
        self.tasks: set[asyncio.Task[None]] = set()
        parsers = client._connection.parsers
        self._dispatch: Callable[[Any], None] = parsers["INTERACTION_CREATE"]
        parsers["INTERACTION_CREATE"] = self.on_raw

    def on_raw(self, data: dict[str, Any]) -> None:
        kind = kind_of(data)
        if kind is None:
            self._dispatch(data)  # autocomplete, other apps' components: discord.py as before
            return
        task = asyncio.get_running_loop().create_task(self.accept(kind, data), name=f"discord-{kind}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def accept(self, kind: str, data: dict[str, Any]) -> None:
        try:
            interaction = rebuild(self.client, data, deferred=False)
            if kind == "modal":
                # The modal is the acknowledgement; nothing is left to do after it.
                if await self.engine.inbox.accept(
                    interaction_row("click", data), handled="answered with a modal"
                ):
                    await open_modal(interaction, data)
                return
            # Deferred first, recorded right after (the same loop iteration's insert): the handling,
            # here or in the engine process, must find the deferral done before it answers.
            ephemeral = kind != "command" or _subcommand(data)[0] not in PUBLIC
            await interaction.response.defer(ephemeral=ephemeral, thinking=True)
            await self.engine.inbox.accept(interaction_row(kind, data))  # None: a repeated delivery
        except Exception:
            log.exception("discord %s %s could not be acknowledged", kind, data.get("id"))


async def open_modal(interaction: discord.Interaction[Any], data: Mapping[str, Any]) -> None:
    custom_id = str((data.get("data") or {}).get("custom_id") or "")
    page = PAGE.match(custom_id)
    if page is not None:
        await ix.open_form(interaction, int(page["id"]), int(page["page"]), parse_seen(page))
        return
    ref = actions.decode(custom_id)
    assert ref is not None
    await ix.on_action(interaction, ref)


def _subcommand(data: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    [sub] = (data.get("data") or {}).get("options") or [{"name": "help"}]
    return str(sub["name"]), {o["name"]: o.get("value") for o in sub.get("options") or []}


def _subcommand_of(client: discord.Client, name: str) -> app_commands.Command[Any, ..., Any] | None:
    tree: app_commands.CommandTree[Any] | None = getattr(client, "tree", None)
    group = tree.get_command(COMMAND) if tree is not None else None
    command = group.get_command(name) if isinstance(group, app_commands.Group) else None
    return command if isinstance(command, app_commands.Command) else None


async def run_command(
    client: discord.Client, interaction: discord.Interaction[Any], data: Mapping[str, Any]
) -> None:
    """Run the subcommand's own method (adapters.discord.commands) with the recorded options."""
    name, values = _subcommand(data)
    if name == "import":  # its file is read here, from the recorded attachment
        attachment = _attachment(data, values)
        limit = _engine(client).config.limits.import_bytes
        size = int((attachment or {}).get("size") or 0)
        if attachment is not None and size > limit:  # refused before it is downloaded
            refusal = messages.IMPORT_FILE_TOO_LARGE.format(
                name=attachment.get("filename"), size=size, limit=limit
            )
            await interaction.delete_original_response()  # the public "thinking" message
            await interaction.followup.send(refusal, ephemeral=True, allowed_mentions=NO_MENTIONS)
            return
        await execute(interaction, "import", raw=_import_text(client, data, values))
        return
    command = _subcommand_of(client, name)
    if command is None:
        await execute(interaction, "help")
        return
    known = {p.name for p in command.parameters}
    callback: Any = command.callback
    await callback(command.binding, interaction, **{k: v for k, v in values.items() if k in known})


async def handle(client: discord.Client, item: InboxItem) -> str | None:
    """Handle one recorded interaction (deferred by the front) and answer through its token."""
    data = item.interaction.payload
    engine = _engine(client)
    if item.expired(engine.clock()):
        await tell_directly(client, item.interaction.actor, messages.TOO_LATE_TO_ANSWER)
        return "token expired: told the person"
    interaction = rebuild(client, data, deferred=True)
    if item.interaction.kind == "command":
        await run_command(client, interaction, data)
    elif item.interaction.kind == "submission":
        await ix.on_modal_submit(interaction)
    else:
        ref = actions.decode(str((data.get("data") or {}).get("custom_id") or ""))
        assert ref is not None
        await ix.on_action(interaction, ref)
    return "done"


def _import_text(
    client: discord.Client, data: Mapping[str, Any], values: dict[str, Any]
) -> Callable[[], Awaitable[str]]:
    async def text() -> str:
        if not values.get("file"):
            return str(values.get("yaml") or "")
        attachment = _attachment(data, values)
        if not attachment:
            return ""
        blob: bytes = await client.http.get_from_cdn(str(attachment["url"]))
        return blob.decode("utf-8", errors="replace")

    return text


def _attachment(data: Mapping[str, Any], values: dict[str, Any]) -> dict[str, Any] | None:
    file_id = values.get("file")
    if not file_id:
        return None
    found = ((data.get("data") or {}).get("resolved") or {}).get("attachments", {}).get(str(file_id))
    return found if isinstance(found, dict) else None


def _engine(client: discord.Client) -> Engine:
    engine = getattr(client, "engine", None)
    assert isinstance(engine, Engine), "a pipebot client handles the inbox"
    return engine


async def tell_directly(client: discord.Client, actor: Actor, text: str) -> None:
    """A direct message: the interaction can no longer be answered."""
    try:
        channel = await client.http.start_private_message(int(actor.user_id))
        await client.http.send_message(
            int(channel["id"]),
            params=discord.http.handle_message_parameters(
                content=reply_text(text), allowed_mentions=NO_MENTIONS
            ),
        )
    except discord.HTTPException as exc:
        log.warning("could not tell %s directly: %r", actor.user_id, exc)
