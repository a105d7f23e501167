"""The scenes stage: shot boundaries (PySceneDetect), one keyframe per scene, and the
per-second stills the embedding stage reads, all from a single decode pass.

Times come from each decoded frame's presentation timestamp, never from frame_number / fps,
so cuts land at the right second on variable-frame-rate video too. Frame indices count the
frames actually decoded.

Files, under `media/<video_id>/` (paths in the tables are relative to the media root):

    keyframes/scene_0000.jpg  one per scene: the frame nearest the scene's middle
    frames/000000.jpg         still k: the frame on screen at t = k / scenes.stills_per_second
    frames/index.json         {"rate": r, "stills": [{"idx": k, "t_s": t, "frame": i, "path": p}]}
    (an audio-only file: no stills, and "audio_only": true)

A re-run replaces both folders whole; a failed run leaves the previous ones untouched.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import logging
import os
import queue
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from scenedetect.common import FrameTimecode, Timecode
from scenedetect.detector import SceneDetector
from scenedetect.detectors import (
    AdaptiveDetector,
    ContentDetector,
    HashDetector,
    HistogramDetector,
    ThresholdDetector,
)
from scenedetect.scene_manager import compute_downscale_factor

from chfen import registry
from chfen.config import ScenesConfig
from chfen.stages import StageError, StageResult, video_row
from warehouse import Warehouse

STAGE = registry.SCENES
STAGE_VERSION = registry.version(STAGE)

KEYFRAMES_DIR = "keyframes"
STILLS_DIR = "frames"
STILLS_INDEX = "index.json"

# PySceneDetect's own default threshold per detector; `scenes.threshold` (27 by default, the
# content detector's unit) only applies to another detector when it was set explicitly.
DEFAULT_THRESHOLDS: dict[str, float] = {
    "content": 27.0,
    "adaptive": 3.0,
    "threshold": 12.0,
    "hash": 0.35,
    "histogram": 0.2,
}

# Keyframe candidates kept per open scene (full-resolution frames): bounds memory while the
# frame nearest the scene's middle stays within scene_length / KEYFRAME_CANDIDATES of it.
KEYFRAME_CANDIDATES = 12
# Decoded frames buffered between the decode thread and the detector: FRAME_QUEUE, or as many
# as fit in FRAME_QUEUE_BYTES (at least FRAME_QUEUE_MIN). A deeper queue lets the decoder run
# on while the detector catches up.
FRAME_QUEUE = 32
FRAME_QUEUE_MIN = 8
FRAME_QUEUE_BYTES = 64 << 20
# JPEG writes in flight at once (each holds one full-resolution frame).
PENDING_WRITES = 4
# Niceness of the JPEG thread (see `_lower_priority`).
JPEG_NICE = 19
_US = Fraction(1, 1_000_000)

log = logging.getLogger("chfen.scenes")


class DecodeError(Exception):
    """The video cannot be opened or yields no frames."""


@dataclass(frozen=True)
class Scene:
    """One shot: [start_s, end_s) in seconds and [start_frame, end_frame) in decoded frames."""

    idx: int
    start_s: float
    end_s: float
    start_frame: int
    end_frame: int
    keyframe: str | None = None  # file name inside the keyframes folder


@dataclass(frozen=True)
class Still:
    """The frame on screen at grid time `t_s` (= idx / rate)."""

    idx: int
    t_s: float
    frame: int
    path: str


@dataclass
class SceneScan:
    """Everything one decode pass found out about a video."""

    scenes: list[Scene]
    stills: list[Still]
    frames: int
    width: int
    height: int
    fps: float
    decoded_s: float  # presentation time covered: last frame's time + its duration
    downscale: float
    timings: dict[str, float] = field(default_factory=dict)
    decode_error: str | None = None  # why decoding stopped before the end, if it did


def detector_threshold(cfg: ScenesConfig) -> float:
    """The threshold for the configured detector, in that detector's units."""
    if "threshold" in cfg.model_fields_set:
        return cfg.threshold
    return DEFAULT_THRESHOLDS[cfg.detector]


