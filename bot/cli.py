"""The `pipebot` command line."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import os
import re
import shutil
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from bot import logs
from bot.settings import Settings
from engine import messages, sandbox
from engine.api import Engine, EngineConfig
from engine.archives import parse_age
from engine.definitions import APPROVER_PATTERN, load_pipeline_file, pipeline_json_schema
from engine.errors import PipebotError, UsageError
from engine.history import HistoryEntry
from engine.llm import LLM
from engine.messages import size_text
from engine.roles import parse_principals
from engine.sandbox import SandboxConfig
from engine.script_support import SECRET_NAME
from engine.worker import Worker, WorkerConfig


def engine_config(settings: Settings, console_user: str | None = None) -> EngineConfig:
    """The engine's settings; in the console the local user is the admin unless PIPEBOT_ADMINS is set."""
    admins = parse_principals(settings.pipebot_admins)
    bad = [a for a in admins if not re.match(APPROVER_PATTERN, a)]
    if bad:  # a typo would leave the deployment without admins, silently
        raise UsageError(
            f"PIPEBOT_ADMINS: {bad[0]!r} is not a principal like slack:U012ABC, slack:@group, "
            "discord:<id>, discord:role:<id> or console:<name>"
        )
    if console_user is not None and settings.pipebot_admins is None:
        admins = (f"console:{console_user}",)
    return EngineConfig(
        max_file_bytes=settings.pipebot_max_upload_bytes,
        admins=admins,
        limits=settings.limits,
        stale_after_seconds=settings.pipebot_worker_stale_seconds,
    )


def open_engine(settings: Settings, console_user: str | None = None) -> Engine:
    return Engine.open(
        settings.base_pipelines_path, settings.database_url, config=engine_config(settings, console_user)
    )


def os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        return "operator"


def script_sandbox(settings: Settings, console: bool = False) -> SandboxConfig:
    """serve and worker: bwrap unless the operator chose "none" (without bwrap every script
    fails, saying so). The console is the operator's own machine: unsandboxed, with a warning."""
    config = SandboxConfig(mode=settings.pipebot_script_sandbox)
    if console and config.enabled:
        reason = sandbox.unavailable(config.bwrap)
        if reason is not None:
            print(
                f"warning: scripts run without a sandbox ({reason}; install the bubblewrap package, "
                "or set PIPEBOT_SCRIPT_SANDBOX=none)",
                file=sys.stderr,
            )
            return SandboxConfig(mode="none")
    elif config.enabled and (reason := sandbox.unavailable(config.bwrap)) is not None:
        logging.getLogger("pipebot").error(messages.SANDBOX_MISSING.format(reason=reason))
    return config


def make_worker(engine: Engine, settings: Settings, console: bool = False) -> Worker:
    """The agent/script worker, with an LLM client when an endpoint is configured."""
    llm = None
    if settings.openai_api_key or settings.openai_base_url:

        def llm() -> LLM:
            return LLM(
                api_key=settings.openai_api_key or "not-needed",
                base_url=settings.openai_base_url,
                model=settings.default_model,
                max_tokens=settings.default_max_tokens,
                temperature=settings.default_temperature,
            )

    # The bot's own secrets by name; script_env also refuses any secret-looking name.
    secrets = [name.upper() for name, value in settings if value and SECRET_NAME.search(name)]
    config = WorkerConfig(
        stale_after_seconds=settings.pipebot_worker_stale_seconds,
        secret_env=secrets,
        sandbox=script_sandbox(settings, console),
    )
    return Worker(engine, llm, config)


