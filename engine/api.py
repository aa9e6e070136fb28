"""The engine's public commands and queries: everything an adapter or the CLI may call.

Each command is one write transaction; refusals are audited in a transaction of their own
(the command's was rolled back). After a commit that wrote notifications, listeners (the
outbox dispatcher) are woken.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import yaml
from sqlalchemy import select

from engine import (
    archive_moves,
    archives,
    artifact_revisions,
    audit,
    changes,
    drafts,
    edits,
    history,
    human,
    inbox,
    logctx,
    messages,
    metrics,
    pipelines,
    queries,
    roles,
    rollbacks,
    runs,
    schedules,
    timers,
    work,
)
from engine import artifacts as artifact_rows
from engine.actors import DEADLINE, Actor, Conversation
from engine.archive_moves import Plan
from engine.archives import ArchiveFolder, RollbackInfo
from engine.clock import Clock, utcnow
from engine.definitions import (
    AgentSpec,
    Pipeline,
    load_pipeline_file,
    parse_pipeline,
)
from engine.edits import EditableFile, EditSpec
from engine.errors import NotAllowed, NotFound, PipebotError, Refused
from engine.forms import DEFAULT_MAX_FILE_BYTES
from engine.history import HistoryPage
from engine.human import Outcome
from engine.limits import DEFAULT as DEFAULT_LIMITS
from engine.limits import Limits
from engine.models import (
    ArtifactRow,
    ExecutionRow,
    InboxRow,
    InteractionRow,
    PipelineRow,
    RunRow,
)
from engine.notifications import ArtifactInfo, RunInfo, TurnCard
from engine.outbox import Dispatcher, MessageRef
from engine.queries import FormSpec, PendingItem, PipelineSummary, RunView
from engine.roles import Roles
from engine.rollbacks import Proposal
from engine.seen import Seen
from engine.states import RunStatus as R
from engine.store import Store, sqlite_url
from engine.streams import TurnSink, TurnTarget
from engine.timers import FIRE_BATCH
from engine.tx import Definitions, Tx
from engine.work import WorkItem
from engine.workspace import Workspace

log = logging.getLogger("pipebot.engine")
T = TypeVar("T")


@dataclass
class EngineConfig:
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    stale_after_seconds: float = 30.0  # a lease or claim without heartbeat this long is taken over
    admins: tuple[str, ...] = ()  # PIPEBOT_ADMINS, parsed (engine.roles)
    limits: Limits = DEFAULT_LIMITS


class Engine:
    def __init__(
        self,
        store: Store,
        workspace: Workspace,
        clock: Clock = utcnow,
        config: EngineConfig | None = None,
        journal: Store | None = None,
    ) -> None:
        self.store, self.ws, self.clock = store, workspace, clock
        self.config = config or EngineConfig()
        self.roles = Roles(admins=self.config.admins)
        self.definitions = Definitions()
        self.outbox = Dispatcher(store, clock, stale_after=self.config.stale_after_seconds)
        self.inbox = inbox.Inbox(store, clock, journal)
        self.listeners: list[Callable[[], None]] = [self.outbox.wake]
        self._file_work = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pipebot-files")
        # Live agent turns by platform: adapters in this process register theirs (engine.streams).
        self.turn_sinks: dict[str, TurnSink] = {}

    @classmethod
    def open(
        cls,
        base_path: Path,
        database_url: str | None = None,
        clock: Clock = utcnow,
        config: EngineConfig | None = None,
    ) -> Engine:
        base_path.mkdir(parents=True, exist_ok=True)
        store = Store(database_url or sqlite_url(base_path))
        store.migrate()
        journal = None
        if store.is_sqlite:  # the inbox's rows in a file of their own (see engine.inbox)
            journal = Store(sqlite_url(Path(store.url.removeprefix("sqlite:///")).parent, "inbox.db"))
            journal.create(InboxRow.__table__)  # type: ignore[arg-type]
        engine = cls(store, Workspace(base_path), clock, config, journal)
        engine.recover_rollbacks()
        engine.recover_artifacts()
        return engine

    def close(self) -> None:
        self._file_work.shutdown(wait=True)  # the timers' file work queued so far
        self.inbox.close()
        self.store.dispose()
        if self.inbox.journal is not None:
            self.inbox.journal.dispose()

    def wake_listeners(self) -> None:
        """Another process committed work or notifications (PostgreSQL NOTIFY): look now."""
        for listener in self.listeners:
            listener()

    # -- transactions ----------------------------------------------------------------------

    def _write(
        self,
        fn: Callable[[Tx], T],
        audit: tuple[str, int | None, str | None, Actor] | None = None,
        *,
        files_later: bool = False,
    ) -> T:
        """``files_later``: leave the file work that follows the commit (folders, run_info.json,
        logs) to the engine's file thread, in commit order, instead of doing it before returning."""
        _, execution_id, run_name, actor = audit or (None, None, None, None)
        ids = {"run": run_name, "execution": execution_id}
        if actor is not None:
            ids |= {"platform": actor.platform, "user": actor.user_id}
        undo: list[Callable[[], object]] = []
        try:
            try:
                with logctx.bound(**ids), self.store.write() as session:
                    tx = Tx(session, self.clock, self.definitions, roles=self.roles, on_rollback=undo)
                    result = fn(tx)
                    tx.finish()
                    # An interaction handled from the inbox takes effect once (see engine.inbox).
                    applying = inbox.mark_applied(session, tx.now())
                    if tx.notified:  # other processes' outbox and workers wake at commit
                        self.store.notify(session)
            except BaseException:
                # Nothing written for a transaction that did not commit stays on disk.
                for action in reversed(undo):
                    with contextlib.suppress(OSError):
                        action()
                raise
        except (NotAllowed, Refused) as exc:
            if audit is not None:
                self._audit_refusal(audit, str(exc))
            raise
        if applying is not None:
            applying.done = True
        if audit is not None:  # a human command that took effect
            metrics.DECISIONS.labels(audit[0]).inc()
        if tx.notified:  # first: what the outbox delivers does not wait for the files below
            for listener in self.listeners:
                listener()
        if files_later:
            self._file_work.submit(self._files_logged, tx)
        else:
            self._files(tx)
        return result

    def _files(self, tx: Tx) -> None:
        """What follows a commit on disk: folders moved or dropped, run_info.json, log lines."""
        for action in tx.after_commit:
            action()
        for slug, version, data in tx.run_files:
            self.ws.write_run_info(slug, version, data)
        for slug, line in tx.logs:
            self.ws.log(slug, self.clock(), line)

    def _files_logged(self, tx: Tx) -> None:
        try:
            self._files(tx)
        except Exception:  # nobody waits for it: say so in the log
            log.exception("file work after a commit failed")

    def _audited(self, kind: str, subject: str, actor: Actor | None, fn: Callable[[Tx], T]) -> T:
        """A command without a run to audit on: a refusal goes to the audit log (engine.audit)."""
        try:
            return self._write(fn)
        except (NotAllowed, Refused) as exc:
            with self.store.write() as s:
                audit.record(s, self.clock(), kind, "refused", actor, subject, {"reason": str(exc)})
            raise

    def _audit_refusal(self, audit: tuple[str, int | None, str | None, Actor], reason: str) -> None:
        kind, execution_id, run_name, actor = audit
        with self.store.write() as s:
            if execution_id is not None:
                ex = s.get(ExecutionRow, execution_id)
                run_id = ex.run_id if ex else None
            else:
                run_id = runs.find_run(s, run_name).id if run_name else None
            if run_id is None:
                return
            run = s.get(RunRow, run_id)
            if run is not None:
                self.ws.log(
                    run.pipeline_slug, self.clock(), f"{run.name}: {kind} by {actor.name} refused: {reason}"
                )
            s.add(
                InteractionRow(
                    run_id=run_id,
                    execution_id=execution_id,
                    kind=kind,
                    outcome="refused",
                    actor_platform=actor.platform,
                    actor_id=actor.user_id,
                    actor_name=actor.name,
                    data_json=json.dumps({"reason": reason}),
                    created_at=self.clock(),
                )
            )

    # -- pipelines (engine.pipelines; actor=None is the operator at the command line) ----------

    def import_pipeline(self, path: Path, actor: Actor | None = None) -> PipelineSummary:
        pipeline = load_pipeline_file(path, self.config.limits)
        return self._import(pipeline, path.resolve().parent, actor)

    def import_pipeline_text(
        self, text: str, filename: str = "<chat>", *, actor: Actor | None
    ) -> PipelineSummary:
        """YAML text from chat (the smaller import limit applies) or from a tool."""
        limits = self.config.limits
        return self._import(parse_pipeline(text, filename, limits, limits.import_bytes), None, actor)

    def _import(self, pipeline: Pipeline, source_dir: Path | None, actor: Actor | None) -> PipelineSummary:
        return self._audited(
            "import",
            pipeline.id,
            actor,
            lambda tx: pipelines.import_(tx, self.ws, self.roles, pipeline, source_dir, actor),
        )

    def delete_pipeline(self, slug: str, actor: Actor | None, cancel_runs: bool = False) -> Outcome:
        return self._audited(
            "delete", slug, actor, lambda tx: pipelines.delete(tx, self.roles, slug, actor, cancel_runs)
        )

    def pipelines(self) -> list[PipelineSummary]:
        with self.store.read() as s:
            return [pipelines.summary(r, self.definitions.get(s, r.id)) for r in pipelines.live_rows(s)]

    def pipeline(self, slug: str, version: int | None = None) -> Pipeline:
        """The newest version of a pipeline in the list, or (``version``) any version, deleted too."""
        with self.store.read() as s:
            if version is None:
                return self.definitions.get(s, pipelines.live_row(s, slug).id)
            row = s.scalar(
                select(PipelineRow).where(PipelineRow.slug == slug, PipelineRow.version == version)
            )
            if row is None:
                raise NotFound(f"There is no version {version} of pipeline '{slug}'.")
            return self.definitions.get(s, row.id)

    def principals(self) -> set[str]:
        """Every principal that admins and the pipelines name (which group lookups matter)."""
        with self.store.read() as s:
            defs = [self.definitions.get(s, r.id) for r in pipelines.live_rows(s)]
        return roles.all_principals(self.roles, defs)

    def export_pipeline(self, slug: str, version: int | None = None) -> str:
        data = self.pipeline(slug, version).model_dump(by_alias=True, exclude_defaults=True, mode="json")
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)

    # -- runs --------------------------------------------------------------------------------

    def start_run(
        self,
        slug: str,
        actor: Actor,
        where: Conversation,
        extend: int | None = None,
        finish_hook: str | None = None,
    ) -> RunInfo:
        """``finish_hook``: an adapter's note of who waits for the run's end (RunInfo carries it)."""
        return self._audited(
            "start_run",
            slug,
            actor,
            lambda tx: tx.run_info(
                runs.start(tx, self.ws, slug, actor, where, extend, finish_hook=finish_hook)
            ),
        )

    def pause(self, run: str, actor: Actor) -> Outcome:
        return self._write(lambda tx: runs.pause(tx, run, actor), ("pause", None, run, actor))

    def resume(self, run: str, actor: Actor) -> Outcome:
        return self._write(lambda tx: runs.resume(tx, self.ws, run, actor), ("resume", None, run, actor))

    def cancel(self, run: str, actor: Actor) -> Outcome:
        return self._write(lambda tx: runs.cancel(tx, run, actor), ("cancel", None, run, actor))

    # -- rollbacks (engine.rollbacks: propose, then confirm in plan / move / commit steps) ----

    def propose_rollback(self, target: str, checkpoint_id: str | None, actor: Actor) -> Proposal:
        """What a rollback would archive, with Confirm / Keep buttons; nothing moves yet."""
        return self._write(
            lambda tx: rollbacks.propose(tx, self.ws, target, checkpoint_id, actor),
            ("rollback", None, target, actor),
        )

    def confirm_rollback(self, rollback_id: int, actor: Actor) -> Outcome:
        name = self._read(lambda tx: rollbacks.run_name(tx, rollback_id))
        audit = ("confirm_rollback", None, name, actor)
        plan = self._write(lambda tx: rollbacks.prepare(tx, self.ws, rollback_id, actor), audit)
        if plan is None:
            raise Refused(f"{name} changed since rollback {rollback_id} was proposed: propose it again.")
        return self._carry_out(rollback_id, plan, lambda tx: rollbacks.apply(tx, self.ws, rollback_id, actor))

    def keep_rollback(self, rollback_id: int, actor: Actor) -> Outcome:
        name = self._read(lambda tx: rollbacks.run_name(tx, rollback_id))
        audit = ("keep_rollback", None, name, actor)
        return self._write(lambda tx: rollbacks.keep(tx, rollback_id, actor), audit)

    def rollback(self, target: str, checkpoint_id: str | None, actor: Actor) -> Outcome:
        """Propose and confirm at once (the CLI and tests; chat always asks first)."""
        return self.confirm_rollback(self.propose_rollback(target, checkpoint_id, actor).rollback_id, actor)

    def restore(self, rollback_id: int, actor: Actor) -> Outcome:
        name = self._read(lambda tx: rollbacks.run_name(tx, rollback_id))
        restore_id, plan = self._write(
            lambda tx: rollbacks.restore(tx, self.ws, rollback_id, actor), ("restore", None, name, actor)
        )
        return self._carry_out(
            restore_id, plan, lambda tx: rollbacks.finish_restore(tx, self.ws, restore_id, actor)
        )

    def _carry_out(self, rollback_id: int, plan: Plan, commit: Callable[[Tx], Outcome]) -> Outcome:
        """Move the files of a committed plan, then commit; on any error put them back."""
        try:
            archive_moves.move(self.ws, plan)
            return self._write(commit)
        except BaseException:
            archive_moves.undo(self.ws, plan)
            self._write(lambda tx: rollbacks.reset(tx, rollback_id))
            raise

    def recover_rollbacks(self, grace_seconds: float = 60) -> int:
        """Undo the moves of rollbacks whose process died between moving and committing."""
        found = self._read(lambda tx: rollbacks.recover(tx, timedelta(seconds=grace_seconds)))
        for rollback_id, plan in found:
            log.warning("rollback %s was interrupted while moving files: putting them back", rollback_id)
            archive_moves.undo(self.ws, plan)
            self._write(lambda tx, rid=rollback_id: rollbacks.reset(tx, rid))  # type: ignore[misc]
        return len(found)

    def recover_artifacts(self) -> int:
        """At start: finish the file swaps of edits committed by a process that died before them."""
        repaired = self._write(lambda tx: artifact_revisions.recover(tx, self.ws))
        for path in repaired:
            log.warning("%s did not hold the content its last edit committed: restored", path)
        return len(repaired)

    def rollbacks(self, target: str) -> list[RollbackInfo]:
        return self._read(lambda tx: archives.rollbacks(tx, target))

    def archive_folders(self) -> list[ArchiveFolder]:
        return self._read(lambda tx: archives.folders(tx, self.ws))

    def purge_archives(self, older_than: timedelta, act: bool) -> list[ArchiveFolder]:
        return self._write(lambda tx: archives.purge(tx, self.ws, older_than, act))

    def history(self, run: str, page: int = 1) -> HistoryPage:
        return self._read(lambda tx: history.page(tx, run, page))

    def history_of(self, run_id: int, page: int) -> HistoryPage:
        return self._read(lambda tx: history.page_of_run(tx, run_id, page))

    def start_scheduled(self) -> list[RunInfo]:
        """Start the runs whose pipeline schedule is due (serve calls it every half minute)."""
        return self._write(lambda tx: schedules.start_due(tx, self.ws))

    # -- human commands on an execution -------------------------------------------------------

    def approve_start(
        self, execution_id: int, actor: Actor, seen: Seen | None = None, comment: str | None = None
    ) -> Outcome:
        """``seen``: what the clicked card showed; refused when the execution no longer matches."""
        return self._write(
            lambda tx: human.approve_start(tx, self.ws, execution_id, actor, seen, comment=comment),
            ("approve_start", execution_id, None, actor),
        )

    def approve_complete(
        self, execution_id: int, actor: Actor, seen: Seen | None = None, comment: str | None = None
    ) -> Outcome:
        return self._write(
            lambda tx: human.approve_complete(tx, self.ws, execution_id, actor, seen, comment=comment),
            ("approve_complete", execution_id, None, actor),
        )

    def approve(
        self, execution_id: int, actor: Actor, comment: str | None = None, seen: Seen | None = None
    ) -> Outcome:
        """Approve whichever approval waits (to start or to complete), with an optional comment."""

        def do(tx: Tx) -> Outcome:
            ex, _, _ = human.load(tx, execution_id)
            stage = human.STAGES.get(ex.status)  # type: ignore[call-overload]
            command = human.approve_start if stage == "start" else human.approve_complete
            return command(tx, self.ws, execution_id, actor, seen, comment=comment)

        return self._write(do, ("approve_complete", execution_id, None, actor))

    def reject(self, execution_id: int, actor: Actor, reason: str, seen: Seen | None = None) -> Outcome:
        outcome = self._write(
            lambda tx: human.reject(tx, self.ws, execution_id, actor, reason, seen),
            ("reject", execution_id, None, actor),
        )
        return self._roll_back_rejected(outcome, actor)

    def _roll_back_rejected(self, outcome: Outcome, actor: Actor) -> Outcome:
        """`on_reject: rollback:<checkpoint>`: the rejection committed (the run failed); roll it back.

        If this fails (or the process dies first) the run stays failed and says why: a person can
        still roll it back by hand."""
        if not (outcome.rollback_to and outcome.run):
            return outcome
        try:
            done = self.rollback(outcome.run, outcome.rollback_to, actor)
        except PipebotError as exc:
            log.warning("rollback after the rejection in %s failed: %s", outcome.run, exc)
            return Outcome(f"{outcome.message} The rollback to {outcome.rollback_to} failed: {exc}")
        return Outcome(f"{outcome.message} {done.message}")

    def edit_spec(self, execution_id: int, actor: Actor, seen: Seen | None = None) -> EditSpec:
        """What "Edit and approve" opens: the editable artifacts' text, once ``actor`` may edit and
        approve this card now (refused as the command itself would be)."""

        def spec(tx: Tx) -> EditSpec:
            human.check(tx, execution_id, actor, "edit_and_approve", seen)
            ex, run, cp = human.load(tx, execution_id)
            return edits.spec(tx, self.ws, run, cp, ex)

        return self._read(spec)

    def edit_and_approve(
        self,
        execution_id: int,
        actor: Actor,
        texts: dict[str, str],
        seen: Seen | None = None,
        comment: str | None = None,
    ) -> Outcome:
        """Store the edited texts (output name -> text) as new artifact revisions and approve."""
        return self._write(
            lambda tx: human.edit_and_approve(
                tx, self.ws, execution_id, actor, texts, seen, comment=comment, limits=self.config.limits
            ),
            ("edit_and_approve", execution_id, None, actor),
        )

    def show_changes(self, execution_id: int, actor: Actor, seen: Seen | None = None) -> Outcome:
        """Post the diff of the execution's revision to its thread, once (engine.changes)."""
        return self._write(
            lambda tx: changes.show(tx, self.ws, execution_id, actor, seen),
            ("show_changes", execution_id, None, actor),
        )

    def reassign(self, execution_id: int, actor: Actor, to: Actor) -> Outcome:
        return self._write(
            lambda tx: human.reassign(tx, execution_id, actor, to), ("reassign", execution_id, None, actor)
        )

    # -- timers (deadlines and reminders) --------------------------------------------------------

    def fire_timers(self, limit: int = FIRE_BATCH) -> int:
        """Fire the deadlines and reminders that are due; return how many were claimed."""
        then: list[Outcome] = []
        # A burst of deadlines must not wait for the file work of the ones before it (removing a
        # work folder takes milliseconds on some disks): the outbox is woken at each commit.
        try:
            fired = self._write(lambda tx: timers.fire_due(tx, self.ws, limit, then), files_later=True)
        except Exception:  # one of the batch is moot or broken: again, each timer on its own
            then.clear()
            fired = self._write(
                lambda tx: timers.fire_due(tx, self.ws, limit, then, isolate=True), files_later=True
            )
        for outcome in then:
            self._roll_back_rejected(outcome, DEADLINE)
        return fired

    def next_timer_due(self) -> datetime | None:
        return self._read(timers.next_due)

    def request_revision(
        self, execution_id: int, actor: Actor, feedback: str, seen: Seen | None = None
    ) -> Outcome:
        return self._write(
            lambda tx: human.request_revision(tx, self.ws, execution_id, actor, feedback, seen),
            ("request_revision", execution_id, None, actor),
        )

    def submit_form(
        self, execution_id: int, actor: Actor, values: dict[str, Any], seen: Seen | None = None
    ) -> Outcome:
        return self._write(
            lambda tx: human.submit_form(
                tx,
                self.ws,
                execution_id,
                actor,
                values,
                self.config.max_file_bytes,
                self.config.limits,
                seen,
            ),
            ("submit_form", execution_id, None, actor),
        )

    # -- automated work (engine.worker calls these) --------------------------------------------

    def claim_work(self, worker: str, stale_after: float) -> WorkItem | None:
        return self._write(lambda tx: work.claim(tx, self.ws, worker, stale_after))

    def heartbeat(self, execution_id: int, worker: str) -> bool:
        return self._write(lambda tx: work.heartbeat(tx, execution_id, worker))

    def work_progress(self, execution_id: int, text: str) -> None:
        self._write(lambda tx: work.progress(tx, execution_id, text))

    def turn_target(self, execution_id: int) -> TurnTarget:
        return self._read(lambda tx: work.turn_target(tx, execution_id))

    def work_turn(self, execution_id: int, card: TurnCard, live: MessageRef | None) -> None:
        self._write(lambda tx: work.turn(tx, execution_id, card, live))

    def work_succeeded(
        self,
        execution_id: int,
        worker: str,
        files: dict[str, tuple[str, Path]],
        tokens: tuple[int, int],
        log_text: str,
    ) -> bool:
        return self._write(
            lambda tx: work.succeed(tx, self.ws, execution_id, worker, files, tokens, log_text)
        )

    def work_proposed(
        self, execution_id: int, worker: str, team: list[AgentSpec], tokens: tuple[int, int]
    ) -> bool:
        return self._write(lambda tx: work.propose(tx, execution_id, worker, team, tokens))

    def work_retry(
        self,
        execution_id: int,
        worker: str,
        error: str,
        delay: float,
        tokens: tuple[int, int],
        log_text: str,
        validation_error: str | None,
    ) -> bool:
        return self._write(
            lambda tx: work.retry_later(
                tx, execution_id, worker, error, delay, tokens, log_text, validation_error
            )
        )

    def work_failed(
        self, execution_id: int, worker: str, error: str, tokens: tuple[int, int], log_text: str
    ) -> bool:
        return self._write(
            lambda tx: work.give_up(tx, self.ws, execution_id, worker, error, tokens, log_text)
        )

    def retry(self, execution_id: int, actor: Actor) -> Outcome:
        return self._write(
            lambda tx: work.retry(tx, execution_id, actor), ("retry", execution_id, None, actor)
        )

    # -- queries -----------------------------------------------------------------------------

    def _read(self, fn: Callable[[Tx], T]) -> T:
        with self.store.read() as session:
            return fn(Tx(session, self.clock, self.definitions, roles=self.roles))

    def run(self, name: str) -> RunView:
        return self._read(lambda tx: queries.run_view(tx, name))

    def runs(
        self, slug: str | None = None, active_only: bool = False, limit: int = 20, channel: str | None = None
    ) -> list[RunInfo]:
        def q(tx: Tx) -> list[RunInfo]:
            stmt = select(RunRow).order_by(RunRow.id.desc()).limit(limit)
            if slug:
                stmt = stmt.where(RunRow.pipeline_slug == slug)
            if channel:
                stmt = stmt.where(RunRow.channel == channel)
            if active_only:
                stmt = stmt.where(RunRow.status.in_([R.IN_PROGRESS, R.PAUSED]))
            return [tx.run_info(r) for r in tx.session.scalars(stmt)]

        return self._read(q)

    def check_decision(self, execution_id: int, actor: Actor, action: str, seen: Seen | None = None) -> None:
        """Raise what approve_start / approve_complete / request_revision would refuse with now.

        Changes and audits nothing (a refused command is audited when it is actually given).
        """
        self._read(lambda tx: human.check(tx, execution_id, actor, action, seen))

    def save_form_draft(self, execution_id: int, actor: Actor, values: dict[str, Any]) -> None:
        """Keep what ``actor`` entered in an open form without submitting it (see engine.drafts)."""
        self._write(lambda tx: drafts.save(tx, self.ws, execution_id, actor, values))

    def form(self, execution_id: int, actor: Actor | None = None) -> FormSpec:
        """The open form; ``values`` prefill it, overlaid with ``actor``'s draft when given."""

        return self._read(lambda tx: queries.form_spec(tx, self.ws, execution_id, actor))

    def pending(self, actor: Actor, limit: int = 25) -> list[PendingItem]:
        """What waits for this person: approvals they may give and forms to fill."""

        return self._read(lambda tx: queries.pending(tx, actor, limit))

    def artifacts(
        self,
        run_name: str,
        execution_id: int | None = None,
        include_extended: bool = True,
        include_archived: bool = False,
    ) -> list[ArtifactInfo]:
        """A run's artifacts (and those of the version it extends), newest checkpoint last;
        ``include_archived`` adds those a rollback archived (a rolled-back run stays readable)."""

        def q(tx: Tx) -> list[ArtifactInfo]:
            run = runs.find_run(tx.session, run_name)
            run_ids = [run.id]
            if include_extended and run.extends_run_id:
                run_ids.insert(0, run.extends_run_id)
            rows = artifact_rows.of_runs(tx, run_ids, execution_id, include_archived)
            return [artifact_rows.info(self.ws, r) for r in rows]

        return self._read(q)

    def artifact_path(self, artifact_id: int) -> Path:
        with self.store.read() as s:
            row = s.get(ArtifactRow, artifact_id)
            if row is None:
                raise NotFound(f"There is no artifact {artifact_id}.")
            path = self.ws.absolute(row.path)
            if not path.is_file():  # e.g. `pipebot archives purge` removed its archive
                raise NotFound(messages.ARTIFACT_GONE.format(id=artifact_id, path=row.path))
            return path


__all__ = [
    "EditSpec",
    "EditableFile",
    "Engine",
    "EngineConfig",
    "FormSpec",
    "PendingItem",
    "PipelineSummary",
    "RunView",
    "Seen",
]
