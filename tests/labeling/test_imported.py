"""Imported labels through the real Label Studio: one user per rater (one named after the
dataset for one label per file), back through `label pull` with origin `imported`, and a
one-vote dataset passing training's vote rule without lowering `train.min_votes`; an unlabelled
folder's files pushed as tasks for people to label."""

from __future__ import annotations

from pathlib import Path

import pytest
from ingestkit import ravdess_folder, small_folder
from label_studio_sdk import LabelStudio
from labkit import Lab

from chfen.domain.origins import import_email, min_votes_for
from chfen.domain.votes import DEFAULT_MIN_VOTES, training_target, votes_from_rows
from chfen.ingest import import_folder
from chfen.ingest.local import votes_path
from labeling.imported import imported_result, submit_imported_labels
from labeling.pull import pull_annotations
from labeling.push import push_tasks, tasks_in_project
from labeling.simulate import ensure_user
from warehouse import Warehouse

pytestmark = pytest.mark.slow

WAVS = ("03-01-03-01-01-01-01.wav", "03-01-04-02-01-01-01.wav", "03-01-05-01-01-01-01.wav")
MP4 = "01-01-01-01-01-01-01.mp4"


def test_imported_labels_reach_annotations_as_their_users_votes(lab: Lab, tmp_path: Path) -> None:
    ravdess = ravdess_folder()
    folder = small_folder(ravdess, tmp_path / "clips", WAVS)
    ratings = tmp_path / "ratings.csv"
    ratings.write_text(f"file,rater,label\n{WAVS[0]},r1,joy\n{WAVS[0]},r2,surprise\n")
    # the server serves media from its data root: the import writes there
    wh = Warehouse(lab.settings.data_path)
    one = import_folder(wh, folder, source=f"{lab.prefix}-one", preset="ravdess")
    many = import_folder(wh, folder, source=f"{lab.prefix}-many", labels=ratings)
    for vid in one.new + many.new:  # what `chfen process` records; ASR itself is not tested here
        wh.mark_done(vid, "asr", "1")

    # before its task exists a vote waits; after the push it goes in, once
    submitted_early = submit_imported_labels(lab.settings, wh)
    assert submitted_early is not None and submitted_early.waiting == 5
    assert sum(submitted_early.created.values()) == 0
    push_tasks(lab.settings, wh)
    report = submit_imported_labels(lab.settings, wh)
    dataset = import_email(f"{lab.prefix}-one")
    raters = [import_email(f"{lab.prefix}-many", r) for r in ("r1", "r2")]
    assert report.created == {dataset: 3, raters[0]: 1, raters[1]: 1}
    again = submit_imported_labels(lab.settings, wh)
    assert sum(again.created.values()) == 0 and again.already_done == 5

    pull_annotations(lab.settings, wh)
    rows = wh.rows(
        "SELECT video_id, annotator, choice, intensity, origin FROM annotations_latest "
        "WHERE video_id IN (SELECT unnest($ids))",
        {"ids": one.new + many.new},
    )
    assert len(rows) == 5 and {r["origin"] for r in rows} == {"imported"}
    got = {(r["video_id"], r["annotator"]): (r["choice"], r["intensity"]) for r in rows}
    one_id = f"{lab.prefix}-one-03-01-04-02-01-01-01-wav"
    assert got[(one_id, dataset)] == ("sadness", 3)  # RAVDESS 04 sad, 02 strong
    many_id = f"{lab.prefix}-many-03-01-03-01-01-01-01-wav"
    assert got[(many_id, raters[0])] == ("joy", None)

    # training's rule at the default min_votes: the dataset's label trains alone; the two
    # crowd votes that disagree do not pass a 0.6 agreement
    votes = votes_from_rows(wh.rows("SELECT * FROM annotations_latest"))
    assert DEFAULT_MIN_VOTES >= 2
    kept = {
        vid
        for vid, by in votes.items()
        if vid in one.new + many.new
        and not isinstance(
            training_target(
                by.values(), min_votes=min_votes_for(by, DEFAULT_MIN_VOTES), min_agreement=0.6
            ),
            str,
        )
    }
    assert kept == {f"{lab.prefix}-one-03-01-04-02-01-01-01-wav",
                    f"{lab.prefix}-one-03-01-03-01-01-01-01-wav",
                    f"{lab.prefix}-one-03-01-05-01-01-01-01-wav"}  # fmt: skip


def test_an_unlabelled_folder_enters_the_normal_loop(
    lab: Lab, client: LabelStudio, tmp_path: Path
) -> None:
    """A user's own files without labels: tasks pushed like crawled videos (the audio-only
    ones too), no imported vote, and a person's label comes back through `label pull`."""
    ravdess = ravdess_folder()
    folder = small_folder(ravdess, tmp_path / "mine", (*WAVS[:2], MP4))
    wh = Warehouse(lab.settings.data_path)
    report = import_folder(wh, folder, source=f"{lab.prefix}-own")
    assert report.shape is None and report.votes == 0 and len(report.new) == 3
    assert not votes_path(wh, report.source).exists()
    for vid in report.new:  # what `chfen process` records
        wh.mark_done(vid, "asr", "1")
    pushed = push_tasks(lab.settings, wh)
    # (the session's server shares one data root: other tests' files may be pushed too)
    assert set(report.new) <= set(pushed.pushed) and not pushed.failed
    tasks = tasks_in_project(client, pushed.project_id)
    assert set(report.new) <= set(tasks)
    # nothing of this source is submitted as an imported label
    imported = submit_imported_labels(lab.settings, wh)
    assert imported is None or not any(e.startswith(report.source) for e in imported.created)
    mp4 = f"{report.source}-{MP4.replace('.', '-')}"
    task = client.tasks.get(tasks[mp4])
    assert task.data["video"].endswith(f"media/{mp4}/media.mp4") and task.data["fps"] > 0

    person = ensure_user(client, "pat@chfen.local")
    wav = f"{report.source}-{WAVS[0].replace('.', '-')}"
    client.annotations.create(id=tasks[wav], result=imported_result("joy", 2), completed_by=person)
    pull_annotations(lab.settings, wh)
    rows = wh.rows(
        "SELECT video_id, annotator, choice, origin FROM annotations_latest "
        "WHERE video_id IN (SELECT unnest($ids))",
        {"ids": report.new},
    )
    assert rows == [
        {"video_id": wav, "annotator": "pat@chfen.local", "choice": "joy", "origin": "person"}
    ]
