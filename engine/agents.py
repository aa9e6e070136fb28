"""Agent checkpoints: pick the agents (single, predefined, meta), run the discussion, return outputs.

No database here: the worker builds ``AgentInputs``, persists the transcript through
``on_turn`` and writes ``AgentResult.outputs`` as files ``{name}.{format}``. In meta mode the
worker may call ``propose_team`` first (to show and keep the team across retries) and pass
it as ``team``; without one, ``run_agents`` proposes it itself (turn round 0, agent ``meta``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pydantic import ValidationError

from engine import discussions
from engine.agent_prompts import DEFAULT_OUTPUT, AgentInputs, ContextArtifact, render_context, unfence
from engine.definitions import AgentConfig, AgentSpec, OutputSpec
from engine.discussions import OnTurn, OpenTurn, Session, Turn, Usage
from engine.errors import OutputInvalid
from engine.llm import LLM

__all__ = ["AgentInputs", "AgentResult", "ContextArtifact", "Turn", "Usage", "propose_team", "run_agents"]

DEFAULT_AGENT = AgentSpec(name="assistant", role="a careful, capable assistant")
META_AGENT = AgentSpec(name="meta", role="designs the team of agents for a task")
RESERVED = {"meta", discussions.SYNTHESIZER.name, discussions.JUDGE.name}
DISCUSSIONS = {
    "sequential": (
        discussions.sequential,
        "agents work one after another, each improving the previous result",
    ),
    "council": (discussions.council, "agents answer independently, then a synthesizer merges the answers"),
    "parallel": (discussions.parallel, "agents answer independently and the answers are kept side by side"),
    "debate": (discussions.debate, "agents argue over several rounds, then a judge concludes"),
}


@dataclass(frozen=True)
class AgentResult:
    outputs: dict[str, str]  # output name -> content
    transcript: list[Turn]
    usage: Usage


async def run_agents(
    config: AgentConfig,
    outputs: list[OutputSpec],
    ctx: AgentInputs,
    llm: LLM,
    *,
    team: list[AgentSpec] | None = None,
    on_turn: OnTurn | None = None,
    budget_tokens: int | None = None,
    open_turn: OpenTurn | None = None,
) -> AgentResult:
    """Run one attempt. Raises ProviderUnavailable / OutputInvalid (retryable), BudgetExceeded.

    ``open_turn`` is asked before every model call where that call's text should go as it is
    generated (live turns); ``on_turn`` sees each finished turn."""
    outputs = outputs or [DEFAULT_OUTPUT]
    session = Session(config, ctx, llm, budget_tokens, on_turn, open_turn)
    brief = render_context(ctx)
    if config.mode == "single":
        produced = await discussions.solo(session, (config.agents or [DEFAULT_AGENT])[0], brief, outputs)
    else:
        if config.mode == "predefined":
            agents = list(config.agents)
        else:
            agents = team if team is not None else await _propose(session, brief)
        if not agents:
            raise ValueError("a discussion needs at least one agent")
        run, _ = DISCUSSIONS[config.discussion]
        produced = await run(session, agents, brief, outputs)
    return AgentResult(produced, session.transcript, session.usage)


async def propose_team(
    config: AgentConfig,
    ctx: AgentInputs,
    llm: LLM,
    *,
    on_turn: OnTurn | None = None,
    budget_tokens: int | None = None,
    open_turn: OpenTurn | None = None,
) -> list[AgentSpec]:
    """Meta mode: one call in which the meta agent designs the team (a JSON answer, validated)."""
    session = Session(config, ctx, llm, budget_tokens, on_turn, open_turn)
    return await _propose(session, render_context(ctx))


async def _propose(session: Session, brief: str) -> list[AgentSpec]:
    config = session.config
    _, how = DISCUSSIONS[config.discussion]
    ask = (
        f"Design a team of 1 to {config.max_agents} AI agents for this task. They will work as a "
        f"{config.discussion} discussion: {how}. Answer with one JSON object and nothing else:\n"
        '{"agents": [{"name": "a-slug", "role": "one line", "system_prompt": "how this agent works"}]}\n'
        "Names are unique lowercase slugs (letters, digits, - and _)."
    )
    text = await session.ask(META_AGENT, 0, f"{brief}\n\n## Your turn\n\n{ask}")
    return parse_team(text, config.max_agents)


def parse_team(text: str, max_agents: int) -> list[AgentSpec]:
    """The meta agent's JSON answer as agent specs; OutputInvalid (retryable) when it is not usable."""
    try:
        data = json.loads(unfence(text))
    except json.JSONDecodeError as exc:
        raise OutputInvalid(f"the proposed team is not valid JSON: {exc}") from exc
    items = data.get("agents") if isinstance(data, dict) else data
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise OutputInvalid('the proposed team must be {"agents": [...]} with at least one agent')
    if len(items) > max_agents:
        raise OutputInvalid(f"the proposed team has {len(items)} agents; at most {max_agents} are allowed")
    team = []
    for i, item in enumerate(items):
        # only these fields: the model and its settings stay the pipeline author's choice
        fields = {k: item[k] for k in ("name", "role", "system_prompt") if k in item}
        try:
            team.append(AgentSpec.model_validate(fields))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise OutputInvalid(f"proposed agent {i + 1} is not valid: {problems}") from exc
    names = [a.name for a in team]
    if len(set(names)) != len(names) or RESERVED & set(names):
        raise OutputInvalid(f"agent names must be unique and not {', '.join(sorted(RESERVED))}: {names}")
    return team