def yaml_files(paths: Sequence[str]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        found = sorted([*p.glob("*.yaml"), *p.glob("*.yml"), *p.glob("*.json")]) if p.is_dir() else [p]
        if not found:  # saying nothing and exiting 0 would read as "imported"
            raise UsageError(f"{p}: no pipeline files (*.yaml, *.yml, *.json) in this folder")
        out += found
    return out


def cmd_console(args: argparse.Namespace, settings: Settings) -> int:
    from adapters.console.app import Console

    engine = open_engine(settings, console_user=args.user)
    paths = args.paths or (["examples"] if Path("examples").is_dir() else [])
    for path in yaml_files(paths):
        s = engine.import_pipeline(path)
        print(f"loaded {s.slug} (v{s.version}) from {path}")
    worker = make_worker(engine, settings, console=True)
    return Console(
        engine,
        args.user,
        sys.stdin,
        sys.stdout,
        channel=args.channel,
        echo=not sys.stdin.isatty(),
        worker=worker,
    ).run()


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    """A worker alone: several can share one database with `pipebot serve`."""
    engine = open_engine(settings)
    worker = make_worker(engine, settings)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await worker.run(stop)

    asyncio.run(main())
    return 0


def cmd_pipelines(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "schema":
        print(json.dumps(pipeline_json_schema(), indent=2))
        return 0
    if args.action == "validate":
        bad = 0
        for path in yaml_files(args.paths):
            try:
                p = load_pipeline_file(path, settings.limits)
                print(f"{path}: ok ({p.id}, {len(p.checkpoints)} checkpoints)")
            except PipebotError as exc:
                print(exc, file=sys.stderr)
                bad += 1
        return 1 if bad else 0
    engine = open_engine(settings)
    if args.action == "import":
        for path in yaml_files(args.paths):
            s = engine.import_pipeline(path)
            print(
                f"{s.slug}: "
                + (f"imported as version {s.version}" if s.changed else f"unchanged (v{s.version})")
            )
    elif args.action == "list":
        for s in engine.pipelines():
            print(f"{s.slug}\tv{s.version}\t{s.checkpoints} checkpoints\t{s.title}")
    elif args.action == "export":
        print(engine.export_pipeline(args.paths[0], args.version), end="")
    elif args.action == "delete":
        if len(args.paths) != 1:
            raise UsageError("usage: pipebot pipelines delete <pipeline id> [--cancel-runs]")
        print(engine.delete_pipeline(args.paths[0], None, cancel_runs=args.cancel_runs).message)
    return 0


def cmd_runs(args: argparse.Namespace, settings: Settings) -> int:
    engine = open_engine(settings)
    if args.action == "list":
        for r in engine.runs(args.pipeline, limit=args.limit):
            print(f"{r.name}\t{r.status}\t{r.done}/{r.total}\t{r.current or ''}\tby {r.started_by}")
    elif args.action == "history":
        page = engine.history(args.name, 1)
        entries = _all_history(engine, args.name)
        if args.json:
            data = page.model_dump(mode="json") | {"entries": [e.model_dump(mode="json") for e in entries]}
            print(json.dumps({k: v for k, v in data.items() if k not in ("page", "pages")}, indent=2))
        else:
            print(f"{page.run} ({page.status})" + (f" — {page.rolled_back}" if page.rolled_back else ""))
            for e in entries:
                print(e.line())
    else:
        view = engine.run(args.name)
        print(view.model_dump_json(indent=2))
    return 0


def _all_history(engine: Engine, name: str) -> list[HistoryEntry]:
    first = engine.history(name, 1)
    return [e for n in range(1, first.pages + 1) for e in engine.history(name, n).entries]


def cmd_archives(args: argparse.Namespace, settings: Settings) -> int:
    """The disk side of rollbacks: what .archived/ holds, and removing old archives."""
    engine = open_engine(settings)
    if args.action == "list":
        for f in engine.archive_folders():
            rb = f"rollback {f.rollback_id}" if f.rollback_id else "-"
            print(f"{f.path}\t{rb}\t{f.created_at:%Y-%m-%d %H:%M}\t{f.files} files\t{size_text(f.size)}")
        return 0
    try:
        age = parse_age(args.older_than or "")
    except ValueError as exc:
        build_parser().error(f"archives purge needs --older-than, like 90d ({exc})")
    old = engine.purge_archives(age, act=args.yes)
    verb = "removed" if args.yes else "would remove"
    for f in old:
        print(f"{verb} {f.path} ({f.files} files, {size_text(f.size)})")
    total = sum(f.size for f in old)
    print(
        f"{verb} {len(old)} archive(s), {size_text(total)}"
        + ("" if args.yes else "; add --yes to remove them")
    )
    return 0


def cmd_artifacts(args: argparse.Namespace, settings: Settings) -> int:
    engine = open_engine(settings)
    if args.action == "list":
        for a in engine.artifacts(args.ref, include_archived=True):  # archived ones: path under .archived/
            mark = "\tarchived" if a.archived else ""
            print(f"{a.artifact_id}\t{a.name}.{a.format}\t{a.size}\t{a.path}{mark}")
        return 0
    if not args.ref.isdigit():
        raise UsageError(f"an artifact id is a number (see pipebot artifacts list <run>), not {args.ref!r}")
    src = engine.artifact_path(int(args.ref))
    if args.output:
        shutil.copyfile(src, args.output)
        print(f"wrote {args.output}")
    else:
        sys.stdout.buffer.write(src.read_bytes())
    return 0


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    engine = open_engine(settings)  # opening applies the migrations
    print(f"database at head: {engine.store.url}")
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from bot.serve import serve

    return int(serve(settings))


def cmd_discord(args: argparse.Namespace, settings: Settings) -> int:
    from adapters.discord.service import sync_commands_main

    return sync_commands_main(settings)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pipebot", description="Pipelines of checkpoints, run from chat.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("console", help="a terminal chat (no credentials needed)")
    p.add_argument("paths", nargs="*", help="pipeline files or folders to load first (default: ./examples)")
    p.add_argument("--user", default=os_user(), help="who you are in the chat (default: your user name)")
    p.add_argument("--channel", default="terminal")
    p.set_defaults(fn=cmd_console)
    p = sub.add_parser(
        "pipelines", help="validate, import, list, export, delete pipelines; print the JSON Schema"
    )
    p.add_argument("action", choices=["validate", "import", "list", "export", "delete", "schema"])
    p.add_argument("paths", nargs="*")
    p.add_argument("--version", type=int)
    p.add_argument("--cancel-runs", action="store_true", help="delete: cancel the pipeline's active runs")
    p.set_defaults(fn=cmd_pipelines)
    p = sub.add_parser("runs", help="list runs, show one, or its history (audit trail)")
    p.add_argument("action", choices=["list", "show", "history"])
    p.add_argument("name", nargs="?")
    p.add_argument("--json", action="store_true", help="history as JSON")
    p.add_argument("--pipeline")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(fn=cmd_runs)
    p = sub.add_parser("artifacts", help="list a run's artifacts or fetch one")
    p.add_argument("action", choices=["list", "get"])
    p.add_argument("ref", help="a run name (list) or an artifact id (get)")
    p.add_argument("-o", "--output")
    p.set_defaults(fn=cmd_artifacts)
    p = sub.add_parser("archives", help="list rollback archives (.archived/) or purge old ones")
    p.add_argument("action", choices=["list", "purge"])
    p.add_argument("--older-than", help="purge: archives older than this (90d, 12h, 30m)")
    p.add_argument("--yes", action="store_true", help="purge: remove them (default: only say what would go)")
    p.set_defaults(fn=cmd_archives)
    p = sub.add_parser("worker", help="run agent and script checkpoints (serve runs one too)")
    p.set_defaults(fn=cmd_worker)
    p = sub.add_parser("db", help="database maintenance")
    p.add_argument("action", choices=["upgrade"])
    p.set_defaults(fn=cmd_db)
    p = sub.add_parser("serve", help="run the Slack and/or Discord adapters whose credentials are set")
    p.set_defaults(fn=cmd_serve)
    p = sub.add_parser("discord", help="Discord maintenance")
    p.add_argument(
        "action",
        choices=["sync-commands"],
        help="register /pipeline (globally, or to DISCORD_GUILD_IDS at once)",
    )
    p.set_defaults(fn=cmd_discord)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:  # a setting of the wrong shape: name it, on one line
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']} (got {e.get('input')!r})"
            for e in exc.errors()
        )
        print(f"error: {problems}", file=sys.stderr)
        return 1
    logs.setup(settings.log_level, settings.log_format)
    if args.command == "runs" and args.action in ("show", "history") and not args.name:
        build_parser().error(f"runs {args.action} needs a run name, like blog-post#v1")
    try:
        code = int(args.fn(args, settings))
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return code
    except PipebotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`pipebot pipelines schema | head`): stop quietly, as cat does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        print(f"error:{where}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:  # a wrong DATABASE_URL, a database that is down
        logging.getLogger("pipebot").debug("database error", exc_info=True)
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        print(f"error: database: {reason}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
