"""The `pipebot` command line, called in-process through its main()."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from tests.conftest import EXAMPLES


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


def test_script_sandbox_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from bot.cli import script_sandbox
    from bot.settings import Settings

    assert script_sandbox(Settings(pipebot_script_sandbox="none")).mode == "none"
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap
    # serve and worker keep the sandbox (each script then fails, naming the package); the console
    # falls back to none
    assert script_sandbox(Settings()).mode == "bwrap"
    assert script_sandbox(Settings(), console=True).mode == "none"
