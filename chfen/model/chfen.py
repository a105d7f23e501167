"""CHFEN: the conditional hybrid fusion emotion network, as in the paper's code, defects fixed.

The paper, its original code and what this project fixes in it: docs/chfen-paper.md.

    embeddings ─ ModalityProjection (+ TimePositionalEncoding on aligned steps)
        │
        ├─ FeatureLevel: ConditionalQuery(learnable + title ⊕ audio)
        │      FaceSceneFusion(scene, face; keyed on face density) ─┐
        │      GatedFusion(text, caption) ─────────────────────────┼─ ConditionedCrossAttention
        │      audio_seq ──────────────────────────────────────────┘   (one per stream)
        │
        ├─ DecisionLevel: [query, title, audio, streams…] + type encodings
        │      → 2 × (self-attention + FFN) → AttentionPooling
        │
        └─ EmotionClassifier → logits over Plutchik's eight emotions

For small data (hundreds of videos) and modalities that may carry nothing:

- every modality's inputs are standardized with the training split's mean and std
  (`set_standardization`; buffers, saved with the weights, applied at prediction);
- modality dropout (`modality_dropout`, training only): a whole modality is masked for a video
  with that probability, never all of a video's modalities;
- modality heads (`modality_heads`): each modality alone -> a linear head on its pooled,
  standardized input (a logistic regression, fit by L-BFGS with L2 before the network trains,
  then frozen); the final logits are a weighted sum of the fused network's logits and the
  heads' present for the video, one non-negative weight per expert (softplus), fit on held-out
  videos (cross-validation folds or the validation split). The weights need not sum to one: a
  confident head that is often wrong is scaled down (tempered), not only traded off. A
  modality that predicts nothing earns a low weight; with few videos the
  heads carry the prediction, with many the fused network can take over.

Ablations (TrainConfig, one switch each): `fusion` = hybrid | feature (feature level, then
attention pooling; no decision level) | decision (projected modalities straight into the
decision level); `use_cross_attention` (streams not attended by the condition, and no
condition: a learnable summary token stands in for the query); `use_face_scene_fusion` (scene
and face as two streams); `use_audio`, `use_caption`, `modalities` (a modality left out is
never built; one missing for a video is masked).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from chfen.labels import PLUTCHIK
from chfen.modalities import MODALITIES
from chfen.model.blocks import (
    AttentionPooling,
    ConditionalQuery,
    ConditionedCrossAttention,
    EmotionClassifier,
    FaceSceneFusion,
    GatedFusion,
    ModalityHead,
    ModalityProjection,
    SelfAttentionBlock,
    Standardize,
    TimePositionalEncoding,
    masked_zero,
    modality_keep_mask,
)
from chfen.model.inputs import CAPTION, ModalityBatch, is_global

# The modalities the feature level treats specially; any other aligned one is its own stream.
TITLE, AUDIO, SCENE, FACE, TEXT, AUDIO_SEQ = "title", "audio", "scene", "face", "text", "audio_seq"
AUDIO_MODALITIES = (AUDIO, AUDIO_SEQ)
assert {TITLE, AUDIO, SCENE, FACE, TEXT, AUDIO_SEQ} <= set(MODALITIES)

Fusion = Literal["hybrid", "feature", "decision"]
Tokens = list[tuple[str, Tensor, Tensor]]  # (type name, (B, L, H) vectors, (B, L) presence)


@dataclass(frozen=True)
class CHFENConfig:
    """The network's hyperparameters and ablation switches (built from TrainConfig)."""

    hidden_dim: int = 128
    heads: int = 4
    dropout: float = 0.1
    decision_layers: int = 2
    fusion: Fusion = "hybrid"
    modalities: tuple[str, ...] = MODALITIES
    use_audio: bool = True
    use_caption: bool = True
    use_cross_attention: bool = True
    use_face_scene_fusion: bool = True
    # Off here (a plain network for the unit tests); TrainConfig turns them on for training.
    modality_dropout: float = 0.0
    modality_heads: bool = False
    n_classes: int = len(PLUTCHIK)

    @classmethod
    def from_train(cls, train: Any) -> CHFENConfig:
        """From a `chfen.config.TrainConfig` (or anything with the same attributes)."""
        return cls(
            hidden_dim=train.hidden_dim,
            heads=train.heads,
            dropout=train.dropout,
            decision_layers=train.decision_layers,
            fusion=train.fusion,
            modalities=tuple(train.modalities),
            use_audio=train.use_audio,
            use_caption=train.use_caption,
            use_cross_attention=train.use_cross_attention,
            use_face_scene_fusion=train.use_face_scene_fusion,
            modality_dropout=train.modality_dropout,
            modality_heads=train.modality_heads,
        )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["modalities"] = list(self.modalities)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CHFENConfig:
        data = dict(data)
        data["modalities"] = tuple(data.get("modalities", MODALITIES))
        data.setdefault("modality_heads", False)  # checkpoints from before the heads
        return cls(**data)

    def active_modalities(self, available: Iterable[str]) -> tuple[str, ...]:
        """The modalities the network is built for: wanted by the switches and available."""
        # Captions ride with the transcript (the original code appended them to the subtitles).
        with_caption = self.use_caption and TEXT in self.modalities
        wanted = [*self.modalities, *([CAPTION] if with_caption else [])]
        if not self.use_audio:
            wanted = [m for m in wanted if m not in AUDIO_MODALITIES]
        have = set(available)
        return tuple(dict.fromkeys(m for m in wanted if m in have))


