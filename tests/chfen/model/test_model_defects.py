"""One test per defect of the seed's CHFEN (DESIGN.md), each on the fixed network."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

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


def test_conditioned_cross_attention_outputs_differ_across_positions() -> None:
    torch.manual_seed(0)
    block = ConditionedCrossAttention(32, 4, dropout=0.0).eval()
    seq = torch.randn(2, 5, 32)
    present = torch.ones(2, 5, dtype=torch.bool)
    condition = torch.randn(2, 32)
    with torch.no_grad():
        out = block(seq, present, condition)  # (2, 5, 32)
        spread = (out - out.mean(dim=1, keepdim=True)).abs().amax(dim=(1, 2))
        assert (spread > 1e-2).all()
        # and the condition steers every step
        other = block(seq, present, torch.randn(2, 32))
        assert ((other - out).abs().amax(dim=-1) > 1e-3).all()


def test_feature_level_streams_differ_across_steps_even_for_constant_content(
    make_model: Callable[..., CHFEN], make_batch: Callable[..., ModalityBatch]
) -> None:
    """Same vector every second (a still video): only the time tells the steps apart."""
    model = make_model()
    batch = make_batch(batch=2, steps=5)
    for m, x in batch.features.items():
        if not is_global(m):
            batch.features[m] = x[:, :1].expand_as(x).clone()
    assert isinstance(model.feature_level, FeatureLevel)
    with torch.no_grad():
        proj = model.project(batch)
        query, streams = model.feature_level(proj, batch.face_density, batch.batch_size)
    assert query is not None
    for name, (seq, _) in streams.items():
        spread = (seq - seq[:, :1]).abs().amax(dim=-1)[:, 1:]  # step t vs step 0
        assert (spread > 1e-3).all(), name


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
        # and both differ from treating zeros as a real input (the seed's zero-filling)
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
