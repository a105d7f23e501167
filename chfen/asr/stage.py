"""The ASR stage: one video's audio → `transcript_segments` and `transcript_words` rows.

Input is the 16 kHz mono WAV the crawl stage wrote (`videos.audio_path`, relative to the
media root). A video without an audio track, or whose audio is silent or holds no speech,
gets an empty transcript and a note; that is a result, not a failure.

A source may set its own `language` and `asr_model` (a Chinese channel beside an English one):
each video is transcribed with `asr` plus its source's overrides, one `Transcriber` per
distinct combination, each loaded on first use.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from chfen import registry
from chfen.asr.transcribe import AsrSetupError, Transcriber, Transcript
from chfen.config import AsrConfig, SourceConfig
from chfen.media.audio import AudioError, load_audio
from chfen.stages import StageError, StageResult, video_row
from warehouse import Warehouse

STAGE = registry.ASR
STAGE_VERSION = registry.version(STAGE)

NOTE_NO_AUDIO = "no audio track"

log = logging.getLogger("chfen.asr")


class AsrStage:
    """`stage(video_id) -> StageResult`; models load once per process (see `warm_up`).

    Reads `has_audio`, `audio_path`, `source` and `status` from the video's `videos_latest` row.
    """

    name = STAGE
    version = STAGE_VERSION

    def __init__(
        self,
        wh: Warehouse,
        cfg: AsrConfig | None = None,
        sources: list[SourceConfig] | None = None,
    ):
        self.wh = wh
        self.cfg = cfg or AsrConfig()
        self.media_root = wh.root.media_dir()
        self.sources = {s.name: s for s in sources or []}
        self.transcriber = Transcriber(self.cfg)
        self._transcribers: dict[str, Transcriber] = {self._key(self.cfg): self.transcriber}

    @staticmethod
    def _key(cfg: AsrConfig) -> str:
        return cfg.model_dump_json()

    def transcriber_for(self, source: str | None) -> Transcriber:
        """The transcriber for videos of this source (its language and model overrides)."""
        cfg = self.cfg.for_source(self.sources.get(source or ""))
        key = self._key(cfg)
        if key not in self._transcribers:
            self._transcribers[key] = Transcriber(cfg)
        return self._transcribers[key]

    def warm_up(self) -> None:
        """Load and prime the models now (at a worker's start) instead of on the first video;
        every source's own model too."""
        for source in self.sources.values():
            self.transcriber_for(source.name)
        for transcriber in list(self._transcribers.values()):
            transcriber.warm_up()

    def _video_row(self, video_id: str) -> dict[str, Any]:
        row = video_row(self.wh, video_id, STAGE, ("has_audio", "audio_path", "source"))
        return row

    def __call__(self, video_id: str) -> StageResult:
        row = self._video_row(video_id)
        if row["has_audio"] is False or not row["audio_path"]:
            log.info("[%s] %s: %s, empty transcript", STAGE, video_id, NOTE_NO_AUDIO)
            return StageResult(
                video_id, {"transcript_segments": [], "transcript_words": []}, note=NOTE_NO_AUDIO
            )
        path = self.media_root / row["audio_path"]
        if not path.is_file():
            raise StageError(
                video_id, STAGE, f"audio file missing: {path}; re-crawl the video", "corrupt"
            )
        t0 = time.perf_counter()
        try:
            audio = load_audio(path)
        except AudioError as exc:
            raise StageError(video_id, STAGE, f"{exc}; re-crawl the video", "corrupt") from None
        load_s = time.perf_counter() - t0
        transcriber = self.transcriber_for(row.get("source"))
        try:
            transcript = transcriber.transcribe(audio)
        except AsrSetupError as exc:
            # A setting or model problem, the same for every video: say what to change.
            raise StageError(video_id, STAGE, str(exc), "unsupported") from None
        transcript.timings["load_audio"] = load_s
        seconds = time.perf_counter() - t0
        log.info(
            "[%s] %s: %d words, %d segments, %.1f s audio in %.2f s (RTF %.3f)%s",
            STAGE, video_id, len(transcript.words), len(transcript.segments),
            transcript.duration_s, seconds,
            seconds / transcript.duration_s if transcript.duration_s else 0.0,
            f"; {transcript.note}" if transcript.note else "",
        )  # fmt: skip
        return StageResult(
            video_id, transcript_rows(video_id, transcript, transcriber.cfg.model),
            transcript.timings,
            note=_note(transcript),
        )  # fmt: skip


def _note(transcript: Transcript) -> str | None:
    if transcript.note:
        return transcript.note
    notes = []
    if transcript.interpolated:
        n = len(transcript.words)
        notes.append(f"{transcript.interpolated} of {n} words had no timing and were interpolated")
    if transcript.redecoded:
        notes.append(f"{transcript.redecoded} stretches of speech skipped by whisper re-decoded")
    return "; ".join(notes) or None


def transcript_rows(
    video_id: str, transcript: Transcript, model: str
) -> dict[str, list[dict[str, Any]]]:
    """`transcript_segments` and `transcript_words` rows of one transcript."""
    segments, words = [], []
    for seg_idx, seg in enumerate(transcript.segments):
        segments.append(
            {
                "video_id": video_id,
                "segment_idx": seg_idx,
                "start_s": seg.start,
                "end_s": seg.end,
                "text": seg.text,
                "language": seg.language or transcript.language,
                "avg_logprob": seg.avg_logprob,
                "no_speech_prob": seg.no_speech_prob,
                "model": model,
                "stage_version": STAGE_VERSION,
            }
        )
        for word in seg.words:
            words.append(
                {
                    "video_id": video_id,
                    "word_idx": len(words),
                    "segment_idx": seg_idx,
                    "word": word.text,
                    "start_s": word.start,
                    "end_s": word.end,
                    "score": word.score,
                    "speaker": None,
                    "aligner": transcript.aligner,
                    "interpolated": word.interpolated,
                    "stage_version": STAGE_VERSION,
                    "language": word.language or seg.language or transcript.language,
                    "unit": word.unit,
                }
            )
    return {"transcript_segments": segments, "transcript_words": words}
