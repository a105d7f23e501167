"""The command line under things going wrong (issue 18): a read-only `chfen sql`, short
messages and the documented exit codes for expected errors, damaged tables. Real console
script or real Typer app, real warehouse files."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import duckdb
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
    wh.append("videos", [{"video_id": "v1", "status": "ok", "title": "a"}])
    wh.append("videos", [{"video_id": "v2", "status": "ok", "title": "b"}])
    wh.append("scenes", [{"video_id": "v1", "scene_idx": 0, "start_s": 0.0, "end_s": 1.0}])
    return root


def chfen(root: Path, *args: str):
    return runner.invoke(app, ["--set", f"data_root={root}", *args], env={"COLUMNS": "200"})


def fingerprint(root: Path) -> dict[str, str]:
    """Every file under the data root with a hash of its bytes."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def catalog_views(root: Path) -> set[str]:
    con = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
    try:
        return {r[0] for r in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}
    finally:
        con.close()


# ---- point 6: `chfen sql` is read-only ---------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "COPY (SELECT * FROM videos) TO '{out}/videos.csv'",
        "COPY videos TO '{out}/videos.parquet' (FORMAT parquet)",
        "ATTACH '{root}/warehouse.duckdb' AS w; DROP VIEW w.videos_latest",
        "SELECT 1; DROP VIEW videos_latest",
        "CREATE TABLE t AS SELECT 1",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "EXPORT DATABASE '{out}/dump'",
    ],
)
def test_sql_refuses_statements_that_write(data_root: Path, tmp_path: Path, statement: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    before = fingerprint(data_root)
    views = catalog_views(data_root)
    assert "videos_latest" in views
    res = chfen(data_root, "sql", statement.format(out=out, root=data_root))
    assert res.exit_code == 2, res.output
    assert "read-only" in res.output and "nothing was run" in res.output
    assert "Traceback" not in res.output
    assert list(out.iterdir()) == []
    assert fingerprint(data_root) == before
    assert catalog_views(data_root) == views


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_parquet('{root}/warehouse/videos/*.parquet')",
        "SELECT * FROM read_text('{root}/warehouse.duckdb')",
    ],
)
def test_sql_reads_no_file_of_its_own(data_root: Path, sql: str) -> None:
    """Reading statements cannot reach files either: only the tables' snapshots."""
    res = chfen(data_root, "sql", sql.format(root=data_root))
    assert res.exit_code == 1, res.output
    assert "Permission Error" in res.output


def test_sql_still_reads_tables_views_and_the_catalog_listing(data_root: Path) -> None:
    res = chfen(data_root, "sql", "SELECT video_id FROM videos_latest ORDER BY 1", "--csv")
    assert res.exit_code == 0, res.output
    assert res.output.splitlines() == ["video_id", "v1", "v2"]
    res = chfen(data_root, "sql", "SELECT count(*) AS n FROM quality_votes", "--csv")
    assert res.exit_code == 0 and res.output.splitlines() == ["n", "0"], res.output
    res = chfen(data_root, "sql", "SHOW TABLES", "--csv", "--limit", "500")
    names = set(res.output.splitlines())
    assert res.exit_code == 0 and {"videos", "videos_latest", "scenes"} <= names
    res = chfen(data_root, "sql", "DESCRIBE videos", "--csv")
    assert res.exit_code == 0 and "video_id" in res.output


@pytest.mark.parametrize(
    "sql", ["/* an export */ COPY (SELECT 1) TO 'x.csv'", "\n-- export\n  copy videos TO 'x.csv'"]
)
def test_sql_refusal_names_the_statement_after_comments(data_root: Path, sql: str) -> None:
    res = chfen(data_root, "sql", sql)
    assert res.exit_code == 2 and "read-only: COPY (copy) statements" in res.output, res.output


@pytest.mark.parametrize("sql", ["", "   "])
def test_sql_without_a_query_is_a_usage_error(data_root: Path, sql: str) -> None:
    res = chfen(data_root, "sql", sql)
    assert res.exit_code == 2 and "no SQL given" in res.output
    assert "Traceback" not in res.output


# ---- point 7: expected errors are one or two lines and an exit code -------------------------

CHFEN_EXE = Path(sys.executable).parent / "chfen"


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def console_chfen(root: Path, *args: str, env: dict[str, str] | None = None):
    """The real console script, so Prefect's own logging to the console is part of it."""
    return subprocess.run(
        [str(CHFEN_EXE), "--set", f"data_root={root}", *args],
        capture_output=True,
        text=True,
        timeout=400,
        env={**os.environ, "COLUMNS": "100", **(env or {})},
    )


