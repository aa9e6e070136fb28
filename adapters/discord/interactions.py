"""Buttons and modal submissions: Discord interactions -> engine commands -> ephemeral answers.

Every button is a ``DynamicItem`` whose custom_id carries all its state (``pb:<action>:<execution>:
<revision>:<digest>`` from :mod:`adapters.actions`, ``pbf:<execution>:<page>:r<revision>:<digest>``
for form pages), so a click on a message posted before a restart works, and one on an out-of-date
card is refused by the engine. Answers: acknowledge first (Discord allows 3 s), then follow up.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import discord

from adapters import actions, chat
from adapters.actions import ActionRef
from adapters.discord.forms import (
    DECISION,
    FEEDBACK,
    ModalRef,
    decision_modal,
    edit_layout,
    edit_modal,
    edited_texts,
    form_modal,
    page_of,
    page_values,
    pages,
    parse_modal_id,
    parse_seen,
    revision_modal,
    seen_suffix,
    submitted_values,
    too_long,
)
from adapters.discord.render import MAX_BUTTONS, NO_MENTIONS, reply_text
from engine.actors import Actor, Conversation
from engine.api import Engine, FormSpec, Seen
from engine.errors import FormInvalid, PipebotError
from engine.forms import FileUpload, validate_form
from engine.human import Outcome
from engine.notifications import Button

PLATFORM = "discord"
STYLES = {"primary": discord.ButtonStyle.primary, "danger": discord.ButtonStyle.danger}
OPEN_FORM = "Open form"  # the engine's label for the form button


# -- who and where ---------------------------------------------------------------------------


def engine_of(interaction: discord.Interaction[Any]) -> Engine:
    engine = getattr(interaction.client, "engine", None)
    if not isinstance(engine, Engine):
        raise RuntimeError("this discord.Client has no pipebot engine")
    return engine


def actor_of(interaction: discord.Interaction[Any]) -> Actor:
    recorded = interaction.extras.get("actor")  # from the inbox row (adapters.discord.inbox)
    if isinstance(recorded, Actor):
        return recorded
    user = interaction.user
    roles = user.roles if isinstance(user, discord.Member) else []
    return Actor(PLATFORM, str(user.id), user.display_name, frozenset(f"role:{r.id}" for r in roles))


def conversation_of(interaction: discord.Interaction[Any]) -> Conversation:
    recorded = interaction.extras.get("conversation")
    if isinstance(recorded, Conversation):
        return recorded
    channel = interaction.channel
    if isinstance(channel, discord.Thread) and channel.parent_id is not None:
        return Conversation(PLATFORM, str(channel.parent_id), str(channel.id))
    return Conversation(PLATFORM, str(interaction.channel_id))


# -- buttons ---------------------------------------------------------------------------------


class ActionButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=r"pb:(?P<action>[a-z_]+):(?P<id>\d+)(?::(?P<page>\d+)|:r\d+:[0-9a-f]+)?",
):
    """An engine button (approve, request revision, open form, retry, rollback Confirm / Keep,
    a history page)."""

    def __init__(
        self, ref: ActionRef, label: str = "…", style: discord.ButtonStyle = discord.ButtonStyle.secondary
    ) -> None:
        super().__init__(discord.ui.Button(label=label[:80], style=style, custom_id=ref.encode()))
        self.ref = ref

    @classmethod
    def of(cls, button: Button) -> ActionButton:
        style = STYLES.get(button.style or "", discord.ButtonStyle.secondary)
        return cls(actions.ref(button), button.label, style)

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> ActionButton:
        ref = actions.decode(match.group(0))
        if ref is None:
            raise ValueError(f"unknown action in {match.group(0)!r}")
        return cls(ref)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await on_action(interaction, self.ref)


class PageButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=r"pbf:(?P<id>\d+):(?P<page>\d+)(?::r(?P<revision>\d+):(?P<digest>[0-9a-f]+))?",
):
    """Opens page ``page`` of a form: "Continue" after a page, or reopen after errors."""

    def __init__(
        self, execution_id: int, page: int, label: str = OPEN_FORM, shown: Seen | None = None
    ) -> None:
        custom_id = f"pbf:{execution_id}:{page}{seen_suffix(shown)}"
        super().__init__(
            discord.ui.Button(label=label, style=discord.ButtonStyle.primary, custom_id=custom_id)
        )
        self.execution_id, self.page, self.shown = execution_id, page, shown

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> PageButton:
        return cls(int(match["id"]), int(match["page"]), shown=parse_seen(match))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await open_form(interaction, self.execution_id, self.page, self.shown)


def view_of(items: Sequence[Button | discord.ui.Item[Any]]) -> discord.ui.View | None:
    """A persistent view (no timeout) of up to 25 buttons, or None for no components."""
    if not items:
        return None
    view = discord.ui.View(timeout=None)
    for item in items[:MAX_BUTTONS]:
        view.add_item(ActionButton.of(item) if isinstance(item, Button) else item)
    return view


# -- answering -------------------------------------------------------------------------------


async def _say(interaction: discord.Interaction[Any], text: str, view: discord.ui.View | None = None) -> None:
    """An ephemeral answer: the first response if none was sent yet, else a follow-up."""
    content, components = reply_text(text), view or discord.utils.MISSING
    if interaction.response.is_done():
        await interaction.followup.send(
            content, ephemeral=True, allowed_mentions=NO_MENTIONS, view=components
        )
    else:
        await interaction.response.send_message(
            content, ephemeral=True, allowed_mentions=NO_MENTIONS, view=components
        )


async def _defer(interaction: discord.Interaction[Any]) -> None:
    """The "thinking" acknowledgement, unless the inbox's front already sent it."""
    if not interaction.response.is_done():
        await interaction.response.defer(ephemeral=True, thinking=True)


