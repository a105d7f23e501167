"""Damaged tables (issue 18, point 1): a cut, missing or garbled Parquet file is found by
`check`, the other tables keep working, and `repair` writes a version of every readable row,
lists what was lost and makes the videos that lost rows pending again. Real Delta files."""

from __future__ import annotations

from pathlib import Path

import pytest

from warehouse import Warehouse, WarehouseError
from warehouse.repair import check, check_table, repair

WRITERS = {"scenes": ["scenes"], "videos": ["crawl"]}


def cut_in_half(path: Path) -> None:
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.truncate(size // 2)


def file_of(wh: Warehouse, table: str, video_id: str) -> Path:
    """The live file holding this video's rows (one commit per video in these tests)."""
    for uri in wh.live_files(table)[1]:
        if video_id in Path(uri).read_bytes().decode("latin-1"):
            return Path(uri)
    raise AssertionError(f"no file of {table} holds {video_id}")


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    wh = Warehouse(tmp_path / "data")
    for vid in ("v1", "v2", "v3"):
        wh.append("videos", [{"video_id": vid, "status": "ok", "title": vid}])
        wh.append(
            "scenes",
            [{"video_id": vid, "scene_idx": i, "start_s": i, "end_s": i + 1} for i in range(2)],
        )
        wh.mark_done(vid, "scenes", "1")
    return wh


def test_a_cut_file_is_named_and_other_tables_keep_working(wh: Warehouse) -> None:
    cut = file_of(wh, "scenes", "v2")
    cut_in_half(cut)
    fresh = Warehouse(wh.root.url)
    assert cut.name in fresh.damage("scenes") and fresh.damage("videos") is None
    results = {r.table: r for r in check(fresh)}
    assert not results["scenes"].ok and cut.name in results["scenes"].problems[0]
    assert all(r.ok for name, r in results.items() if name != "scenes")
    # readers of the other tables, the ledger included, still work; the catalog is rebuilt
    assert fresh.pending("scenes", "1") == []
    assert fresh.refresh_catalog() is not None
    assert fresh.query_read_only("SELECT count(*) AS n FROM videos").to_pylist() == [{"n": 3}]
    with pytest.raises(
        WarehouseError, match="table scenes is damaged.*warehouse repair scenes"
    ) as e:
        fresh.rows("SELECT count(*) FROM scenes")
    # the damage alone: not DuckDB's wrapping nor the (often internal) SQL that read it
    assert str(e.value).startswith("table scenes is damaged") and "sql:" not in str(e.value)


def test_garbage_inside_a_file_of_the_right_size_is_found_by_check(wh: Warehouse) -> None:
    path = file_of(wh, "videos", "v1")
    data = bytearray(path.read_bytes())
    data[4 : len(data) - 8] = b"\x00" * (len(data) - 12)  # keep magic bytes and size
    path.write_bytes(bytes(data))
    result = check_table(Warehouse(wh.root.url), "videos")
    assert not result.ok and "unreadable" in result.problems[0]


def test_repair_keeps_every_readable_row_and_resets_the_lost_videos(wh: Warehouse) -> None:
    cut_in_half(file_of(wh, "scenes", "v2"))
    fresh = Warehouse(wh.root.url)
    before = fresh.version("scenes")
    result = repair(fresh, "scenes", WRITERS)
    assert result.version_before == before and result.version_after == before + 1
    assert result.rows_kept == 4 and result.recovered == []
    assert [(x.rows, x.video_ids) for x in result.lost] == [(2, ("v2", "v2"))]
    assert result.videos == ["v2"] and result.ledger_reset == 1
    assert check_table(fresh, "scenes").ok and fresh.damage("scenes") is None
    rows = fresh.rows("SELECT DISTINCT video_id FROM scenes ORDER BY 1")
    assert [r["video_id"] for r in rows] == ["v1", "v3"]
    # the stage runs again for exactly the video that lost rows
    assert fresh.pending("scenes", "1") == ["v2"]
    assert repair(fresh, "scenes", WRITERS).version_after is None  # nothing left to do


def test_a_missing_file_is_repaired_too(wh: Warehouse) -> None:
    file_of(wh, "videos", "v3").unlink()
    fresh = Warehouse(wh.root.url)
    assert "missing" in fresh.damage("videos")
    result = repair(fresh, "videos", WRITERS)
    assert result.videos == ["v3"]
    rows = fresh.rows("SELECT video_id FROM videos_latest ORDER BY 1")
    assert [r["video_id"] for r in rows] == ["v1", "v2"]


def test_a_damaged_compacted_file_comes_back_from_the_files_it_merged(wh: Warehouse) -> None:
    wh.compact("scenes")
    (merged,) = wh.live_files("scenes")[1]
    cut_in_half(Path(merged))
    fresh = Warehouse(wh.root.url)
    result = repair(fresh, "scenes", WRITERS)
    assert result.recovered == [Path(merged).name] and result.lost == []
    assert result.rows_kept == 6 and result.videos == [] and result.ledger_reset == 0
    assert fresh.pending("scenes", "1") == []


def test_a_lost_batch_of_videos_resets_every_video_in_it(tmp_path: Path) -> None:
    """A batched commit holds many videos; the log's statistics give only the lowest and the
    highest id. Every video of the batch is made pending again (the ones in between too),
    and not one whose `videos` row survived in another file."""
    wh = Warehouse(tmp_path / "data")
    batch = ("v1", "v2", "v4")
    wh.append("videos", [{"video_id": v, "status": "ok", "title": v} for v in batch])
    wh.append("videos", [{"video_id": "v3", "status": "ok", "title": "v3"}])
    for vid in ("v1", "v2", "v3", "v4"):
        wh.mark_done(vid, "crawl", "1")
    cut_in_half(file_of(wh, "videos", "v2"))
    fresh = Warehouse(wh.root.url)
    result = repair(fresh, "videos", WRITERS)
    assert [(x.rows, x.video_ids) for x in result.lost] == [(3, ("v1", "v4"))]
    assert result.videos == ["v1", "v2", "v4"] and result.ledger_reset == 3
    rows = fresh.rows(
        "SELECT video_id, status FROM stage_runs_latest WHERE stage = 'crawl' ORDER BY 1"
    )
    assert {r["video_id"]: r["status"] for r in rows} == {
        "v1": "reset", "v2": "reset", "v3": "done", "v4": "reset"
    }  # fmt: skip
