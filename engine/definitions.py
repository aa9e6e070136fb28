"""The pipeline file: pydantic models, and loading from YAML or JSON with line numbers.

The models are the single source of truth for what a valid file is; ``pipeline_json_schema``
exports them for editors. Errors name the file, the line and the field.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.errors import DefinitionProblem, Problem

Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
InputType = Literal["text", "multiline_text", "number", "boolean", "select", "file"]
Mode = Literal["human_only", "agent", "script"]
OutputFormat = Literal["md", "txt", "json", "csv", "html", "yaml", "py"]
# platform:user, platform:@group or platform:role:id; the platform names are the adapters' own.
APPROVER_PATTERN = r"^[a-z][a-z0-9_]*:(@[\w.-]+|role:\d+|[\w.@-]+)$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputField(_Model):
    id: Slug
    label: str = Field(min_length=1, max_length=80)
    type: InputType = "text"
    required: bool = False
    description: str | None = None
    placeholder: str | None = Field(default=None, max_length=150)
    min: float | None = None
    max: float | None = None
    max_length: int | None = Field(default=None, ge=1, le=20000)
    choices: list[str] | None = None
    default: Any = None
    max_bytes: int | None = Field(default=None, ge=1, description="file inputs: size limit")


Duration = Annotated[str, Field(pattern=r"^\d+(s|m|h|d)$", description="30s, 15m, 4h, 2d")]
DeadlineOutcome = Literal["approve", "reject", "cancel", "escalate", "fail"]
Principal = Annotated[str, Field(pattern=APPROVER_PATTERN)]


class Deadlines(_Model):
    """What happens when nobody decides: the keys a pipeline-level `human:` block gives as
    defaults to every checkpoint. None means "not set here" (the pipeline's value, or the default)."""

    deadline: Duration | None = None
    on_deadline: DeadlineOutcome | None = None
    remind_every: Duration | None = None
    max_reminders: int | None = Field(default=None, ge=0, le=100)
    escalate_to: list[Principal] | None = None
    escalation_deadline: Duration | None = None
    on_escalation_deadline: DeadlineOutcome | None = None
    on_reject: str | None = Field(default=None, pattern=r"^(fail|rollback:[a-z0-9][a-z0-9_-]{0,62})$")


class HumanConfig(Deadlines):
    approval_to_start: bool = False
    approval_to_complete: bool = True
    max_revisions: int = Field(default=2, ge=0, le=100)


class OutputSpec(_Model):
    name: Slug
    format: OutputFormat = "md"
    description: str | None = None
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")
    regex: str | None = None
    min_bytes: int | None = Field(default=None, ge=0)
    max_bytes: int | None = Field(default=None, ge=1)


class AgentSpec(_Model):
    name: Slug
    role: str = ""
    system_prompt: str = ""
    model: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)


class AgentContext(_Model):
    previous_versions: bool = False
    checkpoints: list[str] = []


class AgentConfig(_Model):
    mode: Literal["single", "predefined", "meta"] = "single"
    discussion: Literal["sequential", "council", "parallel", "debate"] = "sequential"
    rounds: int = Field(default=1, ge=1, le=10)
    agents: list[AgentSpec] = []
    max_agents: int = Field(default=4, ge=1, le=10, description="meta mode: team size limit")
    model: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)
    context: AgentContext = AgentContext()


class ScriptConfig(_Model):
    path: str | None = None
    code: str | None = None
    timeout_seconds: float = Field(default=60, gt=0, le=86400)
    memory_mb: int | None = Field(default=512, ge=16)
    args: list[str] = []
    env: dict[str, str] = {}
    allow_env: list[str] = Field(default=[], description="variables passed through from the bot")
    interpreter: str | None = None


class ValidationConfig(_Model):
    require_outputs: bool = True
    regex: str | None = None
    min_bytes: int | None = Field(default=None, ge=0)
    max_bytes: int | None = Field(default=None, ge=1)


class RetryConfig(_Model):
    max_attempts: int = Field(default=1, ge=1, le=20)
    backoff_seconds: float = Field(default=2, ge=0, le=3600)


class Schedule(_Model):
    """Start a run by the clock, in a conversation the bot can post to."""

    cron: str = Field(description="crontab: minute hour day month weekday, e.g. '0 9 * * 1-5'")
    timezone: str = "UTC"
    platform: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="the adapter that posts the run")
    channel: str = Field(min_length=1)
    thread: str | None = None


