"""Small data and useless modalities: re-uploads stay with their originals, the test split never
reaches training, standardization comes from the training split, cross-validation picks the
epochs without a validation split, and a modality of pure noise costs CHFEN little."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import chfen.train.loop as loop
from chfen.config import Settings, TrainConfig
from chfen.train import load_run, load_training_data, split_by_uploader, train_run
from chfen.train.data import EmbeddingDataset, modality_stats, split_units
from chfen.train.loop import grouped_folds
from warehouse import Warehouse

# ---- re-uploads ------------------------------------------------------------------------------


def test_a_duplicate_pair_across_two_uploaders_stays_on_one_side() -> None:
    groups = {f"{u}{i}": f"@{u}" for u in "abcdefgh" for i in range(3)}
    pair = ("a0", "b1")  # b1 is a re-upload of a0 by another uploader
    apart = 0
    for seed in range(40):
        naive = split_by_uploader(groups, test_fraction=0.25, val_fraction=0.2, seed=seed)
        apart += naive.of(pair[0]) != naive.of(pair[1])
        split = split_by_uploader(
            groups, test_fraction=0.25, val_fraction=0.2, seed=seed, duplicates=[pair]
        )
        assert split.of(pair[0]) == split.of(pair[1]), seed
        # whole uploaders still: the two uploaders moved together, nobody is split
        for name in ("train", "val", "test"):
            ups = {groups[v] for v in getattr(split, name)}
            assert ups == set(split.uploaders[name])
        assert not set(split.uploaders["train"]) & set(split.uploaders["test"])
    assert apart > 0  # without the pair the split does separate them: the test can fail
    units = split_units(groups, [pair, ("c0", "d0"), ("d1", "e2")])
    assert units["b2"] == units["a1"] and units["e0"] == units["c2"] != units["a0"]


def test_load_labeled_finds_reuploads_and_the_run_keeps_them_together(
    tmp_path: Path, synthetic_factory: Callable[..., Any], train_config: Callable[..., TrainConfig]
) -> None:
    syn = synthetic_factory(tmp_path / "data", reuploads=4, n_uploaders=6, videos_per_uploader=6)
    cfg = train_config(epochs=3, baselines=False)
    settings = Settings(data_root=str(syn.root), train=cfg)
    wh = Warehouse(syn.root)
    data = load_training_data(settings, wh, cfg)
    labelled = {e.video_id for e in data.examples}
    want = sorted((min(c, o), max(c, o)) for c, o in syn.reuploads.items() if {c, o} <= labelled)
    assert want and data.duplicates == want
    assert all(syn.uploader[a] != syn.uploader[b] for a, b in want)
    result = train_run(settings, wh, cfg, dataset=data)
    for a, b in want:
        assert result.split.of(a) == result.split.of(b)
    config = json.loads((result.run_dir / "config.json").read_text())
    assert [tuple(p) for p in config["dataset"]["near_duplicates"]] == want


# ---- cross-validation, standardization: the test split never goes in ------------------------


def test_grouped_folds_keep_groups_whole_and_balanced() -> None:
    groups = [g for g, n in zip("abcdefg", [9, 3, 3, 3, 2, 2, 2], strict=True) for _ in range(n)]
    folds = grouped_folds(groups, 3, seed=0)
    assert len(folds) == 3
    assert sorted(np.concatenate(folds).tolist()) == list(range(len(groups)))
    for held in folds:
        inside = {groups[i] for i in held}
        outside = {g for i, g in enumerate(groups) if i not in set(held.tolist())}
        assert not inside & outside
    assert max(len(f) for f in folds) - min(len(f) for f in folds) <= 3
    assert len(grouped_folds(["a", "a", "b"], 5, seed=0)) == 2  # capped at the groups


@pytest.fixture(scope="module")
def cv_run(synthetic: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, list[set]]:
    """A run whose validation split is too small, with every fit call's videos recorded."""
    seen: list[set[str]] = []
    real_fit = loop.fit

    def spy(model: Any, train: Any, val: Any, **kw: Any) -> Any:
        seen.append({f.video_id for f in train.features} | {f.video_id for f in val.features})
        return real_fit(model, train, val, **kw)

    patch = pytest.MonkeyPatch()
    patch.setattr(loop, "fit", spy)
    try:
        settings = synthetic.settings
        cfg = settings.train.model_copy(update={"epochs": 8, "baselines": False, "cv_folds": 3})
        result = train_run(settings, Warehouse(synthetic.root), cfg)
    finally:
        patch.undo()
    return result, seen


