"""The embed stage end to end: a real warehouse, stills from the real scenes stage, the
packaged offline encoders (and tiny local transformers models through the same code)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chfen.config import EmbedConfig
from chfen.embed import STAGE, EmbedStage, encoder_keys, vector_of
from chfen.embed.grid import TimeGrid
from chfen.embed.keys import ledger_stage
from chfen.embed.stage import ABSENT_NO_AUDIO, ABSENT_NO_FACES, ABSENT_NO_WORDS, NOTE_CACHED
from chfen.modalities import ALIGNED, GLOBAL, GLOBAL_INDEX, MODALITIES
from chfen.stages import StageError, run_for_video
from warehouse import Warehouse


def embeddings(wh: Warehouse, video_id: str, modality: str | None = None) -> list[dict[str, Any]]:
    sql = "SELECT * FROM embeddings WHERE video_id = ?"
    params: list[Any] = [video_id]
    if modality:
        sql += " AND modality = ?"
        params.append(modality)
    return wh.rows(sql + " ORDER BY modality, encoder_key, grid_idx", params)


def by_modality(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(row["modality"], []).append(row)
    return out


def expected_text_steps(clip, grid: TimeGrid) -> dict[int, list[str]]:
    steps: dict[int, list[str]] = {}
    for w in clip.words:
        steps.setdefault(int((w.start_s + w.end_s) / 2 // 1.0), []).append(w.word)
    return steps


def no_loading(stage: EmbedStage, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any encoder use fail: a cached run must not need one."""

    def refuse(*_: Any) -> Any:
        raise AssertionError("an encoder was used on a run that should compute nothing")

    monkeypatch.setattr(stage, "_model", refuse)
    monkeypatch.setattr(stage, "_detector", refuse)


@pytest.fixture
def face_video(wh: Warehouse, face_clip, prepare_video) -> str:
    prepare_video(wh, "faces", face_clip.video, audio=face_clip.audio,
                  duration_s=face_clip.duration_s, words=face_clip.words)  # fmt: skip
    return "faces"


def test_every_modality_on_the_grid(
    wh: Warehouse, face_video: str, face_clip, face_seconds
) -> None:
    stage = EmbedStage(wh)
    outcome = run_for_video(wh, STAGE, stage.version, face_video, stage)
    assert outcome.ok, outcome.message
    assert wh.stage_status(face_video, STAGE, stage.version) == "done"
    assert wh.pending(STAGE, stage.version) == []
    rows = by_modality(embeddings(wh, face_video))
    assert set(rows) == set(MODALITIES)
    keys = encoder_keys(EmbedConfig())
    grid = TimeGrid(1.0, face_clip.duration_s)
    assert grid.n_steps == 10  # 9.47 s
    for modality, got in rows.items():
        assert {r["encoder_key"] for r in got} == {keys[modality].key}
        assert {r["dtype"] for r in got} == {"float16"}
        for r in got:
            v = vector_of(r)
            assert v.shape == (r["dim"],) and np.all(np.isfinite(v)) and np.any(v != 0)
        if modality in GLOBAL:
            assert [r["grid_idx"] for r in got] == [GLOBAL_INDEX]
        else:
            for r in got:  # grid rows line up with the video's steps
                assert (r["start_s"], r["end_s"]) == pytest.approx(grid.bounds(r["grid_idx"]))
    # scene: a still for every step, to the video's end
    assert [r["grid_idx"] for r in rows["scene"]] == list(range(grid.n_steps))
    assert rows["scene"][-1]["end_s"] == pytest.approx(face_clip.duration_s)
    # faces only where the photo is, with the face count as weight
    assert {r["grid_idx"]: r["weight"] for r in rows["face"]} == face_seconds
    # audio covers the clip; its last step partly
    assert [r["grid_idx"] for r in rows["audio_seq"]] == list(range(grid.n_steps))
    assert rows["audio_seq"][0]["weight"] == pytest.approx(1.0)
    assert 0.5 < rows["audio_seq"][-1]["weight"] < 1.0
    assert rows["audio"][0]["weight"] == pytest.approx(face_clip.duration_s - 0.05, abs=0.02)
    assert rows["title"][0]["end_s"] == pytest.approx(face_clip.duration_s)
    assert {r["dim"] for r in rows["title"] + rows["text"] + rows["audio"]} == {384}
    assert rows["scene"][0]["encoder"] == "hsv-hog (classical)"
    # one ledger row per modality, at its encoder key
    ledger = wh.rows(
        "SELECT stage, stage_version FROM stage_runs WHERE video_id = ? AND stage LIKE 'embed:%'",
        [face_video],
    )
    assert {(r["stage"], r["stage_version"]) for r in ledger} == {
        (ledger_stage(m), k.key) for m, k in keys.items()
    }


