"""Synthetic media with known ground truth, for tests and benchmarks (ffmpeg lavfi, espeak-ng).

- `render_shots`: a clip of visually distinct shots joined by hard cuts at known times and
  frames; with different frame rates per shot and `vfr=True` it is a variable-frame-rate file.
- `synthesize_speech`: a 16 kHz mono WAV of scripted sentences, each word spoken by espeak-ng
  at a known start and end (words are synthesized one by one, so their times are exact).

Nothing here is used by the pipeline itself.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from warehouse import Warehouse

SAMPLE_RATE = 16000
# A spoken word starts/ends where espeak-ng's samples first/last exceed this share of full scale.
SPEECH_EDGE = 0.01

# Looks that differ strongly from each other in hue, saturation and brightness, so every join
# between two of them is a hard cut; some move, so a shot is not a still image.
_LOOKS = (
    "testsrc2=s={w}x{h}:r={r}:d={d}",
    "smptebars=s={w}x{h}:r={r}:d={d}",
    "color=c=0x1f4fbf:s={w}x{h}:r={r}:d={d},drawgrid=w=48:h=48:t=3:c=white@0.6",
    "testsrc=s={w}x{h}:r={r}:d={d}",
    "color=c=0xd9a21b:s={w}x{h}:r={r}:d={d},drawbox=x='mod(t*60,{w})':y={h}/3:w=60:h=60:c=black:t=fill",
    "rgbtestsrc=s={w}x{h}:r={r}:d={d},hue=h=90",
)


class ToolMissing(RuntimeError):
    """ffmpeg or espeak-ng is not installed."""


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise ToolMissing(f"{tool} is not installed (apt-get install {tool})")
    return path


@dataclass(frozen=True)
class Shot:
    """`duration_s` of look number `look` at `fps` frames per second."""

    duration_s: float
    fps: float = 30.0
    look: int = 0


@dataclass(frozen=True)
class ClipTruth:
    """Where the cuts of a rendered clip are, in seconds and in decoded frames."""

    path: Path
    cut_times: list[float]
    cut_frames: list[int]
    frames: int
    duration_s: float
    min_frame_period_s: float


def render_shots(
    out: Path,
    shots: Sequence[Shot],
    *,
    size: tuple[int, int] = (360, 640),
    vfr: bool = False,
    audio: Path | None = None,
    preset: str = "ultrafast",
) -> ClipTruth:
    """Render `shots` joined by hard cuts into `out` (H.264 mp4); return the truth.

    Each shot's duration should be a whole number of its frame periods. With `vfr=True` the
    frames keep their own shot's rate (a variable-frame-rate file); otherwise every shot must
    share one rate. `preset` is x264's (slower presets decode like typical uploads: CABAC,
    B-frames).
    """
    ffmpeg = _require("ffmpeg")
    if not vfr and len({s.fps for s in shots}) > 1:
        raise ValueError("shots with different frame rates need vfr=True")
    w, h = size
    cmd = [ffmpeg, "-nostdin", "-v", "error", "-y"]
    labels = []
    for i, shot in enumerate(shots):
        look = _LOOKS[shot.look % len(_LOOKS)].format(w=w, h=h, r=shot.fps, d=shot.duration_s)
        # Repeated looks are told apart by their hue.
        hue = (shot.look // len(_LOOKS)) * 120
        if hue:
            look += f",hue=h={hue}"
        cmd += ["-f", "lavfi", "-i", look]
        labels.append(f"[{i}:v]")
    graph = f"{''.join(labels)}concat=n={len(shots)}:v=1:a=0,format=yuv420p[v]"
    cmd += ["-filter_complex", graph, "-map", "[v]"]
    if audio is not None:
        cmd += ["-i", str(audio), "-map", f"{len(shots)}:a", "-c:a", "aac", "-shortest"]
    cmd += ["-fps_mode", "vfr" if vfr else "cfr", "-c:v", "libx264", "-preset", preset]
    cmd += [str(out)]
    out.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg could not render {out.name}: {proc.stderr.strip()[-500:]}")
    cut_times, cut_frames = [], []
    t, frames = 0.0, 0
    for shot in shots[:-1]:
        t += shot.duration_s
        frames += round(shot.duration_s * shot.fps)
        cut_times.append(round(t, 6))
        cut_frames.append(frames)
    total = sum(s.duration_s for s in shots)
    n_frames = sum(round(s.duration_s * s.fps) for s in shots)
    return ClipTruth(out, cut_times, cut_frames, n_frames, total, min(1 / s.fps for s in shots))


# ---- speech -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpokenWord:
    """One scripted word and where it sits in the synthesized audio."""

    word: str
    start_s: float
    end_s: float
    sentence: int


def _resample(samples: np.ndarray, src: int, dst: int) -> np.ndarray:
    if src == dst or samples.size == 0:
        return samples.astype(np.float32)
    n = int(round(samples.size * dst / src))
    positions = np.linspace(0, samples.size - 1, n)
    return np.interp(positions, np.arange(samples.size), samples).astype(np.float32)


def speak(text: str, *, voice: str = "en-us", words_per_minute: int = 150) -> np.ndarray:
    """espeak-ng speech for `text` as float32 samples at 16 kHz, silence trimmed."""
    espeak = _require("espeak-ng")
    cmd = [espeak, "-v", voice, "-s", str(words_per_minute), "--stdout", text]
    data = subprocess.run(cmd, capture_output=True, check=True).stdout
    with wave.open(io.BytesIO(data)) as wav:
        rate = wav.getframerate()
        raw = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    samples = _resample(raw.astype(np.float32) / 32768.0, rate, SAMPLE_RATE)
    loud = np.flatnonzero(np.abs(samples) > SPEECH_EDGE)
    return samples[loud[0] : loud[-1] + 1] if loud.size else samples[:0]


def write_wav(path: Path, samples: np.ndarray, rate: int = SAMPLE_RATE) -> Path:
    """Mono 16-bit PCM WAV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm.tobytes())
    return path


