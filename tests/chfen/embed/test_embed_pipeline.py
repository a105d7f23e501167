"""The embed stage on what the real upstream stages wrote: crawl-like registration, the real
scenes stage and the real ASR stage (packaged whisper) on the face clip with espeak speech."""

from __future__ import annotations

import re

import pytest

from chfen.asr import STAGE as ASR_STAGE
from chfen.asr import STAGE_VERSION as ASR_VERSION
from chfen.asr import AsrStage
from chfen.embed import STAGE, EmbedStage
from chfen.embed.grid import TimeGrid
from chfen.media.scenes import STAGE as SCENES_STAGE
from chfen.media.scenes import STAGE_VERSION as SCENES_VERSION
from chfen.media.scenes import ScenesStage
from chfen.media.testmedia import register_video
from chfen.modalities import MODALITIES
from chfen.stages import run_for_video
from warehouse import Warehouse

pytestmark = pytest.mark.slow  # loads whisper and the VAD (~30-40 s on 2 cores)


def norm(word: str) -> str:
    return re.sub(r"[^a-z]", "", word.lower())


def test_embed_after_the_real_scenes_and_asr_stages(wh: Warehouse, face_clip) -> None:
    register_video(wh, "real", video=face_clip.video, audio=face_clip.audio,
                   duration_s=face_clip.duration_s)  # fmt: skip
    for name, version, stage in (
        (SCENES_STAGE, SCENES_VERSION, ScenesStage(wh)),
        (ASR_STAGE, ASR_VERSION, AsrStage(wh)),
    ):
        outcome = run_for_video(wh, name, version, "real", stage)
        assert outcome.ok, outcome.message
    embed = EmbedStage(wh)
    outcome = run_for_video(wh, STAGE, embed.version, "real", embed)
    assert outcome.ok, outcome.message
    rows = wh.rows("SELECT modality, grid_idx, weight FROM embeddings WHERE video_id = 'real'")
    # no title in the registration: the title is absent, everything else is there
    assert {r["modality"] for r in rows} == set(MODALITIES) - {"title"}
    words = wh.rows("SELECT word, start_s, end_s FROM transcript_words WHERE video_id = 'real'")
    text = {r["grid_idx"]: r["weight"] for r in rows if r["modality"] == "text"}
    assert sum(text.values()) == len(words)
    assert not {3, 4} & set(text)  # nothing is said between 3.2 s and 5.2 s
    grid = TimeGrid(1.0, face_clip.duration_s)
    truth = {norm(w.word): grid.step_of((w.start_s + w.end_s) / 2) for w in face_clip.words}
    heard = [w for w in words if norm(w["word"]) in truth]
    assert len(heard) >= 0.7 * len(face_clip.words)
    for w in heard:  # recognized words land in their scripted second, or next to it
        step = grid.step_of((w["start_s"] + w["end_s"]) / 2)
        assert abs(step - truth[norm(w["word"])]) <= 1, w
