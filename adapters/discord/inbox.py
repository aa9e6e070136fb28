"""Discord interactions as inbox rows, and their handling from those rows.

pipebot's interactions (``/pipeline``, its buttons, its modals) are taken from the gateway's
INTERACTION_CREATE before discord.py dispatches them. Each is recorded first (its raw payload,
one insert per event-loop iteration for all that came in during it), then deferred (the
"thinking" acknowledgement, within Discord's 3 s): a crash after the ack finds the row. The work
runs from the row through the interaction token (valid 15 min), in this process or in `pipebot
serve`'s engine process (told of the row once its deferral is on the wire), and after a crash
too. Its answers go through the token, which needs the deferral done first: the handler waits
for the front's word that it is (`Inbox.until_acked`; through the engine process's pipe), except
for rows from before a restart (if such a row's deferral never left, the answer fails and the
person is told privately).

A click that opens a modal is not deferred: the modal *is* its acknowledgement, and what it
shows is the engine's (the form, the permission check). Its row is recorded here and handled
like the others, at once (it must answer within 3 s: it skips the inbox's queue); past the 3 s
(a restart, a stall), the person is told privately to click again. Opening a modal changes
nothing in the engine, so exactly once is the submission's business: its own row.
Autocomplete and anything not pipebot's go to discord.py as before.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
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
MODAL_SECONDS = 3.0  # a modal (the first response) opens this long after the click
ACK_WAIT = 5.0  # a handler waits this long at most for the front's deferral
THREAD_TYPES = (10, 11, 12)
EPHEMERAL = 1 << 6  # message flag
COMMAND = "pipeline"
# Clicks answered with a modal (the modal is the first response: the handler sends it, within 3 s).
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
    modal = kind == "modal"  # recorded as a click; `handle` tells them apart by the payload
    return Interaction(
        platform=PLATFORM,
        kind="click" if modal else kind,
        actor=actor_of(data),
        conversation=conversation_of(data),
        payload=dict(data),
        dedup_key=f"discord:{data['id']}",  # Discord sends each interaction once (a resume may repeat it)
        answer_within=MODAL_SECONDS if modal else TOKEN_SECONDS,
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
        try:  # queued here, in the gateway reader's step: see Inbox.accept_soon
            # The engine process hears of a deferred row once its deferral is written (accept).
            recorded = self.engine.inbox.accept_soon(interaction_row(kind, data), announce=kind == "modal")
        except Exception:
            log.exception("discord %s %s could not be recorded", kind, data.get("id"))
            return
        task = asyncio.get_running_loop().create_task(
            self.accept(kind, data, recorded), name=f"discord-{kind}"
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def accept(self, kind: str, data: dict[str, Any], recorded: Awaitable[int | None]) -> None:
        inbox = self.engine.inbox
        try:
            row_id = await recorded
            if kind == "modal" or row_id is None:  # the handler's modal is the acknowledgement;
                return  # None: a repeated delivery, its first copy was deferred
            # Once the deferral's request is on the wire: aiohttp writes it from a task of its own
            # (Python < 3.12), scheduled as this task starts waiting; hence two loop turns.
            loop = asyncio.get_running_loop()
            loop.call_soon(loop.call_soon, inbox.announce, row_id)
            try:
                ephemeral = kind != "command" or _subcommand(data)[0] not in PUBLIC
                await defer(self.client, data, ephemeral)
            finally:  # deferred or not (then the answer fails and the person is told): go on
                inbox.announce(row_id)  # (if the deferral failed before it waited)
                inbox.tell_acked(row_id, PLATFORM)
        except Exception:
            log.exception("discord %s %s could not be acknowledged", kind, data.get("id"))


async def defer(client: discord.Client, data: Mapping[str, Any], ephemeral: bool) -> None:
    """The "thinking" acknowledgement (callback type 5), posted straight through the client's
    session: discord.py's ``InteractionResponse.defer`` would first build an Interaction from the
    payload and ask for the created message back (and parse it), none of which the front needs."""
    session: aiohttp.ClientSession = getattr(client.http, "_HTTPClient__session")  # noqa: B009
    url = f"{discord.http.Route.BASE}/interactions/{data['id']}/{data['token']}/callback"
    body: dict[str, Any] = {"type": 5, **({"data": {"flags": EPHEMERAL}} if ephemeral else {})}
    for _ in range(3):
        async with session.post(url, json=body) as resp:
            if resp.status == 429:  # not expected for a callback; within the 3 s, try again
                await asyncio.sleep(min(1.0, float((await resp.json()).get("retry_after") or 0.5)))
                continue
            if resp.status >= 400:
                raise discord.HTTPException(resp, await resp.text())
            return
    raise discord.HTTPException(resp, "rate limited")


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
    """Handle one recorded interaction and answer through its token: the front deferred it, or
    (a click whose answer is a modal) the modal is the first response, sent here."""
    data = item.interaction.payload
    engine = _engine(client)
    modal = kind_of(data) == "modal"
    if item.expired(engine.clock()):
        await tell_directly(client, item.interaction.actor, _too_late(data, modal))
        return "too late to answer in place: told the person"
    if not modal:
        await engine.inbox.until_acked(item, ACK_WAIT)
    interaction = rebuild(client, data, deferred=not modal)
    try:
        if modal:
            await open_modal(interaction, data)
        elif item.interaction.kind == "command":
            await run_command(client, interaction, data)
        elif item.interaction.kind == "submission":
            await ix.on_modal_submit(interaction)
        else:
            ref = actions.decode(str((data.get("data") or {}).get("custom_id") or ""))
            assert ref is not None
            await ix.on_action(interaction, ref)
    except discord.NotFound as exc:
        if exc.code not in GONE:
            raise
        # Past the 3 s for a modal, or never deferred (a crash between the row and the deferral).
        await tell_directly(client, item.interaction.actor, _too_late(data, modal))
        return f"could not answer in place ({exc.code}): told the person"
    return "done"


GONE = (10062, 10015)  # unknown interaction (too late for its first response), unknown webhook


def _too_late(data: Mapping[str, Any], modal: bool) -> str:
    if not modal:
        return messages.TOO_LATE_TO_ANSWER
    return messages.RESTARTED_BEFORE_FORM.format(button=_label(data))


def _label(data: Mapping[str, Any]) -> str:
    """The clicked button's label, from the message it is on."""
    custom_id = (data.get("data") or {}).get("custom_id")
    rows = (data.get("message") or {}).get("components") or []
    for component in (c for row in rows for c in row.get("components") or []):
        if component.get("custom_id") == custom_id and component.get("label"):
            return str(component["label"])
    return ix.OPEN_FORM


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