def synthesize_speech(
    out: Path,
    script: Sequence[tuple[float, str]],
    duration_s: float,
    *,
    word_gap_s: float = 0.12,
    noise: float = 0.0,
    seed: int = 0,
) -> list[SpokenWord]:
    """Write a 16 kHz mono WAV of `duration_s` where sentence i starts at script[i][0].

    Words are synthesized one by one and placed `word_gap_s` apart, so each word's start and
    end are known exactly. `noise` adds white noise of that amplitude. Returns the words.
    """
    audio = np.zeros(int(round(duration_s * SAMPLE_RATE)), dtype=np.float32)
    truth: list[SpokenWord] = []
    t = 0.0
    for n, (start, sentence) in enumerate(script):
        if start < t:
            raise ValueError(f"sentence {n} starts at {start} s, before sentence {n - 1} ends")
        t = float(start)
        for word in sentence.split():
            samples = speak(word)
            i = int(round(t * SAMPLE_RATE))
            if i + samples.size > audio.size:
                raise ValueError(f"the script runs past {duration_s} s at {word!r}")
            audio[i : i + samples.size] += samples
            end = t + samples.size / SAMPLE_RATE
            truth.append(SpokenWord(word.strip(".,!?;:"), round(t, 4), round(end, 4), n))
            t = end + word_gap_s
    if noise:
        audio += np.random.default_rng(seed).normal(0.0, noise, audio.size).astype(np.float32)
    write_wav(out, audio)
    return truth


# ---- warehouse --------------------------------------------------------------------------------


def register_video(
    wh: Warehouse,
    video_id: str,
    *,
    video: Path | None = None,
    audio: Path | None = None,
    duration_s: float | None = None,
    has_audio: bool | None = None,
    fps: float | None = None,
) -> dict[str, Any]:
    """Copy test files into `media/<video_id>/` and append the `videos` row a crawl would.

    `has_audio` defaults to whether `audio` was given; the row is returned.
    """
    folder = wh.root.media_dir(video_id)
    folder.mkdir(parents=True, exist_ok=True)
    row: dict[str, Any] = {
        "video_id": video_id,
        "source": "tests",
        "status": "ok",
        "duration_s": duration_s,
        "fps": fps,
        "has_audio": (audio is not None) if has_audio is None else has_audio,
    }
    if video is not None:
        shutil.copyfile(video, folder / f"video{video.suffix}")
        row["media_path"] = f"{video_id}/video{video.suffix}"
    if audio is not None:
        shutil.copyfile(audio, folder / "audio.wav")
        row["audio_path"] = f"{video_id}/audio.wav"
    wh.append("videos", [row])
    return row
