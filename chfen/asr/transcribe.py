"""Speech to timed words: VAD → batched whisper decoding → word timings.

The pipeline is whisperx's: voice activity detection (the pyannote model bundled in the
whisperx wheel, or Silero from the `silero-vad` package) cuts the audio into speech chunks of
at most 30 s, and the chunks are decoded in batches by faster-whisper (CTranslate2), whose
`BatchedInferencePipeline` is the upstreamed form of whisperx's batched decoding. Word times
then come from one of two aligners:

- `whisperx-align`: `whisperx.align` with a local wav2vec2 CTC model (`asr.align_model`);
- `faster-whisper`: the same whisper model's cross-attention word timestamps (the default,
  since no English CTC model can be installed offline).

With `asr.language: auto` on a multilingual model (`asr.model: base`) the language is detected
per speech chunk (`asr.detect: segment`, for clips that switch language) or once per file, and
each chunk is decoded in its own language; Chinese text is then put in one script and cut into
timed words or characters (chfen.asr.chinese).

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

from chfen.asr import chinese
from chfen.asr.models import ModelInstallError, packaged_model_path
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
PACKAGED_MODELS = ("tiny.en", "base")
# Speech regions shorter than this take the language of the nearest longer one: whisper's
# language detection on a fraction of a second is close to guessing.
MIN_DETECT_S = 1.0
# Language detection runs whisper's encoder over a window just longer than each region instead
# of the full 30 s (the encoder's cost grows faster than its input; whisper.cpp's audio_ctx
# does the same): measured on 2 cores, a 4.5 s region's detection took 1.44 s in a 30 s window
# and 0.20 s in a 10 s one, with the same language on top. Windows are at least 10 s.
DETECT_MIN_FRAMES = 1000  # mel frames of 10 ms
DETECT_STEP_FRAMES = 500
# Per-segment detection first detects neighbouring speech units together, in groups that fill
# one detection window (the window costs the same for one unit or several): a group's language
# holds for all its units when it is at least SURE_PROB probable and no group beside it is that
# sure of another language; the units of every other group (a switch may lie inside it) are
# detected one by one. A clip of one group is detected unit by unit.
DETECT_GROUP_S = DETECT_MIN_FRAMES / 100
SURE_PROB = 0.8
# Detection on a few seconds of speech is noisy (whisper base called 3 of the 12 units of 60 s
# of synthetic Mandarin English, at 0.75, 0.95 and 0.55), and each switch splits the decoding.
# A run of units whose language differs from the units on both sides of it, which agree, is
# such an excursion: two switches. It keeps its language only when its detected evidence
# (summed log-odds over the run) outweighs a prior of SWITCH_PRIOR for each of the two
# switches, about 80:1 odds; else it takes its neighbours'. A run at the start or end of the
# clip is one switch and keeps what was detected: a demo clip's Mandarin second half was
# detected at only 0.67 (espeak), and one switch must not need more than that.
SWITCH_PRIOR = 0.1
MIN_LANGUAGE_PROB = 1e-4
# Per-segment detection cuts the VAD's regions further at pauses at least this long: the VAD
# (with its coarse window step) runs sentences together across short pauses, and speakers
# switch language mostly at a pause. A pause is audio this far below the region's loud frames.
MIN_PAUSE_S = 0.3
PAUSE_DB = 30.0
PAUSE_FRAME_S = 0.02
# Over a steady background a pause is only as quiet as the background (the demo site's chord
# under speech lies about 23 dB below the voice); the floor stays this far below loud frames.
BED_MARGIN_DB = 20.0
# Detected speech this long that no recognized word covers is decoded a second time.
MIN_MISSED_S = 1.5
# Whisper's beam width when `asr.beam_size` is unset, measured with benchmarks/asr.py
# --multilingual on 2 cores (60 s of English, 60 s of espeak Mandarin; load about 1): tiny.en's
# word errors were 0.06 at beam 5 and 0.13 greedy; base, language fixed, at beam 5 wrote one
# Mandarin phrase 8 times over (CER 1.20, 0.116x real time), greedy it did not (CER 0.50,
# 0.083x); English the same either way (word errors 0.02/0.03, 0.072x/0.075x).
BEAM_SIZE_ENGLISH_ONLY = 5
BEAM_SIZE_MULTILINGUAL = 1
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
    if name in PACKAGED_MODELS:
        try:
            folder = packaged_model_path(name)
        except ModelInstallError as exc:
            raise AsrSetupError(str(exc)) from exc
        # A str, not a Path: that is what faster-whisper/whisperx expect.
        return str(folder), True
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
                else f"{cfg.model!r} is neither 'tiny.en', 'base', a local model folder, nor "
                "a model already in the Hugging Face cache (this machine cannot download)"
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


def split_at_pauses(
    audio: np.ndarray,
    regions: Sequence[tuple[float, float]],
    min_pause_s: float = MIN_PAUSE_S,
    pause_db: float = PAUSE_DB,
) -> list[tuple[float, float]]:
    """The speech regions cut at every pause of at least `min_pause_s` inside them, and with
    quiet of that length trimmed from both ends.

    A pause is a run of 20 ms frames below a floor: `pause_db` below the region's loud frames
    (its 90th percentile), or, over a steady background (music, a hum: the VAD keeps it in the
    region), twice the region's quietest level (its 10th percentile), but never closer than
    BED_MARGIN_DB to the loud frames. The cut removes the pause.
    """
    frame = int(PAUSE_FRAME_S * SAMPLE_RATE)
    need = max(1, int(round(min_pause_s / PAUSE_FRAME_S)))
    out: list[tuple[float, float]] = []
    for start, end in regions:
        a, b = int(start * SAMPLE_RATE), int(end * SAMPLE_RATE)
        n = (b - a) // frame
        if n < 2 * need:
            out.append((start, end))
            continue
        frames = audio[a : a + n * frame].reshape(n, frame)
        rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
        p10, p90 = (float(x) for x in np.percentile(rms, [10, 90]))
        bed = min(2.0 * p10, p90 * 10 ** (-BED_MARGIN_DB / 20))
        floor = max(p90 * 10 ** (-pause_db / 20), bed, SILENCE_PEAK)
        quiet = rms < floor
        pieces: list[tuple[int, int]] = []  # frame ranges of speech between long pauses
        piece_start, i = 0, 0
        while i < n:
            if not quiet[i]:
                i += 1
                continue
            j = i
            while j < n and quiet[j]:
                j += 1
            if j - i >= need:
                if i > piece_start:
                    pieces.append((piece_start, i))
                piece_start = j
            i = j
        if piece_start < n:
            pieces.append((piece_start, n))
        if not pieces:  # all quiet by this rule: keep what the VAD found
            out.append((start, end))
            continue
        for k, (f0, f1) in enumerate(pieces):
            piece_end = end if k == len(pieces) - 1 and f1 == n else start + f1 * PAUSE_FRAME_S
            out.append((start + f0 * PAUSE_FRAME_S, piece_end))
    return out


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

    language: str | None  # the language most of the words are in
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

    @property
    def languages(self) -> list[str]:
        """Every language of the segments, in order of first appearance."""
        return list(dict.fromkeys(s.language for s in self.segments if s.language))


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
                    f"{self.cfg.language!r}; use a multilingual model (asr.model: base) or "
                    "language 'en'"
                )
            known = set(model.supported_languages)
            wrong = [x for x in [self.cfg.language, *(self.cfg.languages or [])] if x]
            wrong = [x for x in wrong if x not in known]
            if wrong and model.model.is_multilingual:
                raise AsrSetupError(
                    f"asr.language/asr.languages name {wrong}, which asr.model="
                    f"{self.cfg.model!r} does not know; use whisper's codes (en, zh, ja, ...)"
                )
            self._model = model
        if self._vad is None:
            self._vad = SpeechDetector(self.cfg.vad, self.cfg.device, self.cfg.vad_step_s)
        if self.cfg.align_model and self.cfg.language:
            load_aligner(self.cfg.align_model, self.cfg.language, self.cfg.device)

    @property
    def multilingual(self) -> bool:
        """Whether the loaded model is multilingual (not loaded: False)."""
        model = self._model
        return model is not None and bool(model.model.is_multilingual)

    @property
    def detects(self) -> bool:
        """Whether the language is detected (not fixed, and the model is multilingual)."""
        return self.cfg.language is None and self.multilingual

    @property
    def beam_size(self) -> int:
        """`asr.beam_size`, or the measured default for the loaded model (BEAM_SIZE_*)."""
        if self.cfg.beam_size is not None:
            return self.cfg.beam_size
        return BEAM_SIZE_MULTILINGUAL if self.multilingual else BEAM_SIZE_ENGLISH_ONLY

    def warm_up(self) -> None:
        """Load the models and run each once on a second of noise: first calls pay for lazy
        initialisation (several seconds for the pyannote VAD), which a worker should pay
        before its first video rather than during it."""
        with self._lock:
            self.load()
            assert self._vad is not None
            noise = np.random.default_rng(0).normal(0, 0.05, SAMPLE_RATE).astype(np.float32)
            self._vad(noise)
            language = "en" if self.detects else self.cfg.language
            self._decode(noise, [(0.0, 1.0)], language)

    def transcribe(self, audio: np.ndarray) -> Transcript:
        """Transcribe 16 kHz mono float32 samples."""
        with self._lock:
            self.load()
            return self._transcribe(np.ascontiguousarray(audio, dtype=np.float32))

    def _decode(
        self, audio: np.ndarray, chunks: list[tuple[float, float]], language: str | None
    ) -> tuple[list[Any], Any]:
        """Whisper over the given chunks in batches, with word timestamps."""
        from faster_whisper import BatchedInferencePipeline

        pieces, info = BatchedInferencePipeline(self._model).transcribe(
            audio,
            language=language,
            batch_size=self.cfg.batch_size,
            beam_size=self.beam_size,
            no_repeat_ngram_size=self.cfg.no_repeat_ngram_size,
            repetition_penalty=self.cfg.repetition_penalty,
            clip_timestamps=[{"start": s, "end": e} for s, e in chunks],
            vad_filter=False,
            word_timestamps=True,
        )
        return list(pieces), info

    def detect_languages(
        self, audio: np.ndarray, regions: Sequence[tuple[float, float]]
    ) -> list[tuple[str, float]]:
        """(language, probability) of each region, from whisper's language token (see
        `language_distributions`)."""
        return [_top(dist) for dist in self.language_distributions(audio, regions)]

    def language_distributions(
        self, audio: np.ndarray, regions: Sequence[tuple[float, float]]
    ) -> list[dict[str, float]]:
        """Whisper's language probabilities of each region.

        Regions are detected in batches, one encoder pass each over a window just longer than
        the batch's longest region (DETECT_MIN_FRAMES). With `asr.languages` set only those
        languages count (probabilities renormalised over them). Regions shorter than
        MIN_DETECT_S take the probabilities of the nearest region that is long enough.
        """
        if not regions:
            return []
        model = self._model
        extractor = model.feature_extractor
        long_enough = [i for i, (s, e) in enumerate(regions) if e - s >= MIN_DETECT_S]
        detect = long_enough or list(range(len(regions)))
        allowed = set(self.cfg.languages or [])
        found: dict[int, dict[str, float]] = {}
        feats = {
            i: extractor(
                audio[int(regions[i][0] * SAMPLE_RATE) : int(regions[i][1] * SAMPLE_RATE)]
            )[..., : extractor.nb_max_frames]
            for i in detect
        }
        # Shortest first, so that a batch's window (its longest region) wastes little.
        detect.sort(key=lambda i: feats[i].shape[-1])
        for b in range(0, len(detect), self.cfg.batch_size):
            batch = detect[b : b + self.cfg.batch_size]
            frames = detect_frames(max(feats[i].shape[-1] for i in batch), extractor.nb_max_frames)
            window = np.stack([_pad_frames(feats[i], frames) for i in batch])
            results = model.model.detect_language(model.encode(window))
            for i, probs in zip(batch, results, strict=True):
                pairs = [(token[2:-2], float(p)) for token, p in probs]
                if allowed:
                    pairs = [(lang, p) for lang, p in pairs if lang in allowed] or pairs
                    total = sum(p for _, p in pairs) or 1.0
                    pairs = [(lang, p / total) for lang, p in pairs]
                found[i] = dict(pairs)
        mids = {i: (regions[i][0] + regions[i][1]) / 2 for i in found}
        out = []
        for i, (s, e) in enumerate(regions):
            if i not in found:
                nearest = min(found, key=lambda j: abs(mids[j] - (s + e) / 2))
                found[i] = found[nearest]
            out.append(found[i])
        return out

    def detect_units(
        self, audio: np.ndarray, units: Sequence[tuple[float, float]]
    ) -> list[tuple[str, float]]:
        """(language, probability) of each speech unit, as cheaply as the audio allows.

        Neighbouring units are first detected together, in groups at most DETECT_GROUP_S long
        (one detection window each). A group's probabilities hold for its units when its
        language is at least SURE_PROB probable and no neighbouring group is that sure of
        another language; the units of the other groups, where a switch may be, are detected
        one by one. On speech in one language that is one window per 10 s instead of one per
        unit. Short excursions to another language are then smoothed (`smooth_languages`).
        """
        groups: list[list[int]] = []
        for i, (_, end) in enumerate(units):
            if groups and end - units[groups[-1][0]][0] <= DETECT_GROUP_S:
                groups[-1].append(i)
            else:
                groups.append([i])
        if len(groups) < 2 or len(groups) == len(units):
            dists = self.language_distributions(audio, units)
            alone = len(units)
        else:
            spans = [(units[g[0]][0], units[g[-1]][1]) for g in groups]
            by_group = self.language_distributions(audio, spans)
            tops = [_top(dist) for dist in by_group]
            found: dict[int, dict[str, float]] = {}
            unsure: list[int] = []
            for k, group in enumerate(groups):
                language, prob = tops[k]
                beside = [tops[j] for j in (k - 1, k + 1) if 0 <= j < len(groups)]
                if prob >= SURE_PROB and all(
                    other == language or p < SURE_PROB for other, p in beside
                ):
                    found.update({i: by_group[k] for i in group})
                else:
                    unsure.extend(group)
            if unsure:
                again = self.language_distributions(audio, [units[i] for i in unsure])
                found.update(zip(unsure, again, strict=True))
            dists = [found[i] for i in range(len(units))]
            alone = len(unsure)
        languages = smooth_languages(dists)
        log.debug("language detection: %d units in %d groups, %d detected alone, %d switches",
                  len(units), len(groups), alone,
                  sum(a != b for a, b in zip(languages, languages[1:], strict=False)))  # fmt: skip
        return [(lang, dist.get(lang, 0.0)) for lang, dist in zip(languages, dists, strict=True)]

    def _plan(
        self, audio: np.ndarray, speech: list[tuple[float, float]]
    ) -> list[tuple[str | None, list[tuple[float, float]]]]:
        """(language, chunks) to decode: the fixed language over every speech chunk; or the
        detected language of each run of speech regions that share one."""
        if not self.detects:
            if self.multilingual:
                # Quiet trimmed from the regions' ends: the VAD keeps a lead-in of background
                # (music, the demo's chord) in the region, and whisper base, decoding Mandarin
                # from there, repeated one character for the whole sentence (天天天...).
                # English-only models keep the VAD's regions as they were.
                speech = split_at_pauses(audio, speech)
            return [(self.cfg.language, merge_regions(speech, CHUNK_S))]
        if self.cfg.detect == "file":
            # Whisper's own rule: the first 30 s of speech decide.
            first = merge_regions(speech, CHUNK_S)[:1]
            ((language, _),) = self.detect_languages(audio, first)
            return [(language, merge_regions(speech, CHUNK_S))]
        units = split_at_pauses(audio, speech)
        detected = self.detect_units(audio, units)
        runs: list[tuple[str, list[tuple[float, float]]]] = []
        for region, (language, _) in zip(units, detected, strict=True):
            if runs and runs[-1][0] == language:
                runs[-1][1].append(region)
            else:
                runs.append((language, [region]))
        plan: dict[str, list[tuple[float, float]]] = {}
        for language, regions in runs:
            plan.setdefault(language, []).extend(merge_regions(regions, CHUNK_S))
        return list(plan.items())

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
        timings["vad"] = time.perf_counter() - t0
        if not speech:
            out.note = NOTE_NO_SPEECH
            return out

        t0 = time.perf_counter()
        plan = self._plan(audio, speech)
        if self.detects:
            timings["detect"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        raw: list[tuple[Any, str | None]] = []
        for language, chunks in plan:
            pieces, info = self._decode(audio, chunks, language)
            raw.extend((p, info.language) for p in pieces)
        raw.sort(key=lambda item: item[0].start)
        timings["transcribe"] = time.perf_counter() - t0
        # Batched decoding never goes back: when whisper stops early inside a chunk (after a
        # long pause or a change of voice) the rest of that chunk's speech would be lost.
        # Speech that no word covers is decoded again on its own, in its chunk's language.
        spans = [
            (w.start, w.end)
            for p, _ in raw
            for w in (p.words or [])
            if w.start is not None and w.end is not None
        ]
        missed = uncovered_speech(speech, spans, MIN_MISSED_S)
        if missed:
            t0 = time.perf_counter()
            again: dict[str | None, list[tuple[float, float]]] = {}
            for start, end in missed:
                again.setdefault(_language_at(plan, start), []).append((start, end))
            for language, stretches in again.items():
                more, info = self._decode(audio, merge_regions(stretches, CHUNK_S), language)
                # A re-decoded stretch may be non-speech the VAD let through: whisper's rule.
                raw.extend((p, info.language) for p in more if not _silent(p))
            raw.sort(key=lambda item: item[0].start)
            out.redecoded = len(missed)
            timings["redecode"] = time.perf_counter() - t0
            log.info("re-decoded %d stretches of speech whisper had skipped", len(missed))

        t0 = time.perf_counter()
        segments: list[Segment] = []
        for piece, language in raw:
            if self.aligner == ALIGNER_FASTER_WHISPER:
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
            else:
                words = self._aligned_words(piece, language, audio)
                if words is None:
                    continue
                out.interpolated += sum(w.interpolated for w in words)
            out.interpolated += fill_missing_times(words, piece.start, piece.end)
            if chinese.is_chinese(language):
                chinese.convert_words(words, self.cfg.chinese_script)
                words = chinese.regroup(words, self.cfg.chinese_words, language)
            for word in words:
                word.language = language
            segments.append(_segment(piece, words, language))
        all_words = [w for s in segments for w in s.words]
        snap_to_speech(all_words, speech)
        order_times(all_words, duration)
        out.segments = [sentence for s in segments for sentence in split_sentences(s)]
        out.language = _main_language(out.segments) or out.language
        timings["words"] = time.perf_counter() - t0
        if not out.segments:
            out.note = NOTE_NO_SPEECH
        return out

    def _aligned_words(
        self, piece: Any, language: str | None, audio: np.ndarray
    ) -> list[Word] | None:
        """Words of one piece timed by the whisperx aligner (None: the piece has no text)."""
        assert self.cfg.align_model is not None
        text_words = piece.text.split()
        if not text_words:
            return None
        model, metadata = load_aligner(self.cfg.align_model, language or "en", self.cfg.device)
        item = {"text": piece.text, "start": piece.start, "end": piece.end}
        try:
            aligned = whisperx_align([item], model, metadata, audio, self.cfg.device)
            aligned_words = aligned.get("word_segments", [])
        except Exception as exc:  # an alignment failure costs the timings, not the words
            log.warning("whisperx alignment failed for %r: %s", piece.text[:60], exc)
            aligned_words = []
        return match_aligned(text_words, aligned_words)


def detect_frames(n: int, max_frames: int) -> int:
    """Mel frames of the window a region of `n` frames is detected in: the region rounded up
    to DETECT_STEP_FRAMES, at least DETECT_MIN_FRAMES, at most whisper's 30 s."""
    steps = -(-max(n, 1) // DETECT_STEP_FRAMES)
    return min(max(steps * DETECT_STEP_FRAMES, DETECT_MIN_FRAMES), max_frames)


def _top(dist: dict[str, float]) -> tuple[str, float]:
    """The most probable language of a distribution, and its probability."""
    return max(dist.items(), key=lambda item: item[1])


def smooth_languages(
    dists: Sequence[dict[str, float]], switch_prior: float = SWITCH_PRIOR
) -> list[str]:
    """Each unit's most probable language, with excursions smoothed away: a run of units
    between two units of one other language takes theirs unless the run's summed log-odds for
    its own language exceed 2 * log((1 - switch_prior) / switch_prior), the cost of switching
    there and back. Runs at the clip's start or end keep their language. The weakest such run
    goes first, until none is left."""
    languages = [_top(dist)[0] for dist in dists]
    cost = 2 * math.log((1.0 - switch_prior) / switch_prior)

    def logp(dist: dict[str, float], lang: str) -> float:
        return math.log(max(dist.get(lang, 0.0), MIN_LANGUAGE_PROB))

    while True:
        runs: list[tuple[int, int]] = []  # [start, end) of each run of one language
        for i, lang in enumerate(languages):
            if runs and languages[runs[-1][0]] == lang:
                runs[-1] = (runs[-1][0], i + 1)
            else:
                runs.append((i, i + 1))
        weakest: tuple[float, int, int, str] | None = None
        for k in range(1, len(runs) - 1):
            around = languages[runs[k - 1][0]]
            if around != languages[runs[k + 1][0]]:
                continue
            a, b = runs[k]
            own = languages[a]
            evidence = sum(logp(dists[i], own) - logp(dists[i], around) for i in range(a, b))
            if evidence < cost and (weakest is None or evidence < weakest[0]):
                weakest = (evidence, a, b, around)
        if weakest is None:
            return languages
        _, a, b, around = weakest
        languages[a:b] = [around] * (b - a)


def _pad_frames(feat: np.ndarray, frames: int) -> np.ndarray:
    """Log-mel features cut or padded to `frames` frames (pad_or_trim's zeros: near silence)."""
    if feat.shape[-1] >= frames:
        return feat[..., :frames]
    return np.pad(feat, [(0, 0)] * (feat.ndim - 1) + [(0, frames - feat.shape[-1])])


def _language_at(
    plan: Sequence[tuple[str | None, list[tuple[float, float]]]], t: float
) -> str | None:
    """The planned language of the chunk holding time `t` (else the nearest chunk's)."""
    best, gap = plan[0][0], math.inf
    for language, chunks in plan:
        for start, end in chunks:
            d = 0.0 if start <= t <= end else min(abs(t - start), abs(t - end))
            if d < gap:
                best, gap = language, d
    return best


def _main_language(segments: Sequence[Segment]) -> str | None:
    """The language with the most speech time (None when no segment has one)."""
    spoken: dict[str, float] = {}
    for seg in segments:
        if seg.language:
            spoken[seg.language] = spoken.get(seg.language, 0.0) + max(seg.end - seg.start, 0.0)
    return max(spoken, key=lambda k: spoken[k]) if spoken else None


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


def _segment(piece: Any, words: list[Word], language: str | None = None) -> Segment:
    return Segment(
        start=float(piece.start),
        end=float(piece.end),
        words=words,
        avg_logprob=_num(getattr(piece, "avg_logprob", None)),
        no_speech_prob=_num(getattr(piece, "no_speech_prob", None)),
        language=language,
    )
