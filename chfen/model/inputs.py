"""What CHFEN reads: cached embeddings per modality, with masks and grid times.

One `ModalityBatch` holds a padded batch of videos. Every tensor comes with a mask (True =
present): a global modality may be missing for a video (no audio track), an aligned one may be
missing at some steps (no face in that second) or everywhere, and the batch is padded to its
longest video. The model never reads a value whose mask is False, so padding and missing
modalities are masked, not zero-filled.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from chfen.modalities import GLOBAL

# Frame captions (the original code's optional BLIP caption per second) would join the
# transcript stream.
# No captioner ships offline yet (issue 6), so `caption` is not in chfen.modalities; the model
# and the dataset take it when the embeddings table has it.
CAPTION = "caption"


def is_global(modality: str) -> bool:
    """Global modalities have one vector per video; the rest are aligned to the time grid."""
    return modality in GLOBAL


@dataclass
class ModalityBatch:
    """A padded batch of B videos, T grid steps.

    - ``features[m]``: (B, D_m) for a global modality, (B, T, D_m) for an aligned one;
    - ``masks[m]``: (B,) or (B, T) bool, True where the vector is real;
    - ``times``: (B, T) seconds of each grid step's centre (padding: anything);
    - ``face_density``: (B, T) how many faces each step holds (the `weight` of the embed
      stage's face rows: the face count; the vector is the faces' area-weighted mean), read
      only where the face mask is True.
    """

    features: dict[str, torch.Tensor]
    masks: dict[str, torch.Tensor]
    times: torch.Tensor
    face_density: torch.Tensor | None = None
    video_ids: list[str] = field(default_factory=list)

    @property
    def batch_size(self) -> int:
        return int(self.times.shape[0])

    def to(self, device: torch.device | str) -> ModalityBatch:
        return ModalityBatch(
            features={m: x.to(device) for m, x in self.features.items()},
            masks={m: x.to(device) for m, x in self.masks.items()},
            times=self.times.to(device),
            face_density=None if self.face_density is None else self.face_density.to(device),
            video_ids=list(self.video_ids),
        )
