"""The building blocks of CHFEN, each named after its block in the paper and testable alone.

Masks are presence masks throughout: True = a real vector, False = padding or a missing
modality. A block never lets a masked value reach an unmasked output: attention gives masked
keys zero weight, fusions pick the present input with `torch.where` (so even NaN in a masked
slot cannot leak), and outputs at masked positions are set to zero and stay masked.

Shapes: B = batch, T = grid steps, H = hidden size, D = an encoder's embedding size.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def key_padding_mask(present: Tensor) -> Tensor:
    """`nn.MultiheadAttention`'s key_padding_mask (True = ignore) from a presence mask (B, L).

    A row with no present key at all would make the softmax NaN; there the first key is let in
    so the arithmetic stays finite. Callers mask those rows' outputs afterwards.
    """
    ignore = ~present
    empty = ignore.all(dim=-1)  # (B,)
    if bool(empty.any()):
        ignore = ignore.clone()
        ignore[empty, 0] = False
    return ignore


def masked_zero(x: Tensor, present: Tensor) -> Tensor:
    """x (…, H) with rows whose mask (…) is False set to exactly zero (NaN-safe)."""
    return torch.where(present.unsqueeze(-1), x, torch.zeros_like(x))


class FeedForward(nn.Module):
    """Position-wise FFN: H -> 4H -> H."""

    def __init__(self, hidden: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(hidden, 4 * hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(4 * hidden, hidden),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class TimePositionalEncoding(nn.Module):
    """Sinusoidal encoding of each grid step's time in seconds.

    The original CHFEN code (docs/chfen-paper.md) indexed its positional table by the batch
    dimension, so every step of a video got the same vector and videos got different ones by
    their place in the batch. Here the encoding is a function of the step's own timestamp only:
    periods from `min_period_s` (finer than a 1 Hz grid) to `max_period_s` (longer than any
    short video), geometrically spaced.
    """

    def __init__(self, dim: int, min_period_s: float = 0.5, max_period_s: float = 1000.0):
        super().__init__()
        self.dim = dim
        n = max(dim // 2, 1)
        periods = min_period_s * (max_period_s / min_period_s) ** (torch.arange(n) / max(n - 1, 1))
        self.register_buffer("angular", 2 * math.pi / periods, persistent=False)

    def forward(self, times: Tensor) -> Tensor:
        phase = times.unsqueeze(-1).float() * self.angular  # (B, T, H/2)
        enc = torch.cat([torch.sin(phase), torch.cos(phase)], dim=-1)  # (B, T, 2*(H/2))
        if enc.shape[-1] < self.dim:  # odd H
            enc = nn.functional.pad(enc, (0, self.dim - enc.shape[-1]))
        return enc[..., : self.dim]


class Standardize(nn.Module):
    """(x − mean) / scale per feature, with statistics of the training split.

    The statistics are buffers, so they travel with the weights in a checkpoint and prediction
    applies the transform training used. Until `set` is called it is the identity.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))

    def set(self, mean: Tensor, scale: Tensor) -> None:
        if bool((scale <= 0).any()) or not bool(torch.isfinite(scale).all()):
            raise ValueError("standardization scales must be positive and finite")
        self.mean.copy_(mean.to(self.mean))
        self.scale.copy_(scale.to(self.scale))

    def forward(self, x: Tensor) -> Tensor:
        return (x.float() - self.mean) / self.scale


def modality_keep_mask(has: Tensor, p: float, generator: torch.Generator | None = None) -> Tensor:
    """Modality dropout: which of a batch's modalities to keep, (B, M) bool.

    `has` (B, M): the video has the modality at all. Each present one is dropped with
    probability p, independently; a video that would lose all of them keeps one, chosen at
    random among those it has (a video with none keeps none).
    """
    if p <= 0:
        return has.clone()
    drop = (torch.rand(has.shape, generator=generator, device=has.device) < p) & has
    keep = has & ~drop
    lost = has.any(dim=1) & ~keep.any(dim=1)  # (B,)
    if bool(lost.any()):
        score = torch.rand(has.shape, generator=generator, device=has.device)
        pick = score.masked_fill(~has, -1.0).argmax(dim=1)  # (B,) a modality the video has
        keep[lost, pick[lost]] = True
    return keep


