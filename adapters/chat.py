"""The `/pipeline` command, shared by every chat adapter: parsing, help and dispatch.

An adapter turns its platform's slash command into ``(actor, conversation, text)`` and renders
the ``Reply``; everything else about the command lives here, once.
"""

from __future__ import annotations

import asyncio
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.actors import Actor, Conversation
from engine.api import Engine, PendingItem
from engine.errors import AlreadyDone, PipebotError, UsageError
from engine.history import HistoryPage
from engine.messages import progress_bar, size_text
from engine.notifications import Button, RunInfo

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "help": ("", "this help"),
    "list": ("", "the pipelines you can run"),
    "show": ("<pipeline>", "a pipeline's checkpoints"),
    "run": ("<pipeline> [extend:<version>]", "start a run (extend: build on an earlier version)"),
    "status": ("[<run>]", "where a run stands (default: the latest here)"),
    "runs": ("[<pipeline>]", "recent runs"),
    "pause": ("<run>", "pause a run between checkpoints"),
    "resume": ("<run>", "resume a paused run"),
    "rollback": (
        "<run> [<checkpoint>]",
        "archive from a checkpoint on and redo it; <pipeline>#v<N> alone: return to v<N> (asks first)",
    ),
    "rollbacks": ("<run-or-pipeline>", "past rollbacks, newest first"),
    "restore": ("<rollback-id>", "undo a rollback while nothing newer happened"),
    "history": ("<run> [<page>]", "a run's audit trail"),
    "cancel": ("<run>", "cancel a run"),
    "artifacts": ("<run>", "a run's files"),
    "pending": ("", "what waits for you"),
    "import": ("<yaml>", "add or update a pipeline from YAML text (admins; owners re-import theirs)"),
    "delete": ("<pipeline> [cancel-runs]", "remove a pipeline from the list (admins, owners); runs stay"),
}
CANCEL_RUNS = ("cancel-runs", "--cancel-runs")
EXTEND = re.compile(r"^extend:v?(\d+)$")


@dataclass
class Reply:
    text: str
    ephemeral: bool = True
    buttons: list[Button] = field(default_factory=list)
    ok: bool = True


@dataclass(frozen=True)
class Command:
    name: str
    args: list[str]
    raw: str = ""


def help_text(command: str = "/pipeline") -> str:
    width = max(len(f"{n} {a}".strip()) for n, (a, _) in SUBCOMMANDS.items())
    lines = [f"`{command} {f'{n} {a}'.strip():<{width}}`  {d}" for n, (a, d) in SUBCOMMANDS.items()]
    return "Usage:\n" + "\n".join(lines) + "\nRuns are named like blog-post#v3."


def parse(text: str) -> Command:
    text = text.strip()
    if text.startswith("/pipeline"):
        text = text.removeprefix("/pipeline").strip()
    if not text:
        return Command("help", [])
    name, _, rest = text.partition(" ")
    if name not in SUBCOMMANDS:
        raise UsageError(f"Unknown subcommand '{name}'. Valid: {', '.join(SUBCOMMANDS)}.")
    if name == "import":
        return Command(name, [], rest.strip().strip("`").removeprefix("yaml").strip())
    try:
        args = shlex.split(rest)
    except ValueError as exc:
        raise UsageError(f"Cannot read the arguments: {exc}.") from None
    usage, _ = SUBCOMMANDS[name]
    needed = len([a for a in usage.split() if a.startswith("<")])
    allowed = len(usage.split())
    if not needed <= len(args) <= allowed:
        raise UsageError(f"Usage: /pipeline {name} {usage}".rstrip())
    return Command(name, args)


def run_line(info: RunInfo) -> str:
    now = f" · now: {info.current}" if info.current and info.status in ("in_progress", "paused") else ""
    return f"*{info.name}* — {info.status.replace('_', ' ')} {progress_bar(info.done, info.total)}{now}"


async def handle(engine: Engine, actor: Actor, where: Conversation, text: str) -> Reply:
    """Run one `/pipeline` command; every engine refusal becomes a reply, never an exception."""
    try:
        cmd = parse(text)
        return await asyncio.to_thread(_dispatch, engine, actor, where, cmd)
    except AlreadyDone as exc:
        return Reply(str(exc), ok=False)
    except PipebotError as exc:
        return Reply(str(exc), ok=False)


