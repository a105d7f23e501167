"""One test per defect of the original CHFEN code (docs/chfen-paper.md), each on the fixed
network.

Mutation check (issue 14): each defect was put back, one at a time, by replacing one line or
block of the code as described; this module was run and the tests named failed; then the code
was restored with `git checkout`. Last checked 2026-12-03 on branch wip-eval (13 mutations).

defect put back          | how (file, code put back)                    | tests that failed
-------------------------|----------------------------------------------|-------------------------
D1 positions from the    | blocks.py TimePositionalEncoding: the phase  | time_encoding_is_a_…,
   batch index           |   from arange(B) broadcast over the steps    | positions_come_from_…,
                         |   instead of the step times                  | padded_steps_…, cross_…
                         |                                              |   of_a_still_video_…
D1 (variant)             | chfen.py project: time_encoding(arange(B))   | positions_come_from_…,
                         |   per row instead of batch.times             | padded_steps_…, cross_…
D2 one query expanded    | blocks.py ConditionedCrossAttention: queries | …asks_one_question_per_…
   over the sequence     |   = query_norm(condition).unsqueeze(1)       | cross_attention_of_a_…
                         |   .expand(-1, T, -1)                         |   still_video_…
                         |   (the two earlier tests, on the block's     |
                         |   output, both passed: residual + time enc.) |
D3 padded keys attended  | blocks.py key_padding_mask: ignore nothing   | padded_steps_never_…
D3 pooling over padding  | blocks.py AttentionPooling: no masked_fill   | padded_steps_never_…
D3 projection unmasked   | blocks.py ModalityProjection: proj/norm only | gradients_stay_finite_…
D3 zero-filling          | chfen.py project: masked slots set to 0 and  | a_missing_modality_is_…,
                         |   marked present; an absent modality as      | padded_steps_…,
                         |   present zeros                              | a_face_missing_at_…
D3 absent face weighed   | blocks.py FaceSceneFusion: no masked_fill    | a_face_missing_at_…
D4 GatedFusion unused    | blocks.py ConditionalQuery: title + audio    | gated_fusion_runs_in_…
   (condition)           |   summed, no gate                            |
D4 GatedFusion unused    | chfen.py FeatureLevel.streams: the text      | gated_fusion_runs_in_…
   (text + caption)      |   stream is the transcript alone             |
D4 gate mixes in a       | blocks.py GatedFusion: out = both            | gated_fusion_passes_the_…
   missing input         |                                              |
D5 encoder in            | data.py EmbeddingDataset.__getitem__: from   | batches_come_from_cached_…
   Dataset.__getitem__   |   chfen.embed.text import TextEncoder        |
D5 (variant)             | data.py: module-level import of ImageEncoder | batches_come_from_cached_…

Not caught on purpose: a `__getitem__` that merely copies the cached vectors (no encoder).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import chfen
from chfen.model import (
    CHFEN,
    ConditionedCrossAttention,
    GatedFusion,
    ModalityBatch,
    TimePositionalEncoding,
)
from chfen.model.chfen import FeatureLevel
from chfen.model.inputs import is_global

ATOL = 1e-5
FUSIONS = ["hybrid", "feature", "decision"]


def take(batch: ModalityBatch, rows: list[int]) -> ModalityBatch:
    """Some videos of a batch, in the given order."""
    idx = torch.tensor(rows)
    return ModalityBatch(
        {m: x[idx] for m, x in batch.features.items()},
        {m: x[idx] for m, x in batch.masks.items()},
        batch.times[idx],
        None if batch.face_density is None else batch.face_density[idx],
        [batch.video_ids[i] for i in rows],
    )


def pad(batch: ModalityBatch, extra: int, fill: float = float("nan")) -> ModalityBatch:
    """The batch with `extra` padded steps holding garbage, masked out."""
    features, masks = {}, {}
    for m, x in batch.features.items():
        if is_global(m):
            features[m], masks[m] = x, batch.masks[m]
            continue
        b, _, d = x.shape
        features[m] = torch.cat([x, torch.full((b, extra, d), fill)], dim=1)
        masks[m] = torch.cat([batch.masks[m], torch.zeros(b, extra, dtype=torch.bool)], dim=1)
    b = batch.times.shape[0]
    times = torch.cat([batch.times, torch.full((b, extra), 1e6)], dim=1)
    density = torch.cat([batch.face_density, torch.full((b, extra), 7.0)], dim=1)
    return ModalityBatch(features, masks, times, density, batch.video_ids)


# ---- defect 1: positions were indexed by the batch dimension (never encoded) ----------------


def test_time_encoding_is_a_function_of_the_timestamp_only() -> None:
    enc = TimePositionalEncoding(32)
    times = torch.tensor([[0.5, 1.5, 2.5], [0.5, 1.5, 2.5], [2.5, 1.5, 0.5]])
    out = enc(times)  # (3, 3, 32)
    assert torch.equal(out[0], out[1])  # same times, different batch rows: same encoding
    assert torch.equal(out[0, 0], out[2, 2]) and torch.equal(out[0, 2], out[2, 0])
    # every step of a 3-minute video at 1 Hz gets its own encoding
    grid = enc(torch.arange(180, dtype=torch.float32).unsqueeze(0) + 0.5)[0]
    dist = torch.cdist(grid, grid) + torch.eye(180) * 1e9
    assert dist.min() > 0.1


@pytest.mark.parametrize("fusion", FUSIONS)
def test_positions_come_from_timestamps_not_from_the_batch_index(
    fusion: str, make_model: Callable[..., CHFEN], make_batch: Callable[..., ModalityBatch]
) -> None:
    model = make_model(fusion=fusion)
    batch = make_batch(batch=3, steps=6)
    with torch.no_grad():
        logits = model(batch)
        # A video's output does not depend on where it sits in the batch.
        assert torch.allclose(model(take(batch, [2, 0, 1]))[1], logits[0], atol=ATOL)
        # Shuffling the steps together with their timestamps changes nothing ...
        perm = torch.randperm(6, generator=torch.Generator().manual_seed(1))
        shuffled = ModalityBatch(
            {m: x if is_global(m) else x[:, perm] for m, x in batch.features.items()},
            {m: x if is_global(m) else x[:, perm] for m, x in batch.masks.items()},
            batch.times[:, perm],
            batch.face_density[:, perm],
        )
        assert torch.allclose(model(shuffled), logits, atol=ATOL)
        # ... but the same content at other times is another video: time is encoded.
        retimed = ModalityBatch(
            batch.features, batch.masks, batch.times[:, perm], batch.face_density
        )
        assert not torch.allclose(model(retimed), logits, atol=1e-3)


# ---- defect 2: one query expanded over the sequence made every output identical -------------
# The block's output is seq + attention + FFN, so the residual (and, in the network, the time
# encoding it carries) makes the steps differ even with the original single expanded query. These
# tests look at what the attention itself returns, before the residual: with one query for all
# steps, every step gets the same weights over the same keys and the same vector back.


def attention_outputs(block: ConditionedCrossAttention) -> list[torch.Tensor]:
    """Collects the attention's output (B, T, H), before the residual, at every call."""
    seen: list[torch.Tensor] = []
    block.attn.register_forward_hook(lambda mod, args, out: seen.append(out[0].detach()))
    return seen


