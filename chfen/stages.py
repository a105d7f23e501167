"""The one shape every per-video stage shares, and the loop that records its outcome.

A stage is a plain callable `stage(video_id) -> StageResult` (usually a small class: settings
in `__init__`, work in `__call__`, models loaded once per instance). It returns the rows it
produced per table, or raises `StageError` with a kind the user can act on. It knows nothing
about Prefect; `flows/` only wires stages to tasks.

`run_for_video` is "run stage → write rows → mark done", or "mark failed" with the video id,
the stage and the reason: one bad video never stops the others.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from warehouse import Warehouse

log = logging.getLogger("chfen.stages")

# Kinds of failure, so a user (and the quality report) can tell them apart.
KINDS = {
    "network": "the server could not be reached or the connection broke",
    "http": "the server answered with an error status",
    "timeout": "the server stopped answering",
    "corrupt": "the file does not decode as the media it claims to be",
    "limit": "a configured limit (duration, file size) was exceeded",
    "unsupported": "the URL or format is not supported",
    "internal": "a bug in the pipeline; please report it with the traceback",
}


class StageError(Exception):
    """A failure of one stage for one video, with a kind from KINDS."""

    def __init__(
        self,
        video_id: str,
        stage: str,
        message: str,
        kind: str = "internal",
        *,
        transient: bool = False,
    ):
        if kind not in KINDS:
            raise ValueError(f"unknown failure kind {kind!r}; use one of {sorted(KINDS)}")
        self.video_id, self.stage, self.kind, self.message = video_id, stage, kind, message
        self.transient = transient  # may succeed when tried again later
        super().__init__(f"[{stage}] {video_id}: {message}")


@dataclass
class StageResult:
    """What a stage produced for one video: rows per table, timings, and a short note."""

    video_id: str
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    note: str | None = None  # e.g. "no audio track": done, but worth knowing


def video_row(wh: Warehouse, video_id: str, stage: str, columns: Sequence[str]) -> dict[str, Any]:
    """A crawled video's current `videos` row (these columns and its status), or a StageError
    saying what to do: crawl it first, or re-crawl it when its status is not ok."""
    cols = ", ".join(dict.fromkeys([*columns, "status"]))
    rows = wh.rows(f"SELECT {cols} FROM videos_latest WHERE video_id = ?", [video_id])
    if not rows:
        raise StageError(
            video_id, stage, f"no row in `videos`: crawl the video before the {stage} stage",
            "internal",
        )  # fmt: skip
    if rows[0]["status"] != "ok":
        raise StageError(
            video_id, stage, f"the video's status is {rows[0]['status']!r}; re-crawl it",
            "corrupt",
        )  # fmt: skip
    return rows[0]


class Timer:
    """Collects named step timings: `with timer("decode"): ...`."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    def __call__(self, name: str) -> _Step:
        return _Step(self.timings, name)


class _Step:
    def __init__(self, timings: dict[str, float], name: str):
        self.timings, self.name = timings, name

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.timings[self.name] = self.timings.get(self.name, 0.0) + time.perf_counter() - self.t0


@dataclass
class Outcome:
    video_id: str
    stage: str
    ok: bool
    kind: str | None = None
    message: str | None = None
    note: str | None = None
    seconds: float = 0.0
    rows: Mapping[str, int] = field(default_factory=dict)


def run_for_video(
    wh: Warehouse,
    stage: str,
    version: str,
    video_id: str,
    work: Callable[[str], StageResult],
    *,
    source: str | None = None,
    url: str | None = None,
    limits: str | None = None,
) -> Outcome:
    """Run one stage for one video and record the outcome in the warehouse ledger (`limits`:
    the limits in force, recorded with a failure)."""
    where = {"source": source, "url": url, "limits": limits}
    started = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    try:
        result = work(video_id)
        for table, rows in result.rows.items():
            if rows:
                wh.append(table, rows, refresh_catalog=False)
        wh.mark_done(video_id, stage, version, result.timings, started_at=started)
        return Outcome(
            video_id,
            stage,
            True,
            note=result.note,
            seconds=time.perf_counter() - t0,
            rows={t: len(r) for t, r in result.rows.items()},
        )
    except StageError as exc:
        wh.mark_failed(
            video_id, stage, version, exc.message, error_kind=exc.kind, started_at=started,
            transient=exc.transient, **where,
        )  # fmt: skip
        log.warning("%s", exc)
        return Outcome(
            video_id, stage, False, exc.kind, exc.message, seconds=time.perf_counter() - t0
        )
    except Exception as exc:  # a bug: record it with its type, keep the other videos going
        log.exception("[%s] %s: unexpected error", stage, video_id)
        message = f"{type(exc).__name__}: {exc}"
        wh.mark_failed(
            video_id, stage, version, message, error_kind="internal", started_at=started, **where
        )
        return Outcome(
            video_id, stage, False, "internal", message, seconds=time.perf_counter() - t0
        )