def test_cross_validation_picks_epochs_without_the_test_split(cv_run: tuple[Any, list]) -> None:
    result, seen = cv_run
    test = set(result.split.test)
    assert result.split.val == ()  # 8 validation videos < min_val_videos: they train
    assert len(seen) == 3 + 1  # three folds, then the refit
    for ids in seen:
        assert not ids & test
    assert seen[-1] == set(result.split.train)  # the refit: every training video
    sel = result.history.selection
    assert sel["method"] == "grouped_cv" and sel["folds"] == 3
    assert 1 <= sel["epochs"] <= 8 and len(sel["cv_loss_per_epoch"]) == 8
    assert sel["epochs"] == int(np.argmin(sel["cv_loss_per_epoch"])) + 1
    assert len(result.history.epochs) == sel["epochs"]
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert metrics["history"]["selection"]["epochs"] == sel["epochs"]


def test_standardization_comes_from_the_training_split(
    cv_run: tuple[Any, list], synthetic: Any
) -> None:
    result, _ = cv_run
    wh = Warehouse(synthetic.root)
    model, _ = load_run(wh, result.run_id)
    data = load_training_data(synthetic.settings, wh, result.config)
    by_id = data.by_id()
    train = modality_stats((by_id[v].features for v in result.split.train), data.dims)
    every = modality_stats((e.features for e in data.examples), data.dims)
    for m in model.modalities:
        mean, scale = train[m]
        assert np.allclose(model.standardize[m].mean.numpy(), mean, atol=1e-5), m
        assert np.allclose(model.standardize[m].scale.numpy(), scale, atol=1e-5), m
        assert not np.allclose(mean, every[m][0], atol=1e-5)  # the test split would show


def test_needs_cross_validation() -> None:
    cfg = TrainConfig(min_val_videos=10, min_val_uploaders=2)

    class V:
        def __init__(self, u: str):
            self.uploader = u

    assert loop.needs_cross_validation(cfg, [])
    assert loop.needs_cross_validation(cfg, [V("a")] * 12)  # one uploader
    assert loop.needs_cross_validation(cfg, [V("a"), V("b")] * 4)  # 8 videos
    assert not loop.needs_cross_validation(cfg, [V("a"), V("b")] * 5)


def test_tuning_is_scored_by_the_same_cross_validation(
    synthetic: Any, train_config: Callable[..., TrainConfig]
) -> None:
    wh = Warehouse(synthetic.root)
    cfg = train_config(epochs=3, tune_trials=2, cv_folds=2, baselines=False)
    data = load_training_data(synthetic.settings, wh, cfg)
    train = data.examples[:40]
    with torch.random.fork_rng():
        _, history, used = loop.train_model(data.dims, cfg, train, [])
    trials = history.selection["trials"]
    assert len(trials) == 2
    # the first trial is the configured values; the best one is what was used
    assert trials[0]["params"]["lr"] == cfg.lr
    best = min(trials, key=lambda t: t["cv_loss"])
    assert used.lr == best["params"]["lr"] and used.hidden_dim == best["params"]["hidden_dim"]


# ---- useless modalities ----------------------------------------------------------------------

