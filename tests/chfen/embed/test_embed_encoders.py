"""Every encoder backend loads through its real code path: tiny random transformers models
saved in a temp folder (from_pretrained), and the packaged offline defaults."""

from __future__ import annotations

import numpy as np
import pytest

from chfen.embed.audio import AudioEncoder, equal_windows
from chfen.embed.image import ImageEncoder
from chfen.embed.sources import resolve_model
from chfen.embed.text import TextEncoder
from chfen.media.audio import load_audio
from chfen.media.testmedia import SAMPLE_RATE, speak, write_wav


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_equal_windows() -> None:
    assert equal_windows(0, 10) == []
    assert equal_windows(25, 10) == [(0, 8), (8, 17), (17, 25)]
    assert equal_windows(10, 10) == [(0, 10)]


def test_tiny_bert_text_encoder(tiny_models) -> None:
    source = resolve_model(str(tiny_models.text), "text")
    enc = TextEncoder(source, setting="text_model", max_tokens=16, batch_size=2)
    texts = ["the weather is lovely today", "seven green apples", "sand", "a " * 100]
    out = enc.encode(texts)
    assert out.shape == (4, tiny_models.dim) and out.dtype == np.float32
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(enc.encode(texts[:1])[0], out[0], rtol=1e-4, atol=1e-5)  # frozen
    assert not np.allclose(out[0], out[1])
    assert not enc.model.training and not any(p.requires_grad for p in enc.model.parameters())


def test_tiny_vit_image_encoder(tiny_models) -> None:
    enc = ImageEncoder(resolve_model(str(tiny_models.image), "image"), setting="image_model",
                       batch_size=3)  # fmt: skip
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (48 + i, 64, 3), dtype=np.uint8) for i in range(5)]
    out = enc.encode(images)
    assert out.shape == (5, tiny_models.dim) and np.all(np.isfinite(out))
    np.testing.assert_allclose(enc.encode(images[4:])[0], out[4], rtol=1e-4, atol=1e-5)


def test_tiny_wav2vec2_audio_encoder(tiny_models) -> None:
    enc = AudioEncoder(resolve_model(str(tiny_models.audio), "audio"), window_s=1.5, batch_size=2)
    samples = np.random.default_rng(0).normal(0, 0.1, int(4.2 * SAMPLE_RATE)).astype(np.float32)
    frames, times = enc.encode(samples)
    assert frames.shape[1] == tiny_models.dim and frames.shape[0] == times.shape[0]
    assert np.all(np.diff(times) > 0) and 0 < times[0] < 0.05 and 4.1 < times[-1] < 4.2
    # wav2vec2 gives ~50 frames per second, window after window
    assert 195 <= frames.shape[0] <= 215
    empty, _ = enc.encode(np.zeros(10, np.float32))
    assert empty.shape == (0, tiny_models.dim)


@pytest.fixture(scope="module")
def minilm() -> TextEncoder:
    return TextEncoder(resolve_model("minilm", "text"), setting="text_model")


def test_packaged_minilm_carries_meaning(minilm) -> None:
    a, b, c = minilm.encode(
        ["I am so happy today", "What a joyful, cheerful day", "The invoice is overdue"]
    )
    assert a.shape == (384,)
    assert cos(a, b) > cos(a, c) + 0.2


@pytest.fixture(scope="module")
def whisper() -> AudioEncoder:
    return AudioEncoder(resolve_model("whisper-tiny.en", "audio"), window_s=30.0)


def test_packaged_whisper_encoder_frames_and_speech_vs_silence(whisper, tmp_path) -> None:
    def clip(text: str | None) -> np.ndarray:
        audio = np.zeros(6 * SAMPLE_RATE, np.float32)
        if text:
            speech = speak(text)[: 4 * SAMPLE_RATE]
            audio[SAMPLE_RATE : SAMPLE_RATE + speech.size] = speech
        return audio

    wav = write_wav(tmp_path / "a.wav", clip("the weather is lovely today"))
    samples = load_audio(wav, whisper.sample_rate)
    assert samples.shape == (6 * SAMPLE_RATE,)
    frames, times = whisper.encode(samples)
    assert frames.shape == (300, 384)  # 50 frames per second
    np.testing.assert_allclose(times[:2], [0.01, 0.03])

    def second(frames: np.ndarray, k: int) -> np.ndarray:
        return frames[(times >= k) & (times < k + 1)].mean(0)

    # whisper's states carry their position, so compare the same second of three clips:
    # two different sentences are nearer each other than either is to silence
    other, _ = whisper.encode(clip("please bring seven green apples"))
    silent, _ = whisper.encode(clip(None))
    for k in (1, 2):
        a, b, quiet = second(frames, k), second(other, k), second(silent, k)
        assert cos(a, b) > max(cos(a, quiet), cos(b, quiet)), k
    # long audio: equal windows of at most 30 s, frames continue across them
    long_frames, long_times = whisper.encode(np.tile(samples, 7))  # 42 s: 2 windows of 21 s
    assert long_frames.shape[0] == 2100 and np.all(np.diff(long_times) > 0)
