"""The file layout under BASE_PIPELINES_PATH (see the design's Storage section).

Files are written before the database commit that refers to them, by copy rather than move,
so a failed commit leaves nothing the database points at half-made.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from datetime import datetime
from pathlib import Path

from engine.definitions import Pipeline

SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(name: str, default: str = "file") -> str:
    """A name that cannot leave its folder or surprise a shell."""
    base = SAFE_NAME.sub("_", Path(name.replace("\\", "/")).name).strip("._")
    return base[:120] or default


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


class Workspace:
    def __init__(self, base: Path) -> None:
        self.base = base.resolve()

    def pipeline_dir(self, slug: str) -> Path:
        return self.base / slug

    def system_dir(self, slug: str) -> Path:
        return self.pipeline_dir(slug) / ".pipeline_system"

    def write_definitions(self, pipeline: Pipeline) -> None:
        defs = self.system_dir(pipeline.id) / "definitions"
        (defs / "checkpoints").mkdir(parents=True, exist_ok=True)
        _write_atomic(defs / "pipeline.json", pipeline.model_dump_json(indent=2, by_alias=True))
        for cp in pipeline.checkpoints:
            _write_atomic(defs / "checkpoints" / f"{cp.id}.json", cp.model_dump_json(indent=2, by_alias=True))

    def log(self, slug: str, at: datetime, line: str) -> None:
        logs = self.system_dir(slug) / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with (logs / "system.log").open("a", encoding="utf-8") as f:
            f.write(f"{at.isoformat(timespec='seconds')} {line}\n")

    def temp_dir(self, slug: str, execution_id: int) -> Path:
        path = self.pipeline_dir(slug) / ".temp" / f"exec_{execution_id}"
        (path / "outputs").mkdir(parents=True, exist_ok=True)
        return path

    def revisions_dir(self, slug: str, execution_id: int) -> Path:
        """Copies of each revision of an execution's artifacts (engine.artifact_revisions)."""
        return self.pipeline_dir(slug) / ".revisions" / f"exec_{execution_id}"

    def write_run_info(self, slug: str, version: int, data: dict[str, object]) -> None:
        self.write_json(self.system_dir(slug) / "runs" / f"v{version}" / "run_info.json", data)

    def run_dir(self, slug: str, version: int) -> Path:
        return self.pipeline_dir(slug) / "runs" / f"v{version}"

    def relative(self, path: Path) -> str:
        return str(path.resolve().relative_to(self.base))

    def absolute(self, relative: str) -> Path:
        path = (self.base / relative).resolve()
        if not path.is_relative_to(self.base):
            raise ValueError(f"path outside the workspace: {relative}")
        return path

    def write_output(
        self, slug: str, execution_id: int, filename: str, data: bytes, folder: str = "outputs"
    ) -> Path:
        """Write a file of the execution: ``form/`` for what people submit, ``outputs/`` for work."""
        path = self.temp_dir(slug, execution_id) / folder / safe_filename(filename)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        return path

    def promote(
        self, slug: str, version: int, checkpoint_id: str, files: list[Path], staged: dict[Path, Path]
    ) -> list[Path]:
        """Copy finished artifacts to runs/vN/{checkpoint}/; a file with ``staged`` content
        (an edit not committed yet: engine.artifact_revisions) is copied from that."""
        target = self.run_dir(slug, version) / checkpoint_id
        target.mkdir(parents=True, exist_ok=True)
        out = []
        for src in files:
            dst = target / src.name
            if src.resolve() != dst.resolve():
                shutil.copy2(staged.get(src, src), dst)
            out.append(dst)
        return out

    def point_latest(self, slug: str, version: int) -> None:
        runs = self.pipeline_dir(slug) / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        link = runs / "latest"
        # A name of its own per call: threads and processes may promote at the same moment.
        tmp = runs / f".latest.{os.getpid()}.{uuid.uuid4().hex}"
        tmp.symlink_to(f"v{version}", target_is_directory=True)
        os.replace(tmp, link)

    def unpoint_latest(self, slug: str) -> None:
        (self.pipeline_dir(slug) / "runs" / "latest").unlink(missing_ok=True)

    def drop_temp(self, slug: str, execution_id: int) -> None:
        shutil.rmtree(self.pipeline_dir(slug) / ".temp" / f"exec_{execution_id}", ignore_errors=True)

    def set_aside(self, slug: str, kind: str, name: str, sources: list[Path]) -> Path:
        """Move what a rollback or a failure leaves into .archived/ or .errored/."""
        dest = self.pipeline_dir(slug) / f".{kind}" / name
        dest.mkdir(parents=True, exist_ok=True)
        for src in sources:
            if src.exists():
                shutil.move(str(src), dest / src.name)
        return dest

    def copy_tree(self, src: Path, dest: Path) -> None:
        if src.exists():
            shutil.copytree(src, dest, dirs_exist_ok=True, symlinks=True)

    def write_json(self, path: Path, data: object) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(path, json.dumps(data, indent=2, default=str))


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.unlink(missing_ok=True)  # never write through a link a sandboxed script left there
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