# Big enough that one test video is ~0.03 weighted F1: 16 uploaders, ~35 test videos.
BIG = {"n_uploaders": 16, "videos_per_uploader": 10}
EVERY = ["title", "audio", "scene", "face", "text", "audio_seq"]


@pytest.mark.slow
def test_a_modality_of_pure_noise_costs_chfen_at_most_005(
    tmp_path: Path, synthetic_factory: Callable[..., Any]
) -> None:
    """The same split, seed and defaults, with and without a face modality that is pure noise."""
    syn = synthetic_factory(tmp_path / "data", pure_noise=["face"], **BIG)
    cfg = TrainConfig(threads=1, baselines=False)  # the shipped defaults
    settings = Settings(data_root=str(syn.root), train=cfg)
    wh = Warehouse(syn.root)
    data = load_training_data(settings, wh, cfg)
    without = train_run(
        settings, wh, cfg.model_copy(update={"modalities": [m for m in EVERY if m != "face"]}),
        dataset=data,
    )  # fmt: skip
    noisy = train_run(settings, wh, cfg, dataset=data)
    assert noisy.split == without.split and "face" in noisy.modalities
    assert without.metrics["weighted_f1"] >= 0.6  # there is something to lose
    assert noisy.metrics["weighted_f1"] >= without.metrics["weighted_f1"] - 0.05
    # what the noise adds to the final logits (its weight times its head's logits, spread over
    # the classes) is small next to the strongest expert's: its head learned ~nothing
    model, _ = load_run(wh, noisy.run_id)
    by_id = data.by_id()
    test = EmbeddingDataset.of([by_id[v] for v in noisy.split.test])
    stack, avail = loop.expert_logits(model, test)
    w = torch.nn.functional.softplus(model.head_weights.detach())
    spread = (w[None, :, None] * stack * avail[..., None]).std(dim=-1).mean(dim=0)
    share = dict(zip(["fused", *model.modalities], spread.tolist(), strict=True))
    assert share["face"] < 0.25 * max(share.values()), share


@pytest.mark.slow
def test_one_informative_modality_among_useless_ones(
    tmp_path: Path, synthetic_factory: Callable[..., Any]
) -> None:
    """Only audio_seq carries the emotion (the rest noise, the scene a still frame): CHFEN is
    close to the logistic regression on audio_seq alone, far above the majority."""
    syn = synthetic_factory(
        tmp_path / "data",
        signal={"audio_seq": 1.0},
        pure_noise=["title", "text", "face", "audio"],
        constant=["scene"],
        **BIG,
    )
    cfg = TrainConfig(threads=1)
    run = train_run(Settings(data_root=str(syn.root), train=cfg), Warehouse(syn.root), cfg)
    chfen = run.metrics["weighted_f1"]
    single = run.baselines["logreg:audio_seq"]["weighted_f1"]
    majority = run.baselines["majority"]["weighted_f1"]
    assert chfen >= majority + 0.15, (chfen, majority)
    assert chfen >= single - 0.15, (chfen, single)  # measured: -0.00 (seed 0), -0.12 (seed 1)


def test_each_head_takes_the_l2_its_held_out_videos_prefer(
    tmp_path: Path, synthetic_factory: Callable[..., Any]
) -> None:
    """A head on pure noise is pushed to the strongest penalty on the grid (its held-out loss
    is lowest when it says nothing); a head on an informative modality is not."""
    syn = synthetic_factory(tmp_path / "data", pure_noise=["face"])
    cfg = TrainConfig(threads=1, baselines=False, head_l2_grid=[0.1, 1.0, 1000.0])
    settings = Settings(data_root=str(syn.root), train=cfg)
    data = load_training_data(settings, Warehouse(syn.root), cfg)
    examples = data.examples
    folds = grouped_folds([e.uploader for e in examples], 3, seed=0)
    pairs = [
        ([e for i, e in enumerate(examples) if i not in set(f)], [examples[i] for i in f])
        for f in folds
    ]
    out = loop.choose_head_l2(data.dims, cfg, pairs)
    assert out["head_l2"]["face"] == 1000.0
    assert min(out["head_l2"][m] for m in ("title", "audio", "text")) < 1000.0
    # every candidate was scored for every head
    assert all(set(losses) == {"0.1", "1", "1000"} for losses in out["head_l2_loss"].values())


