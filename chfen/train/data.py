"""The training data: cached embeddings and annotators' votes, read from one warehouse snapshot.

Nothing here runs an encoder: the vectors come from the `embeddings` table (issue 6), so an epoch
costs a tensor copy, not a forward pass through ViT/XLM-R as in the original CHFEN
code's `__getitem__` (docs/chfen-paper.md, D5).

Labels (the viewer's response, Plutchik's eight):

- votes: the current annotations (`annotations_latest`), deleted, cancelled and skipped ones
  left out, one vote per annotator per video (`votes_from_rows`); votes outside the label set
  are ignored and counted;
- which videos training keeps, their soft label (`train.no_emotion`: how "no clear emotion"
  votes count) and hard label: the domain layer's training rule,
  `chfen.domain.votes.training_target` (its module docstring defines them), with
  `train.min_votes` and `train.min_agreement` (an item carrying an imported dataset's own
  label needs one vote: `chfen.domain.origins.min_votes_for`); a kept video also needs at
  least one cached embedding.

The split is by uploader (`videos.uploader`, else `uploader_id`, else the video alone), seeded:
no uploader's videos are in two of train / validation / test. Re-uploads stay with their
originals: near-duplicate pairs (`quality_near_duplicates`: keyframe hashes within a few bits,
the quality views' threshold) join their uploaders into one unit of the split (union-find), so
a copy uploaded by someone else is never tested on while its original is trained on. The pairs
are read from the current keyframe hashes and recorded with the dataset.

A run reads `videos`, `annotations` and `embeddings` at the versions it records, so its
dataset can be rebuilt exactly (`load_labeled(..., versions=...)`).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import torch

from chfen.domain.origins import min_votes_for
from chfen.domain.votes import training_target, votes_from_rows
from chfen.labels import EMOTION_INDEX, NO_EMOTION, PLUTCHIK
from chfen.modalities import GLOBAL_INDEX, MODALITIES
from chfen.model.inputs import CAPTION, ModalityBatch, is_global
from warehouse import Warehouse
from warehouse.core import latest_view_sql
from warehouse.schema import spec

log = logging.getLogger("chfen.train")

DATASET_TABLES = ("videos", "annotations", "embeddings")
N_CLASSES = len(PLUTCHIK)


class DatasetError(ValueError):
    """The warehouse cannot give a usable training set; the message says what to do."""


# ---------------------------------------------------------------------------------------------
# Examples
# ---------------------------------------------------------------------------------------------


@dataclass
class VideoFeatures:
    """One video's cached embeddings on the grid.

    `vectors[m]` is (D,) for a global modality, (T, D) for an aligned one with `present[m]`
    (T,) saying which steps have a vector; `times` (T,) are step centres in seconds;
    `face_density` (T,) the face rows' weight, i.e. faces in the step (1 where a row has none).
    """

    video_id: str
    vectors: dict[str, np.ndarray]
    present: dict[str, np.ndarray]
    times: np.ndarray
    face_density: np.ndarray

    @property
    def steps(self) -> int:
        return int(self.times.shape[0])

    def pooled(self, modality: str) -> np.ndarray | None:
        """The modality as one vector (aligned: mean over present steps), None if missing."""
        if modality not in self.vectors:
            return None
        x = self.vectors[modality].astype(np.float32)
        if is_global(modality):
            return x
        mask = self.present[modality]
        return x[mask].mean(axis=0) if mask.any() else None


@dataclass
class Example:
    """A labelled video: features, soft label over PLUTCHIK, and where it came from."""

    video_id: str
    uploader: str
    features: VideoFeatures
    soft: np.ndarray  # (C,) sums to 1
    n_votes: int
    agreement: float

    @property
    def label(self) -> int:
        return int(np.argmax(self.soft))


@dataclass(frozen=True)
class SoftTarget:
    soft: np.ndarray
    n_votes: int
    agreement: float


@dataclass
class LabeledDataset:
    """Every usable labelled video, plus how it was built."""

    examples: list[Example]
    dims: dict[str, int]
    encoder_keys: dict[str, str]
    versions: dict[str, int]
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> videos
    coverage: dict[str, int] = field(default_factory=dict)  # modality -> videos with it
    # near-duplicate pairs (video_a, video_b) among the examples: re-uploads and originals
    duplicates: list[tuple[str, str]] = field(default_factory=list)

    def by_id(self) -> dict[str, Example]:
        return {e.video_id: e for e in self.examples}


@dataclass(frozen=True)
class Split:
    """Video ids per split and the uploaders behind them (disjoint)."""

    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]
    uploaders: dict[str, tuple[str, ...]]  # split -> uploaders

    def of(self, video_id: str) -> str:
        for name in ("train", "val", "test"):
            if video_id in getattr(self, name):
                return name
        raise KeyError(video_id)

    def without_val(self) -> Split:
        """The validation videos and uploaders moved into training (for cross-validation)."""
        ups = dict(self.uploaders)
        ups["train"] = tuple(sorted({*ups.get("train", ()), *ups.get("val", ())}))
        ups["val"] = ()
        return Split(tuple(sorted({*self.train, *self.val})), (), self.test, ups)


# ---------------------------------------------------------------------------------------------
# Soft labels
# ---------------------------------------------------------------------------------------------


def soft_target(
    labels: Iterable[str],
    *,
    min_votes: int = 1,
    min_agreement: float = 0.0,
    no_emotion: str = "drop_votes",
) -> SoftTarget | str:
    """The soft label of one video's votes, or the reason it is dropped (module docstring;
    the rule is `chfen.domain.votes.training_target`)."""
    target = training_target(
        labels, min_votes=min_votes, min_agreement=min_agreement, no_emotion=no_emotion
    )
    if isinstance(target, str):
        return target
    return SoftTarget(np.asarray(target.soft, dtype=np.float32), target.n_votes, target.agreement)


# ---------------------------------------------------------------------------------------------
# The snapshot
# ---------------------------------------------------------------------------------------------


def snapshot_versions(wh: Warehouse, tables: Sequence[str] = DATASET_TABLES) -> dict[str, int]:
    """The current version of each table a run reads (record these with the run)."""
    return {t: wh.version(t) for t in tables}


def connect_snapshot(wh: Warehouse, versions: Mapping[str, int]) -> duckdb.DuckDBPyConnection:
    """DuckDB over the tables exactly at `versions` (plus their `_latest` views)."""
    con = duckdb.connect()
    for table, version in versions.items():
        con.register(f"_{table}_snapshot", wh.dataset(table, version))
        con.execute(f'CREATE VIEW "{table}" AS SELECT * FROM "_{table}_snapshot"')
        tspec = spec(table)
        if tspec.latest_view:
            con.execute(f'CREATE VIEW "{tspec.latest_view}" AS {latest_view_sql(tspec)}')
    return con


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> list[dict[str, Any]]:
    return con.execute(sql, params).to_arrow_table().to_pylist()


def uploaders(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """video_id -> uploader group (uploader, else uploader_id, else the video itself)."""
    rows = _rows(con, "SELECT video_id, uploader, uploader_id FROM videos_latest")
    return {
        r["video_id"]: r["uploader"] or r["uploader_id"] or f"video:{r['video_id']}" for r in rows
    }


def near_duplicates(wh: Warehouse, video_ids: Iterable[str] | None = None) -> list[tuple[str, str]]:
    """Near-duplicate video pairs as the quality views define them (`quality_near_duplicates`:
    keyframe hashes within DEFAULT_MAX_BITS bits for DEFAULT_MIN_SHARE of each video's
    keyframes), among `video_ids` when given; sorted."""
    rows = wh.rows("SELECT video_a, video_b FROM quality_near_duplicates")
    keep = None if video_ids is None else set(video_ids)
    pairs = {
        (min(r["video_a"], r["video_b"]), max(r["video_a"], r["video_b"]))
        for r in rows
        if keep is None or (r["video_a"] in keep and r["video_b"] in keep)
    }
    return sorted(pairs)


def split_units(
    groups: Mapping[str, str], duplicates: Iterable[tuple[str, str]] = ()
) -> dict[str, str]:
    """video_id -> the unit a split keeps together: its uploader, joined (union-find) with the
    uploader of every near-duplicate of the video. A unit is named after its first uploader."""
    parent = {u: u for u in groups.values()}

    def find(u: str) -> str:
        while parent[u] != u:
            parent[u] = parent[parent[u]]
            u = parent[u]
        return u

    for a, b in duplicates:
        if a in groups and b in groups:
            ra, rb = find(groups[a]), find(groups[b])
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    return {v: find(u) for v, u in groups.items()}


def choose_encoder_keys(
    con: duckdb.DuckDBPyConnection, modalities: Iterable[str], pinned: Mapping[str, str]
) -> dict[str, str]:
    """modality -> encoder_key: the pinned one, else the one with the newest vectors."""
    rows = _rows(
        con,
        "SELECT modality, encoder_key, max(created_at) AS newest FROM embeddings "
        "GROUP BY modality, encoder_key ORDER BY modality, newest DESC, encoder_key",
    )
    newest: dict[str, str] = {}
    known: dict[str, set[str]] = {}
    for r in rows:
        newest.setdefault(r["modality"], r["encoder_key"])
        known.setdefault(r["modality"], set()).add(r["encoder_key"])
    out: dict[str, str] = {}
    for m in modalities:
        if m in pinned:
            if pinned[m] not in known.get(m, set()):
                raise DatasetError(
                    f"train.encoder_keys pins {m} to {pinned[m]!r}, but the embeddings table "
                    f"has {sorted(known.get(m, set())) or 'no vectors'} for it; run "
                    f"`chfen embed` or fix the pin"
                )
            out[m] = pinned[m]
        elif m in newest:
            out[m] = newest[m]
    return out


def load_features(
    con: duckdb.DuckDBPyConnection,
    video_ids: Iterable[str],
    encoder_keys: Mapping[str, str],
    *,
    max_steps: int,
    grid_hz: float,
) -> tuple[dict[str, VideoFeatures], dict[str, int]]:
    """Decode the cached vectors of some videos: (video_id -> features, modality -> dim)."""
    ids = sorted(set(video_ids))
    if not ids or not encoder_keys:
        return {}, {}
    con.register("_want_ids", pa.table({"video_id": ids}))
    con.register(
        "_want_keys",
        pa.table({"modality": list(encoder_keys), "encoder_key": list(encoder_keys.values())}),
    )
    table = con.execute(
        """
        SELECT e.video_id, e.modality, e.grid_idx, e.start_s, e.end_s, e.dim, e.dtype,
               e.vector, e.weight
        FROM embeddings e
        JOIN _want_keys k ON e.modality = k.modality AND e.encoder_key = k.encoder_key
        WHERE e.video_id IN (SELECT video_id FROM _want_ids)
          AND (e.grid_idx = ? OR e.grid_idx < ?)
        QUALIFY row_number() OVER (
            PARTITION BY e.video_id, e.modality, e.encoder_key, e.grid_idx
            ORDER BY e.created_at DESC) = 1
        ORDER BY e.video_id, e.modality, e.grid_idx
        """,
        [GLOBAL_INDEX, max_steps],
    ).to_arrow_table()
    con.unregister("_want_ids")
    con.unregister("_want_keys")

    dims: dict[str, int] = {}
    raw: dict[str, dict[str, list[tuple[int, np.ndarray, Any, Any, Any]]]] = {}
    for r in table.to_pylist():
        m, dim = r["modality"], int(r["dim"])
        vec = np.frombuffer(r["vector"], dtype=np.dtype(r["dtype"] or "float16"))
        if vec.shape[0] != dim:
            raise DatasetError(
                f"[train] {r['video_id']}: {m} vector at grid index {r['grid_idx']} has "
                f"{vec.shape[0]} values but dim={dim}; re-run `chfen embed` for it"
            )
        if dims.setdefault(m, dim) != dim:
            raise DatasetError(
                f"[train] {m} vectors of encoder {encoder_keys[m]} have sizes {dims[m]} and {dim}"
            )
        raw.setdefault(r["video_id"], {}).setdefault(m, []).append(
            (int(r["grid_idx"]), vec, r["start_s"], r["end_s"], r["weight"])
        )
    return {vid: _assemble(vid, by_mod, dims, grid_hz) for vid, by_mod in raw.items()}, dims


def _assemble(
    video_id: str,
    by_modality: Mapping[str, list[tuple[int, np.ndarray, Any, Any, Any]]],
    dims: Mapping[str, int],
    grid_hz: float,
) -> VideoFeatures:
    aligned_idx = [i for m, rows in by_modality.items() if not is_global(m) for i, *_ in rows]
    steps = max(aligned_idx) + 1 if aligned_idx else 1
    times = (np.arange(steps, dtype=np.float32) + 0.5) / grid_hz  # the grid, unless rows say
    density = np.ones(steps, dtype=np.float32)
    vectors: dict[str, np.ndarray] = {}
    present: dict[str, np.ndarray] = {}
    for m, rows in by_modality.items():
        if is_global(m):
            vectors[m] = rows[0][1].astype(np.float16)
            present[m] = np.ones((), dtype=bool)
            continue
        x = np.zeros((steps, dims[m]), dtype=np.float16)
        mask = np.zeros(steps, dtype=bool)
        for idx, vec, start, end, weight in rows:
            x[idx], mask[idx] = vec, True
            if start is not None:
                times[idx] = (start + end) / 2 if end is not None else start
            if m == "face" and weight is not None:
                density[idx] = weight
        vectors[m], present[m] = x, mask
    return VideoFeatures(video_id, vectors, present, times, density)


def load_labeled(
    wh: Warehouse,
    *,
    min_votes: int,
    min_agreement: float,
    no_emotion: str,
    max_steps: int,
    grid_hz: float,
    modalities: Iterable[str] = (*MODALITIES, CAPTION),
    encoder_keys: Mapping[str, str] | None = None,
    versions: Mapping[str, int] | None = None,
) -> LabeledDataset:
    """Every labelled video that passes the filters, with its cached embeddings.

    Reads the tables at `versions` (default: now, recorded in the result).
    """
    versions = dict(versions) if versions is not None else snapshot_versions(wh)
    con = connect_snapshot(wh, versions)
    try:
        votes = votes_from_rows(
            _rows(
                con,
                "SELECT video_id, annotator, choice, deleted, was_cancelled, updated_at "
                "FROM annotations_latest",
            )
        )
        dropped: Counter[str] = Counter()
        unknown = sum(
            1
            for by in votes.values()
            for label in by.values()
            if label not in EMOTION_INDEX and label != NO_EMOTION
        )
        if unknown:
            log.warning("[train] %d votes with a label outside the label set ignored", unknown)
        targets: dict[str, SoftTarget] = {}
        for video_id, by in votes.items():
            target = soft_target(
                by.values(),
                min_votes=min_votes_for(by, min_votes),  # an imported dataset's label: one
                min_agreement=min_agreement,
                no_emotion=no_emotion,
            )
            if isinstance(target, str):
                dropped[target] += 1
            else:
                targets[video_id] = target
        keys = choose_encoder_keys(con, modalities, encoder_keys or {})
        features, dims = load_features(con, targets, keys, max_steps=max_steps, grid_hz=grid_hz)
        groups = uploaders(con)
    finally:
        con.close()
    duplicates = near_duplicates(wh, [v for v in targets if v in features])

    examples = []
    for video_id in sorted(targets):
        if video_id not in features:
            dropped["no_embeddings"] += 1
            continue
        t = targets[video_id]
        examples.append(
            Example(
                video_id,
                groups.get(video_id, f"video:{video_id}"),
                features[video_id],
                t.soft,
                t.n_votes,
                t.agreement,
            )
        )
    coverage = {m: sum(m in e.features.vectors for e in examples) for m in dims}
    return LabeledDataset(
        examples,
        dims,
        {m: keys[m] for m in dims},
        versions,
        dict(dropped),
        coverage,
        duplicates,
    )


def split_by_uploader(
    groups: Mapping[str, str],
    *,
    test_fraction: float,
    val_fraction: float,
    seed: int,
    duplicates: Iterable[tuple[str, str]] = (),
) -> Split:
    """Seeded split of videos (video_id -> uploader) with no uploader in two splits, and no
    near-duplicate pair (`duplicates`, e.g. a re-upload by someone else) across two.

    The unit of the split is an uploader joined with the uploaders of its videos' duplicates
    (`split_units`). `test_fraction` of the units (at least one) are held out for the test;
    `val_fraction` of the rest (at least one, when two or more are left) for early stopping.
    """
    units = split_units(groups, duplicates)
    names = sorted(set(units.values()))
    if len(names) < 2:
        raise DatasetError(
            f"[train] the labelled videos come from {len(set(groups.values()))} uploader(s) "
            f"({len(names)} once re-uploads are joined to their originals); a split by "
            "uploader needs at least 2 (3 for a validation split). Label videos of more "
            "uploaders, or, for a dataset of one speaker, hold out videos instead with "
            "`--set train.split_by=video` (the test then shares that speaker with training)."
        )
    order = [names[i] for i in np.random.default_rng(seed).permutation(len(names))]
    n_test = min(max(1, round(len(names) * test_fraction)), len(names) - 1)
    rest = len(names) - n_test
    n_val = min(max(1, round(rest * val_fraction)), rest - 1) if rest >= 2 else 0
    parts = {
        "test": order[:n_test],
        "val": order[n_test : n_test + n_val],
        "train": order[n_test + n_val :],
    }
    of = {u: name for name, us in parts.items() for u in us}
    videos: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    members: dict[str, set[str]] = {"train": set(), "val": set(), "test": set()}
    for video_id in sorted(groups):
        name = of[units[video_id]]
        videos[name].append(video_id)
        members[name].add(groups[video_id])
    return Split(
        tuple(videos["train"]),
        tuple(videos["val"]),
        tuple(videos["test"]),
        {name: tuple(sorted(us)) for name, us in members.items()},
    )


def modality_stats(
    features: Iterable[VideoFeatures], dims: Mapping[str, int], *, rel_floor: float = 0.01
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per modality (mean, scale) over the present vectors (every present step of an aligned
    one) of some videos — the training split's, never the test's.

    scale = the std, floored at `rel_floor` × the modality's mean std (and 1e-4), so a constant
    feature becomes exactly zero after centring and a nearly constant one is not blown up to
    unit variance. A modality no video has is left out (the model keeps the identity).
    """
    sums: dict[str, np.ndarray] = {m: np.zeros(d) for m, d in dims.items()}
    squares: dict[str, np.ndarray] = {m: np.zeros(d) for m, d in dims.items()}
    counts: dict[str, int] = dict.fromkeys(dims, 0)
    for f in features:
        for m in dims:
            if m not in f.vectors:
                continue
            x = f.vectors[m].astype(np.float64)
            x = x[None] if is_global(m) else x[f.present[m]]
            sums[m] += x.sum(axis=0)
            squares[m] += (x * x).sum(axis=0)
            counts[m] += x.shape[0]
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for m, n in counts.items():
        if n == 0:
            continue
        mean = sums[m] / n
        std = np.sqrt(np.maximum(squares[m] / n - mean * mean, 0.0))
        # values stored as float16 make a constant feature's variance a rounding residue
        std = np.where(std < 1e-6 * np.maximum(np.abs(mean), 1.0), 0.0, std)
        floor = max(rel_floor * float(std.mean()), 1e-4)
        out[m] = (mean.astype(np.float32), np.maximum(std, floor).astype(np.float32))
    return out


