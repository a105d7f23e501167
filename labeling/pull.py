"""Pull annotations from Label Studio into the `annotations` table (stage `label_pull`).

Each pull takes a snapshot export (`projects.exports.create` + `download`, JSON; the old
one-shot export times out on big projects), parses it into one row per annotation (one
annotator on one task) and appends only what changed:

- an annotation not seen before, or whose `updated_at` is newer than the stored row: appended;
- an annotation stored (and not deleted) that is no longer in Label Studio: a copy with
  `deleted=True` is appended (annotations_latest then shows it deleted);
- anything else: nothing is written, so pulling twice changes nothing.

Each row's `origin` says who voted: `person`, `simulated` (the demo's crew) or `imported` (a
dataset brought in with `chfen import`), read from the annotator (`chfen.domain.origins`).

The watermark (`last_pull_watermark`) is max(updated_at) of the project's stored annotations:
everything Label Studio changed after it is new. The download itself is the whole project,
because a deletion can only be seen by its absence.

Timeline segments are exported in frames at the `<Video frameRate>` (the task's `fps`); they
are stored in seconds. Label Studio numbers frames from 1 and a range covers its end frame, so
frames a..b are the span [(a-1)/fps, b/fps].
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from label_studio_sdk import LabelStudio
from label_studio_sdk.core.api_error import ApiError

from chfen import registry
from chfen.config import Settings
from chfen.domain.origins import origin_of
from labeling import config as lc
from labeling.project import connect, describe_api_error, ensure_project, is_unreachable
from labeling.server import LabelStudioError
from warehouse import Warehouse

log = logging.getLogger("labeling.pull")

STAGE = registry.LABEL_PULL


class LabelPullError(LabelStudioError):
    """The pull could not export from Label Studio; nothing was written."""


@dataclass
class PullReport:
    """What one pull did."""

    project_id: int
    exported: int = 0  # annotations in the snapshot
    new: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    watermark_before: dt.datetime | None = None
    watermark_after: dt.datetime | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def written(self) -> int:
        return self.new + self.updated + self.deleted


# ---- parsing --------------------------------------------------------------------------------


def parse_time(value: Any) -> dt.datetime | None:
    """An ISO timestamp from Label Studio as an aware UTC datetime."""
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        stamp = value
    else:
        stamp = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return stamp.astimezone(dt.UTC)


def frames_to_seconds(start: float, end: float, fps: float) -> tuple[float, float]:
    """A Label Studio frame range (1-based, end frame included) as [start_s, end_s]."""
    if fps <= 0:
        raise ValueError(f"frame rate must be positive, got {fps}")
    lo, hi = sorted((float(start), float(end)))
    return round(max(lo - 1.0, 0.0) / fps, 6), round(hi / fps, 6)


def seconds_to_frames(start_s: float, end_s: float, fps: float) -> tuple[int, int]:
    """The inverse of `frames_to_seconds` (for building results, e.g. in the simulation)."""
    return int(round(start_s * fps)) + 1, max(
        int(round(end_s * fps)), int(round(start_s * fps)) + 1
    )


def parse_result(result: Iterable[Mapping[str, Any]], fps: float) -> dict[str, Any]:
    """choice, intensity, segments (in seconds) and note from one annotation's result list."""
    out: dict[str, Any] = {"choice": None, "intensity": None, "segments": [], "note": None}
    for item in result or []:
        name, value = item.get("from_name"), item.get("value") or {}
        if name == lc.EMOTION and value.get("choices"):
            out["choice"] = value["choices"][0]
        elif name == lc.INTENSITY and value.get("rating") is not None:
            out["intensity"] = int(value["rating"])
        elif name == lc.NOTE and value.get("text"):
            text = value["text"]
            out["note"] = "\n".join(text) if isinstance(text, list) else str(text)
        elif name == lc.SEGMENTS:
            labels = value.get("timelinelabels") or []
            for rng in value.get("ranges") or []:
                start_s, end_s = frames_to_seconds(rng["start"], rng["end"], fps)
                for label in labels:
                    out["segments"].append({"start_s": start_s, "end_s": end_s, "label": label})
    out["segments"].sort(key=lambda s: (s["start_s"], s["end_s"], s["label"]))
    return out


