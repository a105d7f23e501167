"""The warehouse against real Delta tables, real DuckDB and the real duckdb shell."""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest

from warehouse import SchemaError, Warehouse
from warehouse.schema import TABLES

DUCKDB_CLI = Path(os.environ.get("VIRTUAL_ENV", ".venv")) / "bin" / "duckdb"


def word_rows(writer: int, start: int, n: int, batch: int = 0) -> list[dict]:
    return [
        {
            "video_id": f"w{writer}",
            "word_idx": i,
            "word": f"word{i}",
            "start_s": float(i),
            "end_s": float(i) + 0.5,
            "segment_idx": batch,
        }
        for i in range(start, start + n)
    ]


def _append_worker(root: str, writer: int, batches: int, per_batch: int) -> None:
    wh = Warehouse(root)
    for b in range(batches):
        wh.append("transcript_words", word_rows(writer, b * per_batch, per_batch, b))


def _endless_writer(root: str, per_batch: int) -> None:
    wh = Warehouse(root)
    b = 0
    while True:
        wh.append("transcript_words", word_rows(9, b * per_batch, per_batch, b))
        b += 1


def duckdb_shell(db: Path, sql: str) -> str:
    cli = DUCKDB_CLI if DUCKDB_CLI.exists() else Path(shutil.which("duckdb") or "duckdb")
    out = subprocess.run(
        [str(cli), "-csv", "-noheader", str(db), "-c", sql],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout.strip()


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    return Warehouse(tmp_path / "data")


def test_every_table_exists_empty_and_queryable(wh: Warehouse) -> None:
    for name, spec in TABLES.items():
        assert wh.count(name) == 0
        assert wh.query(f"SELECT * FROM {name}").schema.names == spec.schema.names
    # the plain duckdb shell sees the same tables before anything was written
    assert duckdb_shell(wh.root.catalog_path(), "SELECT count(*) FROM videos_latest") == "0"


def test_concurrent_appends_from_four_processes(tmp_path: Path) -> None:
    root = str(tmp_path / "data")
    Warehouse(root)  # create the tables once, as the pipeline does before fanning out
    ctx = mp.get_context("spawn")  # delta-rs refuses to run in forked children
    procs = [ctx.Process(target=_append_worker, args=(root, w, 25, 100)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=240)
        assert p.exitcode == 0
    wh = Warehouse(root)
    got = wh.rows(
        "SELECT count(*) AS n, count(DISTINCT (video_id, word_idx)) AS keys FROM transcript_words"
    )[0]
    assert got == {"n": 10_000, "keys": 10_000}
    assert wh.version("transcript_words") == 100  # one commit per batch, none lost
    # whichever writer finished last left a catalog that shows every commit
    assert duckdb_shell(wh.root.catalog_path(), "SELECT count(*) FROM transcript_words") == "10000"


def test_sigkill_mid_write_never_exposes_a_partial_batch(tmp_path: Path) -> None:
    root = str(tmp_path / "data")
    wh = Warehouse(root)
    per_batch = 40_000  # big enough that the kill lands inside a write most of the time
    proc = mp.get_context("spawn").Process(target=_endless_writer, args=(root, per_batch))
    proc.start()
    deadline = time.monotonic() + 120
    while wh.version("transcript_words") < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.13)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    assert proc.exitcode == -signal.SIGKILL
    per = wh.rows("SELECT segment_idx, count(*) AS n FROM transcript_words GROUP BY 1 ORDER BY 1")
    assert len(per) >= 3
    assert all(r["n"] == per_batch for r in per), per  # whole batches only
    assert [r["segment_idx"] for r in per] == list(range(len(per)))
    # the table still takes writes and the shell still reads it
    wh.append("transcript_words", word_rows(1, 0, 10))
    total = len(per) * per_batch + 10
    assert wh.count("transcript_words") == total
    assert duckdb_shell(wh.root.catalog_path(), "SELECT count(*) FROM transcript_words") == str(
        total
    )


def test_compaction_during_concurrent_reads(wh: Warehouse) -> None:
    for b in range(40):
        wh.append("transcript_words", word_rows(1, b * 50, 50, b), refresh_catalog=False)
    wh.refresh_catalog()
    assert len(wh.live_files("transcript_words")[1]) == 40
    seen: list[tuple[int, int]] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        other = Warehouse(wh.root.url)  # a separate handle, as another process would have
        while not stop.is_set():
            try:
                r = other.rows(
                    "SELECT count(*) AS n, count(DISTINCT word_idx) AS k FROM transcript_words"
                )[0]
                seen.append((r["n"], r["k"]))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
                return

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    metrics = wh.compact("transcript_words")
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    assert len(seen) > 5
    assert set(seen) == {(2000, 2000)}
    assert metrics["numFilesRemoved"] == 40 and metrics["numFilesAdded"] == 1
    assert len(wh.live_files("transcript_words")[1]) == 1
    assert wh.count("transcript_words") == 2000


@pytest.mark.parametrize(
    ("rows", "column", "reason"),
    [
        ([{"video_id": "a", "status": "ok", "duration_s": "long"}], "duration_s", "not double"),
        ([{"video_id": "a", "status": "ok", "width": 1.5}], "width", "truncated"),
        ([{"status": "ok", "title": "no id"}], "video_id", "key column is missing"),
        ([{"video_id": None, "status": "ok"}], "video_id", "key column is missing or null"),
        ([{"video_id": "a", "status": "ok", "colour": "red"}], "colour", "not a column"),
        ([{"video_id": "a"}], "status", "required column is missing"),
    ],
)
def test_schema_rejection_names_table_and_column(
    wh: Warehouse, rows: list[dict], column: str, reason: str
) -> None:
    good = {"video_id": "ok1", "status": "ok"}
    with pytest.raises(SchemaError) as info:
        wh.append("videos", [good, *rows])
    assert info.value.table == "videos" and info.value.column == column
    assert f"videos.{column}" in str(info.value) and reason in str(info.value)
    assert wh.version("videos") == 0 and wh.count("videos") == 0  # nothing written, not even `good`


def test_arrow_input_is_validated_too(wh: Warehouse) -> None:
    bad = pa.table({"video_id": ["a"], "status": ["ok"], "width": pa.array([2**40])})
    with pytest.raises(SchemaError, match="videos.width"):
        wh.append("videos", bad)
    good = pa.table({"video_id": ["a"], "status": ["ok"], "width": pa.array([720])})
    wh.append("videos", good)
    assert wh.rows("SELECT width FROM videos") == [{"width": 720}]


def test_latest_view_versions_and_time_travel(wh: Warehouse) -> None:
    v1 = wh.append("videos", [{"video_id": "a", "status": "ok", "title": "first"}])
    time.sleep(0.002)
    wh.append("videos", [{"video_id": "a", "status": "removed", "title": "first"}])
    assert wh.count("videos") == 2
    assert wh.rows("SELECT video_id, status FROM videos_latest") == [
        {"video_id": "a", "status": "removed"}
    ]
    assert duckdb_shell(wh.root.catalog_path(), "SELECT status FROM videos_latest") == "removed"
    old = wh.read("videos", version=v1)
    assert old.num_rows == 1 and old.column("status").to_pylist() == ["ok"]


def test_query_parameters(wh: Warehouse) -> None:
    wh.append("videos", [{"video_id": f"v{i}", "status": "ok", "width": i} for i in range(5)])
    assert wh.rows("SELECT count(*) AS n FROM videos WHERE width >= ?", [3]) == [{"n": 2}]
    assert wh.rows("SELECT video_id FROM videos WHERE video_id = $id", {"id": "v4"}) == [
        {"video_id": "v4"}
    ]


def test_stage_ledger(wh: Warehouse) -> None:
    wh.append("videos", [{"video_id": v, "status": "ok"} for v in ("a", "b", "c")])
    wh.append("videos", [{"video_id": "gone", "status": "failed"}])
    assert wh.pending("scenes", "1") == ["a", "b", "c"]
    wh.mark_done("a", "scenes", "1", {"decode": 0.4, "detect": 0.1})
    wh.mark_failed("b", "scenes", "1", ValueError("cannot decode frame 12"), error_kind="corrupt")
    assert wh.pending("scenes", "1") == ["c"]
    assert wh.pending("scenes", "1", retry_failed=True) == ["b", "c"]
    assert wh.pending("scenes", "2") == ["a", "b", "c"]  # a new stage version redoes everything
    assert wh.pending("asr", "1") == ["a", "b", "c"]  # stages are independent
    fail = wh.rows("SELECT video_id, stage, error_kind, error FROM failures")
    assert fail == [
        {
            "video_id": "b",
            "stage": "scenes",
            "error_kind": "corrupt",
            "error": "cannot decode frame 12",
        }
    ]
    done = wh.rows("SELECT duration_s, timings_json FROM stage_runs WHERE status = 'done'")[0]
    assert done["duration_s"] == pytest.approx(0.5)
    # a later success supersedes the failure
    wh.mark_done("b", "scenes", "1")
    assert wh.stage_status("b", "scenes", "1") == "done"
    assert wh.pending("scenes", "1", retry_failed=True) == ["c"]