class FastContentDetector(ContentDetector):
    """PySceneDetect's ContentDetector with the same frame score computed by OpenCV.

    The score is the weighted mean absolute difference of the H, S and V channels between
    consecutive frames; `cv2.norm(L1)` gives exactly the sums PySceneDetect computes with
    int32 numpy arrays, in a tenth of the time. With edge weighting or a stats manager the
    stock computation runs instead. The scenes stage feeds it scores from `ContentScorer`
    (`process_score`), which works on the decoder's YUV planes directly.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._last_hsv: tuple[np.ndarray, ...] | None = None

    @property
    def fast(self) -> bool:
        """Whether the score is the plain HSV difference (no edges, no stats manager)."""
        return self._weights.delta_edges == 0.0 and self.stats_manager is None

    def combine(self, l1_sums: Any, pixels: int) -> float:
        """The frame score from the per-channel (H, S, V) L1 sums against the last frame."""
        weights = self._weights
        deltas = [float(total) / float(pixels) for total in l1_sums]
        parts = (weights.delta_hue, weights.delta_sat, weights.delta_lum)
        return sum(d * w for d, w in zip(deltas, parts, strict=True)) / sum(abs(w) for w in weights)

    def _calculate_frame_score(self, timecode: FrameTimecode, frame_img: np.ndarray) -> float:
        if not self.fast:
            return super()._calculate_frame_score(timecode, frame_img)
        channels = tuple(cv2.split(cv2.cvtColor(frame_img, cv2.COLOR_BGR2HSV)))
        last, self._last_hsv = self._last_hsv, channels
        if last is None:
            return 0.0
        sums = [cv2.norm(a, b, cv2.NORM_L1) for a, b in zip(channels, last, strict=True)]
        return self.combine(sums, channels[0].size)

    def process_score(self, timecode: FrameTimecode, score: float) -> list[FrameTimecode]:
        """`process_frame` for a frame whose score is already known: the threshold and the
        flash filter (minimum scene length), as ContentDetector applies them."""
        self._frame_score = score
        above = score >= self._threshold
        return self._flash_filter.filter(timecode=timecode, above_threshold=above)


class ContentScorer:
    """FastContentDetector's frame scores straight from decoded frames, in reused buffers.

    For 8-bit 4:2:0 frames the downscaled planes (as `small_bgr` makes them) are written into
    one preallocated I420 image, converted to BGR and HSV in place, and the L1 sums come from
    one absdiff + sumElems: the same integers as the per-channel norms, so the same scores,
    in seven calls instead of ten and with no allocation per frame. Other formats go through
    `small_bgr` (the same image as the detector would get).
    """

    def __init__(self, detector: FastContentDetector, width: int, height: int):
        self.detector = detector
        self.width, self.height = width, height
        self.i420 = np.zeros((height * 3 // 2, width), np.uint8)
        flat, luma = self.i420.reshape(-1), width * height
        self.y = flat[:luma].reshape(height, width)
        self.u = flat[luma : luma * 5 // 4].reshape(height // 2, width // 2)
        self.v = flat[luma * 5 // 4 :].reshape(height // 2, width // 2)
        self.bgr = np.empty((height, width, 3), np.uint8)
        self.hsv = [np.empty((height, width, 3), np.uint8) for _ in range(2)]
        self.diff = np.empty((height, width, 3), np.uint8)
        self.current = 0
        self.has_previous = False

    @classmethod
    def for_detector(cls, detector: SceneDetector, width: int, height: int) -> ContentScorer | None:
        if isinstance(detector, FastContentDetector) and detector.fast:
            return cls(detector, width, height)
        return None

    def score(self, frame: av.VideoFrame) -> float:
        if frame.format.name in ("yuv420p", "yuvj420p"):
            planes = frame.planes
            _shrink(_plane(planes[0]), self.y, cv2.INTER_LINEAR)
            _shrink(_plane(planes[1]), self.u, cv2.INTER_NEAREST)
            _shrink(_plane(planes[2]), self.v, cv2.INTER_NEAREST)
            bgr = cv2.cvtColor(self.i420, cv2.COLOR_YUV2BGR_I420, dst=self.bgr)
        else:
            bgr = small_bgr(frame, self.width, self.height)
        hsv = self.hsv[self.current]
        cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV, dst=hsv)
        self.current ^= 1
        if not self.has_previous:
            self.has_previous = True
            return 0.0
        cv2.absdiff(hsv, self.hsv[self.current], dst=self.diff)
        return self.detector.combine(cv2.sumElems(self.diff)[:3], self.width * self.height)


def build_detector(cfg: ScenesConfig) -> SceneDetector:
    """A fresh PySceneDetect detector (they keep state, so one per video)."""
    threshold = detector_threshold(cfg)
    # A float is read as seconds by PySceneDetect, which stays right on variable frame rate.
    min_len = float(cfg.min_scene_len_s)
    if cfg.detector == "content":
        return FastContentDetector(threshold=threshold, min_scene_len=min_len)
    if cfg.detector == "adaptive":
        return AdaptiveDetector(adaptive_threshold=threshold, min_scene_len=min_len)
    if cfg.detector == "threshold":
        return ThresholdDetector(threshold=threshold, min_scene_len=min_len)
    if cfg.detector == "hash":
        return HashDetector(threshold=threshold, min_scene_len=min_len)
    if cfg.detector == "histogram":
        return HistogramDetector(threshold=threshold, min_scene_len=min_len)
    raise ValueError(f"unknown scene detector {cfg.detector!r}")


class _DecodedFrames:
    """Frames of a video decoded by PyAV in a background thread: `(index, seconds, frame)`.

    FFmpeg decodes with its own threads and releases the GIL, so decoding overlaps
    detection. Times are presentation timestamps (pts × time base, from the stream's start),
    exact on VFR video. Frames stay in the decoder's YUV: only the few frames kept as stills
    or keyframes are ever converted to full-resolution BGR.
    """

    def __init__(self, path: Path):
        try:
            self.container = av.open(str(path))
        except (av.FFmpegError, OSError) as exc:
            raise DecodeError(f"cannot open {path.name}: {exc}") from None
        if not self.container.streams.video:
            self.container.close()
            raise DecodeError(f"{path.name} has no video stream")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        rate = self.stream.average_rate or self.stream.guessed_rate
        self.fps = float(rate) if rate else 0.0
        self.width = int(self.stream.codec_context.width)
        self.height = int(self.stream.codec_context.height)
        self.error: str | None = None  # why decoding stopped early, if it did
        frame_bytes = max(self.width * self.height * 3 // 2, 1)
        depth = max(FRAME_QUEUE_MIN, min(FRAME_QUEUE, FRAME_QUEUE_BYTES // frame_bytes))
        self._queue: queue.Queue[Any] = queue.Queue(depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scenes-decode", daemon=True)

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for frame in self.container.decode(self.stream):
                if not self._put(frame):
                    return
        except av.FFmpegError as exc:
            # Corrupt data mid-stream ends the stream; the caller judges what was decoded.
            self.error = str(exc)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._put(exc)
            return
        self._put(None)

    def __enter__(self) -> _DecodedFrames:
        self._thread.start()
        return self

    def __iter__(self) -> Iterator[tuple[int, float, av.VideoFrame]]:
        start = self.stream.start_time or 0
        base = self.stream.time_base
        step = 1.0 / self.fps if self.fps > 0 else 1.0 / 30
        previous = -step
        index = 0
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            if item.pts is not None and base is not None:
                t = round(float((item.pts - start) * base), 6)
            else:  # no timestamp (a raw elementary stream): assume the nominal rate
                t = round(previous + step, 6)
            previous = t
            yield index, t, item
            index += 1

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.container.close()


def _plane(plane: Any) -> np.ndarray:
    """A decoded plane as a 2-D uint8 view (no copy), without the row padding."""
    rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
    return rows[:, : plane.width]


def _integer_step(source: int, target: int) -> int | None:
    step, rest = divmod(source, target)
    return step if rest == 0 else None


def _shrink(src: np.ndarray, dst: np.ndarray, interpolation: int) -> None:
    """`cv2.resize(src, dst.shape, dst=dst, interpolation=...)`, bit for bit.

    At an integer ratio OpenCV's sampling lands on whole pixels (nearest: k*x; linear, odd k:
    k*x + (k-1)/2, with weights 1 and 0), so a strided copy gives the same image while
    reading a fraction of the source rows. Other ratios go through cv2.resize.
    """
    sy, sx = _integer_step(src.shape[0], dst.shape[0]), _integer_step(src.shape[1], dst.shape[1])
    if sy and sx:
        if interpolation == cv2.INTER_NEAREST:
            np.copyto(dst, src[::sy, ::sx])
            return
        if interpolation == cv2.INTER_LINEAR and sy % 2 and sx % 2:
            np.copyto(dst, src[sy // 2 :: sy, sx // 2 :: sx])
            return
    cv2.resize(src, (dst.shape[1], dst.shape[0]), dst=dst, interpolation=interpolation)


def small_bgr(frame: av.VideoFrame, width: int, height: int) -> np.ndarray:
    """A downscaled BGR copy of a frame for the detector.

    For 8-bit 4:2:0 video (nearly every upload) each YUV plane is resized on its own and
    only the small result is converted, which costs a fraction of a full-size conversion.
    `width` and `height` must be multiples of 4.
    """
    if frame.format.name in ("yuv420p", "yuvj420p"):
        y = cv2.resize(_plane(frame.planes[0]), (width, height), interpolation=cv2.INTER_LINEAR)
        # Chroma is smooth already (and half resolution): nearest sampling is enough.
        half = (width // 2, height // 2)
        u = cv2.resize(_plane(frame.planes[1]), half, interpolation=cv2.INTER_NEAREST)
        v = cv2.resize(_plane(frame.planes[2]), half, interpolation=cv2.INTER_NEAREST)
        i420 = np.concatenate([y.ravel(), u.ravel(), v.ravel()]).reshape(height * 3 // 2, width)
        return cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420)
    return frame.to_ndarray(width=width, height=height, format="bgr24")


_ROTATE = {
    90: cv2.ROTATE_90_COUNTERCLOCKWISE,
    -270: cv2.ROTATE_90_COUNTERCLOCKWISE,
    180: cv2.ROTATE_180,
    -180: cv2.ROTATE_180,
    270: cv2.ROTATE_90_CLOCKWISE,
    -90: cv2.ROTATE_90_CLOCKWISE,
}


def full_bgr(frame: av.VideoFrame) -> np.ndarray:
    """The frame at full resolution in BGR, turned upright (phone videos carry a rotation)."""
    image = frame.to_ndarray(format="bgr24")
    turn = _ROTATE.get(int(round(getattr(frame, "rotation", 0) or 0)) % 360 or 0)
    return cv2.rotate(image, turn) if turn is not None else image


class _KeyframeCandidates:
    """Full-resolution frames of the open scene at a stride that doubles whenever the buffer
    fills, so the frame nearest any scene's middle is kept in bounded memory."""

    def __init__(self, capacity: int = KEYFRAME_CANDIDATES):
        self.capacity = capacity
        self.first = 0
        self.stride = 1
        self.frames: list[tuple[int, Any]] = []

    def offer(self, index: int, frame: Any) -> None:
        if (index - self.first) % self.stride:
            return
        self.frames.append((index, frame))
        if len(self.frames) > self.capacity:
            self.frames = self.frames[::2]
            self.stride *= 2

    def close_scene(self, cut: int) -> list[tuple[int, Any]]:
        """Frames before `cut` (the scene that ends there); frames from `cut` on stay."""
        ended = [(i, f) for i, f in self.frames if i < cut]
        self.frames = [(i, f) for i, f in self.frames if i >= cut]
        self.first, self.stride = cut, 1
        return ended

    @staticmethod
    def middle(frames: list[tuple[int, Any]], start: int, end: int) -> Any | None:
        if not frames:
            return None
        mid = (start + end - 1) / 2
        return min(frames, key=lambda item: abs(item[0] - mid))[1]