async def _outcome(command: Callable[..., Outcome], *args: Any) -> str:
    try:
        return (await asyncio.to_thread(command, *args)).message
    except PipebotError as exc:  # NotAllowed, AlreadyDone, Refused...: the engine's own words
        return str(exc)


async def on_action(interaction: discord.Interaction[Any], ref: ActionRef) -> None:
    engine, actor = engine_of(interaction), actor_of(interaction)
    if ref.action == "open_form":
        await open_form(interaction, ref.execution_id, 0, ref.seen)
        return
    if ref.action in chat.CHAT_BUTTONS:  # rollback Confirm / Keep, history pages
        await _defer(interaction)
        reply = await chat.click(engine, actor, ref.action, ref.execution_id, ref.page)
        await _say(interaction, reply.text, view_of(reply.buttons))
        return
    if ref.action == "request_revision":
        try:
            await asyncio.to_thread(
                engine.check_decision, ref.execution_id, actor, "request_revision", ref.seen
            )
        except PipebotError as exc:
            await _say(interaction, str(exc))
            return
        await interaction.response.send_modal(revision_modal(ref.execution_id, shown=ref.seen))
        return
    if ref.action == "edit_and_approve":
        try:  # refused (not an approver, decided, stale card) before anything opens
            spec = await asyncio.to_thread(engine.edit_spec, ref.execution_id, actor, ref.seen)
        except PipebotError as exc:
            await _say(interaction, str(exc))
            return
        files, left_out = edit_layout(spec)
        if not files:
            await _say(interaction, " ".join(too_long(left_out)))
            return
        await interaction.response.send_modal(edit_modal(spec, ref.seen))
        return
    if ref.action in ("reject", "approve_with_comment", "reassign"):
        try:
            await asyncio.to_thread(engine.check_decision, ref.execution_id, actor, ref.action, ref.seen)
        except PipebotError as exc:
            await _say(interaction, str(exc))
            return
        await interaction.response.send_modal(decision_modal(ref.action, ref.execution_id, ref.seen))
        return
    await _defer(interaction)
    if ref.action == "show_changes":  # read-only: posts to the thread once, answers each click here
        text = await _outcome(engine.show_changes, ref.execution_id, actor, ref.seen)
    elif ref.action == "retry":
        text = await _outcome(engine.retry, ref.execution_id, actor)
    else:
        approve = engine.approve_start if ref.action == "approve_start" else engine.approve_complete
        text = await _outcome(approve, ref.execution_id, actor, ref.seen)
    await _say(interaction, text)


async def open_form(
    interaction: discord.Interaction[Any], execution_id: int, page: int, shown: Seen | None = None
) -> None:
    engine, actor = engine_of(interaction), actor_of(interaction)
    try:
        spec = await asyncio.to_thread(engine.form, execution_id, actor)
    except PipebotError as exc:
        await _say(interaction, str(exc))
        return
    page = page if page < len(pages(spec.inputs)) else 0
    await interaction.response.send_modal(form_modal(spec, page, shown))


