"""The scenes stage on generated clips with known cuts, through a real warehouse."""

from __future__ import annotations

import json
import subprocess
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from scenedetect.common import FrameTimecode
from scenedetect.detectors import ContentDetector

from chfen.config import ScenesConfig
from chfen.media.scenes import (
    STAGE,
    STAGE_VERSION,
    ContentScorer,
    FastContentDetector,
    ScenesStage,
    _KeyframeCandidates,
    _shrink,
    build_detector,
    detector_threshold,
    scan_video,
    small_bgr,
)
from chfen.media.testmedia import ClipTruth, register_video
from chfen.stages import run_for_video
from warehouse import Warehouse

EDGES = ContentDetector.Components(delta_edges=1.0)


def probe_fps(path: Path) -> float:
    """The container's average frame rate (what a frame_number / fps conversion would use)."""
    cap = cv2.VideoCapture(str(path))
    try:
        return float(cap.get(cv2.CAP_PROP_FPS))
    finally:
        cap.release()


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    return Warehouse(tmp_path / "data", catalog=False)


def run_scenes(wh: Warehouse, clip: ClipTruth, video_id: str, cfg: ScenesConfig | None = None):
    register_video(wh, video_id, video=clip.path, duration_s=clip.duration_s)
    outcome = run_for_video(wh, STAGE, STAGE_VERSION, video_id, ScenesStage(wh, cfg))
    rows = wh.rows("SELECT * FROM scenes WHERE video_id = ? ORDER BY scene_idx", [video_id])
    return outcome, rows


def test_every_hard_cut_found_within_one_frame_and_no_false_cut(wh, clips) -> None:
    clip = clips["cuts"]
    outcome, rows = run_scenes(wh, clip, "cuts")
    assert outcome.ok, outcome.message
    assert len(rows) == len(clip.cut_times) + 1  # no false cut, none missed
    starts = [r["start_s"] for r in rows[1:]]
    assert starts == pytest.approx(clip.cut_times, abs=clip.min_frame_period_s)
    assert [r["start_frame"] for r in rows[1:]] == clip.cut_frames
    # Scenes tile the clip: each ends where the next starts; the last ends at the clip's end.
    assert rows[0]["start_s"] == 0.0 and rows[0]["start_frame"] == 0
    for a, b in zip(rows, rows[1:], strict=False):
        assert a["end_s"] == b["start_s"] and a["end_frame"] == b["start_frame"]
    assert rows[-1]["end_s"] == pytest.approx(clip.duration_s, abs=clip.min_frame_period_s)
    assert rows[-1]["end_frame"] == clip.frames
    assert {r["detector"] for r in rows} == {"content"}
    assert {r["stage_version"] for r in rows} == {STAGE_VERSION}
    assert wh.stage_status("cuts", STAGE, STAGE_VERSION) == "done"


def test_vfr_cut_times_are_right_within_one_frame(wh, clips) -> None:
    clip = clips["vfr"]
    outcome, rows = run_scenes(wh, clip, "vfr")
    assert outcome.ok, outcome.message
    starts = [r["start_s"] for r in rows[1:]]
    assert starts == pytest.approx(clip.cut_times, abs=clip.min_frame_period_s)
    assert [r["start_frame"] for r in rows[1:]] == clip.cut_frames
    # The point of storing seconds: frame / average fps would put the later cuts far off.
    naive = [f / probe_fps(clip.path) for f in clip.cut_frames]
    assert max(abs(a - b) for a, b in zip(naive, clip.cut_times, strict=True)) > 0.2
    assert rows[-1]["end_s"] == pytest.approx(clip.duration_s, abs=clip.min_frame_period_s)


def test_a_single_shot_video_is_one_scene(wh, clips) -> None:
    clip = clips["single"]
    outcome, rows = run_scenes(wh, clip, "single")
    assert outcome.ok, outcome.message
    assert len(rows) == 1
    assert rows[0]["start_s"] == 0.0
    assert rows[0]["end_s"] == pytest.approx(4.0, abs=clip.min_frame_period_s)
    assert (rows[0]["start_frame"], rows[0]["end_frame"]) == (0, 120)


