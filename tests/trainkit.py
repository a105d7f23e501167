"""A synthetic but honest warehouse for the training tests (and the served `train` deployment's).

Videos from several uploaders; cached embeddings for every modality whose vectors carry the
video's true emotion (a per-class prototype per modality) plus each uploader's own style plus
noise; and three annotators per video labelling with the simulated crew's noise (near misses,
"no clear emotion", one careless annotator). This tests the learning machinery, the label
handling and the bookkeeping, not the encoders.

Variants (keyword arguments): fewer uploaders or videos; a per-modality signal strength;
modalities of pure noise (nothing to do with the label or the uploader) or constant (the same
vector for every video, like a still frame); re-uploads (a labelled video uploaded again by
another uploader, with near-identical keyframe hashes, as the quality views detect them).
"""

from __future__ import annotations

import datetime as dt
import random
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from chfen.config import Settings, TrainConfig
from chfen.domain.crew import default_crew, simulated_label
from chfen.labels import PLUTCHIK
from chfen.media.keyframe_hash import ALGORITHM as HASH_ALGORITHM
from chfen.modalities import GLOBAL_INDEX, kind
from warehouse import Warehouse

# Small sizes per modality, different on purpose (encoders differ).
DIMS = {"title": 16, "audio": 12, "scene": 24, "face": 20, "text": 16, "audio_seq": 12}
ENCODER_KEY = "synthetic-v2"
STALE_KEY = "synthetic-v1"  # an older scene encoder with another size: must not be picked
N_UPLOADERS = 12
VIDEOS_PER_UPLOADER = 8
N_UNLABELED = 6
# Per modality a single linear probe gets about 0.2-0.7 weighted F1 on held-out uploaders.
SIGNAL = 1.0
STYLE = 1.0
NOISE = 2.5
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@dataclass
class Synthetic:
    """What was written, to check the pipeline against."""

    root: Path
    truth: dict[str, str]  # labelled video -> true emotion
    uploader: dict[str, str]
    unlabeled: list[str]
    no_audio: set[str] = field(default_factory=set)
    deleted_annotation_video: str = ""
    settings: Settings | None = None
    reuploads: dict[str, str] = field(default_factory=dict)  # re-upload -> original


def _hashes(rng: np.random.Generator, n: int) -> list[int]:
    return [int(h) for h in rng.integers(-(2**63), 2**63 - 1, size=n, dtype=np.int64)]


def _flip(value: int, bit: int) -> int:
    u = (value & (2**64 - 1)) ^ (1 << bit)
    return u - 2**64 if u >= 2**63 else u


def _vec(x: np.ndarray) -> bytes:
    return x.astype(np.float16).tobytes()