class Checkpoint(_Model):
    id: Slug
    name: str = ""
    description: str = ""
    instructions: str = ""
    mode: Mode = "human_only"
    inputs: list[InputField] = []
    human: HumanConfig = HumanConfig()
    outputs: list[OutputSpec] = []
    save_form_as_artifact: bool = False
    agent: AgentConfig | None = None
    script: ScriptConfig | None = None
    validation: ValidationConfig = ValidationConfig()
    retry: RetryConfig = RetryConfig()

    @property
    def title(self) -> str:
        return self.name or self.id.replace("-", " ").replace("_", " ").capitalize()


class Pipeline(_Model):
    id: Slug
    name: str = ""
    description: str = ""
    auto_advance: bool = True
    approvers: list[Annotated[str, Field(pattern=APPROVER_PATTERN)]] = []
    prevent_self_approval: bool = False
    required_approvals: int = Field(default=1, ge=1, le=50)
    human: Deadlines = Deadlines()
    schedule: Schedule | None = None
    budget_tokens: int | None = Field(default=None, ge=1)
    checkpoints: list[Checkpoint] = Field(min_length=1)

    @property
    def title(self) -> str:
        return self.name or self.id

    def checkpoint(self, checkpoint_id: str) -> Checkpoint:
        for cp in self.checkpoints:
            if cp.id == checkpoint_id:
                return cp
        raise KeyError(checkpoint_id)


def pipeline_json_schema() -> dict[str, Any]:
    schema = Pipeline.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "pipebot pipeline"
    return schema


# -- loading -----------------------------------------------------------------------------

Loc = tuple[str | int, ...]


def load_pipeline_file(path: Path | str) -> Pipeline:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DefinitionProblem(str(path), [Problem("", f"cannot read: {exc.strerror}")]) from exc
    return parse_pipeline(text, str(path))


