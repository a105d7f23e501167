"""Image encoders for stills and face crops: a classical descriptor, or a transformers model.

`hsv-hog` (no weights, the offline default) describes an image by

- palette: a joint HSV colour histogram, 8 hue x 4 saturation x 4 value bins (Hellinger
  normalised, so it compares well with a dot product);
- layout: per cell of a 4 x 4 grid, the mean brightness, the mean saturation and the
  saturation-weighted mean hue direction (cos, sin): where the bright, dark and coloured parts
  of the picture are, in absolute terms;
- global tone: mean and spread of brightness and saturation;
- shape: a HOG descriptor (9 orientations, 2 x 2-cell blocks) of the 64 x 64 greyscale image.

Each part is scaled to a norm of about one, so no part drowns the others. Any transformers
vision model (ViT, DINOv2, CLIP's vision tower, ...) loads through `AutoImageProcessor` +
`AutoModel`; its vector is the [CLS] token (or the pooled output of a CNN, or CLIP's image
features).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from chfen.embed.sources import EncoderLoadError, ModelSource, load_error
from chfen.embed.text import freeze, torch_device

log = logging.getLogger("chfen.embed")

DESCRIPTOR_VERSION = "hsv-hog-1"
_HIST_BINS = (8, 4, 4)
_LAYOUT_CELLS = 4
_COLOR_SIZE = 96
_HOG_SIZE = 64
_HOG = cv2.HOGDescriptor((_HOG_SIZE, _HOG_SIZE), (32, 32), (16, 16), (16, 16), 9)
HOG_DIM = int(_HOG.getDescriptorSize())
DESCRIPTOR_DIM = int(np.prod(_HIST_BINS)) + _LAYOUT_CELLS**2 * 4 + 4 + HOG_DIM


def describe(image_bgr: np.ndarray) -> np.ndarray:
    """The hsv-hog descriptor of one BGR uint8 image, (DESCRIPTOR_DIM,) float32."""
    if image_bgr.ndim == 2:
        image_bgr = cv2.cvtColor(image_bgr, cv2.COLOR_GRAY2BGR)
    if image_bgr.size == 0:
        raise ValueError("empty image")
    small = cv2.resize(image_bgr, (_COLOR_SIZE, _COLOR_SIZE), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
    # palette
    hist = cv2.calcHist([hsv], [0, 1, 2], None, list(_HIST_BINS), [0, 180, 0, 256, 0, 256])
    hist = hist.ravel() / max(float(hist.sum()), 1.0)
    palette = np.sqrt(hist)  # Hellinger: unit L2 norm
    # layout (OpenCV hue is 0..179 for 0..358 degrees)
    h = hsv[..., 0].astype(np.float32) * (np.pi / 90.0)
    s = hsv[..., 1].astype(np.float32) / 255.0
    v = hsv[..., 2].astype(np.float32) / 255.0
    cells = _LAYOUT_CELLS
    step = _COLOR_SIZE // cells

    def cell_means(x: np.ndarray) -> np.ndarray:
        return x.reshape(cells, step, cells, step).mean(axis=(1, 3)).ravel()

    layout = np.concatenate(
        [cell_means(v), cell_means(s), cell_means(s * np.cos(h)), cell_means(s * np.sin(h))]
    ) / np.sqrt(cells * cells * 2)
    tone = np.array([v.mean(), v.std() * 2, s.mean(), s.std() * 2], dtype=np.float32) / 2
    # shape
    grey = cv2.cvtColor(
        cv2.resize(image_bgr, (_HOG_SIZE, _HOG_SIZE), interpolation=cv2.INTER_AREA),
        cv2.COLOR_BGR2GRAY,
    )
    hog = _HOG.compute(grey).ravel()
    hog = hog / max(float(np.linalg.norm(hog)), 1e-6)
    return np.concatenate([palette, layout, tone, hog]).astype(np.float32)


class ImageEncoder:
    """`encode(images_bgr) -> (N, D) float32`; the model (if any) loads on construction."""

    def __init__(
        self, source: ModelSource, *, setting: str, device: str = "cpu", batch_size: int = 32
    ):
        if source.role != "image":
            raise EncoderLoadError(f"embed.{setting}={source.name!r} is not an image model")
        self.source = source
        self.batch_size = batch_size
        if source.backend == "classical":
            self.dim = DESCRIPTOR_DIM
            self.model = None
            return
        if source.backend != "transformers":
            raise EncoderLoadError(
                f"embed.{setting}={source.name!r} is a {source.backend} model, not a vision model"
            )
        self.device = torch_device(device)
        t0 = time.perf_counter()
        try:
            from transformers import AutoImageProcessor, AutoModel

            self.processor = AutoImageProcessor.from_pretrained(source.location)
            model = AutoModel.from_pretrained(source.location)
        except Exception as exc:
            raise load_error(setting, source, exc) from exc
        self.model = freeze(model.to(self.device))
        self.dim = self._probe_dim()
        log.info("loaded image encoder %s in %.1f s", source.label, time.perf_counter() - t0)

    def _probe_dim(self) -> int:
        return int(self._forward([np.zeros((32, 32, 3), dtype=np.uint8)]).shape[1])

    def _forward(self, images_bgr: Sequence[np.ndarray]) -> np.ndarray:
        import torch

        rgb = [cv2.cvtColor(img, cv2.COLOR_BGR2RGB) for img in images_bgr]
        inputs = self.processor(images=rgb, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            if hasattr(self.model, "get_image_features"):  # CLIP-like: the vision tower
                out: Any = self.model.get_image_features(pixel_values=inputs["pixel_values"])
            else:
                result = self.model(pixel_values=inputs["pixel_values"])
                hidden = getattr(result, "last_hidden_state", None)
                if hidden is not None and hidden.ndim == 3:
                    out = hidden[:, 0]  # [CLS]
                else:
                    out = result.pooler_output.flatten(1)
        return out.float().cpu().numpy()

    def encode(self, images_bgr: Sequence[np.ndarray]) -> np.ndarray:
        """One vector per BGR uint8 image, (N, D) float32, in batches of `batch_size`."""
        if not images_bgr:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.model is None:
            return np.stack([describe(img) for img in images_bgr])
        parts = [
            self._forward(images_bgr[i : i + self.batch_size])
            for i in range(0, len(images_bgr), self.batch_size)
        ]
        return np.concatenate(parts).astype(np.float32, copy=False)
