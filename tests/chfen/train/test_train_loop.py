"""The loss, the class weights, the metrics and early stopping."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chfen.labels import PLUTCHIK
from chfen.model import CHFEN, CHFENConfig
from chfen.train import (
    class_weights,
    classification_metrics,
    fit,
    predict_proba,
    soft_cross_entropy,
)
from chfen.train.data import EmbeddingDataset, VideoFeatures
from chfen.train.run import torch_threads


def test_soft_cross_entropy_is_weighted_cross_entropy_on_one_hot_targets() -> None:
    torch.manual_seed(0)
    logits = torch.randn(6, 8)
    y = torch.tensor([0, 1, 1, 3, 7, 7])
    w = torch.rand(8) + 0.5
    one_hot = torch.nn.functional.one_hot(y, 8).float()
    ours = soft_cross_entropy(logits, one_hot, w)
    theirs = torch.nn.functional.cross_entropy(logits, y, weight=w)
    assert torch.allclose(ours, theirs, atol=1e-6)


def test_soft_targets_pull_towards_their_mix() -> None:
    target = torch.tensor([[0.5, 0.5, 0, 0, 0, 0, 0, 0]])
    at_mix = torch.log(target.clamp(min=1e-9))
    confident = torch.tensor([[9.0, 0, 0, 0, 0, 0, 0, 0]])
    assert soft_cross_entropy(at_mix, target) < soft_cross_entropy(confident, target)


def test_class_weights() -> None:
    soft = np.zeros((10, 8), dtype=np.float32)
    soft[:8, 0] = 1  # 8 × joy
    soft[8:, 1] = 1  # 2 × trust
    inv = class_weights(soft, "inverse")
    assert inv[1] / inv[0] == pytest.approx(4.0)
    assert float((inv[:2] * torch.tensor([8.0, 2.0])).sum()) == pytest.approx(10.0)
    sqrt = class_weights(soft, "sqrt_inverse")
    assert sqrt[1] / sqrt[0] == pytest.approx(2.0)
    assert torch.equal(class_weights(soft, "none"), torch.ones(8))
    with pytest.raises(ValueError):
        class_weights(soft, "bogus")


def test_metrics() -> None:
    y = [0, 0, 1, 1, 2]
    p = [0, 1, 1, 1, 2]
    m = classification_metrics(y, p)
    assert m["accuracy"] == pytest.approx(0.8)
    assert m["per_class_f1"]["joy"] == pytest.approx(2 / 3)
    assert m["per_class_f1"]["trust"] == pytest.approx(0.8)
    assert m["per_class_f1"]["anger"] is None  # in neither labels nor predictions
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.8 + 1) / 3)
    assert m["weighted_f1"] == pytest.approx((2 * 2 / 3 + 2 * 0.8 + 1) / 5)
    assert m["confusion"][0][:3] == [1, 1, 0] and len(m["confusion"]) == len(PLUTCHIK)


def _toy(n: int, seed: int) -> EmbeddingDataset:
    """Title-only videos whose class is readable from the vector (plus noise)."""
    rng = np.random.default_rng(seed)
    protos = np.random.default_rng(99).normal(size=(8, 6))
    feats, soft = [], []
    for i in range(n):
        c = i % 8
        x = (protos[c] + rng.normal(size=6) * 0.8).astype(np.float16)
        feats.append(
            VideoFeatures(
                f"t{i}",
                {"title": x},
                {"title": np.ones((), bool)},
                np.array([0.5], np.float32),
                np.ones(1, np.float32),
            )
        )
        soft.append(np.eye(8, dtype=np.float32)[c])
    return EmbeddingDataset(feats, soft)


def test_early_stopping_keeps_the_best_epoch() -> None:
    torch.manual_seed(0)
    model = CHFEN({"title": 6}, CHFENConfig(hidden_dim=16, heads=2, decision_layers=1))
    train, val = _toy(32, 0), _toy(16, 1)
    with torch_threads(1):
        history = fit(
            model,
            train,
            val,
            epochs=60,
            batch_size=8,
            lr=0.05,  # too high on purpose: validation loss turns up soon
            weight_decay=0.0,
            patience=3,
            weights=torch.ones(8),
            seed=0,
        )
    losses = [e["val_loss"] for e in history.epochs]
    assert history.stopped_early and len(losses) < 60
    assert history.best_epoch == int(np.argmin(losses)) + 1
    assert len(losses) == history.best_epoch + 3  # patience epochs without improvement
    # the kept weights are the best epoch's
    probs = torch.from_numpy(predict_proba(model, val))
    now = soft_cross_entropy(torch.log(probs), torch.from_numpy(np.stack(val.soft or [])))
    assert float(now) == pytest.approx(min(losses), rel=1e-4)
