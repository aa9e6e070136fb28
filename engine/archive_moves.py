"""The file side of rollbacks and restores: a plan of moves, carried out and undone.

A plan is written to the database before any file moves; each move is one ``os.rename`` (a
file or a whole folder, inside one pipeline folder), so after a crash every entry is either
at its source or at its destination and ``undo`` can put each one back.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.workspace import Workspace, sha256_of

# Called after the files moved and before the database commits (tests kill the process here).
after_moves: Callable[[], None] | None = None


@dataclass
class Plan:
    moves: list[tuple[str, str]] = field(default_factory=list)  # (source, destination), base-relative
    files: list[dict[str, Any]] = field(default_factory=list)  # one per archived file
    executions: list[int] = field(default_factory=list)  # executions the rollback archives
    runs: list[int] = field(default_factory=list)  # runs a run-level rollback archives
    artifacts: list[int] = field(default_factory=list)  # artifact rows whose bytes move
    before: dict[str, Any] = field(default_factory=dict)  # run and execution states, for restore

    def to_json(self) -> dict[str, Any]:
        return {
            "moves": [list(m) for m in self.moves],
            "files": self.files,
            "executions": self.executions,
            "runs": self.runs,
            "artifacts": self.artifacts,
            "before": self.before,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        return cls(
            moves=[(str(a), str(b)) for a, b in data.get("moves", [])],
            files=list(data.get("files", [])),
            executions=[int(i) for i in data.get("executions", [])],
            runs=[int(i) for i in data.get("runs", [])],
            artifacts=[int(i) for i in data.get("artifacts", [])],
            before=dict(data.get("before", {})),
        )

    def add(
        self, ws: Workspace, src: str, dst: str, artifact_paths: dict[str, int], listed: bool = True
    ) -> None:
        """Move ``src`` (a file or folder, if it exists) to ``dst``; record each file in it
        (unless not ``listed``: copies the database accounts for otherwise, artifact revisions)."""
        path = ws.absolute(src)
        if not path.exists():
            return
        self.moves.append((src, dst))
        if not listed:
            return
        found = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for f in found:
            rel = ws.relative(f)
            self.files.append(
                {
                    "original": rel,
                    "archived": dst + rel[len(src) :],
                    "sha256": sha256_of(f),
                    "size": f.stat().st_size,
                    "artifact_id": artifact_paths.get(rel),
                }
            )

    def new_path(self, path: str) -> str | None:
        """Where a file at ``path`` ends up once the moves are made (None: it does not move)."""
        for src, dst in self.moves:
            if path == src or path.startswith(src + "/"):
                return dst + path[len(src) :]
        return None

    @property
    def size(self) -> int:
        return sum(int(f["size"]) for f in self.files)


def move(ws: Workspace, plan: Plan) -> None:
    for src, dst in plan.moves:
        s, d = ws.absolute(src), ws.absolute(dst)
        if not s.exists():
            continue
        if d.exists():
            raise FileExistsError(f"{dst} already exists: nothing is moved over it")
        d.parent.mkdir(parents=True, exist_ok=True)
        os.rename(s, d)
    if after_moves is not None:
        after_moves()


def undo(ws: Workspace, plan: Plan) -> None:
    """Put back what ``move`` moved (all of it, or the part it did before it stopped)."""
    for src, dst in reversed(plan.moves):
        s, d = ws.absolute(src), ws.absolute(dst)
        if d.exists() and not s.exists():
            s.parent.mkdir(parents=True, exist_ok=True)
            os.rename(d, s)
    prune(ws, [dst for _, dst in plan.moves])


def _kept(ws: Workspace, path: Path) -> bool:
    """The pipeline's own folders stay: {pipeline}/, its top folders, and each run's runs/vN/."""
    parts = path.relative_to(ws.base).parts if path.is_relative_to(ws.base) else ()
    return len(parts) <= 2 or (len(parts) == 3 and parts[1] == "runs")


def prune(ws: Workspace, paths: list[str]) -> None:
    """Remove the folders that moves left empty (never a run's own runs/vN/)."""
    for rel in paths:
        path = ws.absolute(rel).parent
        while not _kept(ws, path) and path.is_dir():
            try:
                path.rmdir()  # only ever removes an empty folder
            except OSError:
                break
            path = path.parent


def folder_size(path: Path) -> tuple[int, int]:
    """(files, bytes) under a folder."""
    files = [p for p in path.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)
