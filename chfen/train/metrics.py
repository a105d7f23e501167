"""Classification metrics: the original CHFEN code's (accuracy, weighted F1) plus macro F1,
per-class F1, the confusion matrix, and the log loss against the soft labels when probabilities
are given."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from chfen.labels import PLUTCHIK


def classification_metrics(
    y_true: Sequence[int] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    *,
    probs: np.ndarray | None = None,
    soft: np.ndarray | None = None,
    labels: Sequence[str] = PLUTCHIK,
) -> dict[str, Any]:
    """Metrics of hard predictions against hard labels (indices into `labels`).

    Weighted and macro F1 are over the classes that occur in the labels or the predictions
    (sklearn's default); per-class F1 lists every class, None where a class occurs in neither.
    """
    y_true, y_pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    n = len(y_true)
    out: dict[str, Any] = {"n": n}
    if n == 0:
        return out | {"accuracy": None, "weighted_f1": None, "macro_f1": None}
    every = list(range(len(labels)))
    per_class = f1_score(y_true, y_pred, labels=every, average=None, zero_division=0)
    seen = set(y_true.tolist()) | set(y_pred.tolist())
    out.update(
        accuracy=float(accuracy_score(y_true, y_pred)),
        weighted_f1=float(f1_score(y_true, y_pred, average="weighted", zero_division=0)),
        macro_f1=float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        per_class_f1={
            name: (float(per_class[i]) if i in seen else None) for i, name in enumerate(labels)
        },
        support={name: int((y_true == i).sum()) for i, name in enumerate(labels)},
        confusion=confusion_matrix(y_true, y_pred, labels=every).tolist(),
        labels=list(labels),
    )
    if probs is not None and soft is not None:
        logp = np.log(np.clip(probs, 1e-12, 1.0))
        out["log_loss"] = float(-(soft * logp).sum(axis=1).mean())
    return out