def parse_pipeline(text: str, filename: str = "<pipeline>") -> Pipeline:
    """Parse YAML (JSON is YAML too) and validate; every problem names its line."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise DefinitionProblem(filename, [Problem("", f"not valid YAML: {exc.problem}", line)]) from exc
    if not isinstance(data, dict):
        raise DefinitionProblem(filename, [Problem("", "the file must be a mapping with id and checkpoints")])
    try:
        pipeline = Pipeline.model_validate(data)
    except ValidationError as exc:
        problems = [_problem(err, root) for err in exc.errors()]
        raise DefinitionProblem(filename, problems) from exc
    checks = cross_check(pipeline)
    problems = [Problem(_dotted(loc), msg, _line(root, loc)) for loc, msg in checks]
    if problems:
        raise DefinitionProblem(filename, problems)
    return pipeline


def pipeline_from_json(text: str) -> Pipeline:
    """A stored snapshot (already validated when it was imported)."""
    return Pipeline.model_validate(json.loads(text))


def cross_check(p: Pipeline) -> list[tuple[Loc, str]]:
    """The rules one field cannot express alone."""
    out: list[tuple[Loc, str]] = []
    if p.schedule is not None:
        out += _check_schedule(p.schedule)
    seen: dict[str, int] = {}
    for i, cp in enumerate(p.checkpoints):
        at: Loc = ("checkpoints", i)
        if cp.id in seen:
            out.append(((*at, "id"), f"duplicate checkpoint id '{cp.id}' (also checkpoints[{seen[cp.id]}])"))
        seen.setdefault(cp.id, i)
        out += _check_inputs(cp, at)
        names = [o.name for o in cp.outputs]
        for j, name in enumerate(names):
            if names.index(name) != j:
                out.append(((*at, "outputs", j, "name"), f"duplicate output name '{name}'"))
        if cp.mode == "agent" and cp.agent is None:
            out.append(((*at, "mode"), "mode agent needs an 'agent' section"))
        if cp.mode == "script":
            if cp.script is None:
                out.append(((*at, "mode"), "mode script needs a 'script' section"))
            elif (cp.script.path is None) == (cp.script.code is None):
                out.append(((*at, "script"), "give exactly one of path or code"))
        if cp.mode != "agent" and cp.agent is not None:
            out.append(((*at, "agent"), f"an agent section needs mode agent (mode is {cp.mode})"))
        if cp.agent is not None:
            out += _check_agent(cp, at, seen, i)
        out += _check_deadlines(p, cp, at, seen, i)
        for j, o in enumerate(cp.outputs):
            if o.regex is not None and not _regex_ok(o.regex):
                out.append(((*at, "outputs", j, "regex"), f"not a valid regular expression: {o.regex}"))
    return out


def _check_deadlines(
    p: Pipeline, cp: Checkpoint, at: Loc, seen: dict[str, int], index: int
) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    on_reject = cp.human.on_reject or p.human.on_reject
    if on_reject and on_reject.startswith("rollback:"):
        target = on_reject.removeprefix("rollback:")
        if target not in seen or seen[target] > index:
            where = (*at, "human", "on_reject") if cp.human.on_reject else ("human", "on_reject")
            out.append((where, f"'{target}' is not this or an earlier checkpoint"))
    for key in ("on_deadline", "on_escalation_deadline"):
        if getattr(cp.human, key) == "escalate" or getattr(p.human, key) == "escalate":
            if key == "on_escalation_deadline":
                out.append(((*at, "human", key), "an escalation cannot escalate again"))
            elif not (cp.human.escalate_to or p.human.escalate_to):
                out.append(((*at, "human", key), "on_deadline escalate needs escalate_to"))
    return out


def _check_schedule(schedule: Schedule) -> list[tuple[Loc, str]]:
    from engine.schedules import trigger  # apscheduler is imported only where schedules are used

    try:
        trigger(schedule)
    except (ValueError, LookupError) as exc:
        return [(("schedule", "cron"), f"not a valid schedule: {exc}")]
    return []


def _check_agent(cp: Checkpoint, at: Loc, seen: dict[str, int], index: int) -> list[tuple[Loc, str]]:
    assert cp.agent is not None
    out: list[tuple[Loc, str]] = []
    agent = cp.agent
    if agent.mode == "predefined" and not agent.agents:
        out.append(((*at, "agent", "agents"), "predefined mode needs at least one agent"))
    if agent.mode == "single" and len(agent.agents) > 1:
        out.append(((*at, "agent", "agents"), "single mode takes at most one agent"))
    for k, ref in enumerate(agent.context.checkpoints):
        if ref not in seen or seen[ref] >= index:
            out.append(((*at, "agent", "context", "checkpoints", k), f"'{ref}' is not an earlier checkpoint"))
    return out


def _check_inputs(cp: Checkpoint, at: Loc) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    ids: set[str] = set()
    for j, f in enumerate(cp.inputs):
        here: Loc = (*at, "inputs", j)
        if f.id in ids:
            out.append(((*here, "id"), f"duplicate input id '{f.id}'"))
        ids.add(f.id)
        if f.min is not None and f.max is not None and f.min > f.max:
            out.append(((*here, "min"), f"min ({f.min:g}) is greater than max ({f.max:g})"))
        if f.type == "select" and not f.choices:
            out.append(((*here, "choices"), "a select input needs choices"))
        if f.type != "select" and f.choices:
            out.append(((*here, "choices"), f"choices only apply to select inputs (type is {f.type})"))
        if f.default is not None:
            problem = _default_problem(f)
            if problem:
                out.append(((*here, "default"), problem))
    return out


def _default_problem(f: InputField) -> str | None:
    d = f.default
    if f.type == "number":
        if isinstance(d, bool) or not isinstance(d, int | float):
            return f"default {d!r} is not a number"
        if (f.min is not None and d < f.min) or (f.max is not None and d > f.max):
            return f"default {d:g} is outside min/max"
    elif f.type == "boolean" and not isinstance(d, bool):
        return f"default {d!r} is not true or false"
    elif f.type == "select" and d not in (f.choices or []):
        return f"default {d!r} is not one of the choices"
    elif f.type in ("text", "multiline_text"):
        if not isinstance(d, str):
            return f"default {d!r} is not text"
        if f.max_length is not None and len(d) > f.max_length:
            return f"default is longer than max_length ({f.max_length})"
    elif f.type == "file":
        return "file inputs cannot have a default"
    return None


def _regex_ok(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True


def _problem(err: Any, root: yaml.Node | None) -> Problem:
    loc = tuple(x for x in err["loc"] if not (isinstance(x, str) and x.startswith(("function-", "tagged-"))))
    if err["type"] in ("literal_error", "enum"):
        expected = err.get("ctx", {}).get("expected", "")
        choices = ", ".join(c.strip().strip("'") for c in expected.replace(" or ", ", ").split(","))
        message = f"{err['input']!r} is not one of {choices}"
    elif err["type"] == "extra_forbidden":
        message = "unknown field (check the spelling)"
    else:
        message = err["msg"][0].lower() + err["msg"][1:]
    return Problem(_dotted(loc), message, _line(root, loc))


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line(root: yaml.Node | None, loc: Loc) -> int | None:
    """The line of the deepest node on ``loc`` that exists in the file."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == part:
                    child = value
                    line = key.start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line
