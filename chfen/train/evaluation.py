"""Honest evaluation on the test split: bootstrap intervals and CHFEN against its best baseline.

A test split of a few uploaders holds tens of videos, where one video moves weighted F1 by
several points. So every score comes with a seeded percentile bootstrap over the test videos
(resample the videos with replacement, recompute the metric, keep the 2.5th and 97.5th
percentiles), and CHFEN is compared with a baseline by a *paired* bootstrap: the difference
CHFEN − baseline on the same resamples, whose interval says whether the gap is more than noise.

Videos are the resampling unit. Videos of one uploader are not independent, so with few test
uploaders the true uncertainty is larger still; the intervals are a lower bound on it.

F1 per resample is computed from per-class counts in numpy (a resample is a vector of
multiplicities over the test videos), which matches sklearn's `f1_score` with its default
labels (the classes that occur in the resample's labels or predictions) and costs a few
milliseconds for thousands of resamples, not a sklearn call each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

RESAMPLES = 2000  # enough for stable 2.5/97.5 percentiles; ~10 ms per model on 100 videos
CONFIDENCE = 0.95
SMALL_TEST = 30  # below this many test videos the report warns that intervals are wide
METRICS = ("weighted_f1", "macro_f1")
CHUNK = 256  # resamples per block: bounds memory at CHUNK × n_test multiplicities


def resample_weights(n: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, n) multiplicities: how often each test video is drawn in each resample.

    Row r is the bootstrap sample r; the same seed gives the same resamples, so models scored
    with the same `seed` and `n` are paired.
    """
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(resamples, n))
    offsets = (np.arange(resamples) * n)[:, None]
    counts = np.bincount((idx + offsets).ravel(), minlength=resamples * n)
    return counts.reshape(resamples, n).astype(np.float64)


def weighted_f1_scores(
    y_true: np.ndarray, y_pred: np.ndarray, weights: np.ndarray, n_classes: int
) -> dict[str, np.ndarray]:
    """Weighted and macro F1 for every row of multiplicities `weights` (R, n).

    As sklearn with its default labels: a class counts when it occurs in the (resampled)
    labels or predictions; F1 of a class with no true positive is 0.
    """
    eye = np.eye(n_classes)
    truth, pred = eye[y_true], eye[y_pred]  # (n, C) one-hot
    support = weights @ truth  # (R, C)
    predicted = weights @ pred
    tp = weights @ (truth * pred)
    denom = support + predicted
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    seen = denom > 0
    total = support.sum(axis=1)
    weighted = np.divide(
        (f1 * support).sum(axis=1), total, out=np.zeros_like(total), where=total > 0
    )
    macro = (f1 * seen).sum(axis=1) / np.maximum(seen.sum(axis=1), 1)
    return {"weighted_f1": weighted, "macro_f1": macro}