class FeatureLevel(nn.Module):
    """The conditional feature level: fuse the aligned streams, attend them under the condition.

    Streams: `image` (FaceSceneFusion of scene and face; or `scene` and `face` apart when the
    fusion is switched off), `text` (the transcript, GatedFusion with captions when present),
    and every other aligned modality (`audio_seq`) on its own.
    """

    def __init__(self, modalities: Sequence[str], config: CHFENConfig):
        super().__init__()
        hidden = config.hidden_dim
        have = set(modalities)
        self.globals = tuple(m for m in (TITLE, AUDIO) if m in have)
        self.use_condition = config.use_cross_attention
        self.condition = ConditionalQuery(hidden) if self.use_condition else None

        self.fuse_face_scene = config.use_face_scene_fusion and {SCENE, FACE} <= have
        self.face_scene = FaceSceneFusion(hidden) if self.fuse_face_scene else None
        self.fuse_caption = {TEXT, CAPTION} <= have
        self.text_caption = GatedFusion(hidden) if self.fuse_caption else None

        streams: list[str] = []
        if self.fuse_face_scene:
            streams.append("image")
        else:
            streams += [m for m in (SCENE, FACE) if m in have]
        if TEXT in have or CAPTION in have:
            streams.append(TEXT)
        special = {SCENE, FACE, TEXT, CAPTION}
        streams += [m for m in modalities if not is_global(m) and m not in special]
        self.stream_names = tuple(streams)
        self.cross_attention: nn.ModuleDict | None = None
        if self.use_condition:
            self.cross_attention = nn.ModuleDict(
                {
                    s: ConditionedCrossAttention(hidden, config.heads, config.dropout)
                    for s in streams
                }
            )

    def streams(
        self, proj: Mapping[str, tuple[Tensor, Tensor]], face_density: Tensor | None
    ) -> dict[str, tuple[Tensor, Tensor]]:
        """The aligned streams before attention: name -> ((B, T, H), (B, T))."""
        out: dict[str, tuple[Tensor, Tensor]] = {}
        for name in self.stream_names:
            if name == "image":
                assert self.face_scene is not None
                out[name] = self.face_scene(*proj[SCENE], *proj[FACE], face_density)
            elif name == TEXT and self.text_caption is not None:
                out[name] = self.text_caption(*proj[TEXT], *proj[CAPTION])
            elif name == TEXT:
                out[name] = proj[TEXT] if TEXT in proj else proj[CAPTION]
            else:
                out[name] = proj[name]
        return out

    def forward(
        self,
        proj: Mapping[str, tuple[Tensor, Tensor]],
        face_density: Tensor | None,
        batch_size: int,
    ) -> tuple[Tensor | None, dict[str, tuple[Tensor, Tensor]]]:
        """(query (B, H) or None without condition, streams name -> ((B, T, H), (B, T)))."""
        streams = self.streams(proj, face_density)
        if self.condition is None or self.cross_attention is None:
            return None, streams
        query = self.condition(batch_size, proj.get(TITLE), proj.get(AUDIO))  # (B, H)
        attended = {
            name: (self.cross_attention[name](seq, present, query), present)
            for name, (seq, present) in streams.items()
        }
        return query, attended


class DecisionLevel(nn.Module):
    """Modality type encodings, self-attention + FFN blocks, attention pooling."""

    def __init__(self, token_types: Sequence[str], config: CHFENConfig):
        super().__init__()
        self.token_types = tuple(token_types)
        self.type_index = {name: i for i, name in enumerate(self.token_types)}
        self.type_encoding = nn.Embedding(len(self.token_types), config.hidden_dim)
        self.blocks = nn.ModuleList(
            SelfAttentionBlock(config.hidden_dim, config.heads, config.dropout)
            for _ in range(config.decision_layers)
        )
        self.pooling = AttentionPooling(config.hidden_dim)

    def forward(self, tokens: Tokens) -> Tensor:
        xs, masks = [], []
        for name, x, present in tokens:
            type_vec = self.type_encoding.weight[self.type_index[name]]  # (H,)
            xs.append(masked_zero(x + type_vec, present))
            masks.append(present)
        x, present = torch.cat(xs, dim=1), torch.cat(masks, dim=1)  # (B, L, H), (B, L)
        for block in self.blocks:
            x = block(x, present)
        return self.pooling(x, present)  # (B, H)


