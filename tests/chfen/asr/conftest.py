"""Fixtures for the ASR stage: scripted espeak-ng speech, the real JFK clip, a tiny aligner.

Whisper and the VAD load once per test session (the stage caches models per process).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from chfen.media.testmedia import SpokenWord, synthesize_speech

JFK_FLAC = Path(__file__).resolve().parents[4] / "shared" / "data" / "jfk.flac"
# Sentences whose words tiny.en recognizes in espeak-ng's voice, at known start times.
SCRIPT = [
    (1.0, "The weather is lovely today in the mountains."),
    (6.5, "Please bring seven green apples to the kitchen."),
    (12.0, "My brother plays football every Sunday morning."),
    (17.5, "Scientists discovered water on a distant planet."),
]
SCRIPT_DURATION_S = 24.0


@dataclass(frozen=True)
class Speech:
    """A synthesized WAV and where each scripted word is in it."""

    wav: Path
    words: list[SpokenWord]
    duration_s: float


@pytest.fixture(scope="session")
def espeak_speech(tmp_path_factory: pytest.TempPathFactory) -> Speech:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    wav = tmp_path_factory.mktemp("speech") / "script.wav"
    words = synthesize_speech(wav, SCRIPT, SCRIPT_DURATION_S)
    return Speech(wav, words, SCRIPT_DURATION_S)


@pytest.fixture(scope="session")
def jfk_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The JFK clip as the crawl stage would leave it: 16 kHz mono 16-bit WAV."""
    if not JFK_FLAC.is_file():
        pytest.skip(f"real speech sample {JFK_FLAC} is absent (it lives beside the project)")
    out = tmp_path_factory.mktemp("jfk") / "jfk.wav"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(JFK_FLAC),
         "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le", str(out)],
        check=True,
    )  # fmt: skip
    return out


@pytest.fixture(scope="session")
def tiny_align_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised Wav2Vec2ForCTC + processor saved locally (alignment plumbing
    only: its timings mean nothing)."""
    import torch
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForCTC,
        Wav2Vec2Processor,
    )

    folder = tmp_path_factory.mktemp("tiny_wav2vec2")
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4}
    for char in "abcdefghijklmnopqrstuvwxyz'":
        vocab[char] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = Wav2Vec2CTCTokenizer(
        str(folder / "vocab.json"), unk_token="<unk>", pad_token="<pad>", word_delimiter_token="|"
    )
    extractor = Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True
    )
    Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(folder)
    torch.manual_seed(0)
    config = Wav2Vec2Config(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, conv_dim=(16,) * 7, num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4, pad_token_id=0,
    )  # fmt: skip
    Wav2Vec2ForCTC(config).save_pretrained(folder)
    return folder