@pytest.mark.slow
def test_training_on_one_uploader_holds_out_videos_and_mixes_the_heads(
    tmp_path: Path, synthetic_factory: Callable[..., Any]
) -> None:
    """Two uploaders split by uploader train on one (a dataset of two speakers): the folds hold
    out videos, the network is left out of the mixture, and CHFEN on the other uploader is not
    below the audio-only logistic regression. Seed 1: with the configured epochs and untested
    heads (the old behaviour) CHFEN scored 0.14 against 0.29; with the network in the
    mixture 0.17; heads only 0.39."""
    syn = synthetic_factory(
        tmp_path / "data",
        1,
        n_uploaders=2,
        videos_per_uploader=30,
        signal={"audio_seq": 1.0, "audio": 0.0},
        pure_noise=["title", "text", "face"],
        constant=["scene"],
    )
    cfg = TrainConfig(threads=1, seed=1, test_fraction=0.5)
    wh = Warehouse(syn.root)
    run = train_run(Settings(data_root=str(syn.root), train=cfg), wh, cfg)
    assert len(run.split.uploaders["train"]) == 1 and not run.split.val
    selection = run.history.selection
    assert selection["method"] == "grouped_cv" and selection["folds_by"] == "video"
    assert run.history.selection["mixing_weights"]["fused"] < 1e-6
    # the noise heads are silenced by penalties above 1e3 (the grid once stopped there: 0.385
    # weighted F1 here instead of 0.398)
    assert all(selection["head_l2"][m] >= 1e4 for m in ("title", "text", "face"))
    single = run.baselines["logreg:audio_seq"]["weighted_f1"]
    assert run.metrics["weighted_f1"] >= single - 0.03, (run.metrics["weighted_f1"], single)


@pytest.mark.slow
def test_a_one_speaker_dataset_trains_when_split_by_video(
    tmp_path: Path, synthetic_factory: Callable[..., Any]
) -> None:
    """One uploader (an imported set of one actor): a split by uploader is impossible and the
    error says what to do; `train.split_by: video` holds out videos (CV folds by video, the
    network in the mixture), keeps the uploader's name in the split, and the report says the
    figures are speaker-dependent."""
    from chfen.train import DatasetError

    syn = synthetic_factory(
        tmp_path / "data", 3, n_uploaders=1, videos_per_uploader=40,
        signal={"audio_seq": 1.0, "audio": 0.0}, pure_noise=["title", "text", "face"],
        constant=["scene"],
    )  # fmt: skip
    wh = Warehouse(syn.root)
    cfg = TrainConfig(threads=1, seed=0)
    with pytest.raises(DatasetError, match="train.split_by=video"):
        train_run(Settings(data_root=str(syn.root), train=cfg), wh, cfg)
    cfg = TrainConfig(threads=1, seed=0, split_by="video")
    said: list[str] = []
    run = train_run(Settings(data_root=str(syn.root), train=cfg), wh, cfg, say=said.append)
    assert run.split.test and set(run.split.test).isdisjoint(run.split.train)
    assert len(run.split.uploaders["test"]) == len(run.split.uploaders["train"]) == 1
    selection = run.history.selection
    assert selection["folds_by"] == "video" and selection["one_uploader"] is False
    assert selection["mixing_weights"]["fused"] > 1e-6  # the test asks the folds' question
    assert run.metrics["weighted_f1"] > run.baselines["majority"]["weighted_f1"] + 0.15
    assert any("split by video" in line for line in said)
    assert "Split by video (train.split_by: video)" in run.report_path.read_text()