def _dispatch(engine: Engine, actor: Actor, where: Conversation, cmd: Command) -> Reply:
    handlers: dict[str, Callable[[], Reply]] = {
        "help": lambda: Reply(help_text()),
        "list": lambda: _list(engine),
        "show": lambda: _show(engine, cmd.args[0]),
        "run": lambda: _run(engine, actor, where, cmd.args),
        "status": lambda: _status(engine, where, cmd.args),
        "runs": lambda: _runs(engine, cmd.args),
        "pause": lambda: Reply(engine.pause(cmd.args[0], actor).message, ephemeral=False),
        "resume": lambda: Reply(engine.resume(cmd.args[0], actor).message, ephemeral=False),
        "cancel": lambda: Reply(engine.cancel(cmd.args[0], actor).message, ephemeral=False),
        "rollback": lambda: _rollback(engine, actor, cmd.args),
        "rollbacks": lambda: _rollbacks(engine, cmd.args[0]),
        "restore": lambda: Reply(engine.restore(_number(cmd.args[0]), actor).message, ephemeral=False),
        "history": lambda: history_reply(
            engine.history(cmd.args[0], _number(cmd.args[1]) if len(cmd.args) > 1 else 1)
        ),
        "artifacts": lambda: _artifacts(engine, cmd.args[0]),
        "pending": lambda: _pending(engine, actor),
        "import": lambda: _import(engine, actor, cmd.raw),
        "delete": lambda: _delete(engine, actor, cmd.args),
    }
    return handlers[cmd.name]()


def _list(engine: Engine) -> Reply:
    items = engine.pipelines()
    if not items:
        return Reply("No pipelines yet. Import one with /pipeline import or `pipebot pipelines import`.")
    return Reply(
        "\n".join(
            f"• *{p.slug}* (v{p.version}) — {p.title}: {p.description or 'no description'}"
            f" · {p.checkpoints} checkpoints"
            for p in items
        )
    )


def _show(engine: Engine, slug: str) -> Reply:
    p = engine.pipeline(slug)
    lines = [f"*{p.title}* (`{p.id}`) — {p.description}".rstrip(" —")]
    for i, cp in enumerate(p.checkpoints, 1):
        gates = [
            g
            for g, on in (
                ("approve start", cp.human.approval_to_start),
                ("approve result", cp.human.approval_to_complete),
            )
            if on
        ]
        inputs = f", {len(cp.inputs)} inputs" if cp.inputs else ""
        lines.append(f"{i}. *{cp.title}* [{cp.mode}{inputs}]" + (f" — {', '.join(gates)}" if gates else ""))
    return Reply("\n".join(lines))


def _run(engine: Engine, actor: Actor, where: Conversation, args: list[str]) -> Reply:
    extend = None
    if len(args) == 2:
        m = EXTEND.match(args[1])
        if not m:
            raise UsageError("Usage: /pipeline run <pipeline> [extend:<version>], e.g. extend:2")
        extend = int(m[1])
    info = engine.start_run(args[0], actor, where, extend)
    return Reply(f"Started {info.name}.", ephemeral=True)


def _status(engine: Engine, where: Conversation, args: list[str]) -> Reply:
    if args:
        name = args[0]
    else:
        here = engine.runs(channel=where.channel, limit=1)
        if not here:
            return Reply("No run in this conversation yet. Start one with /pipeline run <pipeline>.")
        name = here[0].name
    view = engine.run(name)
    lines = [run_line(view.info)]
    if view.rolled_back:
        lines.append(view.rolled_back)
    if view.extends:
        lines.append(f"extends {view.extends}")
    for e in view.executions:
        extra = f" (revision {e.revision})" if e.revision else ""
        extra += f" (attempt {e.attempt})" if e.attempt > 1 else ""
        lines.append(f"• {e.title}: {e.status.replace('_', ' ')}{extra}")
    return Reply("\n".join(lines))


def _runs(engine: Engine, args: list[str]) -> Reply:
    items = engine.runs(args[0] if args else None)
    return Reply("\n".join(run_line(i) for i in items) if items else "No runs yet.")


def _artifacts(engine: Engine, run: str) -> Reply:
    items = engine.artifacts(run, include_archived=True)
    if not items:
        return Reply(f"{run} has no artifacts yet.")
    return Reply(
        "\n".join(
            f"• {a.name}.{a.format} ({a.size} bytes{', archived' if a.archived else ''})"
            f" — `pipebot artifacts get {a.artifact_id}`"
            for a in items
        )
    )


