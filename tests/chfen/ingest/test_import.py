"""`chfen import` on the real RAVDESS sample: presets, CSVs, label maps, bad inputs that leave
nothing behind, re-imports, and audio-only files through the scenes stage."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from ingestkit import small_folder

from chfen.domain.origins import import_email
from chfen.ingest import DatasetImportError, LabelsError, import_folder, imported_votes
from chfen.media.probe import sha256_file
from chfen.media.scenes import AUDIO_ONLY_NOTE, ScenesStage
from chfen.stages import run_for_video
from warehouse import Warehouse

# RAVDESS's words in labels.csv (its own file) and ours: the mapping the preset documents.
OURS = {
    "neutral": "no clear emotion",
    "calm": "no clear emotion",
    "happy": "joy",
    "sad": "sadness",
    "angry": "anger",
    "fearful": "fear",
    "disgust": "disgust",
    "surprised": "surprise",
}
WAVS = ("03-01-03-01-01-01-01.wav", "03-01-04-02-01-01-01.wav", "03-01-05-01-01-01-01.wav")


@pytest.fixture(scope="module")
def imported(ravdess: Path, tmp_path_factory: pytest.TempPathFactory):
    wh = Warehouse(tmp_path_factory.mktemp("import") / "data")
    return wh, import_folder(wh, ravdess, preset="ravdess")


def nothing_written(wh: Warehouse) -> bool:
    media = [p for p in wh.root.media_dir().iterdir() if p.name != ".partial"]
    partial = wh.root.media_dir() / ".partial"
    return (
        wh.count("videos") == 0
        and wh.count("stage_runs") == 0
        and not media
        and not (partial.exists() and any(partial.iterdir()))
        and not wh.root.local("imports").exists()
    )


def test_the_ravdess_preset_imports_every_clip_with_its_mapped_label(
    imported, ravdess: Path
) -> None:
    wh, report = imported
    assert report.source == "ravdess-actor01" and len(report.new) == 16
    assert report.audio_only == 15 and report.labelled == 16 and report.votes == 16
    rows = {r["platform_id"]: r for r in wh.rows("SELECT * FROM videos_latest")}
    assert set(rows) == {p.name for p in ravdess.iterdir() if p.suffix in (".wav", ".mp4")}
    mp4 = rows["01-01-01-01-01-01-01.mp4"]
    assert mp4["video_id"] == "ravdess-actor01-01-01-01-01-01-01-01-mp4"
    assert (mp4["width"], mp4["height"]) == (1280, 720) and mp4["frame_count"] > 0
    wav = rows["03-01-05-02-01-01-01.wav"]
    # no fake picture: the picture fields of an audio-only file are absent
    assert wav["width"] is None and wav["fps"] is None and wav["video_codec"] is None
    assert wav["has_audio"] and wav["uploader"] == "ravdess-actor01"
    assert wav["url"] == (ravdess / "03-01-05-02-01-01-01.wav").as_uri()
    assert wav["sha256"] == sha256_file(ravdess / "03-01-05-02-01-01-01.wav")
    copy = wh.root.media_dir() / wav["media_path"]
    assert sha256_file(copy) == wav["sha256"]
    assert (wh.root.media_dir() / wav["audio_path"]).is_file()
    # the crawl ledger has them: the normal stages pick them up
    assert len(wh.pending("scenes", "1")) == 16 and wh.pending("crawl", "1") == []
    # the labels: RAVDESS's own words (labels.csv, written apart from the names) mapped to ours
    truth = {r["file"]: OURS[r["emotion"]] for r in csv.DictReader(open(ravdess / "labels.csv"))}
    votes = {v["video_id"]: v for v in imported_votes(wh)}
    for rel, row in rows.items():
        vote = votes[row["video_id"]]
        assert vote["label"] == truth[rel], rel
        assert vote["email"] == import_email("ravdess-actor01") and vote["rater"] is None
    strong = votes[rows["03-01-05-02-01-01-01.wav"]["video_id"]]
    assert strong["intensity"] == 3 and votes[mp4["video_id"]]["intensity"] == 1


def test_a_second_import_is_a_no_op(imported, ravdess: Path) -> None:
    wh, _ = imported
    versions = wh.versions()
    store = wh.root.local("imports", "ravdess-actor01.json")
    stamp = store.stat().st_mtime_ns
    again = import_folder(wh, ravdess, preset="ravdess")
    assert again.new == [] and again.changed == [] and len(again.unchanged) == 16
    assert not again.written and wh.versions() == versions
    assert store.stat().st_mtime_ns == stamp


def test_audio_only_files_pass_the_scenes_stage_with_nothing_visual(imported) -> None:
    wh, _ = imported
    vid = "ravdess-actor01-03-01-08-02-01-01-01-wav"
    outcome = run_for_video(wh, "scenes", "1", vid, ScenesStage(wh))
    assert outcome.ok and outcome.note == AUDIO_ONLY_NOTE and outcome.rows == {"scenes": 0}
    index = json.loads((wh.root.media_dir(vid) / "frames" / "index.json").read_text())
    assert index["stills"] == []
    assert wh.stage_status(vid, "scenes", "1") == "done"


def test_a_csv_with_a_label_map_and_re_imports(ravdess: Path, tmp_path: Path) -> None:
    folder = small_folder(ravdess, tmp_path / "clips", WAVS)
    (folder / "sub").mkdir()
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "clip,emotion,speaker\n"
        f"{WAVS[0]},happy,actor01\n{WAVS[1]},sad,actor01\n{WAVS[2]},Anger,actor01\n"
    )
    label_map = tmp_path / "map.yaml"
    label_map.write_text("happy: joy\nsad: sadness\n")  # "Anger" is ours already
    wh = Warehouse(tmp_path / "data")
    from chfen.ingest import Columns

    cols = Columns(file="clip", label="emotion", uploader="speaker")
    first = import_folder(wh, folder, source="mine", labels=labels, label_map=label_map,
                          columns=cols)  # fmt: skip
    assert len(first.new) == 3 and first.shape == "one-per-file"
    assert sorted(v["label"] for v in imported_votes(wh)) == ["anger", "joy", "sadness"]
    assert {r["uploader"] for r in wh.rows("SELECT uploader FROM videos_latest")} == {"actor01"}

    # a new file in a subfolder, one file changed, one removed
    (folder / "sub" / "new.wav").write_bytes((ravdess / "03-01-06-01-01-01-01.wav").read_bytes())
    (folder / WAVS[1]).write_bytes((ravdess / "03-01-07-01-01-01-01.wav").read_bytes())
    changed_id = "mine-" + WAVS[1].replace(".", "-")
    wh.mark_done(changed_id, "scenes", "1")
    (folder / WAVS[2]).unlink()
    labels.write_text(f"clip,emotion,speaker\n{WAVS[0]},happy,actor01\n{WAVS[1]},sad,actor01\n")
    second = import_folder(wh, folder, source="mine", labels=labels, label_map=label_map,
                           columns=cols)  # fmt: skip
    assert second.new == ["mine-sub-new-wav"] and second.changed == [changed_id]
    assert second.removed == [WAVS[2]]
    # removed: reported, never deleted; changed: its stages run again
    assert wh.count("videos") == 5
    assert wh.stage_status(changed_id, "scenes", "1") == "stale"
    assert changed_id in wh.pending("scenes", "1")
    row = wh.rows("SELECT sha256 FROM videos_latest WHERE video_id = ?", [changed_id])[0]
    assert row["sha256"] == sha256_file(ravdess / "03-01-07-01-01-01-01.wav")


def test_one_row_per_rating(ravdess: Path, tmp_path: Path) -> None:
    folder = small_folder(ravdess, tmp_path / "clips", WAVS)
    labels = tmp_path / "ratings.csv"
    labels.write_text(
        "file,rater,label,intensity\n"
        f"{WAVS[0]},r1,joy,2\n{WAVS[0]},r2,surprise,3\n{WAVS[1]},r1,sadness,\n"
    )
    wh = Warehouse(tmp_path / "data")
    report = import_folder(wh, folder, source="crowd", labels=labels)
    assert report.shape == "ratings" and report.votes == 3 and report.labelled == 2
    assert len(report.new) == 3  # the unlabelled clip comes in too
    votes = imported_votes(wh)
    assert {v["email"] for v in votes} == {import_email("crowd", "r1"), import_email("crowd", "r2")}
    assert [v["intensity"] for v in votes if v["rater"] == "r2"] == [3]


BAD = {
    "unknown label": ("file,label\n{a},joy\n{b},elated\n", "row 3", "unknown label 'elated'"),
    "missing file": ("file,label\n{a},joy\nnope.wav,joy\n", "row 3", "does not exist"),
    "duplicate row": ("file,label\n{a},joy\n{b},joy\n{a},fear\n", "row 4", "duplicate row"),
    "duplicate rating": ("file,rater,label\n{a},r1,joy\n{a},r1,fear\n", "row 3", "duplicate row"),
    "not media": ("file,label\n{a},joy\nREADME.md,joy\n", "README.md", "not a usable media"),
    "escapes the folder": (
        "file,label\n{a},joy\n../outside.wav,joy\n",
        "row 3",
        "outside the imported folder",
    ),
    "absolute path": ("file,label\n{a},joy\n/etc/passwd,joy\n", "row 3", "absolute path"),
    "no label column": ("file,emotion\n{a},joy\n", "labels.csv", "no 'label' column"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_labels_file_is_a_clear_error_and_nothing_is_written(
    case: str, ravdess: Path, tmp_path: Path
) -> None:
    folder = small_folder(ravdess, tmp_path / "clips", WAVS[:2])
    (folder / "README.md").write_text("not a clip")
    (tmp_path / "outside.wav").write_bytes((ravdess / WAVS[2]).read_bytes())
    text, where, what = BAD[case]
    labels = tmp_path / "labels.csv"
    labels.write_text(text.format(a=WAVS[0], b=WAVS[1]))
    wh = Warehouse(tmp_path / "data")
    with pytest.raises((DatasetImportError, LabelsError)) as err:
        import_folder(wh, folder, labels=labels)
    assert where in str(err.value) and what in str(err.value)
    assert nothing_written(wh)


def test_a_preset_refuses_a_name_it_cannot_read(ravdess: Path, tmp_path: Path) -> None:
    folder = small_folder(ravdess, tmp_path / "clips", WAVS[:1])
    (folder / "holiday.wav").write_bytes((ravdess / WAVS[1]).read_bytes())
    wh = Warehouse(tmp_path / "data")
    with pytest.raises(LabelsError, match="holiday.wav: not a RAVDESS name"):
        import_folder(wh, folder, preset="ravdess")
    assert nothing_written(wh)