def step_spread(x: torch.Tensor) -> torch.Tensor:
    """(B, T-1): how far step t's vector is from step 0's."""
    return (x[:, 1:] - x[:, :1]).abs().amax(dim=-1)


def test_conditioned_cross_attention_asks_one_question_per_step() -> None:
    torch.manual_seed(0)
    block = ConditionedCrossAttention(32, 4, dropout=0.0).eval()
    seen = attention_outputs(block)
    seq = torch.randn(2, 5, 32)
    present = torch.ones(2, 5, dtype=torch.bool)
    condition = torch.randn(2, 32)
    with torch.no_grad():
        out = block(seq, present, condition)  # (2, 5, 32)
        attended = seen[-1]
        assert attended.shape == out.shape
        # each step attends with its own query: the attention outputs differ across steps
        assert (step_spread(attended) > 1e-2).all()
        # and the condition steers every step's attention
        block(seq, present, torch.randn(2, 32))
        assert ((seen[-1] - attended).abs().amax(dim=-1) > 1e-3).all()


def test_cross_attention_of_a_still_video_differs_across_steps(
    make_model: Callable[..., CHFEN], make_batch: Callable[..., ModalityBatch]
) -> None:
    """Same vector every second: only each step's own time-encoded query tells steps apart."""
    model = make_model()
    batch = make_batch(batch=2, steps=5)
    for m, x in batch.features.items():
        if not is_global(m):
            batch.features[m] = x[:, :1].expand_as(x).clone()
    assert isinstance(model.feature_level, FeatureLevel)
    assert model.feature_level.cross_attention is not None
    seen = {
        name: attention_outputs(block)  # type: ignore[arg-type]
        for name, block in model.feature_level.cross_attention.items()
    }
    assert set(seen) == {"image", "text", "audio_seq"}
    with torch.no_grad():
        model(batch)
    for name, outputs in seen.items():
        assert len(outputs) == 1, name
        assert (step_spread(outputs[0]) > 1e-3).all(), name