def message_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_label_studio_down_is_one_message_and_exit_1(data_root: Path, prefect_api_url: str) -> None:
    """The error ends a real flow run (the engine's own record of it must stay off the
    console); the run reports to the session's Prefect server (no embedded one to start)."""
    port = closed_port()
    out = console_chfen(
        data_root, "--set", f"labelstudio.port={port}", "label", "pull",
        env={"PREFECT_API_URL": prefect_api_url},
    )  # fmt: skip
    text = out.stdout + out.stderr
    assert out.returncode == 1, text
    assert "Traceback" not in text and "Encountered exception" not in text, text
    assert len(message_lines(text)) <= 2, text
    flat = " ".join(text.split())
    assert f"127.0.0.1:{port} cannot be reached" in flat
    assert "chfen labelstudio start" in flat


def test_flow_usage_error_is_short(data_root: Path) -> None:
    out = console_chfen(data_root, "crawl", "--source", "no-such-channel")
    text = out.stdout + out.stderr
    assert out.returncode == 2, text
    assert "Traceback" not in text and "no-such-channel" in text
    # the message (it fails before the flow and its progress bar start), wrapped at most once
    assert len(message_lines(out.stderr)) <= 2, text


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["sql", "SELEC nothing"], 1, "syntax error"),
        (["sql", "SELECT * FROM nowhere"], 1, "nowhere"),
        (["--config", "missing.yaml", "config", "show"], 2, "config file not found"),
        (["warehouse", "compact", "vidoes"], 2, "unknown table"),
    ],
)
def test_expected_errors_print_no_traceback_unless_debug(
    data_root: Path, args: list[str], code: int, words: str
) -> None:
    res = runner.invoke(app, ["--set", f"data_root={data_root}", *args])
    assert res.exit_code == code, res.output
    assert "Traceback" not in res.output
    assert words in " ".join(res.output.split())
    assert len(message_lines(res.output)) <= 8  # a SQL error quotes the query and a caret
    res = runner.invoke(app, ["--debug", "--set", f"data_root={data_root}", *args])
    assert res.exit_code == code and "Traceback" in res.output, res.output


def test_no_trained_model_is_a_failure_not_a_bug() -> None:
    from chfen.train.run import NoFinishedRunError
    from flows.cli import exit_code_for

    assert exit_code_for(NoFinishedRunError("no finished training run; train first")) == 1


# ---- point 1: check and repair ----------------------------------------------------------------


def test_cut_videos_file_check_info_sql_and_repair(data_root: Path) -> None:
    wh = Warehouse(data_root)
    victim = Path(wh.live_files("videos")[1][0])
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])

    res = chfen(data_root, "warehouse", "check")
    assert res.exit_code == 1 and "Traceback" not in res.output, res.output
    assert victim.name in res.output and "damaged: videos" in res.output
    res = chfen(data_root, "warehouse", "info")
    assert res.exit_code == 0, res.output
    assert "DAMAGED" in res.output and "repair videos" in res.output
    assert "│ scenes" in res.output  # the other tables are listed as usual
    res = chfen(data_root, "sql", "SELECT count(*) AS n FROM scenes", "--csv")
    assert res.exit_code == 0 and res.output.splitlines()[-1] == "1", res.output
    res = chfen(data_root, "sql", "SELECT * FROM videos_latest")
    assert res.exit_code == 1 and "table videos is damaged" in " ".join(res.output.split())
    assert "query failed" not in res.output and "sql:" not in res.output, res.output

    res = chfen(data_root, "warehouse", "repair", "videos")
    assert res.exit_code == 0, res.output
    assert "lost" in res.output and victim.name in res.output and "1 row(s) kept" in res.output
    res = chfen(data_root, "warehouse", "check")
    assert res.exit_code == 0 and "DAMAGED" not in res.output, res.output
    res = chfen(data_root, "sql", "SELECT count(*) AS n FROM videos_latest", "--csv")
    assert res.exit_code == 0 and res.output.splitlines()[-1] == "1", res.output
    assert chfen(data_root, "warehouse", "repair", "vidoes").exit_code == 2


def test_crawl_summary_counts_each_page_once() -> None:
    """The outcome rows add up to the pages listed; the pages tried again after an earlier
    failure are a part of the downloaded and failed rows, said so and placed after them
    (probe: 1 downloaded + 1 'tried again' read as 11 of 10 pages)."""
    from rich.console import Console

    from flows.cli.show import print_crawl_summary

    summary = {
        "downloaded": 1, "already_known": 4, "failed_before": 3, "retried": 3,
        "failed_by_kind": {"timeout": 2}, "failures": [], "source_errors": [],
    }  # fmt: skip
    out = Console(record=True, width=100)
    print_crawl_summary(summary, out)
    rows = [line.strip("│ ").split("│") for line in out.export_text().splitlines()]
    counts = {r[0].strip(): int(r[-1]) for r in rows if len(r) > 1 and r[-1].strip().isdigit()}
    outcomes = {k: n for k, n in counts.items() if not k.startswith("of these")}
    assert sum(outcomes.values()) == 10, counts
    assert list(counts)[-1] == "of these, failed before and tried again", counts
