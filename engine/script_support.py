"""A script's workspace (inputs, read-only context, outputs), environment and output buffer.

The environment is built from an allow-list, never from a copy of the bot's: a variable the
operator adds later (a new token) cannot leak by default.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections import deque
from collections.abc import Collection
from pathlib import Path, PurePosixPath
from typing import Any

from engine.definitions import ScriptConfig
from engine.errors import ScriptProblem

PASSED_THROUGH = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ")
# allow_env may not pull these from the bot: credentials by their usual names
SECRET_NAME = re.compile(
    r"(^|_)(TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?|KEY|DSN|COOKIE)(_|$)|APIKEY|DATABASE_URL", re.IGNORECASE
)


def prepare_workspace(
    workdir: Path, inputs: dict[str, Any], context_files: list[tuple[str, Path]]
) -> dict[str, Path]:
    """Write inputs.json, a fresh outputs/ and a fresh read-only context/; returns their paths."""
    paths = {
        "inputs": workdir / "inputs.json",
        "outputs": workdir / "outputs",
        "context": workdir / "context",
    }
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "tmp").mkdir(exist_ok=True)
    paths["inputs"].write_text(
        json.dumps(inputs, indent=2, ensure_ascii=False, default=str), encoding="utf-8"
    )
    # a retry starts from what this attempt is given, not from the last attempt's files
    for key in ("outputs", "context"):
        if paths[key].exists() or paths[key].is_symlink():
            _remove(paths[key])
        paths[key].mkdir()
    for name, source in context_files:
        rel = PurePosixPath(name)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise ScriptProblem(f"context file name {name!r} must be a relative path inside context/")
        target = paths["context"].joinpath(*rel.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    for root, dirs, files in os.walk(paths["context"], topdown=False):
        for f in files:
            os.chmod(os.path.join(root, f), 0o444)
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o555)
    os.chmod(paths["context"], 0o555)
    return paths


def script_env(
    config: ScriptConfig, workdir: Path, paths: dict[str, Path], secret_env: Collection[str] = ()
) -> tuple[dict[str, str], list[str]]:
    """The script's environment, and notes for the log (variables refused or missing)."""
    env = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
    env.setdefault("PATH", os.defpath)
    env.setdefault("LANG", "C.UTF-8")
    env.update(
        HOME=str(workdir),
        TMPDIR=str(workdir / "tmp"),
        PYTHONIOENCODING="utf-8",
        PYTHONUNBUFFERED="1",  # output reaches the log (and chat) as it is printed
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(config.env)
    notes = []
    for name in config.allow_env:
        if name in secret_env or SECRET_NAME.search(name):
            notes.append(f"not passing {name}: the bot's secrets stay with the bot")
        elif name in os.environ:
            env[name] = os.environ[name]
        else:
            notes.append(f"{name} is not set in the bot's environment")
    env.update(
        PIPEBOT_INPUTS=str(paths["inputs"]),
        PIPEBOT_OUTPUTS=str(paths["outputs"]),
        PIPEBOT_CONTEXT=str(paths["context"]),
    )
    return env, notes


class BoundedText:
    """Keeps the last ``limit`` characters, and says how much was dropped before them."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._chunks: deque[str] = deque()
        self._size = 0
        self._dropped = 0

    def add(self, text: str) -> None:
        if not text:
            return
        self._chunks.append(text)
        self._size += len(text)
        while self._size - len(self._chunks[0]) >= self.limit:
            first = self._chunks.popleft()
            self._size -= len(first)
            self._dropped += len(first)

    def text(self) -> str:
        joined = "".join(self._chunks)
        cut = max(0, len(joined) - self.limit)
        dropped = self._dropped + cut
        body = joined[cut:]
        return f"[... {dropped} characters omitted]\n{body}" if dropped else body


def collect_outputs(outputs: Path, log: BoundedText) -> dict[str, Path]:
    """Regular files only: a symlink could point at the bot's own files and leak them as artifacts."""
    found: dict[str, Path] = {}
    if outputs.is_symlink() or not outputs.is_dir():
        log.add("[pipebot] outputs/ was replaced: no outputs collected\n")
        return found
    for root, dirs, files in os.walk(outputs):
        for name in [*files, *dirs]:
            path = Path(root, name)
            if path.is_symlink():
                log.add(f"[pipebot] ignored symlink outputs/{path.relative_to(outputs)}\n")
            elif path.is_file():
                found[path.relative_to(outputs).as_posix()] = path
    return dict(sorted(found.items()))


def _remove(path: Path) -> None:
    """rmtree that first gives back the write permission the read-only context took away."""
    if path.is_symlink() or path.is_file():
        path.unlink()
        return
    for root, dirs, _ in os.walk(path):
        os.chmod(root, 0o755)
        for d in dirs:
            p = os.path.join(root, d)
            if not os.path.islink(p):
                os.chmod(p, 0o755)
    shutil.rmtree(path)
