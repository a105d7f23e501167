"""The shared time grid: which seconds a grid step covers, and what lands in each step.

Step k covers [k / hz, (k + 1) / hz), the last one cut at the video's end, so the steps tile
the whole video: a 7.5 s video at 1 Hz has 8 steps, the last 0.5 s long. Everything placed on
the grid (words, audio frames, stills) goes to the step holding its time point; a step that
receives nothing has no vector (absent, never zeros).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

# Times within this of a step boundary count as on it (float noise from seconds * hz).
_EPS = 1e-6


@dataclass(frozen=True)
class TimeGrid:
    """`n_steps` steps of 1 / `hz` seconds over a video of `duration_s` seconds."""

    hz: float
    duration_s: float

    def __post_init__(self) -> None:
        if self.hz <= 0:
            raise ValueError(f"grid rate must be positive, got {self.hz}")
        if not math.isfinite(self.duration_s) or self.duration_s < 0:
            raise ValueError(f"video duration must be a finite number >= 0, got {self.duration_s}")

    @property
    def n_steps(self) -> int:
        """Steps needed to cover the video (a zero-length video has none)."""
        return max(0, math.ceil(self.duration_s * self.hz - _EPS))

    def bounds(self, k: int) -> tuple[float, float]:
        """[start, end) seconds of step k (the last step ends at the video's end)."""
        if not 0 <= k < self.n_steps:
            raise IndexError(f"grid step {k} outside 0..{self.n_steps - 1}")
        return k / self.hz, min((k + 1) / self.hz, self.duration_s)

    def middle(self, k: int) -> float:
        """The time at the middle of step k."""
        start, end = self.bounds(k)
        return (start + end) / 2

    def step_of(self, t: float) -> int | None:
        """The step holding time `t`, or None when `t` lies outside the video."""
        if not math.isfinite(t) or t < -_EPS or t >= self.duration_s + _EPS:
            return None
        return min(max(0, math.floor(t * self.hz + _EPS)), self.n_steps - 1)


@dataclass(frozen=True)
class TimedWord:
    """One transcript word with its times (seconds; either may be unknown)."""

    word: str
    start_s: float | None
    end_s: float | None


def words_per_step(grid: TimeGrid, words: Iterable[TimedWord]) -> dict[int, list[str]]:
    """Step -> the words spoken in it, in order.

    A word belongs to the step holding its midpoint (its start when the end is unknown), so
    every timed word lands in exactly one step. Words without any time are left out.
    """
    steps: dict[int, list[str]] = {}
    for w in words:
        if w.start_s is None and w.end_s is None:
            continue
        if w.start_s is None or w.end_s is None:
            t = w.start_s if w.start_s is not None else w.end_s
        else:
            t = (w.start_s + w.end_s) / 2
        k = grid.step_of(float(t))
        text = w.word.strip()
        if k is not None and text:
            steps.setdefault(k, []).append(text)
    return steps


def pool_frames(
    grid: TimeGrid, frames: np.ndarray, times: Sequence[float] | np.ndarray
) -> dict[int, tuple[np.ndarray, int]]:
    """Step -> (mean of the frame vectors whose time falls in it, frame count).

    `frames` is (N, D), `times` the N frame centres in seconds. Steps with no frame are absent.
    """
    frames = np.asarray(frames, dtype=np.float32)
    t = np.asarray(times, dtype=np.float64)
    if frames.ndim != 2 or frames.shape[0] != t.shape[0]:
        raise ValueError(f"frames {frames.shape} and times {t.shape} do not match")
    inside = (t >= -_EPS) & (t < grid.duration_s + _EPS)
    steps = np.minimum(np.floor(t[inside] * grid.hz + _EPS).astype(np.int64), grid.n_steps - 1)
    kept = frames[inside]
    pooled: dict[int, tuple[np.ndarray, int]] = {}
    if kept.shape[0] == 0:
        return pooled
    order = np.argsort(steps, kind="stable")
    steps, kept = steps[order], kept[order]
    cuts = np.flatnonzero(np.diff(steps)) + 1
    for chunk_steps, chunk in zip(np.split(steps, cuts), np.split(kept, cuts), strict=True):
        pooled[int(chunk_steps[0])] = (chunk.mean(axis=0), int(chunk.shape[0]))
    return pooled
