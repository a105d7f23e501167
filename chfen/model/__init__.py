"""CHFEN, the network: blocks named after the paper's, one forward each (see chfen.py)."""

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
    modality_keep_mask,
)
from chfen.model.chfen import CHFEN, CHFENConfig, CHFENOutput, DecisionLevel, FeatureLevel
from chfen.model.inputs import CAPTION, ModalityBatch

__all__ = [
    "CAPTION",
    "CHFEN",
    "AttentionPooling",
    "CHFENConfig",
    "CHFENOutput",
    "ConditionalQuery",
    "ConditionedCrossAttention",
    "DecisionLevel",
    "EmotionClassifier",
    "FaceSceneFusion",
    "FeatureLevel",
    "GatedFusion",
    "ModalityBatch",
    "ModalityHead",
    "ModalityProjection",
    "SelfAttentionBlock",
    "Standardize",
    "TimePositionalEncoding",
    "modality_keep_mask",
]
