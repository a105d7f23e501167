"""Generated demo media against its ground truth, with real ffprobe, ffmpeg and PySceneDetect."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from scenedetect import SceneManager, open_video
from scenedetect.detectors import ContentDetector

from chfen.config import DemoSiteConfig
from chfen.demo import Catalogue, generate_catalogue
from chfen.demo.catalogue import TRUNCATE_FRACTION
from chfen.demo.cues import ABSENT, CHANNELS, NEUTRAL
from chfen.demo.render import atomic_path
from chfen.labels import PLUTCHIK
from chfen.modalities import MODALITIES


def probe(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    return json.loads(out)


def good_entries(catalogue: Catalogue) -> list[dict[str, Any]]:
    return [v for v in catalogue.ground_truth["videos"] if v["expect"] == "ok"]


def media(catalogue: Catalogue, video_id: str) -> Path:
    path = catalogue.media_file(video_id)
    assert path is not None and path.is_file(), video_id
    return path


def test_ground_truth_lists_every_item(demo_catalogue: Catalogue) -> None:
    gt = demo_catalogue.ground_truth
    ids = [v["id"] for v in gt["videos"]]
    assert len(ids) == len(set(ids))
    assert gt["labels"] == list(PLUTCHIK)
    catalogue = [v for v in gt["videos"] if v["kind"] == "catalogue"]
    assert len(catalogue) == gt["n_videos"] == 6
    assert all(v["emotion"] in PLUTCHIK for v in good_entries(demo_catalogue))
    assert sum(v["vfr"] for v in gt["videos"] if v["kind"] != "duplicate") == 1
    assert [v["duplicate_of"] is not None for v in gt["videos"]].count(True) == 2
    for v in gt["videos"]:
        assert v["expect"] in ("ok", "fail")
        assert (v["fail_kind"] is None) == (v["expect"] == "ok")


def test_ground_truth_says_which_cues_carry_the_emotion(demo_catalogue: Catalogue) -> None:
    gt = demo_catalogue.ground_truth
    assert set(gt["cue_design"]["channels"]) == set(CHANNELS)
    assert gt["cue_design"]["modality_channels"]["audio"] == ["words", "prosody"]
    assert set(gt["ceilings"]["vs_truth"]) == {*MODALITIES, "oracle"}
    assert gt["ceilings"]["vs_truth"]["oracle"] > max(
        gt["ceilings"]["vs_truth"][m] for m in MODALITIES
    )
    catalogue = [v for v in gt["videos"] if v["kind"] == "catalogue"]
    for channel in CHANNELS:
        share = sum(channel in v["carriers"] for v in catalogue) / len(catalogue)
        assert gt["carrier_shares"][channel] == pytest.approx(share, abs=1e-4)
    for v in gt["videos"]:
        if v["emotion"] is None:
            assert v["cues"] is None and v["carriers"] == []
            continue
        assert set(v["cues"]) == set(CHANNELS), v["id"]
        for cue in v["cues"].values():
            assert cue["carries"] == (cue["shows"] == v["emotion"])
            assert cue["shows"] in (*PLUTCHIK, NEUTRAL, ABSENT)
        assert v["carriers"] == [c for c in CHANNELS if v["cues"][c]["carries"]]
        if v["duplicate_of"]:
            assert v["cues"] == demo_catalogue.entry(v["duplicate_of"])["cues"]


def test_probe_agrees_with_ground_truth(demo_catalogue: Catalogue) -> None:
    problems = []
    for entry in good_entries(demo_catalogue):
        info = probe(media(demo_catalogue, entry["id"]))
        video = [s for s in info["streams"] if s["codec_type"] == "video"]
        audio = [s for s in info["streams"] if s["codec_type"] == "audio"]
        v = video[0]
        num, den = (int(x) for x in v["avg_frame_rate"].split("/"))
        checks = {
            "duration": abs(float(info["format"]["duration"]) - entry["duration"]) <= 0.1,
            # The VFR video's average is frames / duration; ffprobe divides by the stream's
            # own duration, a frame shorter.
            "fps": abs(num / den - entry["fps"]) <= (0.01 * entry["fps"] if entry["vfr"] else 1e-3),
            "size": (v["width"], v["height"]) == (entry["width"], entry["height"]),
            "frames": int(v["nb_frames"]) == entry["n_frames"],
            "codec": v["codec_name"] == entry["video_codec"] == "h264",
            "pix_fmt": v["pix_fmt"] == "yuv420p",
            "has_audio": bool(audio) == entry["has_audio"],
            "audio_codec": [a["codec_name"] for a in audio] == (["aac"] if audio else []),
        }
        problems += [(entry["id"], k) for k, ok in checks.items() if not ok]
    assert not problems


def test_files_are_faststart(demo_catalogue: Catalogue) -> None:
    """`moov` before `mdat`, so a browser or a range reader can start without the whole file."""
    for entry in good_entries(demo_catalogue):
        data = media(demo_catalogue, entry["id"]).read_bytes()
        boxes, pos = [], 0
        while pos + 8 <= len(data):
            size = int.from_bytes(data[pos : pos + 4], "big")
            boxes.append(data[pos + 4 : pos + 8].decode())
            if size < 8:
                break
            pos += size
        assert boxes.index("moov") < boxes.index("mdat"), (entry["id"], boxes)


def test_the_vfr_video_really_has_a_variable_frame_rate(demo_catalogue: Catalogue) -> None:
    (entry,) = [v for v in demo_catalogue.ground_truth["videos"] if v["vfr"]]
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts_time",
            "-of",
            "csv=p=0",
            str(media(demo_catalogue, entry["id"])),
        ],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    times = sorted(float(t) for t in out.split())
    steps = {round(b - a, 4) for a, b in zip(times, times[1:], strict=False)}
    assert steps == {round(1 / 30, 4), round(2 / 30, 4)}
    assert len(times) == entry["n_frames"] < entry["duration"] * entry["nominal_fps"]


def test_content_detector_finds_exactly_the_cuts(demo_catalogue: Catalogue) -> None:
    """Every planned cut, at its frame, and nothing inside a shot (VFR video included)."""
    for entry in good_entries(demo_catalogue):
        video = open_video(str(media(demo_catalogue, entry["id"])))
        manager = SceneManager()
        manager.add_detector(ContentDetector(threshold=27.0, min_scene_len=15))
        manager.detect_scenes(video)
        found = [start.seconds for start, _ in manager.get_scene_list()[1:]]
        assert found == pytest.approx(entry["cuts"], abs=0.5 / entry["nominal_fps"]), entry["id"]


def test_sentences_are_in_order_inside_the_video(demo_catalogue: Catalogue) -> None:
    for entry in good_entries(demo_catalogue):
        sentences = entry["sentences"]
        if not entry["has_audio"]:
            assert sentences == []
            continue
        assert sentences, entry["id"]
        for s in sentences:
            assert 0 < s["start"] < s["end"] < entry["duration"]
            assert s["text"].strip()
        for a, b in zip(sentences, sentences[1:], strict=False):
            assert a["end"] < b["start"]


def test_duplicates_are_smaller_reencodes_of_their_originals(demo_catalogue: Catalogue) -> None:
    for entry in demo_catalogue.ground_truth["videos"]:
        if entry["duplicate_of"] is None:
            continue
        original = demo_catalogue.entry(entry["duplicate_of"])
        assert entry["uploader"] != original["uploader"]
        assert entry["sha256"] != original["sha256"]
        assert entry["width"] < original["width"] and entry["height"] < original["height"]
        assert entry["sentences"] == original["sentences"]
        assert entry["cuts"] == original["cuts"]


def test_failing_hard_cases_are_broken_the_right_way(demo_catalogue: Catalogue) -> None:
    truncated = media(demo_catalogue, "hard-truncated")
    base = media(demo_catalogue, "hard-stall")  # hard-stall serves the intact base file
    assert truncated.stat().st_size == int(base.stat().st_size * TRUNCATE_FRACTION)
    assert truncated.read_bytes() == base.read_bytes()[: truncated.stat().st_size]
    decode = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(truncated), "-f", "null", "-"],
        capture_output=True,
        text=True,
    )
    assert decode.returncode != 0 or decode.stderr.strip()  # decoding reports the damage
    garbage = subprocess.run(
        ["ffprobe", "-v", "error", str(media(demo_catalogue, "hard-garbage"))], capture_output=True
    )
    assert garbage.returncode != 0
    long_info = probe(media(demo_catalogue, "hard-too-long"))
    assert float(long_info["format"]["duration"]) == pytest.approx(200, abs=0.1)
    assert demo_catalogue.media_file("hard-404") is None


def test_thumbnails_are_jpegs(demo_catalogue: Catalogue) -> None:
    for entry in demo_catalogue.ground_truth["videos"]:
        data = demo_catalogue.thumbnail_file(entry["id"]).read_bytes()
        assert data[:3] == b"\xff\xd8\xff", entry["id"]


def test_second_start_is_a_fast_cache_hit(demo_catalogue: Catalogue) -> None:
    cfg = DemoSiteConfig(n_videos=demo_catalogue.plan.n_videos, seed=demo_catalogue.plan.seed)
    rendered: list[str] = []
    started = time.perf_counter()
    again = generate_catalogue(
        cfg, demo_catalogue.root.parent, show_progress=False, on_item=rendered.append
    )
    assert time.perf_counter() - started < 1.0
    assert rendered == []
    assert again.ground_truth == demo_catalogue.ground_truth


def test_regenerates_only_what_is_missing_and_identically(
    demo_catalogue: Catalogue, tmp_path: Path
) -> None:
    """Same seed, same ground truth, same bytes: a lost item comes back exactly as it was."""
    copy_root = tmp_path / demo_catalogue.root.name
    shutil.copytree(demo_catalogue.root, copy_root)
    victim = next(v["id"] for v in good_entries(demo_catalogue) if v["kind"] == "catalogue")
    (copy_root / "media" / f"{victim}.mp4").unlink()
    (copy_root / "items" / f"{victim}.json").unlink()
    (copy_root / "thumbs" / "hard-traversal.jpg").unlink()
    (copy_root / "ground_truth.json").unlink()

    cfg = DemoSiteConfig(n_videos=demo_catalogue.plan.n_videos, seed=demo_catalogue.plan.seed)
    rendered: list[str] = []
    again = generate_catalogue(cfg, tmp_path, show_progress=False, on_item=rendered.append)
    assert sorted(rendered) == sorted([victim, "hard-traversal"])
    assert again.ground_truth == demo_catalogue.ground_truth
    assert again.entry(victim)["sha256"] == demo_catalogue.entry(victim)["sha256"]
    assert not list(copy_root.glob("*/.*.tmp.*")), "temporary files left behind"


def test_atomic_path_leaves_nothing_when_interrupted(tmp_path: Path) -> None:
    final = tmp_path / "clip.mp4"
    with pytest.raises(RuntimeError), atomic_path(final) as tmp:
        tmp.write_bytes(b"half a file")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    with atomic_path(final) as tmp:
        tmp.write_bytes(b"whole")
    assert final.read_bytes() == b"whole" and list(tmp_path.iterdir()) == [final]
