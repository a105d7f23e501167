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
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from warehouse import Warehouse

ALGORITHM = "dct-phash-64/1"
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


def keyframes_without_hash(wh: Warehouse, limit: int | None = None) -> list[dict[str, Any]]:
    """Keyframes that need a (new) hash: video_id, scene_idx, keyframe_path."""
    sql = MISSING_HASHES_SQL + " ORDER BY s.video_id, s.scene_idx"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return wh.rows(sql, {"algorithm": ALGORITHM})


def fill_keyframe_hashes(
    wh: Warehouse,
    *,
    limit: int | None = None,
    workers: int = 2,
    on_progress: Callable[[int, int], None] | None = None,
) -> int:
    """Hash every keyframe that lacks a current hash; returns the rows written.

    Incremental: a keyframe is hashed again only when its scenes row is newer than its hash
    (the scenes stage re-ran) or the algorithm changed. OpenCV releases the GIL while it
    decodes and resizes, so a few threads help.
    """
    todo = keyframes_without_hash(wh, limit)
    if not todo:
        return 0
    media = wh.root.media_dir()
    written = 0
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for start in range(0, len(todo), BATCH):
            chunk = todo[start : start + BATCH]
            hashes: Sequence[int | None] = list(
                pool.map(lambda r: phash_file(media / r["keyframe_path"]), chunk)
            )
            now = dt.datetime.now(dt.UTC)
            rows = [
                {
                    "video_id": r["video_id"],
                    "scene_idx": r["scene_idx"],
                    "phash": h,
                    "algorithm": ALGORITHM,
                    "created_at": now,
                }
                for r, h in zip(chunk, hashes, strict=True)
            ]
            wh.append("keyframe_hashes", rows, refresh_catalog=False)
            written += len(rows)
            if on_progress is not None:
                on_progress(written, len(todo))
    wh.refresh_catalog()
    log.info("hashed %d keyframe(s) of %d video(s)", written, len({r["video_id"] for r in todo}))
    return written
