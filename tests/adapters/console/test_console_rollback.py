"""Rollbacks through `pipebot console` (a real subprocess): confirm first, archives that keep every
same-named file, run-level rollback, restore, refusals, history; then the CLI over the same files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from tests.adapters.console.test_console import console
from tests.engine.rollback_helpers import TWINS

pytestmark = pytest.mark.slow


def lines(*items: str) -> str:
    return "\n".join(items) + "\n"


def full_run(form: int, note: Path, last: bool = True) -> list[str]:
    """Fill in and approve the three checkpoints, the forms being executions form, form+1, form+2."""
    out = []
    for i in range(3):
        out += [f"f{form + i}", f"text {form + i}", str(note)]
        if last or i < 2:
            out.append(f"a{form + i}")
    return out


def test_rollbacks_in_the_console(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    twins = tmp_path / "twins.yaml"
    twins.write_text(TWINS)
    note = tmp_path / "notes.md"
    note.write_text("# notes\n")
    script = lines(
        "/pipeline run twins",
        *full_run(1, note, last=False),  # v1 waits for the review of third (exec 3)
        "/pipeline rollback twins#v1 first",
        "c1",
        "c1",  # a second click changes nothing
        "/pipeline status twins#v1",
        "/pipeline rollbacks twins#v1",
        "/pipeline run twins",  # v2: execs 5, 6, 7
        *full_run(5, note),
        "/pipeline run twins",  # v3: exec 8, active
        "f8",
        "text 8",
        str(note),
        "/pipeline rollback twins#v1",
        "k2",
        "/pipeline rollback twins#v1",
        "c3",
        "/pipeline status twins#v3",
        "/pipeline artifacts twins#v2",
        "/pipeline run twins",
        "/pipeline restore 3",
        "/pipeline restore 9",
        "/pipeline history twins#v3",
        "/pipeline rollbacks twins",
        "/pipeline rollbacks twinz",
        "/pipeline restore 2",
    )
    out = console(tmp_path, script, "ana", str(twins))
    assert (
        "Roll back twins#v1 to first? This archives first (exec 1, completed), second (exec 2, completed)"
        in out
    )
    assert "• twins/runs/v1/first/doc.json" in out
    assert "[c1] Confirm rollback   [k1] Keep as is" in out
    assert "Rolled back twins#v1 to first (rollback 1)." in out
    assert "✖ Rollback 1 was already confirmed (ana)." in out
    assert (
        "• First: rolled back\n• Second: rolled back\n• Third: rolled back\n• First: waiting for input" in out
    )
    assert "• #1 " in out and "by ana: twins#v1 → first · 3 execution(s), 6 file(s), 483 bytes" in out
    assert "Return twins to v1? This archives twins#v2, twins#v3" in out
    assert "Kept twins#v1 as it is: nothing was rolled back." in out
    assert "Returned twins to twins#v1 (rollback 3: 2 run(s) archived)." in out
    assert "twins#v3 — rolled back" in out and "rolled back by ana at" in out
    assert "doc.json (" in out and " bytes, archived) — pipebot artifacts get" in out  # v2's stay listed
    assert "Started twins#v4." in out
    assert "✖ Cannot restore rollback 3: twins#v4 was started after it" in out
    assert "✖ There is no rollback 9." in out
    assert "✖ There is no pipeline 'twinz'. Try /pipeline list." in out
    assert "✖ Rollback 2 has nothing to restore: it was kept as is (never made)." in out
    assert "History of twins#v3 (rolled back)" in out
    assert "archived by rollback 3 (twins returned to v1)" in out

    base = tmp_path / "pipelines" / "twins"
    assert (base / "runs" / "latest").readlink().name == "v4"  # v1 until v4 started
    archives = sorted(p.name for p in (base / ".archived").iterdir())
    assert [a.split("_")[1] for a in archives] == ["1", "3"]
    assert (base / ".archived" / archives[1] / "runs" / "v2" / "third" / "doc.json").is_file()
    assert (
        base / ".archived" / archives[1] / "runs" / "v3" / ".temp" / "exec_8" / "form" / "doc.json"
    ).is_file()
    assert not (base / "runs" / "v2").exists() and not (base / "runs" / "v1" / "second").exists()

    # The CLI over the same folder: every artifact, archived or not, gives exactly its bytes.
    monkeypatch.setenv("BASE_PIPELINES_PATH", str(tmp_path / "pipelines"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    capsys.readouterr()
    assert main(["runs", "history", "twins#v1", "--json"]) == 0
    history = json.loads(capsys.readouterr().out)
    assert any(e["what"].startswith("rollback 1 to first") for e in history["entries"])
    for run in ("twins#v1", "twins#v2", "twins#v3"):
        assert main(["artifacts", "list", run]) == 0
        rows = capsys.readouterr().out.splitlines()
        assert rows and (run == "twins#v1" or all(r.endswith("\tarchived") for r in rows))  # rolled back
        for row in rows:
            art_id, _, _, path = row.split("\t")[:4]
            target = tmp_path / f"a{art_id}"
            assert main(["artifacts", "get", art_id, "-o", str(target)]) == 0
            assert target.read_bytes() == (tmp_path / "pipelines" / path).read_bytes()
        capsys.readouterr()
    assert main(["archives", "list"]) == 0
    listed = capsys.readouterr().out
    assert "twins/.archived/rollback_1_" in listed and "rollback 3" in listed
    assert main(["archives", "purge", "--older-than", "0m"]) == 0
    assert "would remove 2 archive(s)" in capsys.readouterr().out
    assert len(list((base / ".archived").iterdir())) == 2  # a dry run
    assert main(["archives", "purge", "--older-than", "0m", "--yes"]) == 0
    assert "removed 2 archive(s)" in capsys.readouterr().out
    assert not list((base / ".archived").iterdir())
    capsys.readouterr()
    assert main(["artifacts", "get", art_id]) == 1  # its archive is gone: said so, in one line
    assert capsys.readouterr().err.endswith(": was its archive purged?\n")
