"""The labeling config and the pure parts of push/pull (no server)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from label_studio_sdk.label_interface import LabelInterface

from chfen.labels import NO_EMOTION, PLUTCHIK
from labeling import config as lc
from labeling.pull import annotation_rows, frames_to_seconds, parse_result, seconds_to_frames
from labeling.push import build_task, local_files_url


def test_config_offers_exactly_the_label_set() -> None:
    xml = lc.label_config()
    root = ET.fromstring(xml)
    choices = [c.get("value") for c in root.iter("Choice")]
    segments = [c.get("value") for c in root.iter("Label")]
    assert choices == segments == [*PLUTCHIK, NO_EMOTION]
    assert lc.QUESTION in xml and "How does this video make you feel?" in xml
    (video,) = root.iter("Video")
    assert video.get("frameRate") == "$fps" and video.get("value") == "$video"
    (rating,) = root.iter("Rating")
    assert rating.get("maxRating") == "3"
    assert [t.get("value") for t in root.iter("Text")] == ["$title", "$transcript"]
    assert next(root.iter("TextArea")).get("name") == lc.NOTE
    assert next(root.iter("Choices")).get("choice") == "single-radio"


def test_the_sdk_understands_the_config() -> None:
    interface = LabelInterface(lc.label_config())
    assert interface.get_control(lc.EMOTION).labels == list(lc.LABELS)
    assert interface.get_control(lc.SEGMENTS).labels == list(lc.LABELS)
    assert {o.name for o in interface.objects} == {lc.VIDEO, lc.TITLE, lc.TRANSCRIPT}


def test_a_fixed_framerate_and_the_fingerprint() -> None:
    assert 'frameRate="25"' in lc.label_config(fixed_framerate=25)
    assert lc.config_fingerprint(lc.label_config()) == lc.config_fingerprint(
        "  " + lc.label_config().replace("\n", "\n  ")
    )
    assert lc.config_fingerprint(lc.label_config()) != lc.config_fingerprint(lc.label_config(25))


def test_frames_and_seconds() -> None:
    assert frames_to_seconds(1, 25, 25.0) == (0.0, 1.0)  # the first second at 25 fps
    assert frames_to_seconds(31, 60, 30.0) == (1.0, 2.0)
    assert frames_to_seconds(60, 31, 30.0) == (1.0, 2.0)
    assert seconds_to_frames(1.0, 2.0, 30.0) == (31, 60)
    with pytest.raises(ValueError):
        frames_to_seconds(1, 2, 0)


def test_parse_result_and_rows() -> None:
    result = [
        {"from_name": lc.EMOTION, "value": {"choices": ["anger"]}},
        {"from_name": lc.INTENSITY, "value": {"rating": 2}},
        {"from_name": lc.SEGMENTS,
         "value": {"ranges": [{"start": 11, "end": 20}], "timelinelabels": ["anger"]}},
        {"from_name": lc.NOTE, "value": {"text": ["loud", "music"]}},
    ]  # fmt: skip
    parsed = parse_result(result, 10.0)
    assert parsed == {
        "choice": "anger",
        "intensity": 2,
        "segments": [{"start_s": 1.0, "end_s": 2.0, "label": "anger"}],
        "note": "loud\nmusic",
    }
    export = [
        {
            "id": 7,
            "data": {"video_id": "v", "fps": 10.0},
            "annotations": [
                {"id": 70, "result": result, "completed_by": {"id": 1, "email": "x@y"},
                 "lead_time": 3, "was_cancelled": False,
                 "created_at": "2025-01-01T00:00:00.5Z", "updated_at": "2025-01-01T00:00:01Z"},
                {"id": 71, "result": [], "completed_by": 2, "was_cancelled": True,
                 "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z"},
            ],
        }
    ]  # fmt: skip
    rows, warnings = annotation_rows(export, project_id=3, users={2: "z@y"})
    assert not warnings
    assert [r["annotator"] for r in rows] == ["x@y", "z@y"]
    assert rows[0]["created_at"].microsecond == 500000 and rows[0]["lead_time_s"] == 3.0
    assert json.loads(rows[0]["segments_json"])[0]["end_s"] == 2.0
    assert rows[1]["was_cancelled"] and rows[1]["choice"] is None


def test_tasks_point_at_local_files_and_refuse_missing_media(tmp_path: Path) -> None:
    media = tmp_path / "media"
    (media / "v1").mkdir(parents=True)
    (media / "v1" / "a b.mp4").write_bytes(b"x")
    url = local_files_url("v1/a b.mp4", media, tmp_path)
    assert url == "/data/local-files/?d=media/v1/a%20b.mp4"
    video = {"video_id": "v1", "media_path": "v1/a b.mp4", "fps": None, "title": None}
    task = build_task(video, "", media, tmp_path, ("joy", 0.9, "m"))
    assert task["data"]["fps"] == 30.0 and task["data"]["title"] == "v1"
    assert task["predictions"][0]["result"][0]["value"] == {"choices": ["joy"]}
    with pytest.raises(ValueError, match="does not exist"):
        build_task({**video, "media_path": "v1/missing.mp4"}, "", media, tmp_path)
    with pytest.raises(ValueError, match="not under the media root"):
        build_task({**video, "media_path": "/etc/passwd"}, "", media, tmp_path)
    with pytest.raises(ValueError, match="not one of"):
        build_task(video, "", media, tmp_path, ("bliss", 0.9, "m"))
