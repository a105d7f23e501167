"""Baselines reported next to CHFEN on the same held-out uploaders.

- majority: the most frequent training label for every video;
- logreg:<modality>: a logistic regression (standardised inputs, balanced class weights) on the
  modality pooled to one vector per video (aligned ones: the mean over present steps). It is fit
  on the training videos that have the modality; a test video without it gets the majority
  label, so every baseline is scored on the same test videos as CHFEN;
- logreg:all: the same on every modality's pooled vector side by side (missing ones as zeros
  plus a presence flag).
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from chfen.train.data import Example
from chfen.train.metrics import classification_metrics


def majority_class(train: Sequence[Example]) -> int:
    """The most frequent hard label (ties: the first in PLUTCHIK order)."""
    counts = Counter(e.label for e in train)
    return min(counts, key=lambda c: (-counts[c], c))


def _fit_predict(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, seed: int
) -> np.ndarray:
    model = make_pipeline(
        StandardScaler(),
        LogisticRegression(max_iter=2000, class_weight="balanced", random_state=seed),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x_train, y_train)
    return model.predict(x_test)


def logreg_predictions(
    train: Sequence[Example], test: Sequence[Example], modality: str, seed: int
) -> np.ndarray:
    """Test predictions of the per-modality logistic regression (majority where missing)."""
    fallback = majority_class(train)
    pairs = [(e.features.pooled(modality), e.label) for e in train]
    pairs = [(x, y) for x, y in pairs if x is not None]
    preds = np.full(len(test), fallback, dtype=int)
    if len({y for _, y in pairs}) < 2:
        return preds  # nothing to separate
    x_train = np.stack([x for x, _ in pairs])
    y_train = np.array([y for _, y in pairs])
    test_x = [e.features.pooled(modality) for e in test]
    have = [i for i, x in enumerate(test_x) if x is not None]
    if have:
        x_test = np.stack([test_x[i] for i in have])
        preds[have] = _fit_predict(x_train, y_train, x_test, seed)
    return preds


def _side_by_side(e: Example, modalities: Sequence[str], dims: dict[str, int]) -> np.ndarray:
    parts = []
    for m in modalities:
        x = e.features.pooled(m)
        parts.append(x if x is not None else np.zeros(dims[m], dtype=np.float32))
        parts.append(np.array([float(x is not None)], dtype=np.float32))
    return np.concatenate(parts)


def run_baselines(
    train: Sequence[Example],
    test: Sequence[Example],
    modalities: Sequence[str],
    dims: dict[str, int],
    seed: int,
) -> dict[str, dict[str, Any]]:
    """name -> test metrics (plus `predictions`) for every baseline."""
    y_test = np.array([e.label for e in test], dtype=int)
    out: dict[str, dict[str, Any]] = {}
    majority = np.full(len(test), majority_class(train), dtype=int)
    out["majority"] = classification_metrics(y_test, majority) | {"predictions": majority.tolist()}
    for m in modalities:
        preds = logreg_predictions(train, test, m, seed)
        out[f"logreg:{m}"] = classification_metrics(y_test, preds) | {"predictions": preds.tolist()}
    if test and len(modalities) > 1 and len({e.label for e in train}) >= 2:
        x_train = np.stack([_side_by_side(e, modalities, dims) for e in train])
        x_test = np.stack([_side_by_side(e, modalities, dims) for e in test])
        preds = _fit_predict(x_train, np.array([e.label for e in train]), x_test, seed)
        out["logreg:all"] = classification_metrics(y_test, preds) | {"predictions": preds.tolist()}
    return out
