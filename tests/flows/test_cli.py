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

from flows.cli import EXIT_CODES, app, exit_code_for
from warehouse import Warehouse

ROOT = Path(__file__).resolve().parents[2]

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
    assert "Exit codes" in out.stdout
    for code, meaning in EXIT_CODES.items():
        assert f"{code}  {meaning.split()[0]}" in out.stdout


def test_exit_codes_are_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for code in EXIT_CODES:
        assert f"\n| {code} |" in readme, f"exit code {code} is not in the README's table"


def test_errors_map_to_exit_codes() -> None:
    """One mapping for every command: usage and settings 2, known failures 1, other errors 3."""
    from chfen.config import ConfigError
    from chfen.stages import StageError
    from flows.runtime import UsageError
    from flows.server import PrefectServerError
    from labeling.push import LabelPushError
    from labeling.server import LabelStudioError
    from warehouse import SchemaError, WarehouseError

    assert exit_code_for(ConfigError("crawl.retries: not a number")) == 2
    assert exit_code_for(UsageError("no enabled source named 'x'")) == 2
    for failure in (
        WarehouseError("no such table"),
        SchemaError("videos", "fps", "not a number"),  # also a ValueError: still 1
        LabelStudioError("not running"),
        LabelPushError("push failed"),
        PrefectServerError("port taken"),
        StageError("v1", "asr", "bad audio"),
        ValueError("too few labeled videos to train"),  # e.g. chfen.train's DatasetError
    ):
        assert exit_code_for(failure) == 1, failure
    assert exit_code_for(RuntimeError("a bug")) == 3
    assert exit_code_for(KeyboardInterrupt()) == 130


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


def test_unexpected_errors_and_ctrl_c_exit_through_the_runner(
    data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.cli import tables

    def broken() -> None:
        raise RuntimeError("something nobody foresaw")

    monkeypatch.setattr(tables, "open_warehouse", broken)
    res = runner.invoke(app, ["--set", f"data_root={data_root}", "sql", "SELECT 1"])
    assert res.exit_code == 3
    assert "Traceback" in res.output and "something nobody foresaw" in res.output

    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(tables, "open_warehouse", interrupted)
    res = runner.invoke(app, ["--set", f"data_root={data_root}", "sql", "SELECT 1"])
    assert res.exit_code == 130 and "interrupted" in res.output


def test_settings_are_resolved_once_per_command(
    data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chfen import config
    from flows.cli import runner as cli_runner

    calls: list[object] = []

    def counted(*args, **kwargs):
        calls.append(args)
        return config.load_settings(*args, **kwargs)

    monkeypatch.setattr(cli_runner, "load_settings", counted)
    res = invoke("--set", f"data_root={data_root}", "warehouse", "info")
    assert res.exit_code == 0 and "scenes" in res.output
    assert len(calls) == 1
    # options after the command name (`chfen train --set ...`) are read before resolving
    bad = runner.invoke(app, ["train", "--set", "train.epochs=many", "ablations"])
    assert bad.exit_code == 2 and "train.epochs" in bad.output
