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
from engine.limits import DEFAULT as DEFAULT_LIMITS
from engine.limits import Limits, line_at

Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
InputType = Literal["text", "multiline_text", "number", "boolean", "select", "file"]
Mode = Literal["human_only", "agent", "script"]
OutputFormat = Literal["md", "txt", "json", "csv", "html", "yaml", "py"]
# platform:user, platform:@group or platform:role:id; the platform names are the adapters' own.
APPROVER_PATTERN = r"^[a-z][a-z0-9_]*:(@[\w.-]+|role:\d+|[\w.@-]+)$"
# The same syntax names admins, owners, runners and channels (see engine.roles).
Principal = Annotated[str, Field(pattern=APPROVER_PATTERN)]


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
    max_length: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description="text inputs: default 2,000 characters (text) or 20,000 (multiline_text); "
        "settings PIPEBOT_MAX_TEXT_CHARS and PIPEBOT_MAX_MULTILINE_CHARS change the defaults",
    )
    choices: list[str] | None = None
    default: Any = None
    max_bytes: int | None = Field(default=None, ge=1, description="file inputs: size limit")


Duration = Annotated[str, Field(pattern=r"^\d+(s|m|h|d)$", description="30s, 15m, 4h, 2d")]
DeadlineOutcome = Literal["approve", "reject", "cancel", "escalate", "fail"]


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
    network: bool = False
    max_processes: int = 64


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
    inputs: list[InputField] = Field(
        default=[], description="at most 50 per checkpoint by default (setting PIPEBOT_MAX_INPUTS)"
    )
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
    approvers: list[Principal] = []
    owners: list[Principal] = Field(
        default=[], description="may re-import or delete this pipeline from chat and control all its runs"
    )
    runners: list[Principal] = Field(default=[], description="who may start runs (default: anyone)")
    channels: list[Principal] = Field(
        default=[], description="conversations where it may run, e.g. slack:C0123 (default: any)"
    )
    prevent_self_approval: bool = False
    required_approvals: int = Field(default=1, ge=1, le=50)
    human: Deadlines = Deadlines()
    schedule: Schedule | None = None
    budget_tokens: int | None = Field(default=None, ge=1)
    checkpoints: list[Checkpoint] = Field(
        min_length=1, description="at most 100 by default (setting PIPEBOT_MAX_CHECKPOINTS)"
    )

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


def load_pipeline_file(path: Path | str, limits: Limits = DEFAULT_LIMITS) -> Pipeline:
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = f.read(limits.pipeline_bytes + 1)  # never read more than the limit
        text = data.decode("utf-8")
    except OSError as exc:
        raise DefinitionProblem(str(path), [Problem("", f"cannot read: {exc.strerror}")]) from exc
    except UnicodeDecodeError as exc:
        raise DefinitionProblem(str(path), [Problem("", f"not UTF-8 text: {exc.reason}")]) from exc
    return parse_pipeline(text, str(path), limits)


def parse_pipeline(
    text: str, filename: str = "<pipeline>", limits: Limits = DEFAULT_LIMITS, max_bytes: int | None = None
) -> Pipeline:
    """Parse YAML (JSON is YAML too) and validate; every problem names its line.

    ``max_bytes`` defaults to the pipeline file limit; chat imports pass the smaller import limit.
    """
    max_bytes = limits.pipeline_bytes if max_bytes is None else max_bytes
    if len(text.encode()) > max_bytes:
        message = f"the pipeline is larger than the limit of {max_bytes:,} bytes"
        raise DefinitionProblem(filename, [Problem("", message, line_at(text, max_bytes))])
    try:
        root, data = _parse_yaml(text)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise DefinitionProblem(filename, [Problem("", f"not valid YAML: {exc.problem}", line)]) from exc
    if not isinstance(data, dict):
        raise DefinitionProblem(filename, [Problem("", "the file must be a mapping with id and checkpoints")])
    too_many = [Problem(_dotted(loc), msg, _line(root, loc)) for loc, msg in _count_limits(data, limits)]
    if too_many:  # before validating thousands of entries
        raise DefinitionProblem(filename, too_many)
    try:
        pipeline = Pipeline.model_validate(data)
    except ValidationError as exc:
        problems = [_problem(err, root) for err in exc.errors()]
        raise DefinitionProblem(filename, problems) from exc
    checks = cross_check(pipeline, limits)
    problems = [Problem(_dotted(loc), msg, _line(root, loc)) for loc, msg in checks]
    if problems:
        raise DefinitionProblem(filename, problems)
    return pipeline


# libyaml when PyYAML was built with it: ten times faster on large files.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _parse_yaml(text: str) -> tuple[yaml.Node | None, Any]:
    """The node tree (for line numbers) and the data, from one parse."""
    loader = _LOADER(text)
    try:
        root = loader.get_single_node()
        return root, (loader.construct_document(root) if root is not None else None)
    finally:
        loader.dispose()


def pipeline_from_json(text: str) -> Pipeline:
    """A stored snapshot (already validated when it was imported)."""
    return Pipeline.model_validate(json.loads(text))


def _count_limits(data: dict[str, Any], limits: Limits) -> list[tuple[Loc, str]]:
    """Too many checkpoints, or inputs in a checkpoint: named at the first entry over the limit."""
    out: list[tuple[Loc, str]] = []
    checkpoints = data.get("checkpoints")
    if not isinstance(checkpoints, list):
        return out
    if len(checkpoints) > limits.checkpoints:
        message = f"{len(checkpoints)} checkpoints; the limit is {limits.checkpoints}"
        out.append((("checkpoints", limits.checkpoints), message))
    for i, cp in enumerate(checkpoints[: limits.checkpoints]):
        inputs = cp.get("inputs") if isinstance(cp, dict) else None
        if isinstance(inputs, list) and len(inputs) > limits.inputs:
            message = f"{len(inputs)} inputs; the limit is {limits.inputs} per checkpoint"
            out.append((("checkpoints", i, "inputs", limits.inputs), message))
    return out


def cross_check(p: Pipeline, limits: Limits = DEFAULT_LIMITS) -> list[tuple[Loc, str]]:
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
        out += _check_inputs(cp, at, limits)
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


def _check_inputs(cp: Checkpoint, at: Loc, limits: Limits) -> list[tuple[Loc, str]]:
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
            problem = _default_problem(f, limits)
            if problem:
                out.append(((*here, "default"), problem))
    return out


def _default_problem(f: InputField, limits: Limits) -> str | None:
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
        limit = limits.text_limit(f.type, f.max_length)
        if limit is not None and len(d) > limit:
            return f"default is longer than max_length ({limit})"
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
