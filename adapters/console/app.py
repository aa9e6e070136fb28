"""`pipebot console`: a terminal chat over the same engine and notifications as Slack and Discord.

It reads lines from a text stream, so it can be scripted: `/pipeline ...` commands, button ids
such as ``a12`` (shown as ``[a12] Approve``), and answers to form questions.
"""

from __future__ import annotations

import asyncio
import re
import select
from pathlib import Path
from typing import Any, TextIO

from adapters import chat
from adapters.console.render import LONG, buttons_line, render, turn_head
from engine import messages
from engine.actors import Actor, Conversation
from engine.api import Engine, Seen
from engine.definitions import InputField
from engine.errors import FormInvalid, PipebotError
from engine.forms import FileUpload, validate_form
from engine.notifications import Button, TurnCard
from engine.outbox import Delivery, MessageRef
from engine.streams import TurnHeader
from engine.worker import Worker

BUTTON = re.compile(r"^\[?([a-z])(\d+)(?:\.(\d+))?\]?$")
REASSIGN = re.compile(r"^reassign\s+\[?[a-z]?(\d+)\]?\s+@?(\S+)$")
EDIT = re.compile(r"^edit\s+\[?[a-z]?(\d+)\]?(?:\s+(\S+))?$")
END_OF_TEXT = "."  # a line holding only this ends an edited text; ".." stands for a line "."
CHANGES = re.compile(r"^changes\s+\[?[a-z]?(\d+)\]?$")
PLATFORM = "console"
TICK = 1.0  # seconds between timer checks while waiting for a line


class ConsoleDeliverer:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        # What the newest card printed with each button showed: typing ``a12`` decides on that
        # card, and the engine refuses it once the execution no longer matches (engine.seen).
        self.shown: dict[tuple[str, int], Seen] = {}

    async def deliver(self, delivery: Delivery) -> MessageRef:
        self.out.write(render(delivery.note, edited=delivery.existing is not None) + "\n")
        self.out.flush()
        self.remember(getattr(delivery.note, "buttons", []))
        return MessageRef(delivery.conversation.channel, delivery.note.key)

    def remember(self, buttons: list[Button]) -> None:
        for b in buttons:
            if b.digest:
                self.shown[(b.action, b.execution_id)] = Seen(b.revision, b.digest)


