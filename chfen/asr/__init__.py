"""Speech transcription with word timings: whisperx VAD and alignment, faster-whisper decoding.

`AsrStage` is the per-video stage (`transcript_segments` + `transcript_words` rows);
`Transcriber` is the same work on a waveform, without the warehouse.
"""

from chfen.asr.stage import STAGE, STAGE_VERSION, AsrStage
from chfen.asr.transcribe import AsrSetupError, Transcriber, Transcript

__all__ = [
    "STAGE",
    "STAGE_VERSION",
    "AsrSetupError",
    "AsrStage",
    "Transcriber",
    "Transcript",
]
