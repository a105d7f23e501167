"""`chfen import` on the command line: a labelled folder in, a bad labels file out with exit
code 1 and nothing written, a dry run writing nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from ingestkit import small_folder
from typer.testing import CliRunner

from flows.cli import app
from warehouse import Warehouse

runner = CliRunner()
WAVS = ("03-01-03-01-01-01-01.wav", "03-01-04-02-01-01-01.wav")


def test_import_from_the_command_line(
    ravdess: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CHFEN_CONFIG", raising=False)
    folder = small_folder(ravdess, tmp_path / "clips", WAVS)
    root = tmp_path / "data"
    base = ["--set", f"data_root={root}", "import", str(folder)]
    bad = tmp_path / "bad.csv"
    bad.write_text(f"file,emotion\n{WAVS[0]},happy\n{WAVS[1]},elated\n")
    res = runner.invoke(app, [*base, "--labels", str(bad), "--label-column", "emotion"],
                        env={"COLUMNS": "200"})  # fmt: skip
    assert res.exit_code == 1, res.output
    assert "bad.csv row 2" in res.output and "unknown label 'happy'" in res.output
    assert Warehouse(root).count("videos") == 0

    res = runner.invoke(app, [*base, "--preset", "ravdess", "--dry-run"])
    assert res.exit_code == 0, res.output
    assert Warehouse(root).count("videos") == 0

    res = runner.invoke(app, [*base, "--preset", "ravdess", "--name", "mine"])
    assert res.exit_code == 0, res.output
    ids = {r["video_id"] for r in Warehouse(root).rows("SELECT video_id FROM videos_latest")}
    assert ids == {"mine-03-01-03-01-01-01-01-wav", "mine-03-01-04-02-01-01-01-wav"}
