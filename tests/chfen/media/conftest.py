"""Fixtures for the scenes stage: clips with hard cuts at known times, rendered once."""

from __future__ import annotations

import shutil

import pytest

from chfen.media.testmedia import ClipTruth, Shot, render_shots

# Seven shots with hard cuts; shots 0, 3 and 4 move (testsrc2, testsrc, a sliding box), so a
# moving shot must not be cut. Durations are whole frames at 30 fps.
CUT_SHOTS = [
    Shot(2.0, 30, 0),
    Shot(1.5, 30, 1),
    Shot(3.0, 30, 2),
    Shot(1.0, 30, 3),
    Shot(2.5, 30, 4),
    Shot(1.0, 30, 5),
    Shot(1.0, 30, 6),
]
# Variable frame rate: 30, 15, 24 and 30 fps stretches; the cuts at 2, 4 and 6 s sit at frames
# 60, 90 and 138, where frame_number / average fps would be far off.
VFR_SHOTS = [Shot(2.0, 30, 0), Shot(2.0, 15, 1), Shot(2.0, 24, 2), Shot(1.0, 30, 3)]


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ClipTruth]:
    """'cuts', 'vfr', 'single' (one 4 s shot) and 'tiny' (a 5-frame clip), with their truth."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    root = tmp_path_factory.mktemp("scene_clips")
    return {
        "cuts": render_shots(root / "cuts.mp4", CUT_SHOTS),
        "vfr": render_shots(root / "vfr.mp4", VFR_SHOTS, vfr=True),
        "single": render_shots(root / "single.mp4", [Shot(4.0, 30, 4)]),
        "tiny": render_shots(root / "tiny.mp4", [Shot(5 / 30, 30, 1)], size=(64, 48)),
    }
