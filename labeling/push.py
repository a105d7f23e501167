"""Push processed videos to Label Studio as labeling tasks (stage `label_push`).

"Processed" = the video's current row is `ok` and its ASR stage is done. Each task carries the
video (a local-files URL Label Studio serves from the media root), title, description,
uploader, transcript, fps and `video_id`. Optional model predictions go in as pre-annotations
with their `model_version` and score.

The warehouse is the record: a video with a `label_tasks` row for the project is never pushed
again, and each pushed video gets a `done` row in the stage ledger. A batch that fails is
marked failed there (kind and reason), so the next push retries it. Because a connection can
break after Label Studio committed a batch, a push that has anything to send first asks Label
Studio which `video_id`s the project already holds and records those instead of importing them
twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

from label_studio_sdk import LabelStudio
from label_studio_sdk.core.api_error import ApiError

from chfen import registry
from chfen.asr.words import join_words
from chfen.config import Settings
from labeling import config as lc
from labeling.project import connect, describe_api_error, ensure_project, is_unreachable
from labeling.server import LabelStudioError, server_paths
from warehouse import Warehouse

log = logging.getLogger("labeling.push")

STAGE = registry.LABEL_PUSH
STAGE_VERSION = registry.version(STAGE)
(ASR_STAGE,) = registry.get(STAGE).after  # a video is ready to push when its ASR is done
LOCAL_FILES_PREFIX = "/data/local-files/?d="
# Used only when a video has no measured frame rate (the probe stage normally sets it).
FALLBACK_FPS = 30.0


class Prediction(NamedTuple):
    """A model's video-level guess, shown to annotators as a pre-annotation."""

    label: str
    score: float
    model_version: str


class LabelPushError(LabelStudioError):
    """The push stopped (Label Studio unreachable); what was pushed stays recorded."""


@dataclass
class PushReport:
    """What one push did."""

    project_id: int
    pushed: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)  # already in Label Studio, now recorded
    predictions_added: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # video_id -> reason
    already_pushed: int = 0
    seconds: float = 0.0