# ---------------------------------------------------------------------------------------------
# Batches
# ---------------------------------------------------------------------------------------------


class EmbeddingDataset(torch.utils.data.Dataset):
    """Cached features (and soft labels) as a torch Dataset; `collate` pads a batch."""

    def __init__(self, features: Sequence[VideoFeatures], soft: Sequence[np.ndarray] | None = None):
        self.features = list(features)
        self.soft = list(soft) if soft is not None else None

    @classmethod
    def of(cls, examples: Sequence[Example]) -> EmbeddingDataset:
        return cls([e.features for e in examples], [e.soft for e in examples])

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> tuple[VideoFeatures, np.ndarray | None]:
        return self.features[i], (self.soft[i] if self.soft is not None else None)


def collate(
    items: Sequence[tuple[VideoFeatures, np.ndarray | None]], dims: Mapping[str, int]
) -> tuple[ModalityBatch, torch.Tensor | None]:
    """Pad videos to the longest: (batch, soft targets (B, C) or None)."""
    b = len(items)
    steps = max(f.steps for f, _ in items)
    features: dict[str, torch.Tensor] = {}
    masks: dict[str, torch.Tensor] = {}
    times = torch.zeros(b, steps)
    density = torch.zeros(b, steps)
    for i, (f, _) in enumerate(items):
        times[i, : f.steps] = torch.from_numpy(f.times)
        density[i, : f.steps] = torch.from_numpy(f.face_density)
    for m, d in dims.items():
        if is_global(m):
            x, mask = torch.zeros(b, d), torch.zeros(b, dtype=torch.bool)
        else:
            x, mask = torch.zeros(b, steps, d), torch.zeros(b, steps, dtype=torch.bool)
        for i, (f, _) in enumerate(items):
            if m not in f.vectors:
                continue  # missing for this video: stays masked
            v = torch.from_numpy(f.vectors[m].astype(np.float32))
            if is_global(m):
                x[i], mask[i] = v, True
            else:
                x[i, : f.steps] = v
                mask[i, : f.steps] = torch.from_numpy(f.present[m])
        features[m], masks[m] = x, mask
    batch = ModalityBatch(features, masks, times, density, [f.video_id for f, _ in items])
    softs = [s for _, s in items]
    targets = None if any(s is None for s in softs) else torch.from_numpy(np.stack(softs))
    return batch, targets
