"""Every ablation of the original CHFEN list (docs/chfen-paper.md) is a TrainConfig switch that
builds a working network."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from chfen.config import TrainConfig
from chfen.model import (
    CAPTION,
    CHFEN,
    AttentionPooling,
    CHFENConfig,
    ConditionedCrossAttention,
    FaceSceneFusion,
    ModalityBatch,
)

SWITCHES: dict[str, dict[str, object]] = {
    "hybrid": {},
    "without audio": {"use_audio": False},
    "without caption": {"use_caption": False},
    "without cross-attention": {"use_cross_attention": False},
    "without face/scene fusion": {"use_face_scene_fusion": False},
    "feature-level only": {"fusion": "feature"},
    "decision-level only": {"fusion": "decision"},
    "vision only": {"modalities": ["scene", "face"]},
    "text only": {"modalities": ["title", "text"]},
    "one global modality": {"modalities": ["audio"]},
}


HIDDEN = 32  # small and fast; heads must divide it


def build_from(train: TrainConfig, dims: dict[str, int]) -> CHFEN:
    torch.manual_seed(0)
    return CHFEN(dims, CHFENConfig.from_train(train)).eval()


@pytest.mark.parametrize("name", list(SWITCHES))
def test_every_ablation_is_a_config_switch(
    name: str, dims: dict[str, int], make_batch: Callable[..., ModalityBatch]
) -> None:
    train = TrainConfig(hidden_dim=HIDDEN, heads=4, **SWITCHES[name])  # type: ignore[arg-type]
    model = build_from(train, dims)
    with torch.no_grad():
        logits = model(make_batch())
    assert logits.shape == (3, 8) and torch.isfinite(logits).all()

    mods = set(model.modalities)
    if not train.use_audio:
        assert not mods & {"audio", "audio_seq"}
    assert (CAPTION in mods) == (train.use_caption and "text" in train.modalities)
    assert mods - {CAPTION} <= set(train.modalities)
    crossing = [m for m in model.modules() if isinstance(m, ConditionedCrossAttention)]
    fusing = [m for m in model.modules() if isinstance(m, FaceSceneFusion)]
    if train.fusion == "decision" or not train.use_cross_attention:
        assert not crossing
    else:  # one conditioned cross-attention per aligned stream
        assert model.feature_level is not None
        assert len(crossing) == len(model.feature_level.stream_names)
    assert bool(fusing) == (
        train.fusion != "decision"
        and train.use_face_scene_fusion
        and {"scene", "face"} <= set(train.modalities)
    )
    assert (model.decision_level is None) == (train.fusion == "feature")


def test_ablations_change_the_network_not_just_the_name(
    dims: dict[str, int], make_batch: Callable[..., ModalityBatch]
) -> None:
    batch = make_batch()
    outputs = {}
    for name, switch in SWITCHES.items():
        train = TrainConfig(hidden_dim=HIDDEN, heads=4, **switch)  # type: ignore[arg-type]
        model = build_from(train, dims)
        with torch.no_grad():
            outputs[name] = model(batch)
    names = list(outputs)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not torch.allclose(outputs[a], outputs[b], atol=1e-4), (a, b)


def test_separate_scene_and_face_streams_without_the_fusion(dims: dict[str, int]) -> None:
    model = build_from(TrainConfig(hidden_dim=HIDDEN, heads=4, use_face_scene_fusion=False), dims)
    assert model.feature_level is not None
    assert model.feature_level.stream_names == ("scene", "face", "text", "audio_seq")
    fused = build_from(TrainConfig(hidden_dim=HIDDEN, heads=4), dims)
    assert fused.feature_level is not None
    assert fused.feature_level.stream_names == ("image", "text", "audio_seq")


def test_no_modality_left_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no modality left"):
        CHFEN({"scene": 8}, CHFENConfig(hidden_dim=HIDDEN, modalities=("title",)))


def test_input_sizes_are_arguments(make_batch: Callable[..., ModalityBatch]) -> None:
    dims = {"title": 384, "scene": 7, "text": 384}
    model = CHFEN(dims, CHFENConfig(hidden_dim=HIDDEN, heads=4)).eval()
    assert model.modalities == ("title", "scene", "text")
    with torch.no_grad():
        assert model(make_batch(dims=dims)).shape == (3, 8)


def test_checkpoint_round_trip(
    make_model: Callable[..., CHFEN], make_batch: Callable[..., ModalityBatch]
) -> None:
    model = make_model(fusion="hybrid", use_face_scene_fusion=False)
    again = CHFEN.from_checkpoint(model.checkpoint()).eval()
    batch = make_batch()
    with torch.no_grad():
        assert torch.equal(model(batch), again(batch))


def test_attention_pooling_ignores_masked_tokens() -> None:
    pool = AttentionPooling(8)
    x = torch.randn(2, 4, 8)
    present = torch.tensor([[True, True, False, False], [True, True, True, True]])
    noisy = x.clone()
    noisy[0, 2:] = float("nan")
    with torch.no_grad():
        assert torch.allclose(pool(noisy, present)[0], pool(x[:1, :2], present[:1, :2])[0])