def processed_videos(
    wh: Warehouse,
    project_id: int,
    *,
    asr_stage: str = ASR_STAGE,
    asr_version: str | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Videos (status ok, ASR done) without a task in this project, oldest id first.

    `asr_version=None` accepts the ASR stage done at any version.
    """
    version_clause = "AND s.stage_version = $asr_version" if asr_version is not None else ""
    sql = f"""
        SELECT v.video_id, v.title, v.description, v.uploader, v.fps, v.duration_s,
               v.media_path
        FROM videos_latest v
        WHERE v.status = 'ok'
          AND EXISTS (SELECT 1 FROM stage_runs_latest s
                      WHERE s.video_id = v.video_id AND s.stage = $asr_stage
                        AND s.status = 'done' {version_clause})
          AND NOT EXISTS (SELECT 1 FROM label_tasks_latest t
                          WHERE t.video_id = v.video_id AND t.project_id = $project_id)
        ORDER BY v.video_id
    """
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    params: dict[str, Any] = {"asr_stage": asr_stage, "project_id": project_id}
    if asr_version is not None:
        params["asr_version"] = asr_version
    return wh.rows(sql, params)


def transcripts(wh: Warehouse, video_ids: Sequence[str]) -> dict[str, str]:
    """video_id -> transcript text from `transcript_words` (one line per ASR segment).

    Joined as the segment's own text is (`join_words`): no spaces between Chinese words."""
    if not video_ids:
        return {}
    rows = wh.rows(
        """
        SELECT video_id, segment_idx, word FROM transcript_words_latest
        WHERE video_id IN (SELECT unnest($ids))
        ORDER BY video_id, word_idx
        """,
        {"ids": list(video_ids)},
    )
    lines: dict[str, list[list[str]]] = {}
    last_segment: dict[str, Any] = {}
    for row in rows:
        vid = row["video_id"]
        video_lines = lines.setdefault(vid, [])
        if not video_lines or row["segment_idx"] != last_segment.get(vid):
            video_lines.append([])
            last_segment[vid] = row["segment_idx"]
        video_lines[-1].append(row["word"])
    # Words as the ASR stage writes them: spaced, except between Chinese characters.
    return {
        vid: "\n".join(join_words(w.strip() for w in words) for words in segs)
        for vid, segs in lines.items()
    }


def local_files_url(media_path: str, media_root: Path, document_root: Path) -> str:
    """The task URL of a media file given relative to (or absolute under) the media root.

    Label Studio resolves `?d=` against its document root (the media root's parent).
    """
    path = Path(media_path)
    full = path.resolve() if path.is_absolute() else (media_root / path).resolve()
    try:
        rel = full.relative_to(media_root.resolve())
    except ValueError:
        raise ValueError(
            f"media file {media_path} is not under the media root {media_root}"
        ) from None
    if not full.is_file():
        raise ValueError(f"media file {full} does not exist")
    below_doc_root = (media_root.resolve() / rel).relative_to(document_root.resolve())
    return LOCAL_FILES_PREFIX + quote(below_doc_root.as_posix(), safe="/")


def prediction_result(label: str) -> list[dict[str, Any]]:
    """A pre-annotation result: the video-level emotion choice."""
    if label not in lc.LABELS:
        raise ValueError(f"predicted label {label!r} is not one of {lc.LABELS}")
    return [
        {
            "from_name": lc.EMOTION,
            "to_name": lc.VIDEO,
            "type": "choices",
            "value": {"choices": [label]},
        }
    ]


def build_task(
    video: Mapping[str, Any],
    transcript: str,
    media_root: Path,
    document_root: Path,
    prediction: Prediction | None = None,
) -> dict[str, Any]:
    """One Label Studio task for a `videos` row (raises ValueError for unusable rows)."""
    vid = video["video_id"]
    if not video.get("media_path"):
        raise ValueError("the video has no media_path")
    url = local_files_url(video["media_path"], media_root, document_root)
    fps = float(video["fps"]) if video.get("fps") else FALLBACK_FPS
    task: dict[str, Any] = {
        "data": {
            lc.VIDEO: url,
            lc.TITLE: video.get("title") or vid,
            "description": video.get("description") or "",
            "uploader": video.get("uploader") or "",
            lc.TRANSCRIPT: transcript or "(no speech recognised)",
            "fps": fps,
            "duration_s": video.get("duration_s"),
            "video_id": vid,
        }
    }
    if prediction is not None:
        label, score, model_version = prediction
        task["predictions"] = [
            {
                "model_version": model_version,
                "score": float(score),
                "result": prediction_result(label),
            }
        ]
    return task


def tasks_in_project(client: LabelStudio, project_id: int) -> dict[str, int]:
    """video_id -> task id of every task Label Studio holds for the project."""
    found: dict[str, int] = {}
    for task in client.tasks.list(project=project_id, fields="task_only", page_size=500):
        vid = (task.data or {}).get("video_id")
        if vid is not None and task.id is not None:
            found.setdefault(str(vid), int(task.id))
    return found


def push_tasks(
    settings: Settings,
    wh: Warehouse,
    *,
    predictions: Mapping[str, Prediction | tuple[str, float, str]] | None = None,
    asr_stage: str = ASR_STAGE,
    asr_version: str | None = None,
    stage_version: str = STAGE_VERSION,
    limit: int | None = None,
    client: LabelStudio | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    say: Callable[[str], None] | None = None,
) -> PushReport:
    """Push every processed video not pushed yet, in batches of `labelstudio.batch_size`.

    `predictions` (video_id -> (label, score, model_version)) become pre-annotations; tasks
    pushed earlier get a new prediction when its model_version is new to them. `on_batch(done,
    total)` is called after each batch (progress). Raises `LabelPushError` when Label Studio
    cannot be reached; the batch in flight is then marked failed in the ledger.
    """
    t0 = time.perf_counter()
    say = say or log.info
    client = client or connect(settings)
    preds = {k: Prediction(*v) for k, v in (predictions or {}).items()}
    try:
        project = ensure_project(settings, client, log=say)
    except LabelStudioError as exc:
        raise LabelPushError(str(exc).replace("[label_project]", f"[{STAGE}]", 1)) from exc
    report = PushReport(project.id)
    paths = server_paths(settings)

    todo = processed_videos(
        wh, project.id, asr_stage=asr_stage, asr_version=asr_version, limit=limit
    )
    report.already_pushed = _count_pushed(wh, project.id)
    if todo:
        in_ls = _call(settings, report, lambda: tasks_in_project(client, project.id), todo)
        recovered = [v for v in todo if v["video_id"] in in_ls]
        if recovered:
            # Imported by an earlier push whose confirmation was lost: record, do not re-import.
            _record(wh, project, recovered, in_ls, preds, stage_version)
            report.recovered = [v["video_id"] for v in recovered]
            todo = [v for v in todo if v["video_id"] not in in_ls]

    texts = transcripts(wh, [v["video_id"] for v in todo])
    size = settings.labelstudio.batch_size
    total = len(todo)
    for start in range(0, total, size):
        batch = todo[start : start + size]
        started = dt.datetime.now(dt.UTC)
        tasks, ready = [], []
        for video in batch:
            vid = video["video_id"]
            try:
                tasks.append(
                    build_task(
                        video,
                        texts.get(vid, ""),
                        paths.media_root,
                        paths.document_root,
                        preds.get(vid),
                    )
                )
                ready.append(video)
            except ValueError as exc:
                reason = f"cannot build the task: {exc}"
                wh.mark_failed(vid, STAGE, stage_version, reason, error_kind="corrupt")
                report.failed[vid] = reason
        if not tasks:
            continue
        try:
            response = client.projects.import_tasks(
                project.id, request=tasks, return_task_ids=True, commit_to_project=True
            )
            task_ids = list(response.task_ids or [])
            if len(task_ids) != len(ready):
                raise ApiError(
                    status_code=500,
                    body=f"Label Studio returned {len(task_ids)} task ids for {len(ready)} tasks",
                )
        except Exception as exc:
            reason = describe_api_error(exc, settings)
            kind = (
                "network"
                if is_unreachable(exc)
                else "http"
                if isinstance(exc, ApiError)
                else ("internal")
            )
            _mark_batch_failed(wh, ready, stage_version, reason, kind, started)
            report.failed.update({v["video_id"]: reason for v in ready})
            if is_unreachable(exc):
                raise LabelPushError(
                    f"[{STAGE}] {reason}. Batch {start // size + 1} "
                    f"({_ids(ready)}) is marked failed; {len(report.pushed)} video(s) were pushed "
                    f"before. Run the push again once Label Studio is up: nothing is pushed twice."
                ) from exc
            log.warning("[%s] batch of %d failed: %s", STAGE, len(ready), reason)
            continue
        ids = {v["video_id"]: tid for v, tid in zip(ready, task_ids, strict=True)}
        _record(wh, project, ready, ids, preds, stage_version, started)
        report.pushed.extend(ids)
        if on_batch is not None:
            on_batch(min(start + size, total), total)

    if preds:
        _push_new_predictions(settings, wh, client, project, preds, report)
    report.seconds = time.perf_counter() - t0
    say(
        f"[{STAGE}] project {project.id}: pushed {len(report.pushed)}, recovered "
        f"{len(report.recovered)}, failed {len(report.failed)}, predictions added "
        f"{len(report.predictions_added)} in {report.seconds:.1f} s"
    )
    return report


def _ids(videos: Sequence[Mapping[str, Any]], most: int = 5) -> str:
    names = [v["video_id"] for v in videos]
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def _call(settings: Settings, report: PushReport, fn: Callable[[], Any], videos: list) -> Any:
    try:
        return fn()
    except Exception as exc:
        if is_unreachable(exc) or isinstance(exc, ApiError):
            raise LabelPushError(
                f"[{STAGE}] {describe_api_error(exc, settings)}; nothing was pushed "
                f"({len(videos)} video(s) waiting: {_ids(videos)})"
            ) from exc
        raise


def _count_pushed(wh: Warehouse, project_id: int) -> int:
    rows = wh.rows(
        "SELECT count(*) AS n FROM label_tasks_latest WHERE project_id = ?", [project_id]
    )
    return int(rows[0]["n"])


def _ledger_rows(
    video_ids: Iterable[str], stage_version: str, started: dt.datetime | None
) -> list[dict[str, Any]]:
    now = dt.datetime.now(dt.UTC)
    return [
        {
            "video_id": vid,
            "stage": STAGE,
            "stage_version": stage_version,
            "status": "done",
            "started_at": started,
            "finished_at": now,
            "duration_s": (now - started).total_seconds() if started else None,
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }
        for vid in video_ids
    ]


def _record(
    wh: Warehouse,
    project: Any,
    videos: Sequence[Mapping[str, Any]],
    task_ids: Mapping[str, int],
    preds: Mapping[str, Prediction],
    stage_version: str,
    started: dt.datetime | None = None,
) -> None:
    """label_tasks rows and `done` ledger rows for a batch (two commits, not one per video)."""
    now = dt.datetime.now(dt.UTC)
    rows = [
        {
            "video_id": v["video_id"],
            "project_id": project.id,
            "task_id": task_ids[v["video_id"]],
            "project_title": project.title,
            "pushed_at": now,
            "prediction_model_version": (
                preds[v["video_id"]].model_version if v["video_id"] in preds else None
            ),
        }
        for v in videos
    ]
    wh.append("label_tasks", rows, refresh_catalog=False)
    wh.append("stage_runs", _ledger_rows([v["video_id"] for v in videos], stage_version, started))


def _mark_batch_failed(
    wh: Warehouse,
    videos: Sequence[Mapping[str, Any]],
    stage_version: str,
    reason: str,
    kind: str,
    started: dt.datetime,
) -> None:
    for video in videos:
        vid = video["video_id"]
        wh.mark_failed(
            vid,
            STAGE,
            stage_version,
            f"[{STAGE}] {vid}: {reason}",
            error_kind=kind,
            started_at=started,
        )


def _push_new_predictions(
    settings: Settings,
    wh: Warehouse,
    client: LabelStudio,
    project: Any,
    preds: Mapping[str, Prediction],
    report: PushReport,
) -> None:
    """Add predictions of a new model_version to tasks pushed earlier; recorded in label_tasks."""
    rows = wh.rows(
        "SELECT video_id, task_id, prediction_model_version FROM label_tasks_latest "
        "WHERE project_id = ?",
        [project.id],
    )
    added = []
    latest_version = None
    for row in rows:
        pred = preds.get(row["video_id"])
        if pred is None or row["prediction_model_version"] == pred.model_version:
            continue
        try:
            client.predictions.create(
                task=int(row["task_id"]),
                result=prediction_result(pred.label),
                score=float(pred.score),
                model_version=pred.model_version,
            )
        except Exception as exc:
            if is_unreachable(exc):
                raise LabelPushError(
                    f"[{STAGE}] {row['video_id']}: adding the prediction failed: "
                    f"{describe_api_error(exc, settings)}"
                ) from exc
            report.failed[row["video_id"]] = describe_api_error(exc, settings)
            continue
        added.append(
            {
                **row,
                "project_id": project.id,
                "project_title": project.title,
                "prediction_model_version": pred.model_version,
            }
        )
        latest_version = pred.model_version
    if added:
        wh.append("label_tasks", added)
        report.predictions_added = [r["video_id"] for r in added]
    newest = latest_version or next(iter(preds.values())).model_version
    try:
        # Label Studio pre-fills the editor with the project's current model_version.
        client.projects.update(project.id, model_version=newest, show_collab_predictions=True)
    except ApiError as exc:
        log.warning("[%s] could not set the project's model_version: %s", STAGE, exc)