def _annotator(completed_by: Any, users: Mapping[int, str]) -> str:
    if isinstance(completed_by, Mapping):
        return (
            completed_by.get("email")
            or users.get(completed_by.get("id"), "")
            or str(completed_by.get("id"))
        )
    if completed_by is None:
        return "unknown"
    return users.get(int(completed_by), str(completed_by))


def annotation_rows(
    export: Iterable[Mapping[str, Any]],
    project_id: int,
    users: Mapping[int, str] | None = None,
    fps_by_video: Mapping[str, float] | None = None,
    pulled_at: dt.datetime | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """`annotations` rows from a JSON export (a list of tasks), plus warnings.

    The frame rate of a task is its own `fps` (what the labeling view used), else the video's.
    """
    users = users or {}
    fps_by_video = fps_by_video or {}
    pulled_at = pulled_at or dt.datetime.now(dt.UTC)
    rows, warnings = [], []
    for task in export:
        data = task.get("data") or {}
        video_id = data.get("video_id")
        fps = data.get("fps") or (fps_by_video.get(video_id) if video_id else None)
        for ann in task.get("annotations") or []:
            if fps is None and any(
                r.get("from_name") == lc.SEGMENTS for r in ann.get("result") or []
            ):
                warnings.append(
                    f"[{STAGE}] {video_id}: task {task.get('id')} has no fps; its segments "
                    f"were read at 30 fps"
                )
            parsed = parse_result(ann.get("result") or [], float(fps or 30.0))
            updated = parse_time(ann.get("updated_at")) or parse_time(ann.get("created_at"))
            annotator = _annotator(ann.get("completed_by"), users)
            rows.append(
                {
                    "annotation_id": int(ann["id"]),
                    "task_id": int(task["id"]),
                    "project_id": project_id,
                    "video_id": video_id,
                    "annotator": annotator,
                    "choice": parsed["choice"],
                    "intensity": parsed["intensity"],
                    "segments_json": json.dumps(parsed["segments"]),
                    "note": parsed["note"],
                    "lead_time_s": float(ann["lead_time"])
                    if ann.get("lead_time") is not None
                    else None,
                    "was_cancelled": bool(ann.get("was_cancelled")),
                    "deleted": False,
                    "created_at": parse_time(ann.get("created_at")),
                    "updated_at": updated or pulled_at,
                    "pulled_at": pulled_at,
                    "origin": origin_of(annotator),
                }
            )
    return rows, warnings


# ---- export ---------------------------------------------------------------------------------


def snapshot_export(
    settings: Settings, client: LabelStudio, project_id: int
) -> list[dict[str, Any]]:
    """Every task of the project with all its annotations (usual, skipped, ground truth),
    annotators expanded to their e-mail, via a snapshot export that is deleted afterwards."""
    export = client.projects.exports.create(
        project_id,
        title=f"chfen pull {dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%SZ}",
        task_filter_options={"only_with_annotations": False},
        annotation_filter_options={"usual": True, "ground_truth": True, "skipped": True},
        serialization_options={
            "annotations__completed_by": {"only_id": False},
            "include_annotation_history": False,
        },
    )
    export_id = int(export.id)
    try:
        deadline = time.monotonic() + settings.labelstudio.export_timeout_s
        status = getattr(export, "status", None)
        while status != "completed":
            if status == "failed":
                raise LabelPullError(
                    f"[{STAGE}] Label Studio failed to build export {export_id} of project "
                    f"{project_id}; see its log (`chfen labelstudio status` shows where)"
                )
            if time.monotonic() > deadline:
                raise LabelPullError(
                    f"[{STAGE}] export {export_id} of project {project_id} was not ready after "
                    f"{settings.labelstudio.export_timeout_s:.0f} s (status {status}); raise "
                    "labelstudio.export_timeout_s"
                )
            time.sleep(0.5)
            status = client.projects.exports.get(project_id, export_id).status
        body = b"".join(client.projects.exports.download(project_id, export_id, export_type="JSON"))
    finally:
        try:
            client.projects.exports.delete(project_id, export_id)
        except Exception as exc:  # a leftover export file is harmless; say so and go on
            log.warning("[%s] could not delete export %s: %s", STAGE, export_id, exc)
    data = json.loads(body)
    if not isinstance(data, list):
        raise LabelPullError(f"[{STAGE}] export of project {project_id} is not a list of tasks")
    return data


def user_emails(client: LabelStudio) -> dict[int, str]:
    """Label Studio user id -> e-mail (fallback when an export carries bare ids)."""
    return {int(u.id): (u.email or u.username or str(u.id)) for u in client.users.list() if u.id}


# ---- state in the warehouse -----------------------------------------------------------------


def last_pull_watermark(wh: Warehouse, project_id: int) -> dt.datetime | None:
    """max(updated_at) of the project's stored, not-deleted annotations (None before any pull)."""
    rows = wh.rows(
        "SELECT max(updated_at) AS w FROM annotations_latest "
        "WHERE project_id = ? AND NOT coalesce(deleted, false)",
        [project_id],
    )
    return rows[0]["w"] if rows else None


def _stored(wh: Warehouse, project_id: int) -> dict[int, dict[str, Any]]:
    rows = wh.rows("SELECT * FROM annotations_latest WHERE project_id = ?", [project_id])
    return {int(r["annotation_id"]): r for r in rows}


def _fps_by_video(wh: Warehouse) -> dict[str, float]:
    rows = wh.rows("SELECT video_id, fps FROM videos_latest WHERE fps IS NOT NULL")
    return {r["video_id"]: float(r["fps"]) for r in rows}


def pull_annotations(
    settings: Settings,
    wh: Warehouse,
    *,
    client: LabelStudio | None = None,
    say: Callable[[str], None] | None = None,
) -> PullReport:
    """Export the project, append new/updated annotations and deletions to `annotations`.

    Idempotent: a second pull with nothing changed in Label Studio writes nothing. Raises
    `LabelPullError` (naming the stage) when Label Studio cannot be reached or export fails.
    """
    t0 = time.perf_counter()
    say = say or log.info
    client = client or connect(settings)
    try:
        project = ensure_project(settings, client, log=say)
    except LabelStudioError as exc:
        raise LabelPullError(str(exc).replace("[label_project]", f"[{STAGE}]", 1)) from exc
    report = PullReport(project.id, watermark_before=last_pull_watermark(wh, project.id))
    try:
        export = snapshot_export(settings, client, project.id)
        needs_users = any(
            not isinstance(a.get("completed_by"), Mapping)
            for t in export
            for a in t.get("annotations") or []
        )
        users = user_emails(client) if needs_users else {}
    except LabelPullError:
        raise
    except Exception as exc:
        if is_unreachable(exc) or isinstance(exc, ApiError):
            raise LabelPullError(
                f"[{STAGE}] project {project.id}: {describe_api_error(exc, settings)}; "
                "nothing was written"
            ) from exc
        raise

    now = dt.datetime.now(dt.UTC)
    rows, report.warnings = annotation_rows(export, project.id, users, _fps_by_video(wh), now)
    report.exported = len(rows)
    stored = _stored(wh, project.id)
    out: list[dict[str, Any]] = []
    for row in rows:
        old = stored.get(row["annotation_id"])
        if old is None:
            report.new += 1
            out.append(row)
        elif old["deleted"] or row["updated_at"] > old["updated_at"]:
            # newer in Label Studio (or back after being marked deleted): the newest row wins
            row["updated_at"] = max(
                row["updated_at"], old["updated_at"] + dt.timedelta(microseconds=1)
            )
            report.updated += 1
            out.append(row)
        else:
            report.unchanged += 1
    present = {r["annotation_id"] for r in rows}
    for ann_id, old in stored.items():
        if ann_id not in present and not old["deleted"]:
            gone = dict(old)
            gone.update(
                deleted=True,
                updated_at=max(now, old["updated_at"] + dt.timedelta(microseconds=1)),
                pulled_at=now,
                origin=origin_of(old["annotator"]),
            )
            out.append(gone)
            report.deleted += 1
    if out:
        wh.append("annotations", out)
    report.watermark_after = last_pull_watermark(wh, project.id)
    report.seconds = time.perf_counter() - t0
    for warning in report.warnings:
        log.warning("%s", warning)
    say(
        f"[{STAGE}] project {project.id}: {report.exported} annotations exported; "
        f"{report.new} new, {report.updated} updated, {report.deleted} deleted, "
        f"{report.unchanged} unchanged in {report.seconds:.1f} s"
    )
    return report
