"""The bootstrap intervals and CHFEN's comparison with its best baseline (pure numpy, no run)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from chfen.train.evaluation import (
    SMALL_TEST,
    best_baseline,
    bootstrap_scores,
    evaluate,
    percentile_interval,
    resample_weights,
    weighted_f1_scores,
)
from chfen.train.metrics import classification_metrics

C = 8


def noisy(y: np.ndarray, accuracy: float, seed: int) -> np.ndarray:
    """Predictions right for about `accuracy` of the videos, a random class otherwise."""
    rng = np.random.default_rng(seed)
    wrong = rng.random(len(y)) >= accuracy
    return np.where(wrong, (y + rng.integers(1, C, len(y))) % C, y)


def scored(y: np.ndarray, pred: np.ndarray) -> dict:
    return classification_metrics(y, pred) | {"predictions": pred.tolist()}


@pytest.mark.parametrize("n", [3, 17, 120])
def test_resampled_f1_is_sklearns_f1_on_each_resample(n: int) -> None:
    rng = np.random.default_rng(n)
    y = rng.integers(0, 5, n)  # some classes never occur ...
    pred = rng.integers(0, C, n)  # ... and some occur only in the predictions
    weights = resample_weights(n, 40, seed=7)
    assert weights.shape == (40, n) and (weights.sum(axis=1) == n).all()
    got = weighted_f1_scores(y, pred, weights, C)
    for r in range(40):
        idx = np.repeat(np.arange(n), weights[r].astype(int))
        for avg in ("weighted", "macro"):
            want = f1_score(y[idx], pred[idx], average=avg, zero_division=0)
            assert got[f"{avg}_f1"][r] == pytest.approx(want, abs=1e-12)


def test_same_seed_same_intervals_and_models_share_resamples() -> None:
    y = np.random.default_rng(0).integers(0, C, 60)
    preds = {"a": noisy(y, 0.6, 1), "b": noisy(y, 0.6, 2)}
    one = bootstrap_scores(y, preds, C, resamples=500, seed=3)
    two = bootstrap_scores(y, preds, C, resamples=500, seed=3)
    other = bootstrap_scores(y, preds, C, resamples=500, seed=4)
    assert np.array_equal(one["a"]["weighted_f1"], two["a"]["weighted_f1"])
    assert not np.array_equal(one["a"]["weighted_f1"], other["a"]["weighted_f1"])
    # paired: the same model under two names gives identical scores on every resample
    same = bootstrap_scores(y, {"a": preds["a"], "copy": preds["a"]}, C, resamples=200, seed=3)
    assert np.array_equal(same["a"]["macro_f1"], same["copy"]["macro_f1"])


def test_intervals_hold_the_estimate_and_narrow_with_more_videos() -> None:
    widths = []
    for n in (20, 500):
        y = np.random.default_rng(n).integers(0, C, n)
        pred = noisy(y, 0.7, n)
        boot = bootstrap_scores(y, {"m": pred}, C, resamples=1000, seed=0)
        low, high = percentile_interval(boot["m"]["weighted_f1"])  # type: ignore[misc]
        point = f1_score(y, pred, average="weighted", zero_division=0)
        assert 0 <= low < point < high <= 1
        widths.append(high - low)
    assert widths[1] < widths[0] / 2
    perfect = bootstrap_scores(y, {"m": y}, C, resamples=100, seed=0)
    assert percentile_interval(perfect["m"]["weighted_f1"]) == [1.0, 1.0]


def test_best_baseline_is_the_highest_weighted_f1_among_majority_and_logreg() -> None:
    baselines = {
        "majority": {"weighted_f1": 0.1, "macro_f1": 0.05},
        "logreg:audio": {"weighted_f1": 0.4, "macro_f1": 0.3},
        "logreg:all": {"weighted_f1": 0.4, "macro_f1": 0.35},  # tie: macro F1 decides
        "oracle": {"weighted_f1": 0.99},  # not a baseline
    }
    assert best_baseline(baselines) == "logreg:all"
    assert best_baseline({"oracle": {"weighted_f1": 1.0}}) is None


def test_a_model_clearly_below_its_baseline_is_called_below() -> None:
    y = np.random.default_rng(1).integers(0, C, 200)
    chfen, base = noisy(y, 0.3, 1), noisy(y, 0.9, 2)
    baselines = {"majority": scored(y, np.zeros_like(y)), "logreg:all": scored(y, base)}
    ev = evaluate(y, chfen, classification_metrics(y, chfen), baselines, C, seed=0)
    cmp = ev.comparison
    assert cmp is not None and cmp["best_baseline"] == "logreg:all"
    assert cmp["outcome"] == "below" and cmp["difference_ci"][1] < 0
    assert cmp["difference"] == pytest.approx(
        classification_metrics(y, chfen)["weighted_f1"] - baselines["logreg:all"]["weighted_f1"]
    )
    assert cmp["verdict"].startswith("CHFEN is below logreg:all by ")
    assert "95 % CI" in cmp["verdict"] and cmp["note"] is None
    # every model has both intervals; every baseline a paired difference
    assert set(ev.intervals) == {"CHFEN", "majority", "logreg:all"}
    for name in ("majority", "logreg:all"):
        assert set(cmp["versus"][name]) == {"weighted_f1", "macro_f1"}
    assert cmp["versus"]["majority"]["weighted_f1"]["ci"][0] > 0  # yet clearly above majority


def test_a_model_clearly_above_is_called_a_win_and_a_copy_is_noise() -> None:
    y = np.random.default_rng(2).integers(0, C, 200)
    chfen = noisy(y, 0.9, 1)
    baselines = {"logreg:all": scored(y, noisy(y, 0.3, 2))}
    cmp = evaluate(y, chfen, classification_metrics(y, chfen), baselines, C).comparison
    assert cmp is not None and cmp["outcome"] == "above"
    assert cmp["verdict"].startswith("CHFEN beats logreg:all by ")

    same = {"logreg:all": scored(y, chfen)}
    cmp = evaluate(y, chfen, classification_metrics(y, chfen), same, C).comparison
    assert cmp is not None and cmp["outcome"] == "tie"
    assert cmp["difference"] == 0 and cmp["difference_ci"] == [0.0, 0.0]
    assert "within noise" in cmp["verdict"]


def test_a_small_test_split_gets_wide_intervals_and_a_warning() -> None:
    y = np.random.default_rng(3).integers(0, C, 8)
    chfen, base = noisy(y, 0.5, 1), noisy(y, 0.6, 2)
    baselines = {"majority": scored(y, np.full_like(y, y[0])), "logreg:all": scored(y, base)}
    cmp = evaluate(y, chfen, classification_metrics(y, chfen), baselines, C).comparison
    assert cmp is not None and cmp["n_test"] == 8 < SMALL_TEST
    assert cmp["note"] is not None and "Only 8 test videos" in cmp["note"]
    low, high = cmp["model_ci"]
    assert high - low > 0.3


def test_no_test_videos_or_no_baselines_means_no_comparison() -> None:
    empty = np.zeros(0, dtype=int)
    ev = evaluate(empty, empty, {"weighted_f1": None}, {"majority": scored(empty, empty)}, C)
    assert ev.comparison is None
    assert ev.intervals["CHFEN"] == {"weighted_f1_ci": None, "macro_f1_ci": None}
    y = np.arange(10) % C
    assert evaluate(y, y, classification_metrics(y, y), {}, C).comparison is None
