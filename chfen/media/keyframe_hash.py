"""Perceptual hashes of scene keyframes (table `keyframe_hashes`), for near-duplicate videos.

The hash is the classic DCT pHash: the keyframe in grey, shrunk to 32x32, its 8x8 lowest
DCT frequencies, one bit per frequency (above their median or not). It survives rescaling,
re-encoding and blur, which is what a re-upload does to a video. Difference hashes (dHash)
and average hashes (aHash) were measured on the demo site and rejected: on flat backgrounds
with a small moving element nearly all their bits are equal, so unrelated keyframes collide
at distance 0, while the pHash of re-uploads stays within 2 bits and unrelated keyframes
differ by 10 bits or more.

Flat (nearly uniform) keyframes carry no shape to hash; they get a null hash, which matches
nothing. The SQL that pairs hashes lives in `warehouse.quality`.

The stage `keyframe_hash` (chfen/registry.py) runs after `scenes`, in the pipeline, and
incrementally before the quality report and training (`fill_keyframe_hashes`); each video it
hashed is done in the stage ledger.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from chfen import registry
from chfen.stages import StageResult, Timer
from warehouse import Warehouse

STAGE = registry.KEYFRAME_HASH
STAGE_VERSION = registry.version(STAGE)
SCENES = registry.get(STAGE).after[0]  # the stage whose keyframes are hashed
ALGORITHM = "dct-phash-64/1"  # a new algorithm: bump the stage version in chfen/registry.py
HASH_SIZE = 8  # 8x8 = 64 bits
SHRINK = 32  # the DCT runs over a SHRINK x SHRINK grey image
FLAT_STD = 2.0  # grey levels: below this standard deviation a keyframe counts as flat
BATCH = 5000  # rows per commit

log = logging.getLogger("chfen.keyframe_hash")


def phash_image(grey: np.ndarray) -> int | None:
    """The 64-bit DCT perceptual hash of a greyscale image, as a signed int64 (None if flat)."""
    small = cv2.resize(grey, (SHRINK, SHRINK), interpolation=cv2.INTER_AREA).astype(np.float32)
    if float(small.std()) < FLAT_STD:
        return None
    low = cv2.dct(small)[:HASH_SIZE, :HASH_SIZE].flatten()
    # The DC term (overall brightness) stays out of the median: brightness changes nothing.
    bits = low > np.median(low[1:])
    value = int.from_bytes(np.packbits(bits).tobytes(), "big")
    return value - (1 << 64) if value >= 1 << 63 else value


def phash_file(path: Path) -> int | None:
    """The hash of an image file; None when it is flat, missing or unreadable."""
    grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if grey is None or grey.size == 0:
        log.warning("keyframe %s is missing or unreadable; it gets no hash", path)
        return None
    return phash_image(grey)


def hamming(a: int, b: int) -> int:
    """Bits in which two hashes differ (signed or unsigned 64-bit ints)."""
    return ((a ^ b) & ((1 << 64) - 1)).bit_count()


# Keyframes of the newest scenes of good videos with no hash of this algorithm as new as their
# scene row (parameter $algorithm).
MISSING_HASHES_SQL = """
    SELECT s.video_id, s.scene_idx, s.keyframe_path
    FROM quality_scenes s
    JOIN quality_videos v ON v.video_id = s.video_id
    WHERE s.keyframe_path IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM keyframe_hashes h
        WHERE h.video_id = s.video_id AND h.scene_idx = s.scene_idx
          AND h.created_at >= s.created_at AND h.algorithm = $algorithm)
