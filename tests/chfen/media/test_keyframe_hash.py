"""Perceptual hashes of keyframes: robust to what a re-upload does, different for different
pictures, none for flat frames; filled incrementally into `keyframe_hashes`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import cv2
import numpy as np

from chfen.media.keyframe_hash import (
    ALGORITHM,
    SCENES,
    STAGE,
    STAGE_VERSION,
    KeyframeHashStage,
    fill_keyframe_hashes,
    hamming,
    pending_videos,
    phash_file,
    phash_image,
)
from chfen.stages import run_for_video
from warehouse import Warehouse


def picture(seed: int, size: tuple[int, int] = (640, 360)) -> np.ndarray:
    """A BGR frame: a gradient background and a few filled shapes, seeded."""
    rng = np.random.default_rng(seed)
    w, h = size
    ramp = np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
    colours = rng.uniform(0, 255, (2, 3)).astype(np.float32)
    img = (colours[0] * (1 - ramp) + colours[1] * ramp).repeat(h, axis=0).astype(np.uint8)
    for _ in range(4):
        x, y = int(rng.uniform(0, w - 80)), int(rng.uniform(0, h - 80))
        side = int(rng.uniform(40, 140))
        colour = tuple(int(c) for c in rng.uniform(0, 255, 3))
        cv2.rectangle(img, (x, y), (x + side, y + side // 2), colour, -1)
        cv2.circle(img, (w - x, h - y), side // 3, colour[::-1], -1)
    return img


def grey(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)


def reupload(img: np.ndarray, scale: float = 0.5, quality: int = 40) -> np.ndarray:
    """Smaller, blurrier, recompressed: what the demo site's re-uploads do to a video."""
    small = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (3, 3), 0)
    ok, jpg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(jpg, cv2.IMREAD_COLOR)


def test_a_reupload_keeps_its_hash_and_other_pictures_do_not() -> None:
    for seed in range(5):
        original = phash_image(grey(picture(seed)))
        copy = phash_image(grey(reupload(picture(seed))))
        assert original is not None and copy is not None
        assert -(2**63) <= original < 2**63  # fits the int64 column
        assert hamming(original, copy) <= 4, seed
        for other in range(5):
            if other != seed:
                assert hamming(original, phash_image(grey(picture(other)))) >= 12


def test_flat_frames_get_no_hash() -> None:
    assert phash_image(np.full((360, 640), 128, np.uint8)) is None
    noisy = np.random.default_rng(0).normal(128, 0.5, (360, 640)).clip(0, 255).astype(np.uint8)
    assert phash_image(noisy) is None


def test_hamming_handles_signed_values() -> None:
    assert hamming(-1, 0) == 64 and hamming(-(2**63), 0) == 1 and hamming(5, 5) == 0


def _scene_rows(video_id: str, n: int, created: dt.datetime) -> list[dict]:
    return [
        {"video_id": video_id, "scene_idx": i, "start_s": float(i), "end_s": i + 1.0,
         "keyframe_path": f"{video_id}/keyframes/scene_{i:04d}.jpg", "created_at": created}
        for i in range(n)
    ]  # fmt: skip


def test_fill_is_incremental_and_follows_scene_reruns(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "data")
    wh.append("videos", [{"video_id": "a", "status": "ok"}, {"video_id": "b", "status": "ok"}])
    for vid, seeds in (("a", (1, 2)), ("b", (3,))):
        folder = wh.root.media_dir(vid) / "keyframes"
        folder.mkdir(parents=True)
        for i, seed in enumerate(seeds):
            cv2.imwrite(str(folder / f"scene_{i:04d}.jpg"), picture(seed))
    first = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    wh.append("scenes", _scene_rows("a", 2, first) + _scene_rows("b", 2, first))  # b/1 missing

    assert fill_keyframe_hashes(wh) == 4
    rows = {(r["video_id"], r["scene_idx"]): r for r in wh.rows("SELECT * FROM keyframe_hashes")}
    assert rows[("a", 0)]["phash"] == phash_file(wh.root.media_dir() / "a/keyframes/scene_0000.jpg")
    assert rows[("b", 1)]["phash"] is None  # the file is missing: no hash, no crash
    assert {r["algorithm"] for r in rows.values()} == {ALGORITHM}
    assert fill_keyframe_hashes(wh) == 0

    # the scenes stage re-ran for `a`: its keyframes are hashed again, b's are not
    wh.append("scenes", _scene_rows("a", 1, dt.datetime.now(dt.UTC)))
    assert fill_keyframe_hashes(wh) == 1
    assert fill_keyframe_hashes(wh) == 0


