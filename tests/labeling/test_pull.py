"""Pulling annotations from a real Label Studio: exact round trip, idempotence, deletions."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from label_studio_sdk import LabelStudio
from labkit import Lab

from labeling import config as lc
from labeling.agreement import project_agreement
from labeling.pull import frames_to_seconds, pull_annotations
from labeling.push import push_tasks, tasks_in_project
from labeling.simulate import ensure_user

pytestmark = pytest.mark.slow


def result(choice: str, rating: int | None, ranges=(), note: str | None = None) -> list[dict]:
    """An annotation result as the labeling view would save it."""
    out = [
        {"from_name": lc.EMOTION, "to_name": lc.VIDEO, "type": "choices",
         "value": {"choices": [choice]}},
    ]  # fmt: skip
    if rating is not None:
        out.append({"from_name": lc.INTENSITY, "to_name": lc.VIDEO, "type": "rating",
                    "value": {"rating": rating}})  # fmt: skip
    for start, end, label in ranges:
        out.append({"from_name": lc.SEGMENTS, "to_name": lc.VIDEO, "type": "timelinelabels",
                    "value": {"ranges": [{"start": start, "end": end}],
                              "timelinelabels": [label]}})  # fmt: skip
    if note is not None:
        out.append({"from_name": lc.NOTE, "to_name": lc.VIDEO, "type": "textarea",
                    "value": {"text": [note]}})  # fmt: skip
    return out


def ls_time(value: str | dt.datetime) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC)
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(dt.UTC)


def two_pushed_videos(lab: Lab, client: LabelStudio) -> tuple[str, str, dict[str, int]]:
    a, b = lab.add_video(1, fps=25.0), lab.add_video(2, fps=30.0)
    report = push_tasks(lab.settings, lab.wh)
    return a, b, tasks_in_project(client, report.project_id)


def test_annotations_come_back_exactly(lab: Lab, client: LabelStudio) -> None:
    a, b, tasks = two_pushed_videos(lab, client)
    bob = ensure_user(client, "bob@chfen.local")
    made = {
        "admin-a": client.annotations.create(
            id=tasks[a],
            result=result("fear", 3, [(26, 50, "fear"), (1, 10, "surprise")], "the dog barks"),
            lead_time=12.5,
        ),
        "bob-a": client.annotations.create(
            id=tasks[a], result=result("no clear emotion", 1), lead_time=4.0, completed_by=bob
        ),
        "bob-b": client.annotations.create(
            id=tasks[b],
            result=result("joy", 2, [(31, 60, "joy")]),
            lead_time=7.25,
            completed_by=bob,
        ),  # fmt: skip
        "admin-b-skip": client.annotations.create(
            id=tasks[b], result=[], was_cancelled=True, lead_time=1.5
        ),
    }

    report = pull_annotations(lab.settings, lab.wh)

    assert (report.new, report.updated, report.deleted) == (4, 0, 0)
    rows = {r["annotation_id"]: r for r in lab.wh.rows("SELECT * FROM annotations_latest")}
    assert set(rows) == {int(m.id) for m in made.values()}
    expected = {
        "admin-a": dict(
            video_id=a, task_id=tasks[a], annotator="admin@chfen.local", choice="fear",
            intensity=3, note="the dog barks", lead_time_s=12.5, was_cancelled=False,
            segments=[
                {"start_s": 0.0, "end_s": 0.4, "label": "surprise"},
                {"start_s": 1.0, "end_s": 2.0, "label": "fear"},
            ],
        ),
        "bob-a": dict(
            video_id=a, task_id=tasks[a], annotator="bob@chfen.local",
            choice="no clear emotion", intensity=1, note=None, lead_time_s=4.0,
            was_cancelled=False, segments=[],
        ),
        "bob-b": dict(
            video_id=b, task_id=tasks[b], annotator="bob@chfen.local", choice="joy",
            intensity=2, note=None, lead_time_s=7.25, was_cancelled=False,
            segments=[{"start_s": 1.0, "end_s": 2.0, "label": "joy"}],  # 30 fps
        ),
        "admin-b-skip": dict(
            video_id=b, task_id=tasks[b], annotator="admin@chfen.local", choice=None,
            intensity=None, note=None, lead_time_s=1.5, was_cancelled=True, segments=[],
        ),
    }  # fmt: skip
    for name, ann in made.items():
        row = rows[int(ann.id)]
        want = expected[name]
        got = {k: row[k] for k in want if k != "segments"}
        assert got == {k: v for k, v in want.items() if k != "segments"}, name
        assert json.loads(row["segments_json"]) == want["segments"], name
        assert row["project_id"] == report.project_id
        assert row["deleted"] is False
        stored = client.annotations.get(int(ann.id))
        assert row["created_at"] == ls_time(stored.created_at)
        assert row["updated_at"] == ls_time(stored.updated_at)
    assert frames_to_seconds(26, 50, 25.0) == (1.0, 2.0)


def test_pulling_twice_changes_nothing(lab: Lab, client: LabelStudio) -> None:
    a, _, tasks = two_pushed_videos(lab, client)
    client.annotations.create(id=tasks[a], result=result("trust", 2), lead_time=3.0)
    first = pull_annotations(lab.settings, lab.wh)
    version = lab.wh.version("annotations")

    second = pull_annotations(lab.settings, lab.wh)

    assert first.new == 1
    assert (second.new, second.updated, second.deleted, second.unchanged) == (0, 0, 0, 1)
    assert second.watermark_before == first.watermark_after == second.watermark_after
    assert lab.wh.version("annotations") == version


def test_updates_and_deletions_are_reflected(lab: Lab, client: LabelStudio) -> None:
    a, b, tasks = two_pushed_videos(lab, client)
    bob = ensure_user(client, "bob@chfen.local")
    keep = client.annotations.create(id=tasks[a], result=result("anger", 1), lead_time=2.0)
    other = client.annotations.create(
        id=tasks[a], result=result("anger", 2), completed_by=bob, lead_time=2.0
    )
    gone = client.annotations.create(id=tasks[b], result=result("sadness", 2), lead_time=2.0)
    pull_annotations(lab.settings, lab.wh)
    assert project_agreement(lab.wh).n_votes == 3

    client.annotations.update(int(keep.id), result=result("disgust", 3))
    client.annotations.delete(int(gone.id))
    report = pull_annotations(lab.settings, lab.wh)

    assert (report.new, report.updated, report.deleted, report.unchanged) == (0, 1, 1, 1)
    rows = {r["annotation_id"]: r for r in lab.wh.rows("SELECT * FROM annotations_latest")}
    assert rows[int(keep.id)]["choice"] == "disgust" and rows[int(keep.id)]["intensity"] == 3
    assert rows[int(gone.id)]["deleted"] is True
    assert rows[int(gone.id)]["choice"] == "sadness"  # the deleted row keeps what it was
    assert rows[int(other.id)]["deleted"] is False
    # history is kept: every version of the updated annotation is still in the table
    history = lab.wh.rows(
        "SELECT choice FROM annotations WHERE annotation_id = ? ORDER BY updated_at",
        [int(keep.id)],
    )
    assert [r["choice"] for r in history] == ["anger", "disgust"]
    votes = project_agreement(lab.wh)
    assert votes.n_votes == 2 and {i.video_id for i in votes.items} == {a}

    again = pull_annotations(lab.settings, lab.wh)
    assert again.written == 0
