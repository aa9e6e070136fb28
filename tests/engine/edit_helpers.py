"""A script checkpoint with text outputs to edit and approve (md, a json with a schema, a long txt)."""

from __future__ import annotations

from pathlib import Path

from engine import artifacts
from engine.api import Engine
from engine.sandbox import SandboxConfig, unavailable
from engine.tx import Tx
from engine.worker import Worker, WorkerConfig
from tests.conftest import HERE, person
from tests.engine.helpers import current

SUMMARY = "# Summary\n\nFirst draft by the script.\n"
SCORES = '{"score": 3, "label": "ok"}'
LONG = "x" * 5000
DIGEST = """\
id: digest
approvers: [{approvers}]
required_approvals: {required}
checkpoints:
  - id: summary
    mode: script
    script:
      code: |
        import os, pathlib
        out = pathlib.Path(os.environ["PIPEBOT_OUTPUTS"])
        (out / "summary.md").write_text({summary!r})
        (out / "scores.json").write_text({scores!r})
        (out / "long.txt").write_text({long!r})
    outputs:
      - {{name: summary, format: md}}
      - name: scores
        format: json
        schema: {{type: object, required: [score], properties: {{score: {{type: integer}}}}}}
      - {{name: long, format: txt}}
"""


def import_digest(engine: Engine, folder: Path, approvers: str, long: str = LONG, required: int = 1) -> None:
    path = folder / "digest.yaml"
    text = DIGEST.format(approvers=approvers, summary=SUMMARY, scores=SCORES, long=long, required=required)
    path.write_text(text)
    engine.import_pipeline(path)


def script_worker(engine: Engine) -> Worker:
    sandbox = SandboxConfig("none" if unavailable() else "bwrap")
    return Worker(engine, None, WorkerConfig(heartbeat_seconds=0.2, sandbox=sandbox), name="edit-worker")


def artifact_text(engine: Engine, run: str, name: str) -> str:
    arts = {a.name: a for a in engine.artifacts(run)}
    return engine.artifact_path(arts[name].artifact_id).read_text()


def history(engine: Engine, run: str, name: str) -> list[tuple[int, str, str, bytes | None]]:
    """An artifact's revisions, oldest first: (number, kind, author, content)."""
    artifact_id = {a.name: a for a in engine.artifacts(run)}[name].artifact_id

    def q(tx: Tx) -> list[tuple[int, str, str, bytes | None]]:
        return [
            (r.number, r.kind, r.author, artifacts.revision_bytes(engine.ws, r))
            for r in artifacts.revisions(tx, artifact_id)
        ]

    return engine._read(q)


async def waiting(engine: Engine, tmp_path: Path, required: int = 1) -> tuple[str, int]:
    """A digest run (approvers ana and bob, started by eve) waiting for approval of its result."""
    import_digest(engine, tmp_path, "console:ana, console:bob", required=required)
    run = engine.start_run("digest", person("eve"), HERE).name
    assert await script_worker(engine).drain() == 1
    ex, status = current(engine, run)
    assert status == "waiting_approval_to_complete"
    return run, ex