# ---- defect 3: padding was never masked; missing modalities were zero-filled ----------------


@pytest.mark.parametrize("fusion", FUSIONS)
def test_padded_steps_never_change_the_output(
    fusion: str, make_model: Callable[..., CHFEN], make_batch: Callable[..., ModalityBatch]
) -> None:
    model = make_model(fusion=fusion)
    batch = make_batch(batch=3, steps=6)
    # ragged videos: the second has 4 real steps, the third 2
    for m in batch.masks:
        if not is_global(m):
            batch.masks[m][1, 4:] = False
            batch.masks[m][2, 2:] = False
    with torch.no_grad():
        logits = model(batch)
        assert torch.isfinite(logits).all()
        assert torch.allclose(model(pad(batch, 9)), logits, atol=ATOL)  # NaN in the padding
        short = take(batch, [2])
        cut = ModalityBatch(
            {m: x if is_global(m) else x[:, :2] for m, x in short.features.items()},
            {m: x if is_global(m) else x[:, :2] for m, x in short.masks.items()},
            short.times[:, :2],
            short.face_density[:, :2],
        )
        assert torch.allclose(model(cut)[0], logits[2], atol=ATOL)  # alone, unpadded


@pytest.mark.parametrize("fusion", FUSIONS)
@pytest.mark.parametrize("missing", ["title", "audio", "face", "text", "scene", "audio_seq"])
def test_a_missing_modality_is_masked_not_zero_filled(
    fusion: str,
    missing: str,
    make_model: Callable[..., CHFEN],
    make_batch: Callable[..., ModalityBatch],
) -> None:
    model = make_model(fusion=fusion)
    batch = make_batch(batch=2, steps=5)
    masked = make_batch(batch=2, steps=5)
    masked.features[missing] = torch.full_like(masked.features[missing], float("nan"))
    masked.masks[missing] = torch.zeros_like(masked.masks[missing])
    absent = make_batch(batch=2, steps=5)
    del absent.features[missing], absent.masks[missing]
    zero_filled = make_batch(batch=2, steps=5)
    zero_filled.features[missing] = torch.zeros_like(zero_filled.features[missing])
    with torch.no_grad():
        out_masked, out_absent = model(masked), model(absent)
        assert torch.isfinite(out_masked).all()
        # masked garbage == not there at all
        assert torch.allclose(out_masked, out_absent, atol=ATOL)
        # and both differ from treating zeros as a real input (the original code's zero-filling)
        assert not torch.allclose(model(zero_filled), out_absent, atol=1e-4)
        assert not torch.allclose(model(batch), out_absent, atol=1e-4)


def test_a_face_missing_at_some_steps_leaves_the_scene_alone(
    make_model: Callable[..., CHFEN], make_batch: Callable[..., ModalityBatch]
) -> None:
    model = make_model()
    batch = make_batch(batch=1, steps=4)
    batch.masks["face"][0, 1:3] = False
    garbage = make_batch(batch=1, steps=4)
    garbage.masks["face"][0, 1:3] = False
    garbage.features["face"][0, 1:3] = 1e4
    garbage.face_density[0, 1:3] = 99.0
    assert model.feature_level is not None and model.feature_level.face_scene is not None
    fusion = model.feature_level.face_scene
    with torch.no_grad():
        proj = model.project(batch)
        fused, present = fusion(*proj["scene"], *proj["face"], batch.face_density)
        assert present.all()
        assert torch.allclose(fused[0, 1:3], proj["scene"][0][0, 1:3], atol=ATOL)
        assert torch.allclose(model(garbage), model(batch), atol=ATOL)


