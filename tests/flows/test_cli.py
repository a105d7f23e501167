"""The `chfen` command line: real console script, real warehouse."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from warehouse import Warehouse

runner = CliRunner()


@pytest.fixture
def data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CHFEN_CONFIG", raising=False)
    root = tmp_path / "data"
    wh = Warehouse(root)
    wh.append(
        "videos",
        [
            {"video_id": "v1", "status": "ok", "title": "a, with comma", "duration_s": 12.5},
            {"video_id": "v2", "status": "failed", "title": "b"},
        ],
    )
    for i in range(3):
        wh.append("scenes", [{"video_id": "v1", "scene_idx": i, "start_s": i, "end_s": i + 1}])
    return root


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_console_script_help() -> None:
    exe = Path(sys.executable).parent / "chfen"
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0
    for command in ("config", "sql", "warehouse"):
        assert command in out.stdout


def test_config_show_reports_origin(data_root: Path) -> None:
    res = runner.invoke(
        app,
        ["--set", "crawl.retries=7", "config", "show"],
        env={"CHFEN_TRAIN__EPOCHS": "3", "COLUMNS": "200"},
    )
    assert res.exit_code == 0, res.output
    lines = {line.split("│")[1].strip(): line for line in res.output.splitlines() if "│" in line}
    assert "7" in lines["crawl.retries"] and "--set crawl.retries" in lines["crawl.retries"]
    assert "env:CHFEN_TRAIN__EPOCHS" in lines["train.epochs"]
    assert "default" in lines["asr.batch_size"]
    assert "chfen-dev-token" not in res.output  # the token is masked


def test_config_show_json_and_bad_override(data_root: Path) -> None:
    res = invoke("--set", f"data_root={data_root}", "config", "show", "--json")
    assert res.exit_code == 0 and f'"data_root": "{data_root}"' in res.output
    bad = runner.invoke(app, ["--set", "crawl.retries=lots", "config", "show"])
    assert bad.exit_code == 2 and "crawl.retries" in bad.output


def test_sql_table_csv_and_errors(data_root: Path) -> None:
    root = f"data_root={data_root}"
    res = invoke("--set", root, "sql", "SELECT video_id, title FROM videos ORDER BY 1", "--csv")
    assert res.exit_code == 0
    assert list(csv.reader(io.StringIO(res.output))) == [
        ["video_id", "title"],
        ["v1", "a, with comma"],
        ["v2", "b"],
    ]
    res = runner.invoke(
        app,
        ["--set", root, "sql", "SELECT status, count(*) AS n FROM videos_latest GROUP BY 1"],
        env={"COLUMNS": "120"},
    )
    assert res.exit_code == 0 and "failed" in res.output and "2 row(s)" in res.output
    res = runner.invoke(app, ["--set", root, "sql", "SELECT * FROM no_such_table"])
    assert res.exit_code == 1 and "no_such_table" in res.output


def test_warehouse_compact_merges_files(data_root: Path) -> None:
    assert len(Warehouse(data_root).live_files("scenes")[1]) == 3
    res = runner.invoke(
        app,
        ["--set", f"data_root={data_root}", "warehouse", "compact", "scenes"],
        env={"COLUMNS": "120"},
    )
    assert res.exit_code == 0, res.output
    wh = Warehouse(data_root)
    assert len(wh.live_files("scenes")[1]) == 1 and wh.count("scenes") == 3
    bad = runner.invoke(app, ["--set", f"data_root={data_root}", "warehouse", "compact", "nope"])
    assert bad.exit_code == 2 and "nope" in bad.output


def test_env_data_root_is_used(data_root: Path) -> None:
    res = runner.invoke(
        app,
        ["sql", "SELECT count(*) AS n FROM scenes", "--csv"],
        env={**os.environ, "CHFEN_DATA_ROOT": str(data_root)},
    )
    assert res.output.splitlines() == ["n", "3"]
