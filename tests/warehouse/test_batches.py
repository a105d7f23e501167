"""Fewer small files (issue 18, point 8): `Warehouse.batched` commits a stage's per-video rows
in batches (by count and by age, the ledger last) and `compact_small_files` merges a table's
files once it passes a threshold. Real Delta tables on disk."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from warehouse import Warehouse, WarehouseError


def video(i: int) -> dict:
    return {"video_id": f"v{i:04d}", "status": "ok", "title": f"video {i}"}


def one_video(wh: Warehouse, i: int) -> None:
    """What a stage does per video: its rows, then the ledger row."""
    wh.append("videos", [video(i)], refresh_catalog=False)
    wh.mark_done(f"v{i:04d}", "crawl", "1")


def files(wh: Warehouse, table: str) -> int:
    return len(wh.live_files(table)[1])


def test_batches_by_count_commit_once_per_batch_and_the_rest_at_the_end(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "data")
    with wh.batched(max_videos=20, max_seconds=3600):
        for i in range(45):
            one_video(wh, i)
            if i == 10:  # waiting rows are not visible yet
                assert wh.count("videos") == 0 and wh.pending("scenes", "1") == []
        assert wh.count("videos") == 40  # two full batches committed on the way
    assert wh.count("videos") == 45 and len(wh.pending("scenes", "1")) == 45
    assert files(wh, "videos") == 3 and files(wh, "stage_runs") == 3
    assert wh.version("videos") == 3 and wh.version("stage_runs") == 3


def test_batches_by_age_and_from_many_threads(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "data")
    with wh.batched(max_videos=1000, max_seconds=0.3):
        one_video(wh, 0)
        time.sleep(0.4)
        one_video(wh, 1)  # the oldest waiting row is older than 0.3 s: both committed
        assert wh.count("videos") == 2

        def worker(k: int) -> None:
            for i in range(10):
                one_video(wh, 100 + 10 * k + i)

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    ledger = wh.rows("SELECT video_id FROM stage_runs_latest WHERE stage = 'crawl'")
    assert wh.count("videos") == 42 and len(ledger) == 42


def test_a_failing_block_still_commits_the_finished_videos(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "data")
    with pytest.raises(RuntimeError, match="boom"):
        with wh.batched(max_videos=50, max_seconds=3600):
            one_video(wh, 0)
            one_video(wh, 1)
            raise RuntimeError("boom")
    assert wh.count("videos") == 2 and files(wh, "videos") == 1


def test_the_ledger_is_committed_after_the_rows_it_vouches_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flush that dies at the ledger leaves the videos pending (done again), never marked
    done without their rows."""
    wh = Warehouse(tmp_path / "data")
    real = wh._commit

    def commit(table: str, data) -> None:
        if table == "stage_runs":
            raise WarehouseError("disk full")
        real(table, data)

    monkeypatch.setattr(wh, "_commit", commit)
    with pytest.raises(WarehouseError, match="disk full"):
        with wh.batched(max_videos=50, max_seconds=3600):
            one_video(wh, 0)
    assert wh.count("videos") == 1 and wh.count("stage_runs") == 0
    assert wh.pending("crawl", "1") == ["v0000"]


def test_compaction_only_past_the_threshold(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "data")
    for i in range(12):
        wh.append("videos", [video(i)], refresh_catalog=False)
    assert files(wh, "videos") == 12
    assert wh.compact_small_files(["videos"], 0) == []  # 0: never
    assert wh.compact_small_files(["videos"], 12) == []  # not past it
    (done,) = wh.compact_small_files(["videos", "scenes"], 10)
    assert done["table"] == "videos" and done["numFilesRemoved"] == 12
    assert files(wh, "videos") == 1 and wh.count("videos") == 12
    assert {r["video_id"] for r in wh.rows("SELECT video_id FROM videos_latest")} == {
        f"v{i:04d}" for i in range(12)
    }
