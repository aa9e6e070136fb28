"""One small hierarchy for everything the engine refuses.

Adapters catch ``PipebotError`` and show ``str(error)`` to the user: the wording is
built in :mod:`engine.messages`, so every platform says the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass


class PipebotError(Exception):
    """Base of every error the engine raises on purpose."""


class NotFound(PipebotError):
    """A pipeline, run, execution or artifact that does not exist."""


class DefinitionProblem(PipebotError):
    """A pipeline file that is not valid; ``problems`` names each field and line."""

    def __init__(self, filename: str, problems: list[Problem]) -> None:
        self.filename = filename
        self.problems = problems
        super().__init__("\n".join(p.format(filename) for p in problems))


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    line: int | None = None

    def format(self, filename: str) -> str:
        where = f"{filename}:{self.line}" if self.line is not None else filename
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class IllegalTransition(PipebotError):
    """A state change that the state machine does not allow."""

    def __init__(self, entity: str, entity_id: int, from_state: str, to_state: str) -> None:
        self.entity, self.entity_id = entity, entity_id
        self.from_state, self.to_state = from_state, to_state
        super().__init__(f"{entity} {entity_id} cannot go from {from_state} to {to_state}")


class NotAllowed(PipebotError):
    """The actor may not do this (not an approver, self-approval, ...)."""


class Refused(PipebotError):
    """The command does not apply now (run paused, revision limit reached, ...)."""


class AlreadyDone(PipebotError):
    """The command already took effect; says who acted first and when."""

    def __init__(self, message: str, by: str | None = None) -> None:
        self.by = by
        super().__init__(message)


class FormInvalid(PipebotError):
    """A form submission with invalid values; ``errors`` maps input id to message."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


class EditInvalid(Refused):
    """Edited artifacts refused (not valid against their output's checks); ``errors`` maps
    artifact name to the problem. Nothing was changed."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__(" ".join(errors.values()))


class UsageError(PipebotError):
    """A chat or CLI command that is not well formed."""


class Retryable(PipebotError):
    """Marker: a failure the checkpoint's retry policy may try again (transient or random)."""


class ProviderError(PipebotError):
    """The model provider rejected the request (bad request, authentication, unknown model)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class ProviderUnavailable(ProviderError, Retryable):
    """Rate limited, server error, timeout or connection failure: worth another attempt."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message, status)


class OutputInvalid(Retryable):
    """An agent answer not in the requested shape (bad JSON, missing output); a new attempt may fix it."""


class BudgetExceeded(Refused):
    """The next model call could exceed the token budget."""

    def __init__(self, message: str, used: int, budget: int) -> None:
        self.used, self.budget = used, budget
        super().__init__(message)


class ScriptProblem(PipebotError):
    """A script checkpoint that cannot start (missing file, path outside the pipeline, no interpreter)."""