class ModalityHead(nn.Module):
    """A classifier on one modality alone: its standardized input (aligned ones averaged over
    present steps) -> logits, one linear layer. It is a multinomial logistic regression on the
    same pooled vector the baselines read, fit by `chfen.train.loop.fit_heads` (L-BFGS, L2)
    before the network trains; mixed with the fused network by weights fit on held-out videos,
    it lets the model lean on the modalities that carry something and ignore the rest."""

    def __init__(self, in_dim: int, n_classes: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(in_dim, n_classes)

    @staticmethod
    def pool(x: Tensor, present: Tensor) -> tuple[Tensor, Tensor]:
        """(B, D) pooled vectors and (B,) which videos have the modality at all."""
        if x.dim() == 3:
            w = present.float().unsqueeze(-1)  # (B, T, 1)
            pooled = (masked_zero(x, present) * w).sum(dim=1) / w.sum(dim=1).clamp(min=1.0)
            return pooled, present.any(dim=-1)
        return masked_zero(x, present), present

    def forward(self, x: Tensor, present: Tensor) -> tuple[Tensor, Tensor]:
        # x: (B, D) with present (B,), or (B, T, D) with present (B, T)
        pooled, has = self.pool(x, present)
        return self.out(self.dropout(pooled)), has  # (B, C), (B,)


class ModalityProjection(nn.Module):
    """An encoder's embedding (D) into the shared hidden space (H)."""

    def __init__(self, in_dim: int, hidden: int, dropout: float):
        super().__init__()
        self.proj = nn.Linear(in_dim, hidden)
        self.norm = nn.LayerNorm(hidden)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, present: Tensor) -> Tensor:
        x = masked_zero(x.float(), present)  # a masked slot may hold anything, even NaN
        return masked_zero(self.dropout(self.norm(self.proj(x))), present)  # (…, H)


class GatedFusion(nn.Module):
    """Fuse two same-shaped inputs with a learned gate: g·a + (1−g)·b, g = σ(W[a; b]).

    Defined but never called in the original code; here it fuses the title and the audio into the
    condition, and the transcript with the frame captions. When one input is missing the other
    passes through unchanged; when both are, the output is zero and masked.
    """

    def __init__(self, hidden: int):
        super().__init__()
        self.gate = nn.Linear(2 * hidden, hidden)

    def forward(
        self, a: Tensor, a_present: Tensor, b: Tensor, b_present: Tensor
    ) -> tuple[Tensor, Tensor]:
        a, b = masked_zero(a, a_present), masked_zero(b, b_present)
        g = torch.sigmoid(self.gate(torch.cat([a, b], dim=-1)))  # (…, H)
        both = g * a + (1 - g) * b
        ap, bp = a_present.unsqueeze(-1), b_present.unsqueeze(-1)
        one = torch.where(ap, a, torch.where(bp, b, torch.zeros_like(a)))
        out = torch.where(ap & bp, both, one)  # (…, H)
        return out, a_present | b_present


