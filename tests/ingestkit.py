"""Helpers of the import tests: the real RAVDESS sample (../shared/data/ravdess-actor01, 16
clips: 1 mp4 with a face, 15 audio-only wavs) and small folders copied from it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

RAVDESS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ravdess-actor01"


def ravdess_folder() -> Path:
    """The RAVDESS sample's folder; skips the test (with the reason) where it is absent."""
    if not (RAVDESS / "labels.csv").is_file():
        pytest.skip(f"the real RAVDESS sample is absent ({RAVDESS}); it lives beside the project")
    # resolved, as the import records a file's path: `../shared` may be a symbolic link
    return RAVDESS.resolve()


def small_folder(ravdess: Path, dest: Path, names: tuple[str, ...]) -> Path:
    """A folder with writable copies of a few RAVDESS clips (the tests may change it)."""
    dest.mkdir(parents=True)
    for name in names:
        shutil.copy(ravdess / name, dest / name)
        (dest / name).chmod(0o644)
    return dest
