"""The ASR stage on the demo site's videos against their scripts (chfen.demo ground truth)."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from chfen.asr import STAGE, STAGE_VERSION, AsrStage
from chfen.demo import Catalogue
from chfen.media.probe import extract_audio
from chfen.media.testmedia import register_video
from chfen.stages import run_for_video
from warehouse import Warehouse

# Function words left out of "content words" (recognizing them proves little).
STOP_WORDS = set(
    "a an and are as at be but by do for he her his i i'm is it it's me my no not of oh on "
    "or our so that the their they this to us was we what with you your".split()
)


def normalize(word: str) -> str:
    return re.sub(r"[^a-z0-9']", "", word.lower())


def test_demo_videos_transcribed_against_their_scripts(
    demo_catalogue: Catalogue, tmp_path: Path
) -> None:
    """Per video: ≥80% of the scripted content words; word times increasing and inside the
    video; each recognized scripted word (its middle) within ±0.5 s of its sentence; the
    video without an audio track gets an empty transcript."""
    wh = Warehouse(tmp_path / "data", catalog=False)
    entries = [
        v for v in demo_catalogue.ground_truth["videos"]
        if v["expect"] == "ok" and v["kind"] != "duplicate"
        and (v["kind"] == "catalogue" or not v["has_audio"])
    ]  # fmt: skip
    assert any(not v["has_audio"] for v in entries)
    stage = AsrStage(wh)
    for entry in entries:
        vid = entry["id"]
        media = demo_catalogue.media_file(vid)
        assert media is not None
        audio = None
        if entry["has_audio"]:
            audio = extract_audio(media, tmp_path / f"{vid}.wav")  # as the crawl stage does
        register_video(wh, vid, audio=audio, duration_s=entry["duration"])
        outcome = run_for_video(wh, STAGE, STAGE_VERSION, vid, stage)
        assert outcome.ok, (vid, outcome.message)
        words = wh.rows(
            "SELECT * FROM transcript_words WHERE video_id = ? ORDER BY word_idx", [vid]
        )
        if not entry["has_audio"]:
            assert words == [] and outcome.note == "no audio track"
            continue
        starts = [w["start_s"] for w in words]
        assert starts == sorted(starts), vid
        assert all(0 <= w["start_s"] <= w["end_s"] <= entry["duration"] for w in words), vid

        script = [
            (normalize(token), sentence)
            for sentence in entry["sentences"]
            for token in sentence["text"].split()
            if normalize(token)
        ]
        heard = [normalize(w["word"]) for w in words]
        expected = [w for w, _ in script if w not in STOP_WORDS]
        share = sum(w in set(heard) for w in expected) / len(expected)
        assert share >= 0.8, (vid, share, heard)

        matcher = difflib.SequenceMatcher(a=[w for w, _ in script], b=heard, autojunk=False)
        for block in matcher.get_matching_blocks():
            for k in range(block.size):
                sentence, word = script[block.a + k][1], words[block.b + k]
                middle = (word["start_s"] + word["end_s"]) / 2
                assert sentence["start"] - 0.5 <= middle <= sentence["end"] + 0.5, (vid, word)
