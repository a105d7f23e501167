"""The training loop: AdamW, soft-label cross-entropy with class weights, early stopping on the
validation loss (the best epoch's weights are kept)."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from chfen.model import CHFEN
from chfen.train.data import EmbeddingDataset, collate
from chfen.train.metrics import classification_metrics


def class_weights(soft: np.ndarray, scheme: str) -> torch.Tensor:
    """Per-class loss weights from the training label mass (N, C): 1/n, 1/sqrt(n) or ones.

    Normalised so the label mass keeps its total weight; a class with no mass gets 1 (it never
    appears in a target, so its weight does not matter).
    """
    mass = soft.sum(axis=0).astype(np.float64)  # (C,)
    if scheme == "none":
        w = np.ones_like(mass)
    elif scheme in ("inverse", "sqrt_inverse"):
        safe = np.where(mass > 0, mass, 1.0)
        w = 1.0 / safe if scheme == "inverse" else 1.0 / np.sqrt(safe)
        w = np.where(mass > 0, w, 0.0)
        w *= mass.sum() / max((w * mass).sum(), 1e-12)
        w = np.where(mass > 0, w, 1.0)
    else:
        raise ValueError(f"unknown class_weighting {scheme!r}: inverse, sqrt_inverse or none")
    return torch.tensor(w, dtype=torch.float32)


def soft_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """−Σ_c w_c·y_c·log p_c, averaged with the weights of the targets (like a weighted CE).

    logits, targets: (B, C), each target row a distribution; weights: (C,).
    """
    logp = torch.log_softmax(logits, dim=-1)
    w = targets if weights is None else targets * weights.unsqueeze(0)  # (B, C)
    return -(w * logp).sum() / w.sum().clamp(min=1e-12)


@dataclass
class History:
    """What happened per epoch, and which epoch's weights were kept."""

    epochs: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False
    seconds: float = 0.0
    samples_per_s: float = 0.0


def loader(
    data: EmbeddingDataset, dims: Mapping[str, int], batch_size: int, *, shuffle: bool, seed: int
) -> DataLoader:
    """Batches of cached features: no worker processes, nothing but tensor copies."""
    g = torch.Generator().manual_seed(seed)
    return DataLoader(
        data,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=g,
        collate_fn=lambda items: collate(items, dims),
    )


@torch.no_grad()
def predict_proba(
    model: CHFEN, data: EmbeddingDataset, *, batch_size: int = 64, device: str = "cpu"
) -> np.ndarray:
    """Class probabilities (N, C) in the dataset's order."""
    model.eval()
    out = []
    for batch, _ in loader(data, model.input_dims, batch_size, shuffle=False, seed=0):
        out.append(torch.softmax(model(batch.to(device)), dim=-1).cpu().numpy())
    if not out:
        return np.zeros((0, model.config.n_classes), dtype=np.float32)
    return np.concatenate(out).astype(np.float32)


def _loss_on(
    model: CHFEN, data: EmbeddingDataset, weights: torch.Tensor, batch_size: int, device: str
) -> tuple[float, np.ndarray]:
    probs = predict_proba(model, data, batch_size=batch_size, device=device)
    soft = torch.from_numpy(np.stack(data.soft)) if data.soft else torch.zeros(0)
    logits = torch.log(torch.from_numpy(probs).clamp(min=1e-12))
    loss = soft_cross_entropy(logits, soft, weights).item() if len(data) else float("nan")
    return loss, probs


def fit(
    model: CHFEN,
    train: EmbeddingDataset,
    val: EmbeddingDataset,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    patience: int,
    weights: torch.Tensor,
    seed: int,
    grad_clip: float = 1.0,
    device: str = "cpu",
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> History:
    """Train with AdamW; stop when the validation loss has not improved for `patience` epochs
    and keep the best epoch's weights (without a validation set: every epoch, the last kept)."""
    torch.manual_seed(seed)
    model.to(device)
    weights = weights.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    batches = loader(train, model.input_dims, batch_size, shuffle=True, seed=seed)
    history = History()
    best_loss, best_state, waited = float("inf"), None, 0
    t_start = time.perf_counter()
    seen = 0
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        model.train()
        total, count = 0.0, 0
        for batch, targets in batches:
            assert targets is not None
            batch, targets = batch.to(device), targets.to(device)
            loss = soft_cross_entropy(model(batch), targets, weights)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            opt.step()
            total += loss.item() * len(targets)
            count += len(targets)
        seen += count
        row: dict[str, Any] = {"epoch": epoch, "train_loss": total / max(count, 1)}
        if len(val):
            val_loss, probs = _loss_on(model, val, weights.cpu(), batch_size, device)
            y_val = np.argmax(np.stack(val.soft or []), axis=1)
            m = classification_metrics(y_val, probs.argmax(axis=1))
            row |= {
                "val_loss": val_loss,
                "val_accuracy": m["accuracy"],
                "val_weighted_f1": m["weighted_f1"],
            }
            improved = val_loss < best_loss - 1e-6
        else:
            improved = True
        row["seconds"] = time.perf_counter() - t0
        history.epochs.append(row)
        if on_epoch is not None:
            on_epoch(row)
        if improved:
            best_loss = row.get("val_loss", row["train_loss"])
            best_state = copy.deepcopy(model.state_dict())
            history.best_epoch, waited = epoch, 0
        else:
            waited += 1
            if waited >= patience:
                history.stopped_early = True
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    history.seconds = time.perf_counter() - t_start
    history.samples_per_s = seen / history.seconds if history.seconds > 0 else 0.0
    return history
