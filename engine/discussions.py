"""How several agents work together, and the budgeted, recorded model calls they make.

Every call is two messages: the agent's system prompt, and one user message made of the task
brief (``render_context``), the discussion so far (fenced, as data) and "your turn" with,
for calls whose answer is final, the output format. With n agents and r rounds:

- single mode (``solo``): one call; the discussion and rounds do not apply.
- sequential: r x n calls, one at a time in declared order; each agent sees every earlier
  answer and builds on it; every answer has the output format; the last one is final.
- council: n independent calls (concurrent; no agent sees another), then one ``synthesizer``
  call (round 2) that sees all answers and writes the final one. n + 1 calls.
- parallel: n independent concurrent calls, nothing merged: with as many outputs as agents,
  agent i writes output i; otherwise every agent writes every output and each output holds
  the answers side by side, one section (json: one key) per agent. n calls.
- debate: r rounds; in each, agents speak one at a time in declared order, seeing the whole
  debate so far; then one ``judge`` call (round r + 1) sees the debate and writes the final
  answer. r x n + 1 calls.

Concurrent calls are checked against the budget together, and their turns are recorded (and
``on_turn`` awaited) in declared order once all have answered, so transcripts are deterministic.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from engine.agent_prompts import AgentInputs, fenced, output_request, parse_outputs, system_prompt
from engine.definitions import AgentConfig, AgentSpec, OutputSpec
from engine.errors import BudgetExceeded
from engine.llm import LLM, Message, OnDelta

SYNTHESIZER = AgentSpec(name="synthesizer", role="merges the council's answers into one")
JUDGE = AgentSpec(name="judge", role="weighs the debate and writes the conclusion")


@dataclass(frozen=True)
class Turn:
    agent: str
    role: str
    round: int
    text: str
    tokens_in: int
    tokens_out: int


@dataclass
class Usage:
    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0

    @property
    def total(self) -> int:
        return self.tokens_in + self.tokens_out


OnTurn = Callable[[Turn], Awaitable[None]]
# Called before each model call: where its text goes as it is generated (None: nowhere).
OpenTurn = Callable[[AgentSpec, int], Awaitable[OnDelta | None]]


@dataclass
class Session:
    """The model calls of one checkpoint attempt: per-agent settings, budget, transcript."""

    config: AgentConfig
    ctx: AgentInputs
    llm: LLM
    budget_tokens: int | None = None
    on_turn: OnTurn | None = None
    open_turn: OpenTurn | None = None
    transcript: list[Turn] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)

    async def ask(self, agent: AgentSpec, round_: int, prompt: str) -> str:
        return (await self.ask_all([(agent, round_, prompt)]))[0]

    async def ask_all(self, calls: list[tuple[AgentSpec, int, str]]) -> list[str]:
        """Independent calls run concurrently; turns recorded in the given order."""
        self._check_budget(calls)
        results = await asyncio.gather(*(self._call(a, r, p) for a, r, p in calls), return_exceptions=True)
        failure: BaseException | None = None
        texts = []
        for (agent, round_, _), result in zip(calls, results, strict=True):
            if isinstance(result, BaseException):
                failure = failure or result
                continue
            turn = Turn(agent.name, agent.role, round_, *result)
            self.transcript.append(turn)
            self.usage.calls += 1
            self.usage.tokens_in += turn.tokens_in
            self.usage.tokens_out += turn.tokens_out
            texts.append(turn.text)
            if self.on_turn is not None:
                await self.on_turn(turn)
        if failure is not None:
            raise failure
        return texts

    async def _call(self, agent: AgentSpec, round_: int, prompt: str) -> tuple[str, int, int]:
        on_delta = await self.open_turn(agent, round_) if self.open_turn is not None else None
        messages: list[Message] = [
            {"role": "system", "content": system_prompt(agent, self.ctx)},
            {"role": "user", "content": prompt},
        ]
        c = await self.llm.complete(
            messages,
            model=agent.model or self.config.model,
            temperature=agent.temperature if agent.temperature is not None else self.config.temperature,
            max_tokens=self._max_tokens(agent),
            on_delta=on_delta,
        )
        return c.text, c.tokens_in, c.tokens_out

    def _max_tokens(self, agent: AgentSpec) -> int:
        return agent.max_tokens or self.config.max_tokens or self.llm.max_tokens

    def _check_budget(self, calls: list[tuple[AgentSpec, int, str]]) -> None:
        if self.budget_tokens is None:
            return
        # ~4 characters per token for the prompt, and the answer may use all of max_tokens
        need = sum(
            (len(system_prompt(a, self.ctx)) + len(p)) // 4 + 16 + self._max_tokens(a) for a, _, p in calls
        )
        used = self.usage.total
        if used + need > self.budget_tokens:
            raise BudgetExceeded(
                f"token budget reached: {used} of {self.budget_tokens} tokens used so far, and the next "
                f"{'call' if len(calls) == 1 else f'{len(calls)} calls'} may need up to {need} more",
                used=used,
                budget=self.budget_tokens,
            )


async def solo(s: Session, agent: AgentSpec, brief: str, outputs: list[OutputSpec]) -> dict[str, str]:
    """Single mode: exactly one call, whatever the discussion and rounds say."""
    return parse_outputs(
        await s.ask(agent, 1, _join(brief, "## Your turn", output_request(outputs))), outputs
    )


async def sequential(
    s: Session, agents: list[AgentSpec], brief: str, outputs: list[OutputSpec]
) -> dict[str, str]:
    answers: list[tuple[AgentSpec, int, str]] = []
    for round_ in range(1, s.config.rounds + 1):
        for agent in agents:
            so_far = _section("Work so far (earlier agents' answers, in order)", answers)
            turn = "Build on the work so far: keep what is good, fix what is not, and give the full result."
            prompt = _join(brief, so_far, "## Your turn", turn if answers else "", output_request(outputs))
            answers.append((agent, round_, await s.ask(agent, round_, prompt)))
    return parse_outputs(answers[-1][2], outputs)


async def council(
    s: Session, agents: list[AgentSpec], brief: str, outputs: list[OutputSpec]
) -> dict[str, str]:
    own = "Give your own complete answer. Others answer independently; a synthesizer will merge the answers."
    prompt = _join(brief, "## Your turn", own, output_request(outputs))
    texts = await s.ask_all([(a, 1, prompt) for a in agents])
    answers = [(a, 1, t) for a, t in zip(agents, texts, strict=True)]
    merge = (
        "Merge the council's answers into one final answer: keep the strongest points, resolve disagreements."
    )
    final = _join(
        brief, _section("The council's answers", answers), "## Your turn", merge, output_request(outputs)
    )
    return parse_outputs(await s.ask(SYNTHESIZER, 2, final), outputs)


async def parallel(
    s: Session, agents: list[AgentSpec], brief: str, outputs: list[OutputSpec]
) -> dict[str, str]:
    one_each = len(agents) == len(outputs) > 1
    wanted = [[o] for o in outputs] if one_each else [outputs] * len(agents)
    prompts = [_join(brief, "## Your turn", output_request(w)) for w in wanted]
    texts = await s.ask_all([(a, 1, p) for a, p in zip(agents, prompts, strict=True)])
    parsed = [parse_outputs(t, w) for t, w in zip(texts, wanted, strict=True)]
    if one_each:
        return {k: v for part in parsed for k, v in part.items()}
    return {
        o.name: _side_by_side(o, [(a.name, p[o.name]) for a, p in zip(agents, parsed, strict=True)])
        for o in outputs
    }


async def debate(
    s: Session, agents: list[AgentSpec], brief: str, outputs: list[OutputSpec]
) -> dict[str, str]:
    rounds = s.config.rounds
    said: list[tuple[AgentSpec, int, str]] = []
    for round_ in range(1, rounds + 1):
        for agent in agents:
            turn = (
                "Answer the others: challenge weak points, defend or revise your position. Be concise."
                if said
                else "Open the debate: propose an answer and argue for it. Be concise."
            )
            prompt = _join(
                brief, _section("The debate so far", said), f"## Your turn (round {round_} of {rounds})", turn
            )
            said.append((agent, round_, await s.ask(agent, round_, prompt)))
    judge = "You are the judge: weigh the arguments and write the final answer the debate supports best."
    final = _join(brief, _section("The debate", said), "## Your turn", judge, output_request(outputs))
    return parse_outputs(await s.ask(JUDGE, rounds + 1, final), outputs)


def _section(title: str, answers: list[tuple[AgentSpec, int, str]]) -> str:
    if not answers:
        return ""
    body = [
        f"### {a.name}{f' ({a.role})' if a.role else ''}, round {r}\n{fenced(text)}" for a, r, text in answers
    ]
    return "\n\n".join([f"## {title}", *body])


def _side_by_side(o: OutputSpec, parts: list[tuple[str, str]]) -> str:
    if o.format == "json":
        return json.dumps({name: json.loads(text) for name, text in parts}, indent=2, ensure_ascii=False)
    heading = {"md": "## {}", "txt": "== {} ==", "html": "<h2>{}</h2>"}.get(o.format, "# --- {} ---")
    return "\n\n".join(f"{heading.format(name)}\n\n{text.strip()}" for name, text in parts) + "\n"


def _join(*parts: str) -> str:
    return "\n\n".join(p for p in parts if p)
