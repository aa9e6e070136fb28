"""The background worker: claims running agent and script executions and runs one attempt each.

It keeps a heartbeat while it works, so a worker that dies leaves a claim that goes stale and
is taken over (attempt + 1). Results go back through the engine's work commands; the worker
keeps nothing in memory that a restart would need.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

from engine import logctx, metrics
from engine.agents import AgentInputs, Turn, propose_team, run_agents
from engine.api import Engine
from engine.errors import BudgetExceeded, OutputInvalid, PipebotError, ProviderUnavailable, Retryable
from engine.llm import LLM
from engine.sandbox import SandboxConfig
from engine.scripts import run_script
from engine.streams import LiveTurns, TurnSink
from engine.validation import validate_outputs
from engine.work import WorkItem

log = logging.getLogger("pipebot.worker")


@dataclass
class WorkerConfig:
    heartbeat_seconds: float = 5.0
    stale_after_seconds: float = 30.0
    idle_seconds: float = 1.0
    secret_env: Collection[str] = ()
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)  # bwrap unless the operator says "none"


class Worker:
    def __init__(
        self,
        engine: Engine,
        llm: Callable[[], LLM] | None,
        config: WorkerConfig | None = None,
        name: str | None = None,
    ) -> None:
        self.engine, self._llm_factory = engine, llm
        self.config = config or WorkerConfig()
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self._llm: LLM | None = None
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        # Live agent turns, per platform (registered by the adapters running in this process).
        self.sinks: dict[str, TurnSink] = engine.turn_sinks

    def wake(self) -> None:
        """Thread-safe: the engine calls it after a commit (new work may be claimable)."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        while not stop.is_set():
            try:
                if await self.run_once():
                    continue
            except Exception:  # one bad attempt must not stop the worker
                log.exception("worker step failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.idle_seconds)
        if self._llm is not None:
            await self._llm.close()

    async def drain(self, limit: int = 100) -> int:
        """Run what is claimable now, one after another (the console and tests)."""
        done = 0
        while done < limit and await self.run_once():
            done += 1
        return done

    async def run_once(self) -> bool:
        item = await asyncio.to_thread(self.engine.claim_work, self.name, self.config.stale_after_seconds)
        if item is None:
            return False
        metrics.WORK.labels("claimed").inc()
        beat = asyncio.create_task(self._heartbeat(item.execution_id))
        try:
            with logctx.bound(run=item.run_name, execution=item.execution_id):
                await self._attempt(item)
        finally:
            beat.cancel()
        return True

    async def _heartbeat(self, execution_id: int) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_seconds)
            await asyncio.to_thread(self.engine.heartbeat, execution_id, self.name)

    def llm(self) -> LLM:
        if self._llm is None:
            if self._llm_factory is None:
                raise PipebotError(
                    "agent checkpoints need OPENAI_API_KEY (and OPENAI_BASE_URL for other providers)"
                )
            self._llm = self._llm_factory()
        return self._llm

    async def _attempt(self, item: WorkItem) -> None:
        cp, tokens = item.checkpoint, [0, 0]
        try:
            if cp.mode == "script":
                files, text = await self._script(item)
            elif item.phase == "propose":
                await self._propose(item, tokens)
                return
            else:
                files, text = await self._agents(item, tokens)
            problems = validate_outputs(cp.outputs, {p.name: p for _, p in files.values()}, cp.validation)
            if problems:
                raise OutputInvalid("; ".join(problems))
        except Retryable as exc:
            await self._failed(item, exc, tokens, retryable=True)
            return
        except (PipebotError, OSError) as exc:
            await self._failed(item, exc, tokens, retryable=isinstance(exc, OSError))
            return
        await asyncio.to_thread(
            self.engine.work_succeeded, item.execution_id, self.name, files, (tokens[0], tokens[1]), text
        )
        metrics.WORK.labels("finished").inc()

    async def _failed(self, item: WorkItem, exc: Exception, tokens: list[int], retryable: bool) -> None:
        cp = item.checkpoint
        error = str(exc) or type(exc).__name__
        logs = getattr(exc, "log", "")
        if retryable and not isinstance(exc, BudgetExceeded) and item.attempt < cp.retry.max_attempts:
            delay = cp.retry.backoff_seconds * 2 ** (item.attempt - 1)
            if isinstance(exc, ProviderUnavailable) and exc.retry_after:
                delay = max(delay, exc.retry_after)
            validation = error if isinstance(exc, OutputInvalid) else None
            metrics.WORK.labels("retried").inc()
            await asyncio.to_thread(
                self.engine.work_retry,
                item.execution_id,
                self.name,
                error,
                delay,
                (tokens[0], tokens[1]),
                logs,
                validation,
            )
        else:
            metrics.WORK.labels("failed").inc()
            await asyncio.to_thread(
                self.engine.work_failed, item.execution_id, self.name, error, (tokens[0], tokens[1]), logs
            )

    def _inputs(self, item: WorkItem) -> AgentInputs:
        cp = item.checkpoint
        return AgentInputs(
            pipeline_name=item.pipeline_title,
            checkpoint_name=cp.title,
            instructions=cp.instructions,
            form_inputs={**item.earlier_forms, **({cp.id: item.form} if item.form else {})},
            artifacts=item.context,
            previous_versions=item.previous_versions,
            feedback=item.feedback,
            validation_error=item.validation_error,
        )

    async def _propose(self, item: WorkItem, tokens: list[int]) -> None:
        assert item.checkpoint.agent is not None
        turns: list[Turn] = []
        live = LiveTurns(self.engine, self.sinks, item)

        async def on_turn(turn: Turn) -> None:
            turns.append(turn)
            await live.finished(turn)

        try:
            team = await propose_team(
                item.checkpoint.agent,
                self._inputs(item),
                self.llm(),
                on_turn=on_turn,
                budget_tokens=item.budget_left,
                open_turn=live.open,
            )
        finally:
            await live.close()
        tokens[0] += sum(t.tokens_in for t in turns)
        tokens[1] += sum(t.tokens_out for t in turns)
        await asyncio.to_thread(
            self.engine.work_proposed, item.execution_id, self.name, team, (tokens[0], tokens[1])
        )

    async def _agents(self, item: WorkItem, tokens: list[int]) -> tuple[dict[str, tuple[str, Path]], str]:
        cp = item.checkpoint
        assert cp.agent is not None

        live = LiveTurns(self.engine, self.sinks, item)

        async def on_turn(turn: Turn) -> None:
            tokens[0] += turn.tokens_in
            tokens[1] += turn.tokens_out
            await live.finished(turn)

        try:
            result = await run_agents(
                cp.agent,
                list(cp.outputs),
                self._inputs(item),
                self.llm(),
                team=item.team,
                on_turn=on_turn,
                budget_tokens=item.budget_left,
                open_turn=live.open,
            )
        finally:
            await live.close()
        outputs = item.workdir / "outputs"
        outputs.mkdir(parents=True, exist_ok=True)
        formats = {o.name: o.format for o in cp.outputs} or {"output": "md"}
        files: dict[str, tuple[str, Path]] = {}
        for name, text in result.outputs.items():
            fmt = formats.get(name, "md")
            path = outputs / f"{name}.{fmt}"
            path.write_text(text, encoding="utf-8")
            files[name] = (fmt, path)
        transcript = "\n\n".join(
            f"## {t.agent} — round {t.round} ({t.role})\n\n{t.text}" for t in result.transcript
        )
        path = item.workdir / "transcript.md"
        path.write_text(
            f"# Transcript: {cp.title} (attempt {item.attempt})\n\n{transcript}\n", encoding="utf-8"
        )
        files["transcript"] = ("md", path)
        usage = result.usage
        summary = f"{usage.calls} calls, {usage.tokens_in} tokens in, {usage.tokens_out} tokens out"
        return files, summary

    async def _script(self, item: WorkItem) -> tuple[dict[str, tuple[str, Path]], str]:
        cp = item.checkpoint
        assert cp.script is not None
        if cp.script.path is not None and item.source_dir is None:
            raise PipebotError(
                "a script path needs a pipeline imported from a file (use code: in chat imports)"
            )
        inputs = dict(item.form)
        uploads: list[Path] = []
        for value in inputs.values():  # file inputs: give the script the stored file's full path
            if isinstance(value, dict) and "path" in value:
                value["path"] = str(self.engine.ws.absolute(value["path"]))
                uploads.append(Path(value["path"]))  # and show it (read-only) in the sandbox
        result = await run_script(
            cp.script,
            source_dir=item.source_dir or item.workdir,
            workdir=item.workdir,
            inputs=inputs,
            context_files=item.context_files,
            secret_env=self.config.secret_env,
            sandbox=self.config.sandbox,
            read_only=[f for f in uploads if f.is_file() and not f.is_relative_to(item.workdir.resolve())],
        )
        tail = (result.stdout_tail + result.stderr_tail).strip()[-1200:]
        if not result.ok:
            error = result.killed_reason or f"exit code {result.exit_code}"
            raise ScriptFailed(
                f"script failed: {error}" + (f"\n```\n{tail}\n```" if tail else ""), result.log
            )
        if tail:
            await asyncio.to_thread(
                self.engine.work_progress, item.execution_id, f"{cp.title} output (tail):\n```\n{tail}\n```"
            )
        declared = {f"{o.name}.{o.format}": o for o in cp.outputs}
        files = {
            declared[key].name if key in declared else Path(key).stem: (
                declared[key].format if key in declared else Path(key).suffix.lstrip(".") or "bin",
                path,
            )
            for key, path in result.outputs.items()
        }
        return files, result.log


class ScriptFailed(Retryable):
    def __init__(self, message: str, log: str) -> None:
        super().__init__(message)
        self.log = log
