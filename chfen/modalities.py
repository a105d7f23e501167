"""The modalities of the shared time grid: one place for their names and kinds.

Global modalities have one vector per video (grid index -1 in the `embeddings` table); aligned
ones have one vector per grid step (index 0, 1, … at `embed.grid_hz`). This split follows the
original CHFEN code's TotalEncoder (docs/chfen-paper.md): the title and the audio condition the
query, the aligned sequences are attended over.
"""

from __future__ import annotations

from typing import Literal

GLOBAL_INDEX = -1

GLOBAL: tuple[str, ...] = ("title", "audio")
ALIGNED: tuple[str, ...] = ("scene", "face", "text", "audio_seq")
MODALITIES: tuple[str, ...] = GLOBAL + ALIGNED

Kind = Literal["global", "aligned"]

# What the `embeddings.weight` column holds for each modality (null where it means nothing).
WEIGHT: dict[str, str] = {
    "title": "null",
    "audio": "seconds of audio pooled into the vector",
    "scene": "null",
    "face": "number of faces detected in the step (the vector is their area-weighted mean)",
    "text": "number of transcript words placed in the step",
    "audio_seq": "share of the step covered by audio (1.0 except at the audio's end)",
}


def kind(modality: str) -> Kind:
    if modality in GLOBAL:
        return "global"
    if modality in ALIGNED:
        return "aligned"
    raise ValueError(f"unknown modality {modality!r}; known: {', '.join(MODALITIES)}")