class ConsoleTurns:
    """Agent turns printed as the model writes them, one at a time (concurrent turns of a council
    would interleave: those are printed whole when they finish)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.busy = False

    async def open(self, header: TurnHeader) -> TerminalTurn | None:
        if self.busy:
            return None
        self.busy = True
        self.out.write(f"  {turn_head(header.agent, header.round)}:\n      ")
        return TerminalTurn(self, header)


class TerminalTurn:
    def __init__(self, turns: ConsoleTurns, header: TurnHeader) -> None:
        self.turns, self.header = turns, header

    async def append(self, text: str) -> None:
        self.turns.out.write(text.replace("*", "").replace("\n", "\n      "))
        self.turns.out.flush()

    async def finish(self, card: TurnCard) -> MessageRef:
        self.turns.out.write("\n")
        self.turns.busy = False
        return MessageRef(self.header.target.conversation.channel, self.header.key)

    async def abort(self) -> None:
        self.turns.out.write(" …\n")
        self.turns.busy = False


ECHO_MAX = 1000


class Console:
    def __init__(
        self,
        engine: Engine,
        user: str,
        inp: TextIO,
        out: TextIO,
        *,
        channel: str = "terminal",
        echo: bool = False,
        worker: Worker | None = None,
    ) -> None:
        self.engine, self.inp, self.out, self.echo = engine, inp, out, echo
        self.worker = worker
        self.actor = Actor(PLATFORM, user, user)
        self.where = Conversation(PLATFORM, channel)
        self.loop = asyncio.new_event_loop()
        self.deliverer = ConsoleDeliverer(out)
        engine.outbox.register(PLATFORM, self.deliverer)
        engine.turn_sinks[PLATFORM] = ConsoleTurns(out)

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def ask(self, prompt: str) -> str | None:
        self.out.write(prompt)
        self.out.flush()
        self.wait_for_line(prompt)
        line = self.inp.readline()
        if not line:
            return None
        line = line.rstrip("\n")
        if self.echo:  # a transcript of what was typed: a huge paste is not printed whole
            shown = line if len(line) <= ECHO_MAX else f"{line[:ECHO_MAX]}… ({len(line):,} characters)"
            self.out.write(shown + "\n")
        return line

    def wait_for_line(self, prompt: str) -> None:
        """At a terminal, deadlines and reminders fire while nobody types (checked each second)."""
        if not self.inp.isatty():
            return  # a script: timers fire between its lines
        while not select.select([self.inp], [], [], TICK)[0]:
            if self.engine.fire_timers():
                self.out.write("\n")
                self.flush_outbox()
                self.out.write(prompt)
                self.out.flush()

    def run(self) -> int:
        self.say(f"pipebot console — you are {self.actor.name}. Type /pipeline help; Ctrl-D to quit.")
        self.flush_outbox()
        try:
            while (line := self.ask("> ")) is not None:
                if line.strip() in ("quit", "exit"):
                    break
                self.handle(line.strip())
                self.flush_outbox()
        finally:
            self.loop.close()
        return 0

    def flush_outbox(self) -> None:
        """Deliver what the last command caused, running agent and script work it started,
        and what deadlines and reminders that came due did."""
        while self.engine.fire_timers():
            pass
        while True:
            delivered = self.loop.run_until_complete(self.engine.outbox.drain())
            worked = self.loop.run_until_complete(self.worker.drain()) if self.worker else 0
            if not delivered and not worked:
                return

    def handle(self, line: str) -> None:
        if not line or line.startswith("#"):
            return
        if line.startswith("/"):
            if not line.startswith("/pipeline"):
                self.say("Only /pipeline commands here. Try /pipeline help.")
                return
            self.show(self.loop.run_until_complete(chat.handle(self.engine, self.actor, self.where, line)))
            return
        m = REASSIGN.match(line)
        if m:
            self.reassign(int(m[1]), m[2])
            return
        m = EDIT.match(line)
        if m:
            self.edit(int(m[1]), m[2])
            return
        m = CHANGES.match(line)
        if m:
            self.click("show_changes", int(m[1]))
            return
        m = BUTTON.match(line)
        if m and m[1] in LONG and LONG[m[1]] in chat.CHAT_BUTTONS:
            page = int(m[3]) if m[3] else None
            self.show(
                self.loop.run_until_complete(chat.click(self.engine, self.actor, LONG[m[1]], int(m[2]), page))
            )
            return
        if m and m[1] in LONG:
            self.click(LONG[m[1]], int(m[2]))
            return
        self.say("Type /pipeline help, or a button id such as a12.")

    def show(self, reply: chat.Reply) -> None:
        self.say(("" if reply.ok else "✖ ") + reply.text.replace("*", "").replace("`", ""))
        if reply.buttons:
            self.say("    " + buttons_line(reply.buttons))
            self.deliverer.remember(reply.buttons)

    def click(self, action: str, execution_id: int) -> None:
        # A button id not printed in this session (typed from memory, after a restart) has no
        # card to compare with: it decides on the execution as it is, as buttons of old cards do.
        shown = self.deliverer.shown.get((action, execution_id))
        try:
            if action == "approve_start":
                self.say(self.engine.approve_start(execution_id, self.actor, shown).message)
            elif action == "approve_complete":
                self.say(self.engine.approve_complete(execution_id, self.actor, shown).message)
            elif action == "request_revision":
                feedback = self.ask("  What should change? ")
                if feedback is None:
                    return
                self.say(self.engine.request_revision(execution_id, self.actor, feedback, shown).message)
            elif action == "open_form":
                self.fill_form(execution_id, shown)
            elif action == "retry":
                self.say(self.engine.retry(execution_id, self.actor).message)
            elif action == "show_changes":
                self.say(self.engine.show_changes(execution_id, self.actor, shown).message)
            elif action == "reject":
                self.engine.check_decision(execution_id, self.actor, "reject", shown)
                reason = self.ask(f"  {messages.REASON_PROMPT} ")
                if reason is None:
                    return
                self.say(self.engine.reject(execution_id, self.actor, reason, shown).message)
            elif action == "approve_with_comment":
                self.engine.check_decision(execution_id, self.actor, "approve_with_comment", shown)
                comment = self.ask(f"  {messages.COMMENT_PROMPT}: ")
                if comment is None:
                    return
                self.say(self.engine.approve(execution_id, self.actor, comment, shown).message)
            elif action == "edit_and_approve":
                self.edit(execution_id)
            elif action == "reassign":
                self.engine.check_decision(execution_id, self.actor, "reassign")
                user = self.ask(f"  {messages.REASSIGN_PROMPT} (user): ")
                if user:
                    self.reassign(execution_id, user.strip().lstrip("@"))
            else:
                self.say(f"✖ {action} is not available here.")
        except PipebotError as exc:
            self.say(f"✖ {exc}")

    def reassign(self, execution_id: int, user: str) -> None:
        try:
            self.say(self.engine.reassign(execution_id, self.actor, Actor(PLATFORM, user, user)).message)
        except PipebotError as exc:
            self.say(f"✖ {exc}")

    def edit(self, execution_id: int, name: str | None = None) -> None:
        """`edit <id> [<output>]`: the new text follows, line by line, up to a line ".";
        the edit is stored as a new revision of that artifact and the result approved."""
        shown = self.deliverer.shown.get(("edit_and_approve", execution_id))
        try:
            spec = self.engine.edit_spec(execution_id, self.actor, shown)
        except PipebotError as exc:
            self.say(f"✖ {exc}")
            return
        shown = shown or Seen(spec.revision, spec.digest)  # the text shown below is this version
        files = {f.name: f for f in spec.files} | {f.filename: f for f in spec.files}
        choice = files.get(name) if name else (spec.files[0] if len(spec.files) == 1 else None)
        if choice is None:
            names = ", ".join(f.filename for f in spec.files)
            self.say(f"✖ Which file? Type edit {execution_id} <file>, one of: {names}.")
            return
        self.say(f"  {choice.filename} now:")
        self.say("\n".join(f"  | {line}" for line in choice.text.splitlines()))
        self.say(f"  Type the new text of {choice.filename}; end with a line holding only {END_OF_TEXT}")
        lines: list[str] = []
        while (line := self.ask("")) != END_OF_TEXT:
            if line is None:
                self.say("  Not saved.")
                return
            lines.append(END_OF_TEXT if line == END_OF_TEXT * 2 else line)
        try:
            self.say(
                self.engine.edit_and_approve(
                    execution_id, self.actor, {choice.name: "\n".join(lines)}, shown
                ).message
            )
        except PipebotError as exc:
            self.say(f"✖ {exc}")

    def fill_form(self, execution_id: int, shown: Seen | None = None) -> None:
        spec = self.engine.form(execution_id)
        self.say(
            f"  Form: {spec.checkpoint} ({spec.run})"
            + (f"\n  {spec.instructions}" if spec.instructions else "")
        )
        if spec.feedback:
            self.say(f"  Feedback to address: {spec.feedback}")
        values: dict[str, Any] = {}
        todo = list(spec.inputs)
        while todo:
            for field in todo:
                value = self.ask_field(field, spec.values.get(field.id))
                if value is _EOF:
                    self.say("  Form not submitted.")
                    return
                values[field.id] = value
            try:
                self.say(self.engine.submit_form(execution_id, self.actor, values, shown).message)
                return
            except FormInvalid as exc:
                for name, msg in exc.errors.items():
                    self.say(f"  ✖ {name}: {msg}")
                todo = [f for f in spec.inputs if f.id in exc.errors]

    def ask_field(self, field: InputField, current: Any) -> Any:
        hint = _hint(field, current)
        while True:
            raw = self.ask(f"  {field.label} ({hint}): ")
            if raw is None:
                return _EOF
            value: Any = raw.replace("\\n", "\n") if field.type == "multiline_text" else raw
            if not raw.strip() and current is not None:
                value = current
            elif field.type == "file" and raw.strip():
                path = Path(raw.strip()).expanduser()
                if not path.is_file():
                    self.say(f"  ✖ no such file: {path}")
                    continue
                value = FileUpload(path.name, path.read_bytes())
            try:
                validate_form([field], {field.id: value}, self.engine.config.max_file_bytes)
            except FormInvalid as exc:
                self.say(f"  ✖ {exc.errors[field.id]}")
                continue
            return value


_EOF = object()


def _show(value: Any) -> str:
    return ("yes" if value else "no") if isinstance(value, bool) else str(value)


def _hint(field: InputField, current: Any) -> str:
    parts = [
        {"multiline_text": "text, \\n for a new line", "boolean": "yes/no", "file": "path to a file"}.get(
            field.type, field.type
        )
    ]
    if field.type == "select":
        parts = ["one of " + "/".join(field.choices or [])]
    if field.required:
        parts.append("required")
    if field.min is not None or field.max is not None:
        low = "" if field.min is None else f"{field.min:g}"
        high = "" if field.max is None else f"{field.max:g}"
        parts.append(f"{low}..{high}")
    if field.max_length:
        parts.append(f"max {field.max_length} chars")
    if current is not None:
        parts.append(f"now: {_show(current)}")
    elif field.default is not None:
        parts.append(f"default: {field.default}")
    return ", ".join(parts)
