"""Size limits with defaults, so no form field or pipeline file can be unbounded.

Each is overridable by a setting (``PIPEBOT_MAX_*``, see bot.settings); text limits are also
overridable per input with ``max_length``. The defaults are documented in the README and in the
JSON Schema descriptions.
"""

from __future__ import annotations

from dataclasses import dataclass

TEXT_CHARS = 2_000
MULTILINE_CHARS = 20_000
IMPORT_BYTES = 100 * 1024  # /pipeline import text
PIPELINE_BYTES = 1024 * 1024  # a pipeline file
CHECKPOINTS = 100
INPUTS = 50  # per checkpoint


@dataclass(frozen=True)
class Limits:
    text_chars: int = TEXT_CHARS
    multiline_chars: int = MULTILINE_CHARS
    import_bytes: int = IMPORT_BYTES
    pipeline_bytes: int = PIPELINE_BYTES
    checkpoints: int = CHECKPOINTS
    inputs: int = INPUTS

    def text_limit(self, input_type: str, max_length: int | None) -> int | None:
        """The length limit of a text input: its own ``max_length``, else the default for its type."""
        if max_length is not None:
            return max_length
        return {"text": self.text_chars, "multiline_text": self.multiline_chars}.get(input_type)


DEFAULT = Limits()


def line_at(text: str, limit_bytes: int) -> int:
    """The line on which a text crosses ``limit_bytes`` (to name it in an error)."""
    return text.encode()[:limit_bytes].count(b"\n") + 1
