"""The classical image descriptor carries palette, brightness and shape; Haar finds real faces."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from chfen.embed.faces import Face, FaceDetector, area_weighted, crop_faces
from chfen.embed.image import DESCRIPTOR_DIM, ImageEncoder, describe
from chfen.embed.sources import resolve_model


def solid(bgr: tuple[int, int, int], size: tuple[int, int] = (120, 160)) -> np.ndarray:
    image = np.zeros((*size, 3), np.uint8)
    image[:] = bgr
    return image


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_descriptor_is_deterministic_and_finite(face_photo_path) -> None:
    photo = cv2.imread(str(face_photo_path))
    a, b = describe(photo), describe(photo.copy())
    assert a.shape == (DESCRIPTOR_DIM,) and a.dtype == np.float32
    assert np.all(np.isfinite(a)) and np.array_equal(a, b)
    assert describe(np.zeros((7, 3, 3), np.uint8)).shape == (DESCRIPTOR_DIM,)  # tiny crops too


def test_descriptor_tells_palettes_and_brightness_apart() -> None:
    red, blue = describe(solid((0, 0, 220))), describe(solid((220, 0, 0)))
    dark, bright = describe(solid((20, 20, 20))), describe(solid((235, 235, 235)))
    darker_red = describe(solid((0, 0, 200)))
    # a similar colour is nearer than another hue, or another brightness
    assert cos(red, darker_red) > cos(red, blue) + 0.3
    assert cos(dark, bright) < 0.8
    # absolute brightness is kept (the layout and tone parts are not normalised away)
    assert np.linalg.norm(dark - bright) > 0.5


def test_descriptor_ranks_a_noisy_copy_above_another_picture(face_photo_path) -> None:
    photo = cv2.imread(str(face_photo_path))
    noisy = np.clip(photo + np.random.default_rng(0).normal(0, 12, photo.shape), 0, 255)
    pattern = cv2.resize(photo[::-1, ::-1], photo.shape[1::-1])
    pattern = cv2.applyColorMap(cv2.cvtColor(pattern, cv2.COLOR_BGR2GRAY), cv2.COLORMAP_JET)
    base = describe(photo)
    assert cos(base, describe(noisy.astype(np.uint8))) > cos(base, describe(pattern)) + 0.1


def test_classical_encoder_batches_like_single_calls() -> None:
    enc = ImageEncoder(resolve_model("hsv-hog", "image"), setting="image_model", batch_size=2)
    images = [solid((i * 40, 100, 200 - i * 30)) for i in range(5)]
    out = enc.encode(images)
    assert out.shape == (5, DESCRIPTOR_DIM)
    np.testing.assert_array_equal(out[3], describe(images[3]))
    assert enc.encode([]).shape == (0, DESCRIPTOR_DIM)


def test_haar_finds_the_real_face_and_nothing_on_blank_frames(face_photo_path) -> None:
    detector = FaceDetector()
    photo = cv2.imread(str(face_photo_path))
    faces = detector.detect(photo)
    assert len(faces) == 1
    f = faces[0]
    # the face sits in the upper middle of the portrait
    assert 0.2 < (f.x + f.w / 2) / photo.shape[1] < 0.8 and f.y + f.h / 2 < photo.shape[0] * 0.6
    for blank in (np.zeros((360, 640, 3), np.uint8), solid((200, 200, 200), (720, 1280))):
        assert detector.detect(blank) == []
    noise = np.random.default_rng(1).integers(0, 255, (360, 640, 3), dtype=np.uint8)
    assert detector.detect(noise) == []


def test_two_faces_largest_first_and_detection_on_a_large_still(face_photo_path) -> None:
    photo = cv2.imread(str(face_photo_path))
    small = cv2.resize(photo, None, fx=0.5, fy=0.5)
    canvas = np.full((1280, 720, 3), 128, np.uint8)  # a portrait phone still
    canvas[40 : 40 + photo.shape[0], 100 : 100 + photo.shape[1]] = photo
    canvas[800 : 800 + small.shape[0], 300 : 300 + small.shape[1]] = small
    faces = FaceDetector(max_side=640).detect(canvas)
    assert len(faces) == 2
    assert faces[0].area > 2 * faces[1].area  # largest first, in full-resolution pixels
    assert faces[0].y < 640 < faces[1].y
    assert len(FaceDetector(max_faces=1).detect(canvas)) == 1


def test_crops_are_clipped_and_vectors_area_weighted() -> None:
    image = np.zeros((100, 100, 3), np.uint8)
    crops = crop_faces(image, [Face(90, 90, 20, 20), Face(10, 10, 20, 20)], margin=0.1)
    assert crops[0].shape == (12, 12, 3)  # 88..100: grown by 2 px, cut at the border
    assert crops[1].shape == (24, 24, 3)
    vectors = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    faces = [Face(0, 0, 30, 10), Face(0, 0, 10, 10)]  # areas 300 and 100
    np.testing.assert_allclose(area_weighted(vectors, faces), [0.75, 0.25])
    with pytest.raises(ValueError):
        area_weighted(vectors, faces[:1])
