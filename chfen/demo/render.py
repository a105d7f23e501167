"""Rendering one planned item to media files: espeak-ng speech, one ffmpeg call, a thumbnail.

Each function writes its outputs atomically (a temporary name in the same folder, then
`os.replace`), so a generation killed at any moment leaves either a complete file or none, and
returns the measured facts the ground truth needs (sentence times, byte size, checksum).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import random
import subprocess
import uuid
import wave
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chfen.demo.catalogue import GARBAGE_BYTES, TAIL_S, TRUNCATE_FRACTION, VideoSpec

SPEECH_RATE = 22050  # espeak-ng's native sample rate; ffmpeg resamples to AUDIO_RATE
AUDIO_RATE = 44100
# A sentence starts/ends where espeak-ng's samples first/last exceed 1% of full scale.
SPEECH_EDGE = 0.01
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
THUMB_WIDTH = 360

FFMPEG = ["ffmpeg", "-nostdin", "-v", "error", "-y"]
# ultrafast: generation time is dominated by x264. One thread per ffmpeg: the generator already
# runs several videos at once, and x264's threading costs about a fifth more CPU time.
X264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-threads", "1"]
# +faststart puts the index first (browsers, range readers); +bitexact leaves encoder versions
# and times out of the file, so the same inputs give the same bytes.
MP4_OUT = ["-movflags", "+faststart", "-fflags", "+bitexact"]
MP4_OUT += ["-flags:v", "+bitexact", "-flags:a", "+bitexact"]


class RenderError(RuntimeError):
    """A tool failed while rendering an item; the message names the item and the command."""


@dataclass(frozen=True)
class Sentence:
    """One spoken sentence as it is heard in the video."""

    start: float
    end: float
    text: str
    language: str | None = None  # set for the language channels' videos only

    def record(self) -> dict[str, Any]:
        """As stored in items/<id>.json and the ground truth (no language key when unset, so
        the catalogue's records stay as they were)."""
        out = asdict(self)
        if self.language is None:
            del out["language"]
        return out


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """A temporary sibling of `final` (same suffix, so tools pick the format) renamed on success.

    The rename is atomic on one file system, so readers see the old file, or the new one, or
    nothing; never half a file. On error the temporary file is removed.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.stem}.{uuid.uuid4().hex[:8]}.tmp{final.suffix}")
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write `obj` as pretty UTF-8 JSON to `path` atomically."""
    write_bytes_atomic(path, (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode())


def _run(cmd: list[str], item: str, stdin: bytes | None = None) -> bytes:
    try:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, check=False)
    except FileNotFoundError as exc:
        raise RenderError(
            f"demo video {item}: {cmd[0]} is not installed; run scripts/setup.sh "
            "(or apt-get install ffmpeg espeak-ng)"
        ) from exc
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()[-2000:]
        raise RenderError(f"demo video {item}: {cmd[0]} failed ({proc.returncode}): {err}")
    return proc.stdout


def speak(text: str, voice: str, pitch: int, rate: int, amplitude: int, item: str) -> np.ndarray:
    """espeak-ng speech for `text` as float32 samples at SPEECH_RATE."""
    voice_opts = ["-v", voice, "-p", str(pitch), "-s", str(rate), "-a", str(amplitude)]
    raw = _run(["espeak-ng", *voice_opts, "--stdout", text], item)
    # With --stdout the RIFF sizes are placeholders (streaming), so find the data chunk by hand.
    pos = raw.find(b"data")
    if raw[:4] != b"RIFF" or pos < 0:
        raise RenderError(f"demo video {item}: espeak-ng returned no WAV data for {text!r}")
    pcm = np.frombuffer(raw[pos + 8 :], dtype="<i2")
    return pcm.astype(np.float32) / 32768.0


def _bed(spec: VideoSpec, rng: random.Random) -> np.ndarray:
    """A quiet chord under the speech, part of the prosody cue (an emotion's or the neutral one)."""
    t = np.arange(int(round(spec.duration * SPEECH_RATE)), dtype=np.float32) / SPEECH_RATE
    bed = np.zeros_like(t)
    for hz in spec.chord_hz:
        bed += np.sin(2 * np.pi * hz * t + rng.uniform(0, 2 * np.pi)).astype(np.float32)
    bed *= 0.012
    if spec.tremolo_hz:
        bed *= 0.6 + 0.4 * np.sin(2 * np.pi * spec.tremolo_hz * t)
    # Fade in and out so the bed has no click at either end.
    ramp = min(len(t) // 4, SPEECH_RATE // 2)
    if ramp:
        bed[:ramp] *= np.linspace(0, 1, ramp, dtype=np.float32)
        bed[-ramp:] *= np.linspace(1, 0, ramp, dtype=np.float32)
    return bed


def synth_audio(spec: VideoSpec) -> tuple[bytes, list[Sentence]]:
    """The soundtrack as 16-bit mono WAV bytes, and the sentences placed in it."""
    n = int(round(spec.duration * SPEECH_RATE))
    rng = random.Random(f"chfen-demo/audio/{spec.id}")
    track = _bed(spec, rng).astype(np.float32)
    placed: list[Sentence] = []
    cursor = 0.0
    languages = spec.languages or (None,) * len(spec.script)
    voices = spec.sentence_voices or ((spec.voice, spec.rate),) * len(spec.script)
    for text, pause, language, (voice, rate) in zip(
        spec.script, spec.pauses, languages, voices, strict=True
    ):
        at = round(cursor + pause, 2)
        pcm = speak(text, voice, spec.pitch, rate, spec.amplitude, spec.id)
        loud = np.flatnonzero(np.abs(pcm) > SPEECH_EDGE)
        if loud.size == 0:
            continue
        first, last = int(loud[0]), int(loud[-1]) + 1
        end = at + last / SPEECH_RATE
        if end > spec.duration - TAIL_S:
            continue  # does not fit in what is left of the video: a shorter one later may
        offset = int(round(at * SPEECH_RATE))
        track[offset : offset + len(pcm)] += pcm[: max(0, n - offset)]
        placed.append(Sentence(round(at + first / SPEECH_RATE, 3), round(end, 3), text, language))
        cursor = end
    pcm16 = (np.clip(track, -1.0, 1.0) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SPEECH_RATE)
        w.writeframes(pcm16.tobytes())
    return buf.getvalue(), placed


def _hex(color: str) -> str:
    return "0x" + color.lstrip("#")


def video_filtergraph(spec: VideoSpec) -> str:
    """The lavfi graph drawing every shot of `spec` and joining them with hard cuts."""
    w, h, fps = spec.width, spec.height, spec.fps
    short = min(w, h)
    parts = []
    for k, shot in enumerate(spec.shots):
        d = f"{shot.end - shot.start:.3f}"
        if shot.background == "gradient":
            # The gradients source is slow at full size; a small one scaled up looks the same.
            gw, gh = max(2, w // 8), max(2, h // 8)
            parts.append(
                f"gradients=s={gw}x{gh}:c0={_hex(shot.colors[0])}:c1={_hex(shot.colors[1])}"
                f":x0=0:y0=0:x1={gw}:y1={gh}:nb_colors=2:speed=0.01:seed={k}:r={fps}:d={d},"
                f"scale={w}:{h},setsar=1[bg{k}]"
            )
        else:
            parts.append(f"color=c={_hex(shot.colors[0])}:s={w}x{h}:r={fps}:d={d},setsar=1[bg{k}]")
        side = max(8, int(shot.mover_size * short) // 2 * 2)
        if shot.mover == "pattern":
            parts.append(f"testsrc2=s={side}x{side}:r={fps}:d={d}[mv{k}]")
        else:
            parts.append(f"color=c={_hex(shot.mover_color)}:s={side}x{side}:r={fps}:d={d}[mv{k}]")
        x = f"(W-w)/2+{shot.amp_x * w:.1f}*sin(2*PI*{shot.freq_x}*t+{shot.phase})"
        y = f"(H-h)/2+{shot.amp_y * h:.1f}*sin(2*PI*{shot.freq_y}*t)"
        parts.append(f"[bg{k}][mv{k}]overlay=x='{x}':y='{y}'[s{k}]")
    chain = "".join(f"[s{k}]" for k in range(len(spec.shots)))
    chain += f"concat=n={len(spec.shots)}:v=1:a=0"
    # A small channel badge in one corner, as short-video apps stamp on every upload.
    badge = max(16, short // 15)
    chain += f",drawbox=x={badge // 2}:y={badge // 2}:w={badge}:h={badge}:c=0xFFFFFF@0.85:t=fill"
    if FONT.exists():
        label = spec.uploader.replace(":", r"\:").replace("'", "")
        chain += (
            f",drawtext=fontfile={FONT}:text='{label}':x={badge * 2}:y={badge // 2}"
            f":fontsize={max(10, badge * 2 // 3)}:fontcolor=white:borderw=2:bordercolor=black"
        )
    if spec.vfr:
        # Full rate in the first 2 s of every 4 s, every other frame in the rest: a genuinely
        # variable frame rate. Cuts sit on even frame numbers, so no cut frame is dropped.
        chain += ",select='lt(mod(t\\,4)\\,2)+not(mod(n\\,2))'"
    chain += ",format=yuv420p[v]"
    return ";".join([*parts, chain])


def render_synth(spec: VideoSpec, out: Path) -> list[Sentence]:
    """Render a synthetic video with one ffmpeg call; returns the sentences it speaks."""
    cmd = [*FFMPEG]
    sentences: list[Sentence] = []
    wav = None
    if spec.has_audio:
        wav, sentences = synth_audio(spec)
        cmd += ["-f", "wav", "-i", "pipe:0"]
    cmd += ["-filter_complex", video_filtergraph(spec), "-filter_complex_threads", "1"]
    cmd += ["-map", "[v]"]
    if spec.has_audio:
        cmd += ["-map", "0:a", "-c:a", "aac", "-b:a", "96k", "-ar", str(AUDIO_RATE), "-ac", "1"]
    cmd += [*X264, "-crf", str(spec.crf), "-fps_mode", "vfr" if spec.vfr else "passthrough"]
    cmd += ["-t", f"{spec.duration:.3f}", "-metadata", f"title={spec.title}", *MP4_OUT]
    with atomic_path(out) as tmp:
        _run([*cmd, str(tmp)], spec.id, stdin=wav)
    return sentences


def render_transcode(spec: VideoSpec, source: Path, out: Path) -> None:
    """Re-encode `source` smaller and blurrier, as a re-upload of someone else's video."""
    cmd = [*FFMPEG, "-i", str(source), "-vf", f"scale={spec.width}:{spec.height}"]
    cmd += [*X264, "-crf", str(spec.crf), "-c:a", "aac", "-b:a", "64k"]
    cmd += ["-metadata", f"title={spec.title}", *MP4_OUT]
    with atomic_path(out) as tmp:
        _run([*cmd, str(tmp)], spec.id)


def render_truncated(source: Path, out: Path) -> None:
    """The first TRUNCATE_FRACTION of `source`'s bytes: an upload that broke off."""
    data = source.read_bytes()
    write_bytes_atomic(out, data[: int(len(data) * TRUNCATE_FRACTION)])


def render_garbage(spec: VideoSpec, seed: int, out: Path) -> None:
    """Seeded random bytes that only pretend to be an mp4 by their name."""
    write_bytes_atomic(out, random.Random(f"chfen-demo/{seed}/{spec.id}").randbytes(GARBAGE_BYTES))


def render_thumbnail(spec: VideoSpec, video: Path, out: Path) -> None:
    """A JPEG from the middle of the first shot."""
    first = spec.shots[0]
    at = (first.start + first.end) / 2
    cmd = [*FFMPEG, "-ss", f"{at:.2f}", "-i", str(video), "-frames:v", "1"]
    cmd += ["-vf", f"scale={THUMB_WIDTH}:-2", "-q:v", "5"]
    with atomic_path(out) as tmp:
        _run([*cmd, str(tmp)], spec.id)


def file_facts(path: Path) -> dict[str, Any]:
    """Size and SHA-256 of a file, as the site serves it."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return {"size_bytes": path.stat().st_size, "sha256": digest.hexdigest()}