def _lower_priority() -> None:
    """Run the calling thread at the lowest CPU priority (Linux: nice applies per thread).

    The JPEG thread then works in the gaps the decoder leaves (its frame threads wait on each
    other) instead of taking cores from it; the writes still finish before the stage ends.
    """
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), JPEG_NICE)
    except (AttributeError, OSError):  # not Linux, or not allowed: normal priority
        pass


class _JpegWriter:
    """Writes JPEGs on one background thread, a few at a time, raising the first error."""

    def __init__(self, quality: int):
        self.params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
        self.pool = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="scenes-jpeg", initializer=_lower_priority
        )
        self.pending: list[Future[None]] = []

    def _write(self, path: Path, frame: av.VideoFrame | np.ndarray) -> None:
        image = frame if isinstance(frame, np.ndarray) else full_bgr(frame)
        ok, data = cv2.imencode(".jpg", image, self.params)
        if not ok:
            raise OSError(f"JPEG encoding failed for {path.name}")
        path.write_bytes(data.tobytes())

    def submit(self, path: Path, frame: av.VideoFrame | np.ndarray) -> None:
        self.pending.append(self.pool.submit(self._write, path, frame))
        while len(self.pending) > PENDING_WRITES:
            self.pending.pop(0).result()

    def finish(self) -> None:
        try:
            for fut in self.pending:
                fut.result()
        finally:
            self.pending.clear()
            self.pool.shutdown(wait=True)