class FaceSceneFusion(nn.Module):
    """The original code's image stream: per step, attention over {scene, face} keyed on face
    density.

    Each candidate gets a score from its own content plus an embedding of the step's face
    density (log(1 + faces in the step)); a softmax over the candidates present at that step
    weights them. A step with no face is the scene alone; a step with neither is masked.
    """

    def __init__(self, hidden: int):
        super().__init__()
        self.density = nn.Linear(1, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.score = nn.Linear(hidden, 1, bias=False)

    def forward(
        self,
        scene: Tensor,
        scene_present: Tensor,
        face: Tensor,
        face_present: Tensor,
        face_density: Tensor | None,
    ) -> tuple[Tensor, Tensor]:
        # scene, face: (B, T, H); masks and density: (B, T)
        if face_density is None:
            face_density = face_present.float()
        density = torch.where(face_present, face_density.float(), torch.zeros_like(face_density))
        d = self.density(torch.log1p(density.clamp(min=0)).unsqueeze(-1))  # (B, T, H)
        candidates = torch.stack(
            [masked_zero(scene, scene_present), masked_zero(face, face_present)], dim=2
        )  # (B, T, 2, H)
        present = torch.stack([scene_present, face_present], dim=2)  # (B, T, 2)
        scores = self.score(torch.tanh(self.key(candidates) + d.unsqueeze(2))).squeeze(-1)
        scores = scores.masked_fill(~present, float("-inf"))
        any_present = present.any(dim=-1)  # (B, T)
        scores = torch.where(any_present.unsqueeze(-1), scores, torch.zeros_like(scores))
        weights = torch.softmax(scores, dim=-1)  # (B, T, 2)
        fused = (weights.unsqueeze(-1) * candidates).sum(dim=2)  # (B, T, H)
        return masked_zero(fused, any_present), any_present


class ConditionalQuery(nn.Module):
    """The condition of the feature level: a learnable query plus the gated title and audio.

    q = LayerNorm(query + GatedFusion(title, audio)); a missing title or audio is left out of
    the gate, not fed in as zeros. With neither, q is the learnable query alone.
    """

    def __init__(self, hidden: int):
        super().__init__()
        self.query = nn.Parameter(torch.randn(hidden) * 0.02)
        self.fuse = GatedFusion(hidden)
        self.norm = nn.LayerNorm(hidden)

    def forward(
        self,
        batch_size: int,
        title: tuple[Tensor, Tensor] | None = None,
        audio: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        # title, audio: ((B, H), (B,)) pairs of projected vectors and presence masks
        base = self.query.expand(batch_size, -1)  # (B, H)
        if title is None and audio is None:
            return self.norm(base)
        none = torch.zeros(batch_size, dtype=torch.bool, device=base.device)
        t, tp = title if title is not None else (torch.zeros_like(base), none)
        a, ap = audio if audio is not None else (torch.zeros_like(base), none)
        condition, _ = self.fuse(t, tp, a, ap)  # zero where both are missing
        return self.norm(base + condition)  # (B, H)


class ConditionedCrossAttention(nn.Module):
    """A sequence attended over by queries that carry the condition — one query per step.

    The original code expanded one conditional query over the sequence, so every step asked the same
    question and every output was identical. Here step t's query is its own (time-encoded)
    content plus the condition, so the outputs differ across positions while all of them are
    steered by the title and the audio. Masked keys get no weight; masked steps output zero.
    """

    def __init__(self, hidden: int, heads: int, dropout: float):
        super().__init__()
        self.query_norm = nn.LayerNorm(hidden)
        self.key_norm = nn.LayerNorm(hidden)
        self.attn = nn.MultiheadAttention(hidden, heads, dropout=dropout, batch_first=True)
        self.ffn_norm = nn.LayerNorm(hidden)
        self.ffn = FeedForward(hidden, dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(self, seq: Tensor, present: Tensor, condition: Tensor) -> Tensor:
        # seq: (B, T, H); present: (B, T); condition: (B, H)
        queries = self.query_norm(seq + condition.unsqueeze(1))  # (B, T, H): differ per step
        keys = self.key_norm(seq)
        attended, _ = self.attn(
            queries, keys, keys, key_padding_mask=key_padding_mask(present), need_weights=False
        )
        x = seq + self.dropout(attended)
        x = x + self.dropout(self.ffn(self.ffn_norm(x)))
        return masked_zero(x, present)  # (B, T, H)


class SelfAttentionBlock(nn.Module):
    """Pre-norm self-attention + FFN over the decision level's token sequence."""

    def __init__(self, hidden: int, heads: int, dropout: float):
        super().__init__()
        self.attn_norm = nn.LayerNorm(hidden)
        self.attn = nn.MultiheadAttention(hidden, heads, dropout=dropout, batch_first=True)
        self.ffn_norm = nn.LayerNorm(hidden)
        self.ffn = FeedForward(hidden, dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, present: Tensor) -> Tensor:
        # x: (B, L, H); present: (B, L)
        h = self.attn_norm(x)
        attended, _ = self.attn(
            h, h, h, key_padding_mask=key_padding_mask(present), need_weights=False
        )
        x = x + self.dropout(attended)
        x = x + self.dropout(self.ffn(self.ffn_norm(x)))
        return masked_zero(x, present)


class AttentionPooling(nn.Module):
    """One vector per video: a learned score per token, softmax over the present tokens."""

    def __init__(self, hidden: int):
        super().__init__()
        self.key = nn.Linear(hidden, hidden)
        self.score = nn.Linear(hidden, 1, bias=False)

    def forward(self, x: Tensor, present: Tensor) -> Tensor:
        # x: (B, L, H); present: (B, L), at least one True per row
        scores = self.score(torch.tanh(self.key(x))).squeeze(-1)  # (B, L)
        scores = scores.masked_fill(~present, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        return (weights.unsqueeze(-1) * masked_zero(x, present)).sum(dim=1)  # (B, H)


class EmotionClassifier(nn.Module):
    """The head: pooled video vector (H) -> logits over Plutchik's eight emotions."""

    def __init__(self, hidden: int, n_classes: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(hidden),
            nn.Linear(hidden, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_classes),
        )

    def forward(self, pooled: Tensor) -> Tensor:
        return self.net(pooled)  # (B, C)
