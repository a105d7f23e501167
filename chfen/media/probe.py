"""Probe, verify-by-decoding and audio extraction for one media file (ffmpeg, ffmpeg-python).

A download that "completed" is not yet a video: a truncated mp4 probes with its full duration
and a garbage file may still have a container header. `verify_decodes` decodes every video
frame and compares what came out with what the container claims.
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import ffmpeg


class MediaError(Exception):
    """The file is not the media it claims to be (kind 'corrupt')."""


@dataclass(frozen=True)
class ProbeInfo:
    duration_s: float
    width: int
    height: int
    fps: float
    variable_fps: bool
    frame_count: int | None
    has_audio: bool
    video_codec: str
    audio_codec: str | None
    file_size: int
    # False only for an audio-only file probed with `allow_audio_only`: the picture fields
    # (width, height, fps, frame_count, video_codec) are then 0/None/"" and mean "absent".
    has_video: bool = True


def _rate(text: str | None) -> float:
    try:
        value = Fraction(text or "0")
    except (ValueError, ZeroDivisionError):
        return 0.0
    return float(value) if value.denominator else 0.0


def probe(path: Path, *, allow_audio_only: bool = False) -> ProbeInfo:
    """Container and stream facts; MediaError when there is no video stream (with
    `allow_audio_only`: when there is neither a video nor an audio stream)."""
    try:
        meta = ffmpeg.probe(str(path))
    except ffmpeg.Error as exc:
        detail = (exc.stderr or b"").decode(errors="replace").replace(str(path), path.name)
        lines = detail.strip().splitlines()
        raise MediaError(f"ffprobe cannot read the file: {lines[-1] if lines else exc}") from None
    streams = meta.get("streams", [])
    video = next(
        (
            s
            for s in streams
            if s.get("codec_type") == "video"
            # cover art of an audio file is a one-picture "video" stream, not a video
            and not (s.get("disposition") or {}).get("attached_pic")
        ),
        None,
    )
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    if video is None and allow_audio_only and audio is not None:
        return ProbeInfo(
            duration_s=float(meta.get("format", {}).get("duration") or audio.get("duration") or 0),
            width=0,
            height=0,
            fps=0.0,
            variable_fps=False,
            frame_count=None,
            has_audio=True,
            video_codec="",
            audio_codec=str(audio.get("codec_name")),
            file_size=path.stat().st_size,
            has_video=False,
        )
    if video is None:
        raise MediaError(
            "the file has neither a video nor an audio stream"
            if allow_audio_only
            else "the file has no video stream"
        )
    duration = float(meta.get("format", {}).get("duration") or video.get("duration") or 0)
    avg = _rate(video.get("avg_frame_rate"))
    real = _rate(video.get("r_frame_rate"))
    nb = video.get("nb_frames")
    return ProbeInfo(
        duration_s=duration,
        width=int(video.get("width") or 0),
        height=int(video.get("height") or 0),
        fps=avg or real,
        # r_frame_rate is the base rate; an average that differs means frame times vary.
        variable_fps=bool(avg and real and abs(avg - real) > 0.01 * real),
        frame_count=int(nb) if nb and str(nb).isdigit() else None,
        has_audio=audio is not None,
        video_codec=str(video.get("codec_name")),
        audio_codec=str(audio.get("codec_name")) if audio else None,
        file_size=path.stat().st_size,
    )


@dataclass(frozen=True)
class DecodeCheck:
    frames: int
    decoded_s: float


def verify_decodes(path: Path, info: ProbeInfo, *, tolerance_s: float = 0.5) -> DecodeCheck:
    """Decode every video frame; MediaError when decoding fails or stops short of the
    container's duration (a truncated download) or yields no frames (garbage)."""
    cmd = [
        "ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-xerror",
        "-i", str(path), "-map", "0:v:0", "-f", "null", "-progress", "pipe:1", "-",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    progress: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition("=")
        progress[key.strip()] = value.strip()
    frames = int(progress.get("frame", "0") or 0)
    out_us = progress.get("out_time_us", "0")
    decoded_s = int(out_us) / 1e6 if out_us.lstrip("-").isdigit() else 0.0
    if proc.returncode != 0:
        err = proc.stderr.replace(str(path), path.name).strip().splitlines()
        raise MediaError(
            f"decoding failed after {frames} frames: {err[-1] if err else 'ffmpeg error'}"
        )
    if frames == 0:
        raise MediaError("no video frame could be decoded")
    # out_time is the start of the last frame; add one frame period for the decoded span.
    span = decoded_s + (1.0 / info.fps if info.fps else 0.0)
    if span + tolerance_s < info.duration_s:
        raise MediaError(
            f"only {span:.2f} s of {info.duration_s:.2f} s decoded ({frames} frames): "
            "the file is truncated"
        )
    if info.frame_count and frames + max(2, 0.02 * info.frame_count) < info.frame_count:
        raise MediaError(f"decoded {frames} of {info.frame_count} frames: the file is truncated")
    return DecodeCheck(frames, span)


def verify_audio_decodes(path: Path, info: ProbeInfo, *, tolerance_s: float = 0.5) -> float:
    """Decode the first audio stream whole; the seconds decoded, or MediaError when decoding
    fails or stops short of the container's duration (a truncated file)."""
    cmd = [
        "ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-xerror",
        "-i", str(path), "-map", "0:a:0", "-f", "null", "-progress", "pipe:1", "-",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    out_us = "0"
    for line in proc.stdout.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "out_time_us":
            out_us = value.strip()
    decoded_s = int(out_us) / 1e6 if out_us.lstrip("-").isdigit() else 0.0
    if proc.returncode != 0:
        err = proc.stderr.replace(str(path), path.name).strip().splitlines()
        raise MediaError(f"audio decoding failed: {err[-1] if err else 'ffmpeg error'}")
    if decoded_s <= 0:
        raise MediaError("no audio could be decoded")
    if decoded_s + tolerance_s < info.duration_s:
        raise MediaError(
            f"only {decoded_s:.2f} s of {info.duration_s:.2f} s of audio decoded: "
            "the file is truncated"
        )
    return decoded_s


def extract_audio(path: Path, out: Path, sample_rate: int = 16000) -> Path:
    """16 kHz (default) mono 16-bit WAV of the first audio stream, written atomically."""
    tmp = out.with_name(out.name + ".tmp.wav")
    try:
        (
            ffmpeg.input(str(path))
            .output(str(tmp), map="0:a:0", ac=1, ar=sample_rate, acodec="pcm_s16le", vn=None)
            .global_args("-nostdin", "-hide_banner", "-v", "error", "-xerror")
            .overwrite_output()
            .run(capture_stdout=True, capture_stderr=True)
        )
    except ffmpeg.Error as exc:
        tmp.unlink(missing_ok=True)
        detail = (exc.stderr or b"").decode(errors="replace").strip().splitlines()
        raise MediaError(f"audio extraction failed: {detail[-1] if detail else exc}") from None
    tmp.replace(out)
    return out


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