@dataclass
class CHFENOutput:
    """Everything one forward pass produces: the final logits (B, C), the fused network's own
    logits, and per modality head its logits (B, C) and which videos have the modality (B,)."""

    logits: Tensor
    fused: Tensor
    heads: dict[str, tuple[Tensor, Tensor]] = field(default_factory=dict)


def mixing_logit(weight: float) -> float:
    """The raw parameter whose softplus is `weight` (> 0)."""
    return float(math.log(math.expm1(weight)))


class CHFEN(nn.Module):
    """The whole network: cached embeddings in, emotion logits out.

    `input_dims` maps each available modality to its embedding size (encoders differ); the
    network is built for the modalities the config wants among those. A modality the config
    wants but a batch lacks is treated as missing for every video in it.
    """

    def __init__(self, input_dims: Mapping[str, int], config: CHFENConfig | None = None):
        super().__init__()
        self.config = config or CHFENConfig()
        cfg = self.config
        self.input_dims = {m: int(d) for m, d in input_dims.items()}
        self.modalities = cfg.active_modalities(self.input_dims)
        if not self.modalities:
            raise ValueError(
                f"no modality left to train on: the config wants {list(cfg.modalities)} "
                f"(use_audio={cfg.use_audio}), the embeddings have {sorted(self.input_dims)}"
            )
        hidden = cfg.hidden_dim
        self.standardize = nn.ModuleDict(
            {m: Standardize(self.input_dims[m]) for m in self.modalities}
        )
        self.projections = nn.ModuleDict(
            {
                m: ModalityProjection(self.input_dims[m], hidden, cfg.dropout)
                for m in self.modalities
            }
        )
        self.time_encoding = TimePositionalEncoding(hidden)

        self.feature_level: FeatureLevel | None = None
        self.summary: nn.Parameter | None = None
        if cfg.fusion == "decision":
            token_types = ["query", *self.modalities]
        else:
            self.feature_level = FeatureLevel(self.modalities, cfg)
            globals_ = [m for m in self.modalities if is_global(m)]
            token_types = ["query", *globals_, *self.feature_level.stream_names]
        if self.feature_level is None or not self.feature_level.use_condition:
            # No conditional query: a learnable summary token keeps every video non-empty.
            self.summary = nn.Parameter(torch.randn(hidden) * 0.02)

        self.decision_level = DecisionLevel(token_types, cfg) if cfg.fusion != "feature" else None
        self.feature_pooling = AttentionPooling(hidden) if cfg.fusion == "feature" else None
        self.classifier = EmotionClassifier(hidden, cfg.n_classes, cfg.dropout)
        self.heads: nn.ModuleDict | None = None
        self.head_weights: nn.Parameter | None = None
        if cfg.modality_heads:
            self.heads = nn.ModuleDict(
                {
                    m: ModalityHead(self.input_dims[m], cfg.n_classes, cfg.dropout)
                    for m in self.modalities
                }
            )
            # one weight for the fused network, then one per head; equal at the start
            n = 1 + len(self.modalities)
            self.head_weights = nn.Parameter(torch.full((n,), mixing_logit(1.0 / n)))

    def set_standardization(self, stats: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> None:
        """Per modality (mean (D,), scale (D,)) from the training split; others stay as is."""
        for m, (mean, scale) in stats.items():
            if m in self.standardize:
                self.standardize[m].set(
                    torch.as_tensor(mean, dtype=torch.float32),
                    torch.as_tensor(scale, dtype=torch.float32),
                )

    def _inputs(self, batch: ModalityBatch) -> dict[str, tuple[Tensor, Tensor]]:
        """Every active modality's standardized input and presence; in training, with whole
        modalities masked for some videos (modality dropout)."""
        batch_size, steps = batch.times.shape
        device = batch.times.device
        out: dict[str, tuple[Tensor, Tensor]] = {}
        for m in self.modalities:
            if m in batch.features:
                x, present = batch.features[m], batch.masks[m].bool()
            else:  # missing for the whole batch
                shape = (batch_size,) if is_global(m) else (batch_size, steps)
                x = torch.zeros(*shape, self.input_dims[m], device=device)
                present = torch.zeros(shape, dtype=torch.bool, device=device)
            out[m] = (self.standardize[m](x), present)
        p = self.config.modality_dropout
        if self.training and p > 0 and out:
            names = list(out)
            has = torch.stack(
                [pr if pr.dim() == 1 else pr.any(dim=-1) for _, pr in out.values()], dim=1
            )  # (B, M)
            keep = modality_keep_mask(has, p)
            for j, m in enumerate(names):
                x, present = out[m]
                k = keep[:, j] if present.dim() == 1 else keep[:, j : j + 1]
                out[m] = (x, present & k)
        return out

    def _project(
        self, batch: ModalityBatch
    ) -> tuple[dict[str, tuple[Tensor, Tensor]], dict[str, tuple[Tensor, Tensor]]]:
        """(time-encoded projections, the standardized inputs they came from) per modality."""
        proj: dict[str, tuple[Tensor, Tensor]] = {}
        inputs = self._inputs(batch)
        for m, (x, present) in inputs.items():
            h = self.projections[m](x, present)  # (B, H) or (B, T, H)
            if not is_global(m):
                h = masked_zero(h + self.time_encoding(batch.times), present)
            proj[m] = (h, present)
        return proj, inputs

    def project(self, batch: ModalityBatch) -> dict[str, tuple[Tensor, Tensor]]:
        """Every active modality in the hidden space, aligned ones time-encoded."""
        return self._project(batch)[0]

    def pooled(self, batch: ModalityBatch) -> Tensor:
        """The video vector (B, H) the classifier reads."""
        return self._pooled(batch, self.project(batch))

    def _pooled(self, batch: ModalityBatch, proj: Mapping[str, tuple[Tensor, Tensor]]) -> Tensor:
        batch_size = batch.batch_size
        device = batch.times.device
        always = torch.ones(batch_size, 1, dtype=torch.bool, device=device)

        if self.feature_level is None:  # decision-level fusion only
            query = None
            tokens: Tokens = [
                (m, h.unsqueeze(1), p[:, None]) if is_global(m) else (m, h, p)
                for m, (h, p) in proj.items()
            ]
        else:
            query, streams = self.feature_level(proj, batch.face_density, batch_size)
            tokens = [(m, h.unsqueeze(1), p[:, None]) for m, (h, p) in proj.items() if is_global(m)]
            tokens += [(name, h, p) for name, (h, p) in streams.items()]
        if query is None:
            assert self.summary is not None
            query = self.summary.expand(batch_size, -1)
        tokens.insert(0, ("query", query.unsqueeze(1), always))

        if self.decision_level is not None:
            return self.decision_level(tokens)
        assert self.feature_pooling is not None
        x = torch.cat([masked_zero(h, p) for _, h, p in tokens], dim=1)  # (B, L, H)
        present = torch.cat([p for _, _, p in tokens], dim=1)  # (B, L)
        return self.feature_pooling(x, present)

    def outputs(self, batch: ModalityBatch) -> CHFENOutput:
        """The final logits with the fused network's and every modality head's."""
        proj, inputs = self._project(batch)
        fused = self.classifier(self._pooled(batch, proj))  # (B, C)
        if self.heads is None or self.head_weights is None:
            return CHFENOutput(fused, fused)
        heads = {m: self.heads[m](*inputs[m]) for m in self.modalities}
        stack = torch.stack([fused, *(lg for lg, _ in heads.values())], dim=1)  # (B, 1+M, C)
        always = torch.ones(batch.batch_size, 1, dtype=torch.bool, device=fused.device)
        avail = torch.cat([always, torch.stack([h for _, h in heads.values()], dim=1)], dim=1)
        w = nn.functional.softplus(self.head_weights).unsqueeze(0) * avail  # (B, 1+M)
        logits = (w.unsqueeze(-1) * stack).sum(dim=1)  # (B, C)
        return CHFENOutput(logits, fused, heads)

    def mixing_weights(self) -> dict[str, float]:
        """The learned weight of the fused network and of each modality head (all present)."""
        if self.head_weights is None:
            return {}
        w = nn.functional.softplus(self.head_weights.detach().cpu()).tolist()
        return dict(zip(["fused", *self.modalities], (round(v, 4) for v in w), strict=True))

    def forward(self, batch: ModalityBatch) -> Tensor:
        return self.outputs(batch).logits  # (B, C) logits

    # ---- checkpoints -------------------------------------------------------------------------

    def checkpoint(self) -> dict[str, Any]:
        """Everything needed to rebuild the network: dims, config, weights."""
        return {
            "input_dims": dict(self.input_dims),
            "config": self.config.to_dict(),
            "state_dict": self.state_dict(),
        }

    @classmethod
    def from_checkpoint(cls, data: Mapping[str, Any]) -> CHFEN:
        model = cls(data["input_dims"], CHFENConfig.from_dict(data["config"]))
        state = dict(data["state_dict"])
        for key, value in model.state_dict().items():
            if key.startswith("standardize."):  # checkpoints from before: the identity
                state.setdefault(key, value)
        model.load_state_dict(state)
        return model
