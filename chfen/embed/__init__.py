"""Multimodal embeddings on a shared time grid, cached in the warehouse.

`EmbedStage` is the per-video stage (`embeddings` rows, one frozen encoder per modality);
`encoder_keys` / `stage_version` say what a configuration computes without loading a model.
The modalities and their global/aligned split live in `chfen.modalities`.
"""

from chfen.embed.keys import STAGE, EncoderKey, encoder_keys, stage_version
from chfen.embed.sources import EncoderLoadError, resolve_model
from chfen.embed.stage import EmbedResult, EmbedStage, vector_of

__all__ = [
    "STAGE",
    "EmbedResult",
    "EmbedStage",
    "EncoderKey",
    "EncoderLoadError",
    "encoder_keys",
    "resolve_model",
    "stage_version",
    "vector_of",
]