def test_a_clip_shorter_than_a_second_has_one_scene_keyframe_and_still(wh, clips) -> None:
    outcome, rows = run_scenes(wh, clips["tiny"], "tiny")
    assert outcome.ok, outcome.message
    assert len(rows) == 1 and rows[0]["end_frame"] == 5
    media = wh.root.media_dir()
    assert (media / rows[0]["keyframe_path"]).is_file()
    index = json.loads((media / "tiny" / "frames" / "index.json").read_text())
    assert [s["idx"] for s in index["stills"]] == [0]


def test_one_keyframe_per_scene_from_inside_the_scene(wh, clips) -> None:
    clip = clips["cuts"]
    outcome, rows = run_scenes(wh, clip, "kf")
    assert outcome.ok
    media = wh.root.media_dir()
    cap = cv2.VideoCapture(str(clip.path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame.astype(np.float32))
    cap.release()
    for row in rows:
        assert row["keyframe_path"] == f"kf/keyframes/scene_{row['scene_idx']:04d}.jpg"
        image = cv2.imread(str(media / row["keyframe_path"]))
        assert image is not None and image.shape == (640, 360, 3)
        # The keyframe is (a JPEG of) a frame near the scene's middle: among the frames around
        # the middle is one as close to it as any frame of the video (static shots have many).
        start, end = row["start_frame"], row["end_frame"]
        mid, tol = (start + end - 1) // 2, max(2, (end - start) // 8)
        errors = [float(np.abs(image - f).mean()) for f in frames]
        assert min(errors[mid - tol : mid + tol + 1]) <= min(errors) + 0.5
        assert start <= int(np.argmin(errors)) < end or min(errors[start:end]) <= min(errors) + 0.5


def test_stills_on_the_time_grid(wh, clips) -> None:
    clip = clips["vfr"]
    cfg = ScenesConfig(stills_per_second=2.0)
    outcome, _ = run_scenes(wh, clip, "stills", cfg)
    assert outcome.ok
    folder = wh.root.media_dir("stills") / "frames"
    index = json.loads((folder / "index.json").read_text())
    assert index["rate"] == 2.0
    stills = index["stills"]
    assert [s["idx"] for s in stills] == list(range(int(clip.duration_s * 2)))
    assert [s["t_s"] for s in stills] == [k / 2 for k in range(len(stills))]
    for s in stills:
        assert cv2.imread(str(folder / s["path"])) is not None
    # Still k is the frame on screen at k / rate: at 2.0 s (a cut) the first frame of shot 2.
    by_time = {s["t_s"]: s["frame"] for s in stills}
    assert by_time[0.0] == 0 and by_time[2.0] == 60 and by_time[2.5] == 60 + 7
    assert by_time[4.0] == 90 and by_time[6.0] == 138


def test_a_rerun_replaces_the_files_whole(wh, clips) -> None:
    clip = clips["cuts"]
    register_video(wh, "again", video=clip.path, duration_s=clip.duration_s)
    folder = wh.root.media_dir("again")
    for cfg in (ScenesConfig(), ScenesConfig(stills_per_second=0.5)):
        outcome = run_for_video(wh, STAGE, STAGE_VERSION, "again", ScenesStage(wh, cfg))
        assert outcome.ok
    assert sorted(p.name for p in folder.iterdir()) == ["frames", "keyframes", "video.mp4"]
    assert len(list((folder / "frames").glob("*.jpg"))) == 6  # 12 s at 0.5 per second
    assert len(list((folder / "keyframes").glob("*.jpg"))) == len(clip.cut_times) + 1


def test_a_missing_file_fails_naming_video_and_stage(wh, clips) -> None:
    register_video(wh, "gone", video=clips["single"].path, duration_s=4.0)
    (wh.root.media_dir("gone") / "video.mp4").unlink()
    outcome = run_for_video(wh, STAGE, STAGE_VERSION, "gone", ScenesStage(wh))
    assert not outcome.ok and outcome.kind == "corrupt"
    (failure,) = wh.rows("SELECT * FROM failures WHERE video_id = 'gone'")
    assert failure["stage"] == STAGE and failure["error_kind"] == "corrupt"
    assert "re-crawl" in failure["error"]
    assert wh.rows("SELECT * FROM scenes WHERE video_id = 'gone'") == []


def test_a_truncated_file_is_corrupt_not_a_short_video(wh, clips, tmp_path) -> None:
    source = clips["cuts"].path
    fast = tmp_path / "fast.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(source), "-c", "copy",
         "-movflags", "+faststart", str(fast)],
        check=True,
    )  # fmt: skip
    data = fast.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    register_video(wh, "cut", video=cut, duration_s=clips["cuts"].duration_s)
    outcome = run_for_video(wh, STAGE, STAGE_VERSION, "cut", ScenesStage(wh))
    assert not outcome.ok and outcome.kind == "corrupt", outcome
    assert "truncated" in (outcome.message or "") or "decoded" in (outcome.message or "")