def _detector_size(width: int, height: int, downscale: float) -> tuple[int, int]:
    """The detector's frame size: downscaled, in multiples of 4 (for the I420 shortcut)."""
    w = max(4, int(round(width / downscale)) // 4 * 4)
    h = max(4, int(round(height / downscale)) // 4 * 4)
    return w, h


def scan_video(
    path: Path,
    cfg: ScenesConfig,
    *,
    keyframes_dir: Path | None = None,
    stills_dir: Path | None = None,
) -> SceneScan:
    """Decode `path` once: detect cuts, pick one keyframe per scene, take the grid stills.

    Keyframes and stills are written as JPEG into the given folders (skipped when None).
    Raises DecodeError when the video cannot be opened or yields no frame.
    """
    timings: dict[str, float] = {}
    detector = build_detector(cfg)
    candidates = _KeyframeCandidates()
    writer = _JpegWriter(cfg.jpeg_quality) if (keyframes_dir or stills_dir) else None
    rate = float(cfg.stills_per_second)
    times: list[float] = []
    cut_frames: list[int] = [0]  # first frame of every scene
    keyframes: dict[int, str | None] = {}  # scene index -> its keyframe's file name
    stills: list[Still] = []
    next_still = 0
    prev: tuple[int, float, Any] | None = None

    def take_stills(upto_s: float, index: int, frame: Any, inclusive: bool) -> None:
        # Every grid time before `upto_s` shows `frame` (the last frame decoded so far).
        nonlocal next_still
        # Times are microsecond-rounded: a grid time within 1 µs of `upto_s` is at it.
        while next_still / rate < upto_s - 1e-6 or (inclusive and next_still / rate <= upto_s):
            name = f"{next_still:06d}.jpg"
            if writer is not None and stills_dir is not None:
                writer.submit(stills_dir / name, frame)
            stills.append(Still(next_still, next_still / rate, index, name))
            next_still += 1

    def close_scene(end: int) -> None:
        # The open scene ends before frame `end`: its keyframe is written right away.
        scene = len(cut_frames) - 1
        image = candidates.middle(candidates.close_scene(end), cut_frames[-1], end)
        name = f"scene_{scene:04d}.jpg" if image is not None else None
        if name is not None and writer is not None and keyframes_dir is not None:
            writer.submit(keyframes_dir / name, image)
        keyframes[scene] = name

    def add_cuts(cuts: list[FrameTimecode], current: int) -> None:
        for cut in cuts:
            index = bisect.bisect_left(times, cut.seconds - 1e-6)
            if index <= cut_frames[-1] or index > current:
                continue  # duplicate, out of order, or (defensively) in the future
            close_scene(index)
            cut_frames.append(index)

    try:
        # Frames (kept as keyframe candidates or queued as stills) are converted by the JPEG
        # writer; everything is written before the decoder closes.
        with _DecodedFrames(path) as decoded:
            t0 = time.perf_counter()
            fps = decoded.fps
            rate_hint = Fraction(fps).limit_denominator(1001) if fps > 0 else Fraction(30)
            size = max(decoded.width, decoded.height) or 1
            downscale = float(cfg.downscale) if cfg.downscale else compute_downscale_factor(size)
            width, height = _detector_size(decoded.width, decoded.height, downscale)
            scorer = ContentScorer.for_detector(detector, width, height)
            for index, t, frame in decoded:
                if prev is not None:
                    take_stills(t, prev[0], prev[2], inclusive=False)
                times.append(t)
                timecode = FrameTimecode(Timecode(pts=round(t * 1e6), time_base=_US), rate_hint)
                if scorer is not None:
                    cuts = scorer.detector.process_score(timecode, scorer.score(frame))
                else:
                    cuts = detector.process_frame(timecode, small_bgr(frame, width, height))
                add_cuts(cuts, index)
                candidates.offer(index, frame)
                prev = (index, t, frame)
            if prev is None:
                raise DecodeError(
                    f"no video frame could be decoded from {path.name}"
                    + (f" ({decoded.error})" if decoded.error else "")
                )
            last_index, last_t, last_frame = prev
            last_tc = FrameTimecode(Timecode(pts=round(last_t * 1e6), time_base=_US), rate_hint)
            add_cuts(detector.post_process(last_tc), last_index)
            if len(times) > 1:
                frame_period = times[-1] - times[-2]
            else:
                frame_period = 1.0 / fps if fps > 0 else 0.0
            end_s = round(last_t + max(frame_period, 0.0), 6)
            take_stills(end_s, last_index, last_frame, inclusive=False)
            if not stills:  # a zero-length clip still gets one still
                take_stills(end_s, last_index, last_frame, inclusive=True)
            close_scene(len(times))
            timings["decode_detect"] = time.perf_counter() - t0

            t0 = time.perf_counter()
            scenes: list[Scene] = []
            bounds = [*cut_frames, len(times)]
            for idx in range(len(cut_frames)):
                start, end = bounds[idx], bounds[idx + 1]
                scenes.append(
                    Scene(
                        idx=idx,
                        start_s=times[start],
                        end_s=times[end] if end < len(times) else end_s,
                        start_frame=start,
                        end_frame=end,
                        keyframe=keyframes.get(idx),
                    )
                )
            if writer is not None:
                writer.finish()
                writer = None
            timings["write"] = time.perf_counter() - t0
    finally:
        if writer is not None:
            writer.pool.shutdown(wait=True, cancel_futures=True)
    return SceneScan(
        scenes=scenes,
        stills=stills,
        frames=len(times),
        width=decoded.width,
        height=decoded.height,
        fps=fps,
        decoded_s=end_s,
        downscale=downscale,
        timings=timings,
        decode_error=decoded.error,
    )


@contextlib.contextmanager
def _new_folders(out_dir: Path) -> Iterator[tuple[Path, Path]]:
    """Fresh (keyframes, stills) folders to fill; when the block ends without an error they
    replace the video's published ones, else they are removed and the old ones stay."""
    tag = f".partial-{uuid.uuid4().hex[:8]}"
    keyframes_tmp, stills_tmp = out_dir / (KEYFRAMES_DIR + tag), out_dir / (STILLS_DIR + tag)
    try:
        keyframes_tmp.mkdir(parents=True)
        stills_tmp.mkdir(parents=True)
        yield keyframes_tmp, stills_tmp
        _replace_dir(keyframes_tmp, out_dir / KEYFRAMES_DIR)
        _replace_dir(stills_tmp, out_dir / STILLS_DIR)
    finally:
        shutil.rmtree(keyframes_tmp, ignore_errors=True)
        shutil.rmtree(stills_tmp, ignore_errors=True)


def _replace_dir(partial: Path, final: Path) -> None:
    """Swap a finished folder into place (the old one goes only after the new one is whole)."""
    old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
    if final.exists():
        final.rename(old)
    partial.rename(final)
    shutil.rmtree(old, ignore_errors=True)


class ScenesStage:
    """`stage(video_id) -> StageResult` with `scenes` rows; keyframes and stills on disk.

    Reads the video's `videos_latest` row for its file (`media_path`, relative to the media
    root) and its recorded duration (to catch truncated files). Stateless apart from settings,
    so one instance can serve many videos and threads.
    """

    name = STAGE
    version = STAGE_VERSION

    def __init__(self, wh: Warehouse, cfg: ScenesConfig | None = None):
        self.wh = wh
        self.cfg = cfg or ScenesConfig()
        self.media_root = wh.root.media_dir()

    def _video_row(self, video_id: str) -> dict[str, Any]:
        row = video_row(self.wh, video_id, STAGE, ("media_path", "duration_s"))
        if not row["media_path"]:
            raise StageError(video_id, STAGE, "the video has no media_path; re-crawl it", "corrupt")
        return row

    def __call__(self, video_id: str) -> StageResult:
        row = self._video_row(video_id)
        video = self.media_root / row["media_path"]
        if not video.is_file():
            raise StageError(
                video_id, STAGE, f"video file missing: {video}; re-crawl the video", "corrupt"
            )
        out_dir = self.media_root / video_id
        if _audio_only(video):
            return self._audio_only(video_id, out_dir)
        t0 = time.perf_counter()
        with _new_folders(out_dir) as (keyframes_tmp, stills_tmp):
            try:
                scan = scan_video(
                    video, self.cfg, keyframes_dir=keyframes_tmp, stills_dir=stills_tmp
                )
            except DecodeError as exc:
                raise StageError(video_id, STAGE, f"{exc}; re-crawl the video", "corrupt") from None
            expected = row["duration_s"]
            if expected and scan.decoded_s < self.cfg.min_decoded_fraction * expected:
                raise StageError(
                    video_id, STAGE,
                    f"decoded only {scan.decoded_s:.2f} s ({scan.frames} frames) of the "
                    f"{expected:.2f} s recorded in `videos`"
                    + (f" (decoder: {scan.decode_error})" if scan.decode_error else "")
                    + ": the file looks truncated; re-crawl it",
                    "corrupt",
                )  # fmt: skip
            index = {
                "rate": self.cfg.stills_per_second,
                "stills": [
                    {"idx": s.idx, "t_s": s.t_s, "frame": s.frame, "path": s.path}
                    for s in scan.stills
                ],
            }
            (stills_tmp / STILLS_INDEX).write_text(json.dumps(index), encoding="utf-8")
        seconds = time.perf_counter() - t0
        log.info(
            "[%s] %s: %d scenes, %d frames, %d stills in %.2f s (%.0f frames/s)",
            STAGE, video_id, len(scan.scenes), scan.frames, len(scan.stills), seconds,
            scan.frames / seconds if seconds else 0.0,
        )  # fmt: skip
        rows = [
            {
                "video_id": video_id,
                "scene_idx": s.idx,
                "start_s": s.start_s,
                "end_s": s.end_s,
                "start_frame": s.start_frame,
                "end_frame": s.end_frame,
                "keyframe_path": f"{video_id}/{KEYFRAMES_DIR}/{s.keyframe}" if s.keyframe else None,
                "detector": self.cfg.detector,
                "stage_version": STAGE_VERSION,
            }
            for s in scan.scenes
        ]
        return StageResult(video_id, {"scenes": rows}, scan.timings)

    def _audio_only(self, video_id: str, out_dir: Path) -> StageResult:
        """An audio-only file (e.g. an imported speech clip): no picture, so no scenes, no
        keyframes and an empty stills index; the embeddings then store scene and face as
        absent, as for any missing modality."""
        with _new_folders(out_dir) as (_, stills_tmp):
            index = {"rate": self.cfg.stills_per_second, "stills": [], "audio_only": True}
            (stills_tmp / STILLS_INDEX).write_text(json.dumps(index), encoding="utf-8")
        return StageResult(video_id, {"scenes": []}, note=AUDIO_ONLY_NOTE)


AUDIO_ONLY_NOTE = "audio only: no scenes, stills or faces"


def _audio_only(path: Path) -> bool:
    """Whether the file has sound and no picture (cover art is not a picture)."""
    try:
        with av.open(str(path)) as container:
            pictures = [
                st for st in container.streams.video
                if not (st.disposition & av.stream.Disposition.attached_pic)
            ]  # fmt: skip
            return not pictures and bool(container.streams.audio)
    except (av.FFmpegError, OSError):
        return False  # the scan says what is wrong with it
