"""Word-timing repairs, speech chunking, audio loading and the local Punkt data (no whisper)."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import numpy as np
import pytest

from chfen.asr.punkt import ensure_punkt_tab
from chfen.asr.transcribe import merge_regions, uncovered_speech
from chfen.asr.words import (
    Segment,
    Word,
    fill_missing_times,
    match_aligned,
    order_times,
    snap_to_speech,
    split_sentences,
)
from chfen.media.audio import AudioError, load_audio
from chfen.media.testmedia import SAMPLE_RATE, write_wav


def test_fill_missing_times_shares_the_gap_by_length_and_flags() -> None:
    words = [
        Word("hello", 1.0, 1.5),
        Word("big", None, None),
        Word("wonderful", 2.0, None),  # half a timing counts as none
        Word("world", 3.5, 4.0),
    ]
    assert fill_missing_times(words, 0.0, 5.0) == 2
    big, wonderful = words[1], words[2]
    assert big.interpolated and wonderful.interpolated
    assert not words[0].interpolated and not words[3].interpolated
    assert big.start == 1.5 and wonderful.end == pytest.approx(3.5)
    # 3 and 9 letters share the 2 s gap 1:3.
    assert big.end == pytest.approx(2.0) == wonderful.start


def test_fill_missing_times_at_the_edges_and_with_nothing_timed() -> None:
    words = [Word("a", None, None), Word("bb", 2.0, 2.5), Word("c", math.nan, None)]
    assert fill_missing_times(words, 1.0, 3.0) == 2
    assert (words[0].start, words[0].end) == (1.0, 2.0)
    assert (words[2].start, words[2].end) == (2.5, 3.0)
    none = [Word("x", None, None), Word("yyy", None, None)]
    assert fill_missing_times(none, 0.0, 4.0) == 2
    assert [(w.start, w.end) for w in none] == [(0.0, 1.0), (1.0, 4.0)]
    # A gap that runs backwards (overlapping neighbours) collapses to a point, never negative.
    squeezed = [Word("p", 1.0, 2.0), Word("q", None, None), Word("r", 1.5, 2.5)]
    fill_missing_times(squeezed, 0.0, 3.0)
    assert squeezed[1].start == squeezed[1].end == 2.0


def test_order_times_clamps_and_keeps_starts_increasing() -> None:
    words = [Word("a", -0.2, 0.3), Word("b", 1.0, 0.8), Word("c", 0.9, 1.2), Word("d", 9.0, 12.0)]
    order_times(words, duration=10.0)
    assert [(w.start, w.end) for w in words] == [(0.0, 0.3), (1.0, 1.0), (1.0, 1.2), (9.0, 10.0)]


def test_snap_to_speech_trims_words_stretched_over_a_pause() -> None:
    speech = [(1.0, 3.0), (4.5, 6.0), (6.2, 8.0)]
    words = [
        Word("late", 2.5, 4.2),  # the last word before a pause, stretched into it
        Word("early", 3.4, 5.0),  # the first word after it, starting in the pause
        Word("across", 5.8, 6.5),  # spans a short gap between regions: kept whole
        Word("lost", 3.2, 3.6),  # inside the pause (a VAD miss): left alone
        Word("inside", 7.0, 7.5),
        Word("untimed", None, None),
    ]
    assert snap_to_speech(words, speech) == 2
    assert [(w.start, w.end) for w in words[:5]] == [
        (2.5, 3.0),
        (4.5, 5.0),
        (5.8, 6.5),
        (3.2, 3.6),
        (7.0, 7.5),
    ]
    assert snap_to_speech(words, []) == 0


def test_match_aligned_keeps_every_word_of_the_text() -> None:
    aligned = [
        {"word": "ask", "start": 1.0, "end": 1.2, "score": 0.8},
        {"word": "not", "start": 1.3, "end": 1.5},  # times but no score: whisperx filled them in
        # "what" was dropped by the aligner
        {"word": "your", "score": 0.5},  # no times
        {"word": "country", "start": 2.0, "end": 2.4, "score": 0.9},
    ]
    words = match_aligned(["ask", "not", "what", "your", "country"], aligned)
    assert [w.text for w in words] == ["ask", "not", "what", "your", "country"]
    assert [w.timed for w in words] == [True, True, False, False, True]
    assert [w.interpolated for w in words] == [False, True, False, False, False]
    assert words[3].score == 0.5
    assert fill_missing_times(words, 0.0, 3.0) == 2
    assert all(w.timed for w in words)


def test_match_aligned_with_nothing_aligned() -> None:
    words = match_aligned(["one", "two"], [])
    assert [(w.text, w.start) for w in words] == [("one", None), ("two", None)]


def test_split_sentences_at_end_punctuation() -> None:
    words = [
        Word("Hello", 0.0, 0.5),
        Word("there.", 0.5, 1.0),
        Word("How", 1.5, 1.7),
        Word("are", 1.7, 1.9),
        Word("you?", 1.9, 2.3),
        Word("Fine", 3.0, 3.4),
    ]
    seg = Segment(0.0, 3.5, words, avg_logprob=-0.2, no_speech_prob=0.01)
    parts = split_sentences(seg)
    assert [p.text for p in parts] == ["Hello there.", "How are you?", "Fine"]
    assert [(p.start, p.end) for p in parts] == [(0.0, 1.0), (1.5, 2.3), (3.0, 3.4)]
    assert {p.avg_logprob for p in parts} == {-0.2}
    assert split_sentences(Segment(0.0, 1.0, [])) == []


def test_merge_regions_into_chunks_of_at_most_the_window() -> None:
    regions = [(0.5, 4.0), (5.0, 12.0), (13.0, 29.0), (29.5, 40.0), (41.0, 42.0)]
    assert merge_regions(regions, 30.0) == [(0.5, 29.0), (29.5, 42.0)]
    assert merge_regions([], 30.0) == []


def test_uncovered_speech_finds_what_no_word_touches() -> None:
    speech = [(0.0, 10.0), (12.0, 13.0), (14.0, 20.0)]
    spans = [(0.2, 0.6), (0.7, 1.5), (8.0, 9.0), (14.5, 15.0)]
    # 1.5 + 0.3 .. 8.0 - 0.3 is uncovered; 9.3 .. 10 is too short; 12..13 too short;
    # 15.3 .. 20 is uncovered.
    assert uncovered_speech(speech, spans, 1.5) == [(1.8, 7.7), (15.3, 20.0)]
    assert uncovered_speech(speech, [], 1.5) == [(0.0, 10.0), (14.0, 20.0)]
    assert uncovered_speech([], spans, 1.5) == []


def test_load_audio_reads_the_crawl_wav_and_decodes_anything_else(tmp_path: Path) -> None:
    tone = np.sin(2 * np.pi * 440 * np.arange(SAMPLE_RATE) / SAMPLE_RATE).astype(np.float32) / 2
    wav = write_wav(tmp_path / "tone.wav", tone)
    samples = load_audio(wav)
    assert samples.dtype == np.float32 and samples.shape == (SAMPLE_RATE,)
    assert np.abs(samples - tone).max() < 1e-3
    stereo = tmp_path / "tone.flac"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=f=440:d=1:r=44100",
         "-ac", "2", str(stereo)],
        check=True,
    )  # fmt: skip
    resampled = load_audio(stereo)
    assert resampled.dtype == np.float32 and abs(resampled.size - SAMPLE_RATE) < 200
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF not really a wave file")
    with pytest.raises(AudioError):
        load_audio(junk)


def test_punkt_data_is_generated_locally_without_a_download(monkeypatch) -> None:
    import nltk

    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("nltk.download must not be called")

    monkeypatch.setattr(nltk, "download", no_download)
    ensure_punkt_tab("english")
    assert ensure_punkt_tab("english") is None  # already findable: nothing written twice
    from nltk.data import load

    splitter = load("tokenizers/punkt_tab/english.pickle")  # the name whisperx asks for
    text = "Mr. Smith met Dr. Jones today. They talked! And then left"
    sentences = [text[a:b] for a, b in splitter.span_tokenize(text)]
    assert sentences == ["Mr. Smith met Dr. Jones today.", "They talked!", "And then left"]
    ensure_punkt_tab("german")  # a language without an abbreviation list still works
    assert load("tokenizers/punkt_tab/german.pickle").tokenize("Eins. Zwei.") == ["Eins.", "Zwei."]
