"""Faces per grid step, as the original CHFEN code did (docs/chfen-paper.md): detect, crop,
encode each crop, then sum the crop vectors weighted by face area (normalised, so one face or
many give vectors of one scale), and keep the face count.

Detection is OpenCV's Haar cascade for frontal faces (shipped in opencv 4.x as `cv2.data`),
run on a greyscale, histogram-equalised copy downscaled to `face_detect_max_side`; crops are
cut from the full-resolution still with a small margin.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from chfen.embed.sources import EncoderLoadError

CASCADE = "haarcascade_frontalface_default.xml"
# Crop margin around the detected box, as a share of its size (Haar boxes are tight).
CROP_MARGIN = 0.1


@dataclass(frozen=True)
class Face:
    """A face box in full-resolution pixel coordinates."""

    x: int
    y: int
    w: int
    h: int

    @property
    def area(self) -> int:
        return self.w * self.h


def cascade_path() -> Path:
    """The frontal-face Haar cascade shipped with OpenCV, or an error saying what to install."""
    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    path = Path(folder or "") / CASCADE
    if not folder or not path.is_file():
        raise EncoderLoadError(
            f"OpenCV has no Haar cascade {CASCADE} (opencv {cv2.__version__}); install "
            "opencv-python-headless 4.x, which ships them in cv2.data"
        )
    return path


class FaceDetector:
    """`detect(image_bgr) -> [Face]`, largest first. One cascade per thread (OpenCV's
    CascadeClassifier is not safe to share between threads)."""

    def __init__(
        self,
        *,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_size: float = 0.08,
        max_faces: int = 8,
        max_side: int = 640,
    ):
        self.path = str(cascade_path())
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size = min_size
        self.max_faces = max_faces
        self.max_side = max_side
        self._local = threading.local()
        self._cascade()  # fail now, not on the first video

    def _cascade(self) -> cv2.CascadeClassifier:
        cascade = getattr(self._local, "cascade", None)
        if cascade is None:
            cascade = cv2.CascadeClassifier(self.path)
            if cascade.empty():
                raise EncoderLoadError(f"OpenCV could not load the Haar cascade {self.path}")
            self._local.cascade = cascade
        return cascade

    def detect(self, image_bgr: np.ndarray) -> list[Face]:
        """Faces in a BGR (or greyscale) uint8 image, largest first, at most `max_faces`."""
        height, width = image_bgr.shape[:2]
        if not height or not width:
            return []
        scale = min(1.0, self.max_side / max(height, width))
        grey = image_bgr if image_bgr.ndim == 2 else cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        grey = cv2.equalizeHist(grey)
        side = max(12, round(self.min_size * min(grey.shape[:2])))
        boxes = self._cascade().detectMultiScale(
            grey,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(side, side),
        )
        faces = [
            Face(round(x / scale), round(y / scale), round(w / scale), round(h / scale))
            for x, y, w, h in (boxes if len(boxes) else [])
        ]
        faces.sort(key=lambda f: f.area, reverse=True)
        return faces[: self.max_faces]


def crop_faces(
    image_bgr: np.ndarray, faces: list[Face], margin: float = CROP_MARGIN
) -> list[np.ndarray]:
    """The face boxes cut from the image, each grown by `margin` and clipped to the image."""
    height, width = image_bgr.shape[:2]
    crops = []
    for f in faces:
        dx, dy = round(f.w * margin), round(f.h * margin)
        x0, y0 = max(0, f.x - dx), max(0, f.y - dy)
        x1, y1 = min(width, f.x + f.w + dx), min(height, f.y + f.h + dy)
        crops.append(image_bgr[y0:y1, x0:x1])
    return crops


def area_weighted(vectors: np.ndarray, faces: list[Face]) -> np.ndarray:
    """The crop vectors (N, D) summed with weights area_i / sum(area): one (D,) vector."""
    if len(faces) != vectors.shape[0] or not faces:
        raise ValueError(f"{vectors.shape[0]} vectors for {len(faces)} faces")
    areas = np.array([f.area for f in faces], dtype=np.float64)
    weights = areas / areas.sum()
    return (weights[:, None] * vectors.astype(np.float64)).sum(axis=0).astype(np.float32)
