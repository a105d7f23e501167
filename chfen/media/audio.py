"""Reading a video's audio track as samples (the ASR and embed stages both need it)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

# What the crawl stage writes (16-bit mono PCM WAV) and what whisper takes.
SAMPLE_RATE = 16000


class AudioError(Exception):
    """The audio file cannot be read or decoded."""


def _read_pcm_wav(path: Path, sample_rate: int) -> np.ndarray | None:
    """The samples of a mono 16-bit PCM WAV at `sample_rate`, or None for anything else."""
    try:
        with wave.open(str(path), "rb") as wav:
            if (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) != (1, 2, sample_rate):
                return None
            data = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError):
        return None  # not a plain PCM WAV: the caller decodes it
    except OSError as exc:
        raise AudioError(f"cannot read {path}: {exc}") from exc
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


def load_audio(path: Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Mono float32 samples at `sample_rate`. A matching 16-bit mono PCM WAV (what the crawl
    stage writes) is read directly; anything else ffmpeg reads is decoded and resampled with
    PyAV. Raises AudioError when the file cannot be read or decoded."""
    samples = _read_pcm_wav(path, sample_rate)
    if samples is not None:
        return samples
    from faster_whisper.audio import decode_audio

    try:
        return np.asarray(decode_audio(str(path), sampling_rate=sample_rate), dtype=np.float32)
    except Exception as exc:
        raise AudioError(f"cannot decode audio {path.name}: {type(exc).__name__}: {exc}") from exc
