"""The scenes stage on the demo site's videos against their ground truth (chfen.demo)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chfen.demo import Catalogue
from chfen.media.scenes import STAGE, STAGE_VERSION, ScenesStage
from chfen.media.testmedia import register_video
from chfen.stages import run_for_video
from warehouse import Warehouse


def test_demo_videos_cut_where_the_ground_truth_says(
    demo_catalogue: Catalogue, tmp_path: Path
) -> None:
    """Every planned cut within one frame period, no false cut, VFR video included."""
    wh = Warehouse(tmp_path / "data", catalog=False)
    entries = [
        v for v in demo_catalogue.ground_truth["videos"]
        if v["expect"] == "ok" and v["kind"] != "duplicate"
    ]  # fmt: skip
    assert any(v["vfr"] for v in entries)
    stage = ScenesStage(wh)
    for entry in entries:
        vid = entry["id"]
        media = demo_catalogue.media_file(vid)
        assert media is not None
        register_video(wh, vid, video=media, duration_s=entry["duration"], fps=entry["fps"])
        outcome = run_for_video(wh, STAGE, STAGE_VERSION, vid, stage)
        assert outcome.ok, (vid, outcome.message)
        rows = wh.rows("SELECT * FROM scenes WHERE video_id = ? ORDER BY scene_idx", [vid])
        found = [r["start_s"] for r in rows[1:]]
        # One frame at the nominal rate: the shortest frame period, also on the VFR video.
        assert found == pytest.approx(entry["cuts"], abs=1.0 / entry["nominal_fps"]), vid
        assert rows[-1]["end_s"] == pytest.approx(entry["duration"], abs=0.1), vid
        assert rows[-1]["end_frame"] == entry["n_frames"], vid
        assert all((wh.root.media_dir() / r["keyframe_path"]).is_file() for r in rows), vid
