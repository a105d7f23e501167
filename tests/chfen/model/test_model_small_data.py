"""The parts of CHFEN for small data and useless modalities: standardization buffers,
modality dropout, modality heads with learned mixing weights."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from chfen.model import CHFEN, CHFENConfig, ModalityBatch, Standardize, modality_keep_mask


def test_modality_dropout_never_drops_every_modality_of_a_video() -> None:
    g = torch.Generator().manual_seed(0)
    has = torch.rand(4000, 6, generator=g) < 0.6
    has[:10] = False  # videos with nothing keep nothing
    has[10:20] = False
    has[10:20, 2] = True  # one modality only: always kept
    keep = modality_keep_mask(has, 0.9, generator=g)
    assert not (keep & ~has).any()  # never invents a modality
    assert (keep.any(dim=1) == has.any(dim=1)).all()
    assert keep[10:20, 2].all()
    # it does drop: about p of the modalities of videos with several
    several = has.sum(dim=1) >= 2
    dropped = (has & ~keep)[several].sum() / has[several].sum()
    assert 0.6 < float(dropped) < 0.95
    assert torch.equal(modality_keep_mask(has, 0.0), has)


def test_modality_dropout_masks_whole_modalities_in_training_only(
    make_batch: Callable[..., ModalityBatch], dims: dict[str, int], hidden: int
) -> None:
    torch.manual_seed(0)
    model = CHFEN(dims, CHFENConfig(hidden_dim=hidden, heads=4, modality_dropout=0.5))
    batch = make_batch(batch=64, steps=5)
    model.train()
    inputs = model._inputs(batch)
    kept = torch.stack(
        [p if p.dim() == 1 else p.any(dim=-1) for _, p in inputs.values()], dim=1
    )  # (B, M)
    assert kept.any(dim=1).all() and not kept.all()
    for _, present in inputs.values():
        if present.dim() == 2:  # a dropped aligned modality is gone at every step
            assert ((present.all(dim=1)) | (~present.any(dim=1))).all()
    model.eval()
    with torch.no_grad():
        assert all(p.all() for _, p in model._inputs(batch).values())
        assert torch.equal(model(batch), model(batch))  # deterministic when evaluating


def test_standardize_turns_constant_features_into_zeros() -> None:
    from chfen.train.data import VideoFeatures, modality_stats

    rng = np.random.default_rng(0)
    feats = []
    for i in range(20):
        title = np.concatenate([rng.normal(5, 3, size=3), [7.25]]).astype(np.float16)
        seq = rng.normal(-2, 0.5, size=(4, 2)).astype(np.float16)
        feats.append(
            VideoFeatures(
                f"v{i}",
                {"title": title, "scene": seq},
                {"title": np.ones((), bool), "scene": np.array([True, True, False, True])},
                np.arange(4, dtype=np.float32) + 0.5,
                np.ones(4, np.float32),
            )
        )
    stats = modality_stats(feats, {"title": 4, "scene": 2, "face": 3})
    assert set(stats) == {"title", "scene"}  # nobody has a face: no statistics, identity
    mean, scale = stats["title"]
    assert np.isfinite(scale).all() and (scale > 0).all()
    block = Standardize(4)
    block.set(torch.from_numpy(mean), torch.from_numpy(scale))
    x = torch.from_numpy(np.stack([f.vectors["title"] for f in feats]).astype(np.float32))
    z = block(x)
    assert torch.equal(z[:, 3], torch.zeros(20))  # the constant feature: exactly zero
    assert torch.allclose(z[:, :3].mean(dim=0), torch.zeros(3), atol=1e-3)
    assert torch.allclose(z[:, :3].std(dim=0, unbiased=False), torch.ones(3), atol=1e-3)
    # aligned: only present steps count
    seq_mean, _ = stats["scene"]
    present = np.concatenate([f.vectors["scene"][f.present["scene"]] for f in feats])
    assert np.allclose(seq_mean, present.astype(np.float64).mean(axis=0), atol=1e-5)


def test_standardization_and_mixing_travel_with_the_checkpoint(
    make_batch: Callable[..., ModalityBatch], dims: dict[str, int], hidden: int
) -> None:
    torch.manual_seed(0)
    model = CHFEN(dims, CHFENConfig(hidden_dim=hidden, heads=4, modality_heads=True))
    stats = {m: (np.full(d, 0.5, np.float32), np.full(d, 2.0, np.float32)) for m, d in dims.items()}
    model.set_standardization(stats)
    with torch.no_grad():
        assert model.head_weights is not None
        model.head_weights[1] = 3.0
    model.eval()
    again = CHFEN.from_checkpoint(model.checkpoint()).eval()
    batch = make_batch()
    with torch.no_grad():
        assert torch.equal(model(batch), again(batch))
    assert torch.equal(again.standardize["title"].scale, torch.full((dims["title"],), 2.0))
    weights = again.mixing_weights()
    assert list(weights) == ["fused", *again.modalities]
    assert max(weights, key=weights.get) == again.modalities[0]


def test_modality_heads_mix_only_the_modalities_a_video_has(
    make_batch: Callable[..., ModalityBatch], dims: dict[str, int], hidden: int
) -> None:
    torch.manual_seed(0)
    model = CHFEN(dims, CHFENConfig(hidden_dim=hidden, heads=4, modality_heads=True)).eval()
    batch = make_batch(batch=2)
    batch.masks["title"][0] = False
    batch.features["title"][0] = float("nan")
    with torch.no_grad():
        out = model.outputs(batch)
        assert torch.isfinite(out.logits).all()
        assert set(out.heads) == set(model.modalities)
        assert out.heads["title"][1].tolist() == [False, True]
        # pushing the title head's weight up changes video 1 (has a title), not video 0
        assert model.head_weights is not None
        model.head_weights[1 + model.modalities.index("title")] = 5.0
        after = model.outputs(batch)
    assert not torch.allclose(after.logits[1], out.logits[1])
    # video 0's mix over the other experts keeps the same proportions
    assert torch.allclose(after.logits[0], out.logits[0], atol=1e-6)
