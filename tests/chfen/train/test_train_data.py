"""The training data: soft labels from votes, the uploader split, loading from the warehouse."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chfen.labels import EMOTION_INDEX, NO_EMOTION, PLUTCHIK
from chfen.train import (
    DatasetError,
    EmbeddingDataset,
    collate,
    load_labeled,
    soft_target,
    split_by_uploader,
)
from chfen.train.data import SoftTarget, snapshot_versions
from warehouse import Warehouse

LOAD = {"min_votes": 2, "min_agreement": 0.5, "no_emotion": "drop_votes", "max_steps": 180}


def _soft(target: SoftTarget | str) -> dict[str, float]:
    assert isinstance(target, SoftTarget), target
    return {PLUTCHIK[i]: round(float(v), 4) for i, v in enumerate(target.soft) if v}


def test_soft_labels_are_vote_shares() -> None:
    t = soft_target(["joy", "joy", "fear"], min_votes=2, min_agreement=0.5)
    assert _soft(t) == {"joy": 0.6667, "fear": 0.3333}
    assert isinstance(t, SoftTarget) and t.n_votes == 3 and t.agreement == pytest.approx(2 / 3)
    assert np.isclose(t.soft.sum(), 1.0)


def test_no_emotion_votes_are_handled_explicitly() -> None:
    votes = ["joy", "joy", NO_EMOTION]
    dropped = soft_target(votes, no_emotion="drop_votes")
    assert _soft(dropped) == {"joy": 1.0}
    uniform = soft_target(votes, no_emotion="uniform")
    assert isinstance(uniform, SoftTarget)
    assert uniform.soft[EMOTION_INDEX["joy"]] == pytest.approx((2 + 1 / 8) / 3)
    assert uniform.soft[EMOTION_INDEX["fear"]] == pytest.approx((1 / 8) / 3)
    assert np.isclose(uniform.soft.sum(), 1.0)
    # agreement counts "no clear emotion" as a category either way
    assert dropped.agreement == uniform.agreement == pytest.approx(2 / 3)  # type: ignore[union-attr]
    # a video most annotators found neutral has no emotion label to learn
    assert soft_target([NO_EMOTION, NO_EMOTION, "joy"]) == "no_emotion"
    assert soft_target([NO_EMOTION]) == "no_emotion"


def test_filters_on_votes_and_agreement() -> None:
    assert soft_target(["joy"], min_votes=2) == "too_few_votes"
    assert soft_target(["joy", "fear", "anger"], min_agreement=0.5) == "low_agreement"
    assert isinstance(soft_target(["joy", "fear", "joy"], min_agreement=0.6), SoftTarget)
    # labels outside the label set are not votes
    kept = soft_target(["joy", "joy", "meh"], min_votes=2)
    assert isinstance(kept, SoftTarget) and kept.n_votes == 2


def test_the_split_is_by_uploader_disjoint_and_seeded() -> None:
    rng = np.random.default_rng(3)
    groups = {f"v{i:03d}": f"@u{int(rng.integers(0, 15))}" for i in range(200)}
    split = split_by_uploader(groups, test_fraction=0.25, val_fraction=0.15, seed=7)
    assert sorted(split.train + split.val + split.test) == sorted(groups)
    ups = {name: {groups[v] for v in getattr(split, name)} for name in ("train", "val", "test")}
    assert not ups["train"] & ups["test"]
    assert not ups["train"] & ups["val"]
    assert not ups["val"] & ups["test"]
    assert {k: set(v) for k, v in split.uploaders.items()} == ups
    assert len(ups["test"]) == round(len(set(groups.values())) * 0.25)
    again = split_by_uploader(groups, test_fraction=0.25, val_fraction=0.15, seed=7)
    other = split_by_uploader(groups, test_fraction=0.25, val_fraction=0.15, seed=8)
    assert again == split and other.test != split.test


def test_a_split_needs_two_uploaders() -> None:
    with pytest.raises(DatasetError, match="uploader"):
        split_by_uploader({"a": "@u", "b": "@u"}, test_fraction=0.25, val_fraction=0.1, seed=0)
    two = split_by_uploader({"a": "@u", "b": "@w"}, test_fraction=0.25, val_fraction=0.1, seed=0)
    assert len(two.test) == 1 and len(two.train) == 1 and not two.val


def test_load_labeled_from_the_warehouse(synthetic: Any, wh: Warehouse) -> None:
    data = load_labeled(wh, grid_hz=1.0, **LOAD)
    ids = {e.video_id for e in data.examples}
    assert ids <= set(synthetic.truth) and not ids & set(synthetic.unlabeled)
    assert sum(data.dropped.values()) + len(ids) == len(synthetic.truth)
    # the deleted change of mind and the cancelled fourth annotation do not vote
    assert all(2 <= e.n_votes <= 3 for e in data.examples)
    # the newest encoder per modality, never the stale one of another size
    assert set(data.encoder_keys.values()) == {"synthetic-v2"}
    assert data.dims == {"title": 16, "audio": 12, "scene": 24, "face": 20, "text": 16,
                         "audio_seq": 12}  # fmt: skip
    assert data.versions == snapshot_versions(wh)
    # the labels mostly agree with the truth the crew saw
    right = np.mean([PLUTCHIK[e.label] == synthetic.truth[e.video_id] for e in data.examples])
    assert right > 0.8
    # a video without audio has no audio vectors: absent, not zeros
    silent = [e for e in data.examples if e.video_id in synthetic.no_audio]
    assert silent and all("audio" not in e.features.vectors for e in silent)
    assert all("audio_seq" not in e.features.vectors for e in silent)
    # grid step centres come from the rows' start/end seconds
    e = data.examples[0]
    assert np.allclose(e.features.times, np.arange(e.features.steps) + 0.5)
    assert data.coverage["audio"] == len(data.examples) - len(silent)


def test_collate_pads_and_masks(synthetic: Any, wh: Warehouse) -> None:
    data = load_labeled(wh, grid_hz=1.0, **LOAD)
    silent = next(e for e in data.examples if e.video_id in synthetic.no_audio)
    longest = max(data.examples, key=lambda e: e.features.steps)
    shortest = min(data.examples, key=lambda e: e.features.steps)
    batch, targets = collate(
        [EmbeddingDataset.of([x])[0] for x in (silent, longest, shortest)], data.dims
    )
    assert targets is not None and targets.shape == (3, 8)
    steps = longest.features.steps
    assert batch.times.shape == (3, steps)
    assert batch.features["scene"].shape == (3, steps, 24)
    assert not batch.masks["audio"][0] and not batch.masks["audio_seq"][0].any()
    assert not batch.masks["scene"][2, shortest.features.steps :].any()
    assert batch.masks["scene"][2, : shortest.features.steps].all()
    # a second with no face stays masked
    face = longest.features.present["face"]
    assert np.array_equal(batch.masks["face"][1].numpy(), face)


def test_a_dataset_is_rebuilt_exactly_from_recorded_versions(
    tmp_path: Path, synthetic_factory: Callable[..., Any]
) -> None:
    syn = synthetic_factory(tmp_path / "data", seed=1)
    wh = Warehouse(syn.root)
    first = load_labeled(wh, grid_hz=1.0, **LOAD)
    # later: an annotator changes a label, and a new video gets labelled
    video = first.examples[0].video_id
    now = dt.datetime.now(dt.UTC)
    rows = wh.rows("SELECT * FROM annotations_latest WHERE video_id = ?", [video])
    changed = [r | {"choice": "disgust", "updated_at": now} for r in rows]
    wh.append("annotations", changed)
    later = load_labeled(wh, grid_hz=1.0, **LOAD)
    assert later.versions != first.versions
    assert later.by_id()[video].label != first.by_id()[video].label
    again = load_labeled(wh, grid_hz=1.0, versions=first.versions, **LOAD)
    assert [e.video_id for e in again.examples] == [e.video_id for e in first.examples]
    assert all(
        np.array_equal(a.soft, b.soft) for a, b in zip(again.examples, first.examples, strict=True)
    )


def test_a_pinned_encoder_key_that_does_not_exist_is_a_clear_error(wh: Warehouse) -> None:
    with pytest.raises(DatasetError, match="chfen embed"):
        load_labeled(wh, grid_hz=1.0, encoder_keys={"scene": "nope"}, **LOAD)
    old = load_labeled(wh, grid_hz=1.0, encoder_keys={"scene": "synthetic-v1"}, **LOAD)
    assert old.dims["scene"] == 7 and old.encoder_keys["scene"] == "synthetic-v1"