def test_garbage_is_corrupt(wh, tmp_path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).bytes(50_000))
    register_video(wh, "junk", video=junk, duration_s=5.0)
    outcome = run_for_video(wh, STAGE, STAGE_VERSION, "junk", ScenesStage(wh))
    assert not outcome.ok and outcome.kind == "corrupt"
    assert "junk" not in wh.rows("SELECT video_id FROM scenes")


def test_a_video_without_a_row_is_refused(wh) -> None:
    outcome = run_for_video(wh, STAGE, STAGE_VERSION, "nobody", ScenesStage(wh))
    assert not outcome.ok and "crawl" in (outcome.message or "")


@pytest.mark.parametrize("detector", ["adaptive", "histogram", "hash"])
def test_other_detectors_use_their_own_default_threshold(clips, detector) -> None:
    cfg = ScenesConfig(detector=detector)
    assert detector_threshold(cfg) != 27.0
    assert detector_threshold(ScenesConfig(detector=detector, threshold=5.0)) == 5.0
    assert type(build_detector(cfg)).__name__.lower().startswith(detector)
    clip = clips["cuts"]
    scan = scan_video(clip.path, cfg)
    found = [s.start_s for s in scan.scenes[1:]]
    # Each finds real cuts only (at a cut, within a frame), whatever it misses.
    for t in found:
        assert min(abs(t - c) for c in clip.cut_times) <= clip.min_frame_period_s


def test_min_scene_length_merges_short_shots(clips) -> None:
    clip = clips["cuts"]
    scan = scan_video(clip.path, ScenesConfig(min_scene_len_s=1.6))
    lengths = [s.end_s - s.start_s for s in scan.scenes[:-1]]
    assert all(length >= 1.6 - 1e-6 for length in lengths)
    assert len(scan.scenes) < len(clip.cut_times) + 1


def test_keyframe_candidates_stay_bounded_and_central() -> None:
    buf = _KeyframeCandidates(capacity=8)
    frames = [np.full((1, 1), i, dtype=np.int32) for i in range(1000)]
    for i in range(600):
        buf.offer(i, frames[i])
        assert len(buf.frames) <= 8
    ended = buf.close_scene(600)
    picked = int(_KeyframeCandidates.middle(ended, 0, 600)[0, 0])
    assert abs(picked - 299.5) <= 600 / 8
    for i in range(600, 610):
        buf.offer(i, frames[i])
    assert int(_KeyframeCandidates.middle(buf.frames, 600, 610)[0, 0]) in (604, 605)
    assert _KeyframeCandidates.middle([], 0, 10) is None


