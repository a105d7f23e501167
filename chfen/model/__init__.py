"""CHFEN, the network: blocks named after the paper's, one forward each (see chfen.py)."""

from chfen.model.blocks import (
    AttentionPooling,
    ConditionalQuery,
    ConditionedCrossAttention,
    EmotionClassifier,
    FaceSceneFusion,
    GatedFusion,
    ModalityProjection,
    SelfAttentionBlock,
    TimePositionalEncoding,
)
from chfen.model.chfen import CHFEN, CHFENConfig, DecisionLevel, FeatureLevel
from chfen.model.inputs import CAPTION, ModalityBatch

__all__ = [
    "CAPTION",
    "CHFEN",
    "AttentionPooling",
    "CHFENConfig",
    "ConditionalQuery",
    "ConditionedCrossAttention",
    "DecisionLevel",
    "EmotionClassifier",
    "FaceSceneFusion",
    "FeatureLevel",
    "GatedFusion",
    "ModalityBatch",
    "ModalityProjection",
    "SelfAttentionBlock",
    "TimePositionalEncoding",
]