def test_words_land_in_the_right_second(wh: Warehouse, face_video: str, face_clip) -> None:
    stage = EmbedStage(wh, EmbedConfig(modalities=["text"]))
    result = stage(face_video)
    assert result.vectors == {"text": 6}
    grid = TimeGrid(1.0, face_clip.duration_s)
    expected = expected_text_steps(face_clip, grid)
    rows = embeddings(wh, face_video, "text")
    assert {r["grid_idx"]: r["weight"] for r in rows} == {k: len(w) for k, w in expected.items()}
    assert sorted(expected) == [0, 1, 2, 5, 6, 7]  # nothing is said from 3.2 s to 5.2 s
    # each step's vector is the encoder's vector of exactly that step's words
    encoder = stage._model(stage.keys["text"])
    want = encoder.encode([" ".join(expected[r["grid_idx"]]) for r in rows])
    for r, w in zip(rows, want, strict=True):
        np.testing.assert_allclose(vector_of(r), w, atol=2e-3)


def test_rerun_computes_nothing_and_one_switch_recomputes_one_modality(
    wh: Warehouse, face_video: str, tiny_models, face_seconds, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = EmbedStage(wh)
    run_for_video(wh, STAGE, first.version, face_video, first)
    n_rows = wh.count("embeddings")

    again = EmbedStage(wh)
    assert again.version == first.version
    no_loading(again, monkeypatch)
    result = again(face_video)
    assert result.vectors == {} and result.note == NOTE_CACHED
    assert sorted(result.cached) == sorted(MODALITIES)
    assert wh.count("embeddings") == n_rows
    monkeypatch.undo()

    switched = EmbedStage(wh, EmbedConfig(face_model=str(tiny_models.image)))
    assert switched.version != first.version
    assert wh.pending(STAGE, switched.version) == [face_video]  # the ledger selects it again
    outcome = run_for_video(wh, STAGE, switched.version, face_video, switched)
    assert outcome.ok, outcome.message
    faces = embeddings(wh, face_video, "face")
    assert Counter(r["encoder_key"] for r in faces) == {
        first.keys["face"].key: len(face_seconds),
        switched.keys["face"].key: len(face_seconds),
    }
    assert wh.count("embeddings") == n_rows + len(face_seconds)
    new = [r for r in faces if r["encoder_key"] == switched.keys["face"].key]
    assert {r["dim"] for r in new} == {tiny_models.dim}
    assert {r["grid_idx"]: r["weight"] for r in new} == face_seconds
    timings = wh.rows(
        "SELECT timings_json FROM stage_runs_latest WHERE stage = ? AND stage_version = ?",
        [STAGE, switched.version],
    )
    assert set(json.loads(timings[0]["timings_json"])) <= {"face", "read_stills"}


def test_missing_modalities_are_absent_not_zeros(
    wh: Warehouse, plain_clip: Path, prepare_video, monkeypatch: pytest.MonkeyPatch
) -> None:
    # no audio track, nothing said, no face, no title
    prepare_video(wh, "plain", plain_clip, audio=None, duration_s=4.5, words=None,
                  title=None, description="")  # fmt: skip
    stage = EmbedStage(wh)
    outcome = run_for_video(wh, STAGE, stage.version, "plain", stage)
    assert outcome.ok, outcome.message
    assert "face (no face detected)" in outcome.note and ABSENT_NO_AUDIO in outcome.note
    rows = by_modality(embeddings(wh, "plain"))
    assert set(rows) == {"scene"} and len(rows["scene"]) == 5
    ledger = {
        r["stage"]
        for r in wh.rows(
            "SELECT stage FROM stage_runs WHERE video_id = 'plain' AND stage LIKE 'embed:%'"
        )
    }
    assert ledger == {ledger_stage(m) for m in MODALITIES}  # absent, and remembered as such
    again = EmbedStage(wh)
    no_loading(again, monkeypatch)
    result = again("plain")
    assert result.vectors == {} and result.note == NOTE_CACHED


def test_absent_reasons(wh: Warehouse, plain_clip: Path, prepare_video) -> None:
    prepare_video(wh, "plain", plain_clip, audio=None, duration_s=4.5, words=None)
    result = EmbedStage(wh)("plain")
    assert result.absent == {
        "face": ABSENT_NO_FACES,
        "text": ABSENT_NO_WORDS,
        "audio": ABSENT_NO_AUDIO,
        "audio_seq": ABSENT_NO_AUDIO,
    }
    assert result.vectors == {"title": 1, "scene": 5, "face": 0, "text": 0, "audio": 0,
                              "audio_seq": 0}  # fmt: skip


def test_missing_inputs_fail_naming_the_stage_and_keep_the_rest(wh: Warehouse, face_clip) -> None:
    from chfen.media.testmedia import register_video

    register_video(wh, "early", video=face_clip.video, audio=face_clip.audio,
                   duration_s=face_clip.duration_s)  # fmt: skip
    stage = EmbedStage(wh)
    outcome = run_for_video(wh, STAGE, stage.version, "early", stage)
    assert not outcome.ok and outcome.kind == "internal"
    assert "asr stage" in outcome.message and "scenes stage" in outcome.message
    failure = wh.rows("SELECT stage, video_id, error FROM failures")[0]
    assert (failure["stage"], failure["video_id"]) == (STAGE, "early")
    # what could be computed is kept: title needs nothing, audio only the audio file
    assert set(by_modality(embeddings(wh, "early"))) == {"audio", "audio_seq"}


def test_crash_mid_video_keeps_finished_modalities(
    wh: Warehouse, face_video: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    stage = EmbedStage(wh)

    def crash(*_: Any) -> Any:
        raise RuntimeError("killed")

    monkeypatch.setattr(stage, "_faces_rows", crash)
    with pytest.raises(RuntimeError):
        stage(face_video)
    assert set(by_modality(embeddings(wh, face_video))) == {"title", "text"}
    monkeypatch.undo()
    result = EmbedStage(wh)(face_video)
    assert sorted(result.vectors) == sorted(["scene", "face", "audio", "audio_seq"])
    assert sorted(result.cached) == ["text", "title"]
    counts = Counter(r["modality"] for r in embeddings(wh, face_video))
    assert counts["title"] == 1 and counts["text"] == 6  # nothing doubled


def test_tiny_transformers_models_for_every_modality(
    wh: Warehouse, face_video: str, tiny_models, face_seconds
) -> None:
    cfg = EmbedConfig(
        title_model=str(tiny_models.text), text_model=str(tiny_models.text),
        image_model=str(tiny_models.image), face_model=str(tiny_models.image),
        audio_model=str(tiny_models.audio), batch_size=4, audio_window_s=4.0,
    )  # fmt: skip
    stage = EmbedStage(wh, cfg, write=False)
    stage.warm_up()
    result = stage(face_video)
    assert wh.count("embeddings") == 0  # write=False: the caller appends
    rows = by_modality(result.rows["embeddings"])
    assert set(rows) == set(MODALITIES)
    assert {r["dim"] for rs in rows.values() for r in rs} == {tiny_models.dim}
    assert {r["grid_idx"]: r["weight"] for r in rows["face"]} == face_seconds
    assert len(rows["scene"]) == len(rows["audio_seq"]) == 10
    assert {r["stage"] for r in result.rows["stage_runs"]} == {ledger_stage(m) for m in MODALITIES}
    assert {r["encoder"] for r in rows["scene"]} == {f"{tiny_models.image} (transformers)"}
    # appended by run_for_video like any stage's rows
    outcome = run_for_video(wh, STAGE, stage.version, face_video, EmbedStage(wh, cfg, write=False))
    assert outcome.ok and outcome.rows["embeddings"] == sum(len(r) for r in rows.values())
    assert EmbedStage(wh, cfg)(face_video).note == NOTE_CACHED


def test_grid_rate_is_a_setting(wh: Warehouse, face_video: str, face_clip) -> None:
    stage = EmbedStage(wh, EmbedConfig(grid_hz=2.0, modalities=["scene", "audio_seq", "text"]))
    stage(face_video)
    rows = by_modality(embeddings(wh, face_video))
    n = TimeGrid(2.0, face_clip.duration_s).n_steps
    assert n == 19
    assert [r["grid_idx"] for r in rows["audio_seq"]] == list(range(n))
    assert rows["scene"][1]["start_s"] == 0.5 and rows["scene"][-1]["end_s"] == pytest.approx(
        face_clip.duration_s
    )
    assert sum(r["weight"] for r in rows["text"]) == len(face_clip.words)


def test_kinds_of_modalities_are_the_shared_ones() -> None:
    assert set(GLOBAL) == {"title", "audio"}
    assert set(ALIGNED) == {"scene", "face", "text", "audio_seq"}


def test_unusable_model_setting_fails_as_unsupported(wh: Warehouse, face_video: str) -> None:
    stage = EmbedStage(wh, EmbedConfig(title_model="no-such-org/no-such-model"))
    with pytest.raises(StageError) as err:
        stage(face_video)
    assert err.value.kind == "unsupported" and err.value.video_id == face_video
    assert "embed.title_model='no-such-org/no-such-model'" in err.value.message