def test_fast_content_detector_scores_exactly_like_pyscenedetect(clips) -> None:
    import av

    stock, fast = ContentDetector(), FastContentDetector()
    cuts_stock, cuts_fast = [], []
    with av.open(str(clips["cuts"].path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            small = small_bgr(frame, 72, 128)
            timecode = FrameTimecode(i, Fraction(30))
            cuts_stock += stock.process_frame(timecode, small)
            cuts_fast += fast.process_frame(timecode, small)
            assert fast._frame_score == pytest.approx(stock._frame_score, abs=1e-9)
    assert [c.frame_num for c in cuts_fast] == [c.frame_num for c in cuts_stock]
    assert [c.frame_num for c in cuts_fast] == clips["cuts"].cut_frames


def test_content_scorer_on_yuv_planes_gives_the_detectors_exact_scores(clips) -> None:
    """The stage's scorer (YUV planes, reused buffers) against FastContentDetector on
    small_bgr frames, frame by frame, including a frame in another pixel format."""
    import av

    reference = FastContentDetector()
    direct = FastContentDetector()
    scorer = ContentScorer.for_detector(direct, 72, 128)
    assert scorer is not None
    assert ContentScorer.for_detector(ContentDetector(), 72, 128) is None
    assert ContentScorer.for_detector(FastContentDetector(weights=EDGES), 72, 128) is None
    cuts_reference, cuts_direct = [], []
    with av.open(str(clips["cuts"].path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == 40:  # a stray RGB frame takes the small_bgr path
                frame = frame.reformat(format="rgb24")
            timecode = FrameTimecode(i, Fraction(30))
            cuts_reference += reference.process_frame(timecode, small_bgr(frame, 72, 128))
            cuts_direct += direct.process_score(timecode, scorer.score(frame))
            assert direct._frame_score == reference._frame_score  # exactly, not approximately
    assert [c.frame_num for c in cuts_direct] == clips["cuts"].cut_frames
    assert [c.frame_num for c in cuts_direct] == [c.frame_num for c in cuts_reference]


@pytest.mark.parametrize("interpolation", [cv2.INTER_LINEAR, cv2.INTER_NEAREST])
@pytest.mark.parametrize(
    ("src", "dst"),
    [((1280, 720), (256, 144)), ((640, 360), (128, 72)), ((90, 60), (30, 20)), ((96, 64), (48, 32)),
     ((49, 35), (7, 5)), ((1920, 1080), (256, 144)), ((100, 100), (100, 100))],
)  # fmt: skip
def test_shrink_is_bit_identical_to_cv2_resize(src, dst, interpolation) -> None:
    """Strided copies at integer ratios (odd ones for linear), cv2.resize otherwise: the
    detector sees exactly the image OpenCV would give it."""
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, size=src, dtype=np.uint8)
    expected = cv2.resize(image, (dst[1], dst[0]), interpolation=interpolation)
    out = np.empty(dst, np.uint8)
    _shrink(image, out, interpolation)
    assert np.array_equal(out, expected)


def test_small_bgr_matches_a_full_conversion_scaled_down(clips) -> None:
    import av

    with av.open(str(clips["cuts"].path)) as container:
        frame = next(container.decode(video=0))
        quick = small_bgr(frame, 72, 128)
        full = cv2.resize(frame.to_ndarray(format="bgr24"), (72, 128), interpolation=cv2.INTER_AREA)
    assert quick.shape == full.shape == (128, 72, 3)
    assert float(np.abs(quick.astype(int) - full.astype(int)).mean()) < 12.0


def test_rotated_phone_video_gives_upright_keyframes(wh, clips, tmp_path) -> None:
    rotated = tmp_path / "rotated.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(clips["single"].path), "-c", "copy",
         "-metadata:s:v:0", "rotate=90", str(rotated)],
        check=True,
    )  # fmt: skip
    outcome, rows = run_scenes(wh, ClipTruth(rotated, [], [], 120, 4.0, 1 / 30), "turned")
    assert outcome.ok
    image = cv2.imread(str(wh.root.media_dir() / rows[0]["keyframe_path"]))
    assert image.shape[:2] == (360, 640)  # a 360x640 portrait clip shown turned: landscape