def _number(text: str) -> int:
    digits = text.strip().lstrip("#")
    if not digits.isdigit():
        raise UsageError(f"'{text}' is not a number.")
    return int(digits)


def _rollback(engine: Engine, actor: Actor, args: list[str]) -> Reply:
    proposal = engine.propose_rollback(args[0], args[1] if len(args) > 1 else None, actor)
    return Reply(proposal.text, buttons=proposal.buttons)


def _rollbacks(engine: Engine, target: str) -> Reply:
    items = engine.rollbacks(target)
    if not items:
        return Reply(f"No rollbacks for {target}.")
    lines = []
    for r in items:
        what = {"checkpoint": f"{r.run} → {r.to}", "run": f"{r.run.split('#')[0]} → {r.to}"}.get(
            r.kind, f"restore of {r.to} ({r.run})"
        )
        state = {"restored": f" · restored (restore {r.restored_by})", "purged": " · archive purged"}.get(
            r.status, ""
        )
        lines.append(
            f"• #{r.rollback_id} {r.at.strftime('%Y-%m-%d %H:%M')} by {r.actor}: {what} · "
            + (f"{r.runs} run(s), " if r.kind == "run" else f"{r.executions} execution(s), ")
            + f"{r.files} file(s), {size_text(r.size)}{state}"
        )
    return Reply("\n".join(lines))


def history_reply(page: HistoryPage) -> Reply:
    head = f"*History of {page.run}* ({page.status.replace('_', ' ')}) — page {page.page}/{page.pages}"
    lines = [head] + ([page.rolled_back] if page.rolled_back else [])
    lines += [f"• {e.line()}" for e in page.entries] or ["(nothing yet)"]
    buttons = []
    if page.page < page.pages:
        label = f"Next page ({page.page + 1}/{page.pages})"
        buttons.append(
            Button(action="history_page", execution_id=page.run_id, label=label, page=page.page + 1)
        )
    return Reply("\n".join(lines), buttons=buttons)


async def click(engine: Engine, actor: Actor, action: str, target: int, page: int | None) -> Reply:
    """The buttons every adapter answers the same way: rollback Confirm / Keep, history pages."""

    def run() -> Reply:
        if action == "confirm_rollback":
            return Reply(engine.confirm_rollback(target, actor).message, ephemeral=False)
        if action == "keep_rollback":
            return Reply(engine.keep_rollback(target, actor).message)
        return history_reply(engine.history_of(target, page or 1))

    try:
        return await asyncio.to_thread(run)
    except PipebotError as exc:
        return Reply(str(exc), ok=False)


CHAT_BUTTONS = frozenset({"confirm_rollback", "keep_rollback", "history_page"})
NOTHING_PENDING = "Nothing waits for you."


def pending_line(item: PendingItem) -> str:
    due = (f" — *{item.due}*" if item.overdue else f" — {item.due}") if item.due else ""
    return f"• {item.run} · {item.checkpoint}: {_STAGES[item.stage]}{due}"


def _pending(engine: Engine, actor: Actor) -> Reply:
    items = engine.pending(actor)
    if not items:
        return Reply(NOTHING_PENDING)
    text = "\n".join(pending_line(i) for i in items)
    return Reply(text, buttons=[b for i in items for b in i.buttons])


_STAGES = {"start": "approve start", "form": "fill in the form", "complete": "review the result"}


def _import(engine: Engine, actor: Actor, text: str) -> Reply:
    if not text:
        raise UsageError("Usage: /pipeline import <yaml text of the pipeline>")
    s = engine.import_pipeline_text(text, "<chat>", actor=actor)
    state = f"imported as version {s.version}" if s.changed else f"unchanged (version {s.version})"
    return Reply(f"Pipeline *{s.slug}* {state}.", ephemeral=False)


def _delete(engine: Engine, actor: Actor, args: list[str]) -> Reply:
    if len(args) == 2 and args[1] not in CANCEL_RUNS:
        raise UsageError(f"Usage: /pipeline delete {SUBCOMMANDS['delete'][0]}")
    outcome = engine.delete_pipeline(args[0], actor, cancel_runs=len(args) == 2)
    return Reply(outcome.message, ephemeral=False)