def write_synthetic_warehouse(
    root: Path,
    seed: int = 0,
    *,
    n_uploaders: int = N_UPLOADERS,
    videos_per_uploader: int = VIDEOS_PER_UPLOADER,
    signal: Mapping[str, float] | None = None,
    pure_noise: Iterable[str] = (),
    constant: Iterable[str] = (),
    reuploads: int = 0,
) -> Synthetic:
    """Write the synthetic warehouse under `root` (see the module docstring for the variants).

    `signal` scales each modality's class prototype (default SIGNAL; 0 = no label in it but
    still the uploader's style); a `pure_noise` modality is N(0, NOISE²) per vector, a
    `constant` one the same vector for every video and step. `reuploads` labelled videos get a
    copy from another uploader (same label, embeddings and keyframes up to a bit of noise).
    """
    rng = np.random.default_rng(seed)
    prng = random.Random(seed)
    wh = Warehouse(root)
    protos = {m: rng.normal(size=(len(PLUTCHIK), d)) for m, d in DIMS.items()}
    strength = {m: SIGNAL for m in DIMS} | dict(signal or {})
    noise_only, fixed = set(pure_noise), set(constant)
    # its own stream: the default warehouse draws exactly what it always drew
    still_rng = np.random.default_rng([seed, 1])
    still = {m: still_rng.normal(size=d) for m, d in DIMS.items()}
    ups = [f"@creator{u:02d}" for u in range(n_uploaders)]
    style = {(m, u): rng.normal(size=d) * STYLE for m, d in DIMS.items() for u in ups}
    # not quite balanced: joy and fear more common, so the majority baseline is not trivial
    class_p = np.array([0.22, 0.1, 0.16, 0.1, 0.12, 0.1, 0.1, 0.1])

    videos, emb, truth, uploader = [], [], {}, {}
    no_audio: set[str] = set()
    unlabeled: list[str] = []
    n = 0
    for u in ups:
        for _ in range(videos_per_uploader):
            vid = f"synth_{n:04d}"
            n += 1
            uploader[vid] = u
            truth[vid] = PLUTCHIK[int(rng.choice(len(PLUTCHIK), p=class_p))]
    for i in range(N_UNLABELED):
        vid = f"synth_new_{i:02d}"
        uploader[vid] = ups[i % len(ups)]
        unlabeled.append(vid)

    # re-uploads: a copy of an early labelled video by the next uploader (other side of a naive
    # split by uploader, most of the time)
    copies: dict[str, str] = {}
    originals = list(truth)[:: max(1, len(truth) // max(reuploads, 1))][:reuploads]
    for i, orig in enumerate(originals):
        vid = f"synth_re_{i:02d}"
        uploader[vid] = ups[(ups.index(uploader[orig]) + 1) % len(ups)]
        truth[vid] = truth[orig]
        copies[vid] = orig

    every = [*truth, *unlabeled]
    keyframes: dict[str, list[int]] = {}
    scene_rows, hash_rows = [], []
    video_rng: dict[str, np.random.Generator] = {}
    for vid in every:
        u = uploader[vid]
        c = PLUTCHIK.index(truth[vid]) if vid in truth else int(rng.integers(len(PLUTCHIK)))
        if reuploads:
            # same draws for a copy as for its original: the same content, re-encoded
            key = copies.get(vid, vid)
            video_rng[vid] = np.random.default_rng([seed, zlib.crc32(key.encode())])
            vrng = video_rng[vid]
            hashes = keyframes.setdefault(key, _hashes(vrng, 3))
            if vid in copies:
                hashes = [_flip(h, 7) for h in hashes]  # 1 bit off: re-encoding
            for i, h in enumerate(hashes):
                scene_rows.append(
                    {"video_id": vid, "scene_idx": i, "start_s": float(i), "end_s": i + 1.0,
                     "keyframe_path": f"{vid}/k{i}.jpg", "created_at": T0}
                )  # fmt: skip
                hash_rows.append(
                    # the current algorithm's name: training hashes keyframes that lack a
                    # current hash, and these stand for real ones (there are no JPEGs here)
                    {"video_id": vid, "scene_idx": i, "phash": h, "algorithm": HASH_ALGORITHM,
                     "created_at": T0 + dt.timedelta(hours=1)}
                )  # fmt: skip
        else:
            vrng = rng
        steps = int(vrng.integers(5, 13))
        has_audio = vrng.random() > 0.15
        if not has_audio:
            no_audio.add(vid)
        videos.append(
            {
                "video_id": vid,
                "source": "synthetic",
                "title": f"video {vid}",
                "uploader": u,
                "duration_s": float(steps),
                "has_audio": bool(has_audio),
                "status": "ok",
                "updated_at": T0,
            }
        )
        for m, d in DIMS.items():
            if m in ("audio", "audio_seq") and not has_audio:
                continue  # absent, never zeros
            base = protos[m][c] * strength[m] + style[(m, u)]
            if m in noise_only:
                base = np.zeros(d)
            if kind(m) == "global":
                x = still[m] if m in fixed else base + vrng.normal(size=d) * NOISE
                emb.append(_row(vid, m, GLOBAL_INDEX, None, x, None))
                continue
            for t in range(steps):
                if m == "face" and vrng.random() < 0.4:
                    continue  # no face in this second
                if m == "text" and vrng.random() < 0.25:
                    continue  # nobody speaks in this second
                x = still[m] if m in fixed else base + vrng.normal(size=d) * NOISE
                weight = float(vrng.integers(1, 4)) if m == "face" else None  # faces
                emb.append(_row(vid, m, t, float(t), x, weight))
        # the stale encoder: older rows of another size for one modality
        emb.append(
            _row(vid, "scene", GLOBAL_INDEX + 1, 0.0, vrng.normal(size=7), None, key=STALE_KEY)
        )

    crew = default_crew(3)
    annotations = []
    aid = 0
    task = {vid: i for i, vid in enumerate(truth)}
    for vid, label in truth.items():
        for person in crew:
            aid += 1
            annotations.append(
                {
                    "annotation_id": aid,
                    "task_id": 1000 + task[vid],
                    "project_id": 1,
                    "video_id": vid,
                    "annotator": person.email,
                    "choice": simulated_label(label, person, prng),
                    "was_cancelled": False,
                    "deleted": False,
                    "created_at": T0,
                    "updated_at": T0,
                }
            )
    # a later change of mind that was then deleted: must not count
    target = next(iter(truth))
    annotations.append(
        annotations[0] | {"choice": "anger", "deleted": True, "updated_at": T0 + dt.timedelta(1)}
    )
    # a cancelled (skipped) annotation by a fourth person on one video
    annotations.append(
        annotations[3]
        | {"annotation_id": 10**6, "annotator": "late@x", "choice": "fear", "was_cancelled": True}
    )
    wh.append("videos", videos, refresh_catalog=False)
    wh.append("embeddings", emb, refresh_catalog=False)
    if scene_rows:
        wh.append("scenes", scene_rows, refresh_catalog=False)
        wh.append("keyframe_hashes", hash_rows, refresh_catalog=False)
    wh.append("annotations", annotations)
    return Synthetic(root, truth, uploader, unlabeled, no_audio, target, reuploads=copies)


def _row(
    vid: str,
    modality: str,
    grid_idx: int,
    start: float | None,
    x: np.ndarray,
    weight: float | None,
    key: str = ENCODER_KEY,
) -> dict:
    created = T0 if key == STALE_KEY else T0 + dt.timedelta(days=1)
    return {
        "video_id": vid,
        "modality": modality,
        "encoder_key": key,
        "grid_idx": grid_idx,
        "encoder": f"synthetic/{modality}",
        "start_s": start,
        "end_s": None if start is None else start + 1.0,
        "dim": int(x.shape[0]),
        "dtype": "float16",
        "vector": _vec(x),
        "weight": weight,
        "created_at": created,
    }


def small_train_config(**changes: object) -> TrainConfig:
    """A few seconds of training on 2 cores."""
    base = {
        "seed": 0,
        "epochs": 30,
        "batch_size": 16,
        "lr": 2e-3,
        "hidden_dim": 32,
        "heads": 4,
        "dropout": 0.1,
        "early_stopping_patience": 8,
        "min_agreement": 0.5,
        "min_votes": 2,
        "threads": 1,
    }
    return TrainConfig.model_validate(base | changes)