# -- modal submissions -----------------------------------------------------------------------


async def on_modal_submit(interaction: discord.Interaction[Any]) -> bool:
    """Handle a pipebot modal by its custom_id; False when the modal is not ours."""
    data = cast(Mapping[str, Any], interaction.data or {})
    ref = parse_modal_id(str(data.get("custom_id", "")))
    if ref is None:
        return False
    await _defer(interaction)
    engine, actor = engine_of(interaction), actor_of(interaction)
    view: discord.ui.View | None = None
    if ref.kind == "revise":
        feedback = submitted_values(data).get(FEEDBACK)
        text = await _outcome(engine.request_revision, ref.execution_id, actor, str(feedback or ""), ref.seen)
    elif ref.kind in ("reject", "comment"):
        given = submitted_values(data).get(DECISION)
        given = given if isinstance(given, str) else None
        if ref.kind == "reject":
            text = await _outcome(engine.reject, ref.execution_id, actor, given or "", ref.seen)
        else:
            text = await _outcome(engine.approve, ref.execution_id, actor, given, ref.seen)
    elif ref.kind == "reassign":
        text = await _outcome(engine.reassign, ref.execution_id, actor, _chosen_user(data))
    elif ref.kind == "edit":
        texts = edited_texts(submitted_values(data))
        text = await _outcome(engine.edit_and_approve, ref.execution_id, actor, texts, ref.seen)
    else:
        try:
            text, view = await _submit_page(interaction, engine, actor, ref, data)
        except PipebotError as exc:
            text = str(exc)
    await _say(interaction, text, view)
    return True


def _chosen_user(data: Mapping[str, Any]) -> Actor:
    chosen = submitted_values(data).get(DECISION)
    user_id = str(chosen[0]) if isinstance(chosen, list) and chosen else ""
    resolved = (data.get("resolved") or {}).get("users") or {}
    user = resolved.get(user_id) or {}
    return Actor(PLATFORM, user_id, str(user.get("global_name") or user.get("username") or user_id))


def _errors(spec: FormSpec, exc: FormInvalid) -> str:
    labels = {f.id: f.label for f in spec.inputs}
    return "\n".join(f"❌ **{labels.get(k, k)}** {msg}" for k, msg in exc.errors.items())


async def _submit_page(
    interaction: discord.Interaction[Any],
    engine: Engine,
    actor: Actor,
    ref: ModalRef,
    data: Mapping[str, Any],
) -> tuple[str, discord.ui.View | None]:
    spec = await asyncio.to_thread(engine.form, ref.execution_id, actor)
    all_pages = pages(spec.inputs)
    page = min(ref.page, len(all_pages) - 1)
    fields = all_pages[page]

    async def download(attachment: Mapping[str, Any]) -> bytes:
        data: bytes = await interaction.client.http.get_from_cdn(str(attachment["url"]))
        return data

    fresh = await page_values(fields, submitted_values(data), download)
    known = {f.id for f in spec.inputs}
    values = {k: v for k, v in spec.values.items() if k in known}
    for key, value in fresh.items():
        if not (value is None and isinstance(values.get(key), FileUpload)):  # an empty upload keeps the file
            values[key] = value

    async def keep(exc: FormInvalid, at_page: int) -> tuple[str, discord.ui.View | None]:
        # Nothing changed in the run; the values are kept as this person's draft for the reopened form.
        await asyncio.to_thread(engine.save_form_draft, ref.execution_id, actor, values)
        return _errors(spec, exc), view_of([PageButton(ref.execution_id, at_page, shown=ref.seen)])

    try:  # this page first: its errors come back before the person fills in the next one
        validate_form(fields, {f.id: values.get(f.id) for f in fields}, engine.config.max_file_bytes)
    except FormInvalid as exc:
        return await keep(exc, page)
    if page < len(all_pages) - 1:
        await asyncio.to_thread(engine.save_form_draft, ref.execution_id, actor, values)
        label = f"Continue ({page + 2}/{len(all_pages)})"
        return f"{page + 1}/{len(all_pages)} ✔", view_of(
            [PageButton(ref.execution_id, page + 1, label, ref.seen)]
        )
    try:
        outcome = await asyncio.to_thread(engine.submit_form, ref.execution_id, actor, values, ref.seen)
    except FormInvalid as exc:
        return await keep(exc, page_of(spec.inputs, next(iter(exc.errors))))
    return outcome.message, None