def test_gradients_stay_finite_when_a_modality_is_missing_for_a_whole_video(
    make_model: Callable[..., CHFEN], make_batch: Callable[..., ModalityBatch]
) -> None:
    model = make_model().train()
    batch = make_batch(batch=2, steps=4)
    for m in ("text", "face", "audio"):
        batch.masks[m][0] = False
        batch.features[m][0] = float("nan")
    loss = model(batch).logsumexp(-1).sum()
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


# ---- defect 4: GatedFusion was defined but unused --------------------------------------------


def test_gated_fusion_runs_in_the_forward_pass_and_learns(
    make_model: Callable[..., CHFEN], make_batch: Callable[..., ModalityBatch]
) -> None:
    model = make_model().train()
    gates = [m for m in model.modules() if isinstance(m, GatedFusion)]
    assert len(gates) == 2  # title ⊕ audio in the condition, transcript ⊕ caption
    calls: list[str] = []
    for gate in gates:
        gate.register_forward_hook(lambda mod, args, out: calls.append(type(mod).__name__))
    model(make_batch()).sum().backward()
    assert len(calls) == 2
    for gate in gates:
        assert gate.gate.weight.grad is not None and gate.gate.weight.grad.abs().sum() > 0


def test_gated_fusion_passes_the_present_input_through() -> None:
    gate = GatedFusion(8)
    a, b = torch.randn(3, 8), torch.full((3, 8), float("nan"))
    yes, no = torch.ones(3, dtype=torch.bool), torch.zeros(3, dtype=torch.bool)
    out, present = gate(a, yes, b, no)
    assert torch.equal(out, a) and present.all()
    out, present = gate(b, no, b, no)
    assert torch.equal(out, torch.zeros(3, 8)) and not present.any()
    mixed, _ = gate(a, yes, torch.randn(3, 8), yes)
    assert not torch.allclose(mixed, a)


# ---- defect 5: encoders ran inside Dataset.__getitem__ ---------------------------------------

ENCODER_MODULES = (
    "chfen.embed.text",
    "chfen.embed.image",
    "chfen.embed.audio",
    "chfen.embed.faces",
    "transformers",
    "sentence_transformers",
    "open_clip",
    "whisperx",
    "facenet_pytorch",
)

ITERATE_CACHED = """
import json, sys
import numpy as np
from chfen.model import CHFEN, CHFENConfig
from chfen.model.inputs import is_global
from chfen.train.data import EmbeddingDataset, VideoFeatures
from chfen.train.loop import predict_proba

dims = json.loads(sys.argv[1])
rng = np.random.default_rng(0)
videos = []
for i in range(5):
    steps = 3 + i
    vectors = {
        m: rng.standard_normal(d if is_global(m) else (steps, d)).astype(np.float32)
        for m, d in dims.items()
    }
    present = {m: np.ones(steps, dtype=bool) for m in dims if not is_global(m)}
    times = np.arange(steps, dtype=np.float32) + 0.5
    videos.append(VideoFeatures(f"v{i}", vectors, present, times, np.ones(steps, np.float32)))
soft = [np.full(8, 1 / 8, dtype=np.float32) for _ in videos]
model = CHFEN(dims, CHFENConfig(hidden_dim=16, heads=2))
probs = predict_proba(model, EmbeddingDataset(videos, soft), batch_size=2)
assert probs.shape == (5, 8), probs.shape
print(json.dumps(sorted(sys.modules)))
"""


def test_batches_come_from_cached_vectors_without_loading_an_encoder(
    dims: dict[str, int],
) -> None:
    """A fresh interpreter builds a dataset of cached vectors and runs the network over it:
    no encoder module (ours or a model library) is ever imported, so none can run per item."""
    # the code under test, wherever this process imported it from
    root = str(Path(chfen.__file__).resolve().parents[1])
    env = os.environ | {"PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, "-c", ITERATE_CACHED, json.dumps(dims)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
        env=env,
    )
    modules = json.loads(out.stdout.strip().splitlines()[-1])
    assert "chfen.train.data" in modules and "torch" in modules
    loaded = [m for m in modules if any(m == e or m.startswith(f"{e}.") for e in ENCODER_MODULES)]
    assert not loaded, loaded
