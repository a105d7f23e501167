"""Pushing tasks to a real Label Studio: task data, media serving, idempotence, outages."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from labkit import AUTH, Lab

from labeling import server
from labeling.config import EMOTION
from labeling.push import LabelPushError, push_tasks, tasks_in_project, transcripts
from warehouse import Warehouse

pytestmark = pytest.mark.slow


def test_push_creates_tasks_with_the_video_data(lab: Lab, client) -> None:
    a = lab.add_video(1, fps=25.0)
    b = lab.add_video(
        2,
        fps=30.0,
        words=(
            " so",
            " sad",
        ),
    )
    lab.add_video(3, asr_done=False)  # not processed yet: not pushed
    lab.add_video(4, status="failed")  # not a usable video: not pushed

    report = push_tasks(lab.settings, lab.wh, predictions={a: ("joy", 0.8, "chfen-test-1")})

    assert sorted(report.pushed) == [a, b]
    assert not report.failed
    recorded = {r["video_id"]: r for r in lab.wh.rows("SELECT * FROM label_tasks_latest")}
    assert set(recorded) == {a, b}
    assert recorded[a]["prediction_model_version"] == "chfen-test-1"
    assert recorded[b]["prediction_model_version"] is None
    for vid in (a, b):
        assert lab.wh.stage_status(vid, "label_push", "1") == "done"

    task = client.tasks.get(str(recorded[a]["task_id"]))
    data = task.data
    assert data["video_id"] == a
    assert data["video"] == f"/data/local-files/?d=media/{a}/video.mp4"
    assert data["title"] == f"Title of {a}"
    assert data["description"] == f"Description of {a}"
    assert data["uploader"] == "uploader-1"
    assert data["transcript"] == "I love\nthis song"
    assert data["fps"] == 25.0
    assert client.tasks.get(str(recorded[b]["task_id"])).data["fps"] == 30.0
    assert client.tasks.get(str(recorded[b]["task_id"])).data["transcript"] == "so sad"

    (prediction,) = client.predictions.list(task=int(recorded[a]["task_id"]))
    assert prediction.model_version == "chfen-test-1"
    assert prediction.score == pytest.approx(0.8)
    assert prediction.result[0]["from_name"] == EMOTION
    assert prediction.result[0]["value"] == {"choices": ["joy"]}

    # Label Studio serves the video to an authenticated user, whole and in ranges.
    url = lab.settings.labelstudio
    video_url = f"http://{url.host}:{url.port}{data['video']}"
    whole = httpx.get(video_url, headers=AUTH, timeout=30)
    assert whole.status_code == 200
    assert whole.content == (lab.server.media_root / a / "video.mp4").read_bytes()
    part = httpx.get(video_url, headers={**AUTH, "Range": "bytes=0-99"}, timeout=30)
    assert part.status_code == 206 and len(part.content) == 100
    assert httpx.get(video_url, timeout=30).status_code in (401, 403)


def test_pushing_again_is_a_no_op(lab: Lab, client) -> None:
    for n in range(3):
        lab.add_video(n)
    first = push_tasks(lab.settings, lab.wh)
    version = lab.wh.version("label_tasks")
    ledger = lab.wh.version("stage_runs")

    second = push_tasks(lab.settings, lab.wh)

    assert len(first.pushed) == 3
    assert second.pushed == [] and second.recovered == [] and second.already_pushed == 3
    assert lab.wh.version("label_tasks") == version
    assert lab.wh.version("stage_runs") == ledger
    assert len(tasks_in_project(client, first.project_id)) == 3


def test_new_model_predictions_reach_pushed_tasks_once(lab: Lab, client) -> None:
    a, b = lab.add_video(1), lab.add_video(2)
    push_tasks(lab.settings, lab.wh)
    preds = {a: ("fear", 0.6, "m2"), b: ("no clear emotion", 0.4, "m2")}

    report = push_tasks(lab.settings, lab.wh, predictions=preds)
    again = push_tasks(lab.settings, lab.wh, predictions=preds)

    assert sorted(report.predictions_added) == [a, b]
    assert again.predictions_added == []
    rows = lab.wh.rows("SELECT video_id, prediction_model_version FROM label_tasks_latest")
    assert {r["video_id"]: r["prediction_model_version"] for r in rows} == {a: "m2", b: "m2"}
    task_id = tasks_in_project(client, report.project_id)[a]
    assert [p.model_version for p in client.predictions.list(task=task_id)] == ["m2"]


def test_label_studio_stopped_during_a_push(lab: Lab, client) -> None:
    settings = lab.settings.model_copy(deep=True)
    settings.labelstudio.batch_size = 1
    ids = [lab.add_video(n) for n in range(3)]
    stopped = []

    def stop_after_first_batch(done: int, total: int) -> None:
        if not stopped:
            server.stop(settings)
            stopped.append(done)

    try:
        with pytest.raises(LabelPushError) as err:
            push_tasks(settings, lab.wh, on_batch=stop_after_first_batch)
    finally:
        server.start(settings)

    message = str(err.value)
    assert "[label_push]" in message and ids[1] in message
    assert "chfen labelstudio start" in message
    assert lab.wh.stage_status(ids[0], "label_push", "1") == "done"
    assert lab.wh.stage_status(ids[1], "label_push", "1") == "failed"
    (failure,) = lab.wh.rows("SELECT * FROM failures WHERE video_id = ?", [ids[1]])
    assert failure["stage"] == "label_push" and failure["error_kind"] == "network"

    report = push_tasks(settings, lab.wh)

    assert sorted(report.pushed + report.recovered) == ids[1:]
    in_ls = tasks_in_project(client, report.project_id)
    assert sorted(in_ls) == ids
    assert client.projects.get(report.project_id).task_number == 3
    assert lab.wh.stage_status(ids[1], "label_push", "1") == "done"


def test_a_task_imported_without_its_record_is_not_imported_twice(lab: Lab, client) -> None:
    """The connection broke after Label Studio committed: the next push records, not imports."""
    a, b = lab.add_video(1), lab.add_video(2)
    first = push_tasks(lab.settings, lab.wh, limit=0)  # creates the project, pushes nothing
    client.projects.import_tasks(
        first.project_id,
        request=[{"data": {"video_id": a, "video": "x", "fps": 25, "title": a, "transcript": ""}}],
    )

    report = push_tasks(lab.settings, lab.wh)

    assert report.recovered == [a] and report.pushed == [b]
    assert sorted(tasks_in_project(client, report.project_id)) == [a, b]
    assert client.projects.get(report.project_id).task_number == 2


def test_transcripts_write_chinese_words_unspaced(tmp_path: Path) -> None:
    """Task transcripts join each segment's words as the ASR stage's segment text does: no
    space between Chinese words (jieba words, punctuation on the word before), spaces around
    the English ones; whisper's leading spaces (older rows) are not doubled. (Was
    "今天 的 晚饭 做好 了。": every word got a space.)"""
    wh = Warehouse(tmp_path / "wh")
    segments = {
        "zh": [["今天", "的", "晚饭", "做好", "了。"], ["Dinner", "is", "ready."]],
        "mixed": [["我们", "去", "KTV", "唱歌", "吧！"]],
        "en": [[" what", " a"], [" lovely", " morning"]],
    }
    wh.append(
        "transcript_words",
        [
            {"video_id": vid, "word_idx": i, "segment_idx": s, "word": word}
            for vid, segs in segments.items()
            for i, (s, word) in enumerate((s, w) for s, seg in enumerate(segs) for w in seg)
        ],
    )
    assert transcripts(wh, list(segments)) == {
        "zh": "今天的晚饭做好了。\nDinner is ready.",
        "mixed": "我们去 KTV 唱歌吧！",
        "en": "what a\nlovely morning",
    }