def bootstrap_scores(
    y_true: Sequence[int] | np.ndarray,
    predictions: Mapping[str, Sequence[int] | np.ndarray],
    n_classes: int,
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> dict[str, dict[str, np.ndarray]]:
    """name -> metric -> (resamples,) scores, every model on the same resamples (paired)."""
    y = np.asarray(y_true, dtype=int)
    preds = {k: np.asarray(v, dtype=int) for k, v in predictions.items()}
    for name, p in preds.items():
        if p.shape != y.shape:
            raise ValueError(f"[train] {name}: {len(p)} predictions for {len(y)} test videos")
    out: dict[str, dict[str, list[np.ndarray]]] = {k: {m: [] for m in METRICS} for k in preds}
    if len(y) == 0:
        return {k: {m: np.empty(0) for m in METRICS} for k in preds}
    weights = resample_weights(len(y), resamples, seed)
    for start in range(0, resamples, CHUNK):
        block = weights[start : start + CHUNK]
        for name, p in preds.items():
            for m, scores in weighted_f1_scores(y, p, block, n_classes).items():
                out[name][m].append(scores)
    return {k: {m: np.concatenate(v) for m, v in ms.items()} for k, ms in out.items()}


def percentile_interval(scores: np.ndarray, confidence: float = CONFIDENCE) -> list[float] | None:
    """[low, high] percentile interval of bootstrap scores (None without any)."""
    if scores.size == 0:
        return None
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(scores, [tail, 100 - tail])
    return [float(low), float(high)]


def best_baseline(baselines: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The baseline to beat: highest weighted F1 (then macro F1) among majority and logreg:*."""
    eligible = [k for k in baselines if k == "majority" or k.startswith("logreg:")]
    if not eligible:
        return None
    return max(
        eligible,
        key=lambda k: (baselines[k].get("weighted_f1") or 0.0, baselines[k].get("macro_f1") or 0.0),
    )


def verdict(
    model: str, baseline: str, difference: float, interval: Sequence[float], metric: str
) -> tuple[str, str]:
    """(outcome, sentence): outcome is "above", "below" or "tie" (the interval holds 0)."""
    label = metric.replace("_", " ").replace("f1", "F1")
    ci = f"95 % CI {interval[0]:+.2f} to {interval[1]:+.2f}"
    if interval[1] < 0:
        return "below", (
            f"{model} is below {baseline} by {-difference:.2f} {label} ({ci}): "
            f"the baseline is better on these test videos."
        )
    if interval[0] > 0:
        return "above", f"{model} beats {baseline} by {difference:.2f} {label} ({ci})."
    if difference < 0:
        return "tie", (
            f"{model} scores {-difference:.2f} {label} below {baseline}, within noise "
            f"(difference {difference:+.2f}, {ci}): no evidence that {model} is better."
        )
    return "tie", (
        f"{model} and {baseline} are within noise of each other "
        f"(difference {difference:+.2f} {label}, {ci})."
    )


@dataclass(frozen=True)
class Evaluation:
    """Intervals for every model and the comparison of CHFEN with its best baseline."""

    intervals: dict[str, dict[str, list[float] | None]]  # name -> {"weighted_f1_ci": …, …}
    comparison: dict[str, Any] | None  # None when there is no baseline or no test video


def small_test_note(n: int) -> str | None:
    """A warning for a test split too small for tight intervals."""
    if n >= SMALL_TEST:
        return None
    return (
        f"Only {n} test videos: every interval here is wide, and a difference of a few "
        "videos is noise."
    )


def evaluate(
    y_true: Sequence[int] | np.ndarray,
    model_pred: Sequence[int] | np.ndarray,
    model_scores: Mapping[str, Any],
    baselines: Mapping[str, Mapping[str, Any]],
    n_classes: int,
    *,
    model: str = "CHFEN",
    resamples: int = RESAMPLES,
    seed: int = 0,
    metric: str = "weighted_f1",
) -> Evaluation:
    """Bootstrap intervals for `model` and each baseline (`predictions` in its metrics), and
    the paired difference of `model` against every baseline and against the best one.

    Point estimates are the scores already computed (`model_scores`, the baselines' own
    metrics); the bootstrap only supplies the intervals.
    """
    preds: dict[str, Any] = {model: model_pred}
    preds |= {k: b["predictions"] for k, b in baselines.items() if "predictions" in b}
    boot = bootstrap_scores(y_true, preds, n_classes, resamples=resamples, seed=seed)
    intervals = {
        name: {f"{m}_ci": percentile_interval(scores[m]) for m in METRICS}
        for name, scores in boot.items()
    }
    n = len(np.asarray(y_true))
    best = best_baseline({k: v for k, v in baselines.items() if k in boot})
    if best is None or n == 0:
        return Evaluation(intervals, None)
    versus: dict[str, dict[str, Any]] = {}
    for name in boot:
        if name == model:
            continue
        versus[name] = {}
        for m in METRICS:
            diff = float((model_scores.get(m) or 0.0) - (baselines[name].get(m) or 0.0))
            versus[name][m] = {
                "difference": diff,
                "ci": percentile_interval(boot[model][m] - boot[name][m]),
            }
    head = versus[best][metric]
    outcome, text = verdict(model, best, head["difference"], head["ci"], metric)
    note = small_test_note(n)
    comparison = {
        "metric": metric,
        "model": model,
        "model_score": model_scores.get(metric),
        "model_ci": intervals[model][f"{metric}_ci"],
        "best_baseline": best,
        "baseline_score": baselines[best].get(metric),
        "baseline_ci": intervals[best][f"{metric}_ci"],
        "difference": head["difference"],
        "difference_ci": head["ci"],
        "outcome": outcome,
        "verdict": text,
        "note": note,
        "n_test": n,
        "resamples": resamples,
        "seed": seed,
        "confidence": CONFIDENCE,
        "versus": versus,
    }
    return Evaluation(intervals, comparison)
