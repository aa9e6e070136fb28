"""The `pipebot` command line, called in-process through its main()."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from engine.api import Engine
from tests.conftest import EXAMPLES, HERE, ROOT, person


@pytest.fixture(autouse=True)
def _base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASE_PIPELINES_PATH", str(tmp_path / "pipelines"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)


def test_validate_reports_file_line_and_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\ncheckpoints:\n  - id: a\n    inputs:\n      - {id: n, label: N, type: nmber}\n")
    assert main(["pipelines", "validate", str(bad)]) == 1
    assert f"{bad}:5: checkpoints[0].inputs[0].type: 'nmber' is not one of" in capsys.readouterr().err
    assert main(["pipelines", "validate", str(EXAMPLES)]) == 0


def test_import_list_export_roundtrip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pipelines", "import", str(EXAMPLES)]) == 0
    assert "blog-post: imported as version 1" in capsys.readouterr().out
    assert main(["pipelines", "import", str(EXAMPLES / "blog-post.yaml")]) == 0
    assert "unchanged (v1)" in capsys.readouterr().out
    assert main(["pipelines", "list"]) == 0
    assert "blog-post\tv1\t3 checkpoints" in capsys.readouterr().out
    assert main(["pipelines", "export", "blog-post"]) == 0
    exported = tmp_path / "exported.yaml"
    exported.write_text(capsys.readouterr().out)
    assert main(["pipelines", "validate", str(exported)]) == 0


def test_schema_is_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pipelines", "schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "pipebot pipeline"


def test_runs_and_unknown_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade"]) == 0
    assert main(["runs", "list"]) == 0
    assert main(["runs", "show", "nothing#v1"]) == 1
    assert "There is no run nothing#v1." in capsys.readouterr().err


NOTE = """\
id: note
checkpoints:
  - id: ask
    inputs: [{id: t, label: T}]
    save_form_as_artifact: true
    human: {approval_to_complete: false}
"""


def a_run_with_an_artifact(tmp_path: Path) -> int:
    """Start note#v1 and submit its form (an artifact), through the engine on the CLI's database."""
    (tmp_path / "note.yaml").write_text(NOTE)
    assert main(["pipelines", "import", str(tmp_path / "note.yaml"), str(EXAMPLES / "release.yaml")]) == 0
    engine = Engine.open(tmp_path / "pipelines")
    try:
        engine.start_run("note", person("ana"), HERE)
        engine.submit_form(engine.run("note#v1").executions[0].execution_id, person("ana"), {"t": "hi"})
        engine.start_run("release", person("ana"), HERE)  # stays active
        return engine.artifacts("note#v1")[0].artifact_id
    finally:
        engine.close()


def test_delete_refuses_active_runs_unless_cancelled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_run_with_an_artifact(tmp_path)
    capsys.readouterr()
    assert main(["pipelines", "delete", "note"]) == 0  # its run is over
    assert "Deleted pipeline note; its runs and files stay readable." in capsys.readouterr().out
    assert main(["pipelines", "delete", "release"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: release has active runs (release#v1)") and err.count("\n") == 1
    assert main(["pipelines", "delete", "release", "--cancel-runs"]) == 0
    assert "cancelled release#v1" in capsys.readouterr().out
    assert main(["pipelines", "list"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["runs", "list"]) == 0
    listed = capsys.readouterr().out
    assert "note#v1\tcompleted" in listed and "release#v1\tcancelled" in listed
    assert main(["pipelines", "delete", "nothing"]) == 1
    assert capsys.readouterr().err == "error: There is no pipeline 'nothing'. Try /pipeline list.\n"


def test_artifact_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    artifact = a_run_with_an_artifact(tmp_path)
    capsys.readouterr()
    assert main(["artifacts", "get", "../../etc/passwd"]) == 1
    assert capsys.readouterr().err == (
        "error: an artifact id is a number (see pipebot artifacts list <run>), not '../../etc/passwd'\n"
    )
    assert main(["artifacts", "get", str(artifact), "-o", "/missing/dir/x"]) == 1
    assert capsys.readouterr().err == "error: /missing/dir/x: No such file or directory\n"
    assert main(["artifacts", "get", str(artifact), "-o", str(tmp_path / "x.json")]) == 0
    assert '"t": "hi"' in (tmp_path / "x.json").read_text()
    huge = "99999999999999999999999"  # past SQLite's integers: unknown, not a traceback
    for argv in (["artifacts", "get", huge], ["runs", "show", f"blog-post#v{huge}"]):
        assert main(argv) == 1
        assert capsys.readouterr().err == "error: There is nothing with that number: it is too large.\n"


def test_empty_folders_and_huge_ages_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["pipelines", "import", str(tmp_path / "empty")]) == 1
    err = capsys.readouterr().err
    assert err.endswith("empty: no pipeline files (*.yaml, *.yml, *.json) in this folder\n")
    with pytest.raises(SystemExit):
        main(["archives", "purge", "--older-than", "99999999999999999999d"])
    assert "is too long an age" in capsys.readouterr().err
    assert main(["archives", "purge", "--older-than", "999999999d"]) == 0
    assert "would remove 0 archive(s)" in capsys.readouterr().out


def test_a_closed_pipe_is_no_traceback(tmp_path: Path) -> None:
    """`pipebot pipelines schema | head`: the reader is gone before the schema is written."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "pipelines", "schema"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # like `head` that has read enough
    err = proc.stderr.read()
    assert proc.wait(timeout=30) == 141 and err == b""


def test_script_sandbox_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from bot.cli import script_sandbox
    from bot.settings import Settings

    assert script_sandbox(Settings(pipebot_script_sandbox="none")).mode == "none"
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap
    # serve and worker keep the sandbox (each script then fails, naming the package); the console
    # falls back to none
    assert script_sandbox(Settings()).mode == "bwrap"
    assert script_sandbox(Settings(), console=True).mode == "none"


def test_limits_come_from_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "three.yaml"
    path.write_text("id: three\ncheckpoints:\n  - id: a\n  - id: b\n  - id: c\n")
    assert main(["pipelines", "validate", str(path)]) == 0
    monkeypatch.setenv("PIPEBOT_MAX_CHECKPOINTS", "2")
    assert main(["pipelines", "validate", str(path)]) == 1
    assert capsys.readouterr().err == f"{path}:5: checkpoints[2]: 3 checkpoints; the limit is 2\n"


def test_a_wrong_database_url_is_a_one_line_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # SQLAlchemy's own wording varies between versions: check the shape and the gist.
    for url, gist in (("bogus://", "bogus"), ("nonsense", "URL")):
        monkeypatch.setenv("DATABASE_URL", url)
        assert main(["runs", "list"]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: database: ") and err.count("\n") == 1 and gist in err, err


def test_settings_of_the_wrong_shape_are_one_line_errors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PIPEBOT_HTTP_PORT", "abc")
    assert main(["runs", "list"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: PIPEBOT_HTTP_PORT: Input should be a valid integer")
    assert err.count("\n") == 1
    monkeypatch.delenv("PIPEBOT_HTTP_PORT")
    monkeypatch.setenv("PIPEBOT_ADMINS", "slack:U1, nonsense")  # a typo must not leave no admin
    assert main(["runs", "list"]) == 1
    assert capsys.readouterr().err.startswith("error: PIPEBOT_ADMINS: 'nonsense' is not a principal like")
    monkeypatch.setenv("PIPEBOT_ADMINS", "slack:U1,slack:@ops,discord:role:12,discord:34,console:bob")
    assert main(["runs", "list"]) == 0
