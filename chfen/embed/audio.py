"""Audio encoders: frame vectors with their times, pooled later into the global vector and
the per-step sequence.

- `ctranslate2-whisper` (the packaged tiny.en by default): whisper's log-Mel features of the
  whole clip, cut into equal windows of at most `audio_window_s` (whisper's encoder takes up
  to 30 s), each window through CTranslate2's `encode` unpadded. One encoder frame is 20 ms.
  Measured on the JFK clip: per-second means of an unpadded 11 s window and of the same audio
  padded to 30 s agree to cosine >= 0.997, and the unpadded window is ~10x cheaper.
- `transformers` (wav2vec2, HuBERT, WavLM, or whisper's encoder): `AutoFeatureExtractor` +
  `AutoModel` on the same equal windows; frame times follow from the window length and the
  number of frames the model returns.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from typing import Any

import numpy as np

from chfen.embed.sources import EncoderLoadError, ModelSource, load_error
from chfen.embed.text import freeze, torch_device

log = logging.getLogger("chfen.embed")


def equal_windows(total: int, max_len: int) -> list[tuple[int, int]]:
    """[start, end) index ranges splitting `total` into the fewest windows of at most
    `max_len`, all of (nearly) equal length so they batch together."""
    if total <= 0:
        return []
    n = math.ceil(total / max_len)
    edges = np.linspace(0, total, n + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def _by_length(windows: list[tuple[int, int]], batch_size: int) -> list[list[int]]:
    """Window indices grouped into batches of equal length (no padding inside a batch)."""
    groups: dict[int, list[int]] = defaultdict(list)
    for i, (a, b) in enumerate(windows):
        groups[b - a].append(i)
    return [
        idx[j : j + batch_size] for idx in groups.values() for j in range(0, len(idx), batch_size)
    ]


def _ct2_device(device: str) -> tuple[str, int]:
    kind, _, index = device.partition(":")
    if kind not in ("cpu", "cuda"):
        raise EncoderLoadError(f"embed.device={device!r}: CTranslate2 runs on 'cpu' or 'cuda[:N]'")
    return kind, int(index or 0)


class AudioEncoder:
    """`encode(samples) -> (frames (N, D) float32, frame centre times (N,) seconds)`."""

    def __init__(
        self,
        source: ModelSource,
        *,
        setting: str = "audio_model",
        device: str = "cpu",
        batch_size: int = 8,
        window_s: float = 30.0,
        compute_type: str = "float32",
        cpu_threads: int = 0,
    ):
        if source.role != "audio":
            raise EncoderLoadError(f"embed.{setting}={source.name!r} is not an audio model")
        self.source = source
        self.batch_size = batch_size
        self.window_s = window_s
        t0 = time.perf_counter()
        if source.backend == "ctranslate2-whisper":
            self._load_whisper(setting, device, compute_type, cpu_threads)
        elif source.backend == "transformers":
            self._load_transformers(setting, device)
        else:
            raise EncoderLoadError(
                f"embed.{setting}={source.name!r} is a {source.backend} model, not an audio model"
            )
        log.info("loaded audio encoder %s in %.1f s", source.label, time.perf_counter() - t0)

    # ---- whisper (CTranslate2) -----------------------------------------------------------

    def _load_whisper(self, setting: str, device: str, compute_type: str, threads: int) -> None:
        kind, index = _ct2_device(device)
        try:
            from faster_whisper import WhisperModel

            whisper = WhisperModel(
                self.source.location,
                device=kind,
                device_index=index,
                compute_type=compute_type,
                cpu_threads=threads,
                local_files_only=True,  # never download
            )
        except Exception as exc:
            raise load_error(setting, self.source, exc) from exc
        self._whisper = whisper.model
        self._mel = whisper.feature_extractor
        self.sample_rate = int(self._mel.sampling_rate)
        # Whisper's encoder halves the Mel frame rate (a stride-2 convolution).
        self.frame_s = 2 * self._mel.hop_length / self.sample_rate
        self._encode = self._encode_whisper
        self.dim = int(self._encode_whisper(np.zeros(self.sample_rate, np.float32))[0].shape[1])

    def _encode_whisper(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import ctranslate2

        mel = self._mel(samples, padding=0)  # (n_mels, T): log-Mel, normalised over the clip
        hop_s = self._mel.hop_length / self.sample_rate
        windows = equal_windows(mel.shape[1], max(2, int(self.window_s / hop_s)))
        frames: list[np.ndarray | None] = [None] * len(windows)
        for batch in _by_length(windows, self.batch_size):
            stack = np.stack([mel[:, windows[i][0] : windows[i][1]] for i in batch])
            view = ctranslate2.StorageView.from_array(np.ascontiguousarray(stack, np.float32))
            out = np.array(self._whisper.encode(view, to_cpu=True), dtype=np.float32)
            for row, i in enumerate(batch):
                frames[i] = out[row]
        vectors, times = [], []
        for (start, end), out in zip(windows, frames, strict=True):
            assert out is not None
            n = min(out.shape[0], math.ceil((end - start) / 2))
            vectors.append(out[:n])
            times.append(start * hop_s + (np.arange(n) + 0.5) * self.frame_s)
        return _joined(vectors, times)

    # ---- transformers --------------------------------------------------------------------

    def _load_transformers(self, setting: str, device: str) -> None:
        self.device = torch_device(device)
        try:
            from transformers import AutoFeatureExtractor, AutoModel

            self._extractor = AutoFeatureExtractor.from_pretrained(self.source.location)
            model = AutoModel.from_pretrained(self.source.location)
        except Exception as exc:
            raise load_error(setting, self.source, exc) from exc
        if getattr(model.config, "is_encoder_decoder", False):
            model = model.get_encoder()
        self._model = freeze(model.to(self.device))
        self.sample_rate = int(getattr(self._extractor, "sampling_rate", 16000))
        self._encode = self._encode_transformers
        self.dim = int(
            self._encode_transformers(np.zeros(self.sample_rate, np.float32))[0].shape[1]
        )

    def _encode_transformers(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import torch

        windows = equal_windows(samples.shape[0], max(1, int(self.window_s * self.sample_rate)))
        vectors: list[Any] = [None] * len(windows)
        times: list[Any] = [None] * len(windows)
        for batch in _by_length(windows, self.batch_size):
            chunks = [samples[windows[i][0] : windows[i][1]] for i in batch]
            inputs = self._extractor(
                chunks, sampling_rate=self.sample_rate, return_tensors="pt", padding=True
            )
            window_s = len(chunks[0]) / self.sample_rate
            # Whisper's extractor pads every window to its 30 s chunk: frames span that.
            padded_s = float(getattr(self._extractor, "chunk_length", 0) or 0)
            if "input_features" not in inputs or padded_s < window_s:
                padded_s = window_s
            with torch.inference_mode():
                hidden = self._model(**inputs.to(self.device)).last_hidden_state  # (B, T, D)
            out = hidden.float().cpu().numpy()
            frame_s = padded_s / out.shape[1]
            centres = (np.arange(out.shape[1]) + 0.5) * frame_s
            keep = centres < window_s
            for row, i in enumerate(batch):
                vectors[i] = out[row][keep]
                times[i] = windows[i][0] / self.sample_rate + centres[keep]
        return _joined(vectors, times)

    def encode(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Frame vectors (N, D) and their centre times (N,) in seconds for mono samples at
        `sample_rate`; N = 0 for empty audio."""
        samples = np.asarray(samples, dtype=np.float32).ravel()
        if samples.size < self.sample_rate // 50:  # under 20 ms: not one frame
            return np.zeros((0, self.dim), np.float32), np.zeros(0)
        return self._encode(samples)


def _joined(vectors: list[np.ndarray], times: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    if not vectors:
        return np.zeros((0, 0), np.float32), np.zeros(0)
    return np.concatenate(vectors).astype(np.float32, copy=False), np.concatenate(times)