def test_hashing_is_a_ledger_stage_skipped_on_a_second_run(tmp_path: Path) -> None:
    """Each video hashed gets a `done` row of the keyframe_hash stage; a second run finds no
    pending video and writes nothing. A video whose scenes are done but whose keyframes were
    hashed before the stage had ledger rows (an older warehouse) is marked done, unhashed."""
    wh = Warehouse(tmp_path / "data")
    wh.append("videos", [{"video_id": v, "status": "ok"} for v in ("a", "b", "old")])
    for vid in ("a", "b", "old"):
        folder = wh.root.media_dir(vid) / "keyframes"
        folder.mkdir(parents=True)
        cv2.imwrite(str(folder / "scene_0000.jpg"), picture(len(vid)))
    created = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    wh.append("scenes", [r for v in ("a", "b", "old") for r in _scene_rows(v, 1, created)])
    for vid in ("a", "b", "old"):
        wh.mark_done(vid, SCENES, "1")
    wh.append(  # `old` was hashed by the quality report before hashing had ledger rows
        "keyframe_hashes",
        [{"video_id": "old", "scene_idx": 0, "phash": 1, "algorithm": ALGORITHM,
          "created_at": dt.datetime.now(dt.UTC)}],
    )  # fmt: skip
    assert pending_videos(wh) == ["a", "b", "old"]

    assert fill_keyframe_hashes(wh) == 2
    ledger = wh.rows(
        "SELECT video_id, stage_version, status FROM stage_runs_latest WHERE stage = ? "
        "ORDER BY video_id",
        [STAGE],
    )
    assert ledger == [
        {"video_id": v, "stage_version": STAGE_VERSION, "status": "done"} for v in ("a", "b", "old")
    ]
    assert wh.rows("SELECT phash FROM keyframe_hashes WHERE video_id = 'old'") == [{"phash": 1}]
    runs = wh.count("stage_runs")
    assert pending_videos(wh) == []
    assert fill_keyframe_hashes(wh) == 0
    assert wh.count("stage_runs") == runs  # skipped: no new ledger rows

    # the stage contract: one video through run_for_video
    wh.append("scenes", _scene_rows("a", 1, dt.datetime.now(dt.UTC)))  # scenes re-ran for a
    assert pending_videos(wh) == ["a"]
    outcome = run_for_video(wh, STAGE, STAGE_VERSION, "a", KeyframeHashStage(wh))
    assert outcome.ok and outcome.rows == {"keyframe_hashes": 1}
    assert pending_videos(wh) == []


def test_a_warehouse_hashed_before_the_ledger_is_marked_done_without_writing(
    tmp_path: Path,
) -> None:
    """Every video's keyframes were hashed (by the quality report) before hashing had ledger
    rows: the stage writes no hash, only `done` rows (an empty batch once failed here)."""
    wh = Warehouse(tmp_path / "data")
    wh.append("videos", [{"video_id": v, "status": "ok"} for v in ("x", "y")])
    created = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    wh.append("scenes", [r for v in ("x", "y") for r in _scene_rows(v, 1, created)])
    for vid in ("x", "y"):
        wh.mark_done(vid, SCENES, "1")
    wh.append(
        "keyframe_hashes",
        [{"video_id": v, "scene_idx": 0, "phash": 7, "algorithm": ALGORITHM,
          "created_at": dt.datetime.now(dt.UTC)} for v in ("x", "y")],
    )  # fmt: skip
    assert pending_videos(wh) == ["x", "y"]
    assert fill_keyframe_hashes(wh) == 0
    ledger = wh.rows(
        "SELECT video_id, status FROM stage_runs_latest WHERE stage = ? ORDER BY video_id",
        [STAGE],
    )
    assert ledger == [{"video_id": v, "status": "done"} for v in ("x", "y")]
    assert pending_videos(wh) == []
