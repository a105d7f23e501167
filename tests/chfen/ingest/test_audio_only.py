"""Audio-only items end to end on the real RAVDESS sample: import, scenes, real ASR (packaged
whisper tiny.en), embeddings (the packaged offline encoders) and the training inputs. Scene
and face are stored absent (never a fake picture); audio, text and title are there; the model
and the baselines use what is there."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from ingestkit import small_folder

from chfen.asr import AsrStage
from chfen.config import AsrConfig, EmbedConfig
from chfen.domain.origins import IMPORTED, origin_of
from chfen.embed import STAGE as EMBED_STAGE
from chfen.embed import EmbedStage
from chfen.embed.keys import ledger_stage
from chfen.embed.stage import ABSENT_NO_PICTURE
from chfen.ingest import import_folder, imported_votes
from chfen.media.scenes import ScenesStage
from chfen.modalities import MODALITIES
from chfen.model import CHFEN, CHFENConfig
from chfen.stages import run_for_video
from chfen.train.baselines import majority_class, run_baselines
from chfen.train.data import (
    EmbeddingDataset,
    choose_encoder_keys,
    connect_snapshot,
    load_features,
    load_labeled,
    snapshot_versions,
)
from chfen.train.loop import predict_proba
from warehouse import Warehouse

pytestmark = pytest.mark.slow

MP4 = "01-01-01-01-01-01-01.mp4"  # face and voice, neutral
# happy, sad (strong), angry; each says "Kids are talking by the door."
WAVS = ("03-01-03-01-01-01-01.wav", "03-01-04-02-01-01-01.wav", "03-01-05-01-01-01-01.wav")
PICTURE = {"scene", "face"}
SOUND_AND_WORDS = {"title", "audio", "audio_seq", "text"}


def vid(name: str) -> str:
    return "clips-" + name.replace(".", "-")


@pytest.fixture(scope="module")
def processed(ravdess: Path, tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    """Four clips imported with the RAVDESS preset, through scenes, ASR and embed."""
    tmp = tmp_path_factory.mktemp("audio_only")
    folder = small_folder(ravdess, tmp / "clips", (MP4, *WAVS))
    wh = Warehouse(tmp / "data")
    report = import_folder(wh, folder, preset="ravdess")
    assert report.audio_only == len(WAVS)
    scenes, asr = ScenesStage(wh), AsrStage(wh, AsrConfig())
    embed = EmbedStage(wh, EmbedConfig())
    for video_id in report.new:
        for stage, version, work in (("scenes", "1", scenes), ("asr", "1", asr),
                                     (EMBED_STAGE, embed.version, embed)):  # fmt: skip
            outcome = run_for_video(wh, stage, version, video_id, work)
            assert outcome.ok, outcome.message
    # the imported dataset's own label, as `label pull` stores it (through the real Label
    # Studio: tests/labeling/test_imported.py)
    now = dt.datetime.now(dt.UTC)
    wh.append(
        "annotations",
        [
            {"annotation_id": i, "task_id": i, "project_id": 1, "video_id": v["video_id"],
             "annotator": v["email"], "choice": v["label"], "intensity": v["intensity"],
             "was_cancelled": False, "deleted": False, "created_at": now, "updated_at": now,
             "pulled_at": now, "origin": origin_of(v["email"])}
            for i, v in enumerate(imported_votes(wh), 1)
        ],
    )  # fmt: skip
    assert {r["origin"] for r in wh.rows("SELECT origin FROM annotations")} == {IMPORTED}
    return wh


def stored(wh: Warehouse, video_id: str) -> dict[str, int]:
    rows = wh.rows(
        "SELECT modality, count(*) AS n FROM embeddings WHERE video_id = ? GROUP BY modality",
        [video_id],
    )
    return {r["modality"]: r["n"] for r in rows}


def test_audio_only_items_get_sound_and_words_and_no_picture(processed: Warehouse) -> None:
    wh = processed
    wav = vid(WAVS[0])
    assert wh.count("scenes") > 0  # the mp4's
    assert wh.rows("SELECT count(*) AS n FROM scenes WHERE video_id = ?", [wav])[0]["n"] == 0
    words = [
        r["word"].strip(" .,").lower()
        for r in wh.rows("SELECT word FROM transcript_words WHERE video_id = ?", [wav])
    ]
    assert "door" in words and "talking" in words, words  # "Kids are talking by the door."
    for name in WAVS:
        have = stored(wh, vid(name))
        assert set(have) == SOUND_AND_WORDS, (name, have)
        # absent, and remembered as such: the ledger has every modality done
        done = {
            r["stage"]
            for r in wh.rows(
                "SELECT stage FROM stage_runs_latest WHERE video_id = ? AND status = 'done'",
                [vid(name)],
            )
        }
        assert {ledger_stage(m) for m in MODALITIES} <= done
    assert "scene" in stored(wh, vid(MP4))  # the picture of a video is there
    again = EmbedStage(wh, EmbedConfig())(wav)
    assert again.vectors == {}  # nothing recomputed: absent is remembered


def test_an_audio_only_item_says_why_scene_and_face_are_absent(
    ravdess: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = small_folder(ravdess, tmp_path / "clips", WAVS[:1])
    wh = Warehouse(tmp_path / "data")
    [video_id] = import_folder(wh, folder, preset="ravdess").new
    assert run_for_video(wh, "scenes", "1", video_id, ScenesStage(wh)).ok
    wh.mark_done(video_id, "asr", "1")
    stage = EmbedStage(wh, EmbedConfig(modalities=["scene", "face"]))

    def refuse(*_: object) -> None:
        raise AssertionError("no picture: no image encoder or face detector is needed")

    monkeypatch.setattr(stage, "_model", refuse)
    monkeypatch.setattr(stage, "_detector", refuse)
    result = stage(video_id)
    assert result.absent == {"scene": ABSENT_NO_PICTURE, "face": ABSENT_NO_PICTURE}


def test_the_training_inputs_and_the_model_use_what_is_there(processed: Warehouse) -> None:
    wh = processed
    data = load_labeled(
        wh, min_votes=2, min_agreement=0.5, no_emotion="drop_votes", max_steps=60, grid_hz=1.0
    )
    # the neutral mp4 ("no clear emotion") is dropped; the wavs train on their dataset label
    # at the default min_votes (the per-source vote policy)
    ids = {e.video_id for e in data.examples}
    assert ids and vid(MP4) not in ids and ids <= {vid(w) for w in WAVS}
    for e in data.examples:
        assert set(e.features.vectors) == SOUND_AND_WORDS, e.video_id
        assert e.features.present["text"].any() and e.features.present["audio_seq"].all()
    assert set(data.dims) == SOUND_AND_WORDS and data.coverage["audio"] == len(ids)

    # every clip's features (the mp4 with its picture): audio-only rows have it masked
    versions = snapshot_versions(wh)
    con = connect_snapshot(wh, versions)
    try:
        keys = choose_encoder_keys(con, MODALITIES, {})
        every = [vid(MP4), *sorted(ids)]
        features, dims = load_features(con, every, keys, max_steps=60, grid_hz=1.0)
    finally:
        con.close()
    assert PICTURE & set(features[vid(MP4)].vectors) and "scene" in dims
    torch_model = CHFEN(dims, CHFENConfig(hidden_dim=16, heads=2, decision_layers=1))
    probs = predict_proba(torch_model, EmbeddingDataset([features[v] for v in every]))
    assert probs.shape == (len(every), 8) and np.isfinite(probs).all()
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)

    # the baselines: a picture baseline has nothing to fit on audio-only items (majority);
    # the audio one fits
    examples = data.examples
    out = run_baselines(examples, examples, [*MODALITIES], data.dims | dims, seed=0)
    fallback = majority_class(examples)
    assert out["logreg:scene"]["predictions"] == [fallback] * len(examples)
    if len({e.label for e in examples}) >= 2:
        truth = [e.label for e in examples]
        assert out["logreg:audio"]["predictions"] == truth  # separable on its own items