"""


def keyframes_without_hash(
    wh: Warehouse, limit: int | None = None, video_id: str | None = None
) -> list[dict[str, Any]]:
    """Keyframes that need a (new) hash: video_id, scene_idx, keyframe_path (of one video if
    `video_id` is given)."""
    sql = MISSING_HASHES_SQL + (" AND s.video_id = $video_id" if video_id is not None else "")
    sql += " ORDER BY s.video_id, s.scene_idx"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    params: dict[str, Any] = {"algorithm": ALGORITHM}
    if video_id is not None:
        params["video_id"] = video_id
    return wh.rows(sql, params)


def pending_videos(wh: Warehouse, *, retry_failed: bool = False) -> list[str]:
    """Videos the stage has work for, by id: those with keyframes that lack a current hash
    (new scenes, a re-run of the scenes stage, a new algorithm), and those whose scenes stage
    is done without a ledger row of this stage at its version (a video without keyframes, or a
    warehouse hashed before hashing had ledger rows: done with nothing to write)."""
    skip = "('done')" if retry_failed else "('done', 'failed')"
    sql = f"""
        SELECT DISTINCT video_id FROM ({MISSING_HASHES_SQL})
        UNION
        SELECT s.video_id FROM stage_runs_latest s
        JOIN videos_latest v ON v.video_id = s.video_id AND v.status = 'ok'
        WHERE s.stage = $scenes AND s.status = 'done' AND NOT EXISTS (
            SELECT 1 FROM stage_runs_latest k
            WHERE k.video_id = s.video_id AND k.stage = $stage AND k.stage_version = $version
              AND k.status IN {skip})
        ORDER BY video_id
    """
    params = {"algorithm": ALGORITHM, "scenes": SCENES, "stage": STAGE, "version": STAGE_VERSION}
    return [r["video_id"] for r in wh.rows(sql, params)]


class KeyframeHashStage:
    """The keyframe-hash stage for one video (`chfen.stages` contract): hashes the video's
    keyframes that lack a current hash. `fill_keyframe_hashes` runs it for many videos at
    once, with one commit per batch instead of two per video."""

    name = STAGE
    version = STAGE_VERSION

    def __init__(self, wh: Warehouse, workers: int = 2):
        self.wh, self.workers = wh, max(1, workers)

    def hash_rows(self, keyframes: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """`keyframe_hashes` rows for these keyframes (OpenCV releases the GIL while it
        decodes and resizes, so a few threads help)."""
        media = self.wh.root.media_dir()
        with ThreadPoolExecutor(self.workers) as pool:
            hashes: Sequence[int | None] = list(
                pool.map(lambda r: phash_file(media / r["keyframe_path"]), keyframes)
            )
        now = dt.datetime.now(dt.UTC)
        return [
            {
                "video_id": r["video_id"],
                "scene_idx": r["scene_idx"],
                "phash": h,
                "algorithm": ALGORITHM,
                "created_at": now,
            }
            for r, h in zip(keyframes, hashes, strict=True)
        ]

    def __call__(self, video_id: str) -> StageResult:
        timer = Timer()
        with timer("hash"):
            rows = self.hash_rows(keyframes_without_hash(self.wh, video_id=video_id))
        return StageResult(video_id, {"keyframe_hashes": rows}, timer.timings)


def fill_keyframe_hashes(
    wh: Warehouse,
    *,
    limit: int | None = None,
    workers: int = 2,
    on_progress: Callable[[int, int], None] | None = None,
    retry_failed: bool = False,
) -> int:
    """Run the keyframe-hash stage for every pending video (`pending_videos`, at most `limit`
    videos); returns the hash rows written.

    Incremental: a keyframe is hashed again only when its scenes row is newer than its hash
    (the scenes stage re-ran) or the algorithm changed, and a video is done in the stage
    ledger once its keyframes are hashed: a second run finds nothing to do. Videos go in
    batches of about BATCH keyframes, each batch one commit of hashes and one of ledger rows;
    a batch that fails is marked failed for each of its videos, and the others go on.
    """
    videos = pending_videos(wh, retry_failed=retry_failed)[:limit]
    if not videos:
        return 0
    wanted = set(videos)
    by_video: dict[str, list[dict[str, Any]]] = {v: [] for v in videos}
    for r in keyframes_without_hash(wh):
        if r["video_id"] in wanted:
            by_video[r["video_id"]].append(r)
    total = sum(len(k) for k in by_video.values())
    stage = KeyframeHashStage(wh, workers)
    written = 0
    for batch in _batches(videos, by_video):
        started = dt.datetime.now(dt.UTC)
        t0 = time.perf_counter()
        keyframes = [k for v in batch for k in by_video[v]]
        try:
            rows = stage.hash_rows(keyframes)
            if rows:  # none: every video of the batch was hashed before it had ledger rows
                wh.append("keyframe_hashes", rows, refresh_catalog=False)
        except Exception as exc:  # a bug: record it for each video of the batch, go on
            log.exception("[%s] a batch of %d video(s) failed", STAGE, len(batch))
            for vid in batch:
                wh.mark_failed(
                    vid, STAGE, STAGE_VERSION, f"{type(exc).__name__}: {exc}",
                    error_kind="internal", started_at=started,
                )  # fmt: skip
            continue
        seconds = time.perf_counter() - t0
        share = seconds / max(1, len(keyframes))
        wh.mark_done_many(
            STAGE,
            STAGE_VERSION,
            [(v, {"hash": share * len(by_video[v])}, started) for v in batch],
            refresh_catalog=False,
        )
        written += len(rows)
        if on_progress is not None:
            on_progress(written, total)
    wh.refresh_catalog()
    log.info("hashed %d keyframe(s) of %d video(s)", written, len(videos))
    return written


def _batches(videos: Sequence[str], by_video: dict[str, list[Any]]) -> list[list[str]]:
    """Whole videos in batches of about BATCH keyframes (a video is never split)."""
    batches: list[list[str]] = [[]]
    size = 0
    for v in videos:
        if batches[-1] and size + len(by_video[v]) > BATCH:
            batches.append([])
            size = 0
        batches[-1].append(v)
        size += len(by_video[v])
    return batches
