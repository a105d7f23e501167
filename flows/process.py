"""The `process` flow: scenes and ASR for every pending video.

Scenes and ASR of different videos overlap (two task kinds, each with its own limit: one
scene decode and `asr.concurrency` transcriptions at once by default, which fills 2 cores).
Each stage instance loads its models once and serves every video of the run.
"""

from __future__ import annotations

import threading
from collections import Counter

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from chfen.asr import stage as asr
from chfen.config import load_settings
from chfen.media import scenes
from chfen.stages import Outcome, run_for_video
from flows.runtime import quiet_lightning, report
from warehouse import Warehouse

SCENES_CONCURRENCY = 1  # one decode pass saturates a core; ASR takes the other


@task(name="stage-video", cache_policy=NO_CACHE, task_run_name="{stage.name} {video_id}")
def stage_video(wh: Warehouse, stage, video_id: str, limit: threading.Semaphore) -> Outcome:
    with limit:
        outcome = run_for_video(wh, stage.name, stage.version, video_id, stage)
    report("process:done", outcome)
    return outcome


def stage_summary(outcomes: list[Outcome]) -> dict:
    ok = [o for o in outcomes if o.ok]
    failed = [o for o in outcomes if not o.ok]
    return {
        "done": len(ok),
        "failed": len(failed),
        "notes": dict(Counter(o.note for o in ok if o.note)),
        "failures": [{"video_id": o.video_id, "kind": o.kind, "reason": o.message} for o in failed],
        "rows": dict(sum((Counter(o.rows) for o in ok), Counter())),
        "seconds_per_video": round(sum(o.seconds for o in ok) / len(ok), 2) if ok else None,
    }


@flow(name="process", task_runner=ThreadPoolTaskRunner(max_workers=4))
def process_flow(
    config: str | None = None,
    overrides: list[str] | None = None,
    limit: int | None = None,
    retry_failed: bool = False,
) -> dict:
    """Scene segmentation and speech transcription for videos pending at either stage."""
    logger = get_run_logger()
    settings, _ = load_settings(config, overrides or [])
    wh = Warehouse(settings.data_path)
    todo_scenes = wh.pending(scenes.STAGE, scenes.STAGE_VERSION, retry_failed=retry_failed)
    todo_asr = wh.pending(asr.STAGE, asr.STAGE_VERSION, retry_failed=retry_failed)
    if limit is not None:
        todo_scenes, todo_asr = todo_scenes[:limit], todo_asr[:limit]
    report("process:total", len(todo_scenes) + len(todo_asr))
    logger.info("pending: %d for scenes, %d for asr", len(todo_scenes), len(todo_asr))
    futures = {"scenes": [], "asr": []}
    if todo_scenes:
        scene_stage = scenes.ScenesStage(wh, settings.scenes)
        scene_limit = threading.BoundedSemaphore(SCENES_CONCURRENCY)
    if todo_asr:
        asr_stage = asr.AsrStage(wh, settings.asr)
        quiet_lightning()
        asr_stage.warm_up()  # once per worker, not per video
        asr_limit = threading.BoundedSemaphore(settings.asr.concurrency)
    # interleave so both kinds start early and overlap
    for i in range(max(len(todo_scenes), len(todo_asr))):
        if i < len(todo_scenes):
            futures["scenes"].append(
                stage_video.submit(wh, scene_stage, todo_scenes[i], scene_limit)
            )
        if i < len(todo_asr):
            futures["asr"].append(stage_video.submit(wh, asr_stage, todo_asr[i], asr_limit))
    summary = {name: stage_summary([f.result() for f in fs]) for name, fs in futures.items()}
    wh.refresh_catalog()
    return summary
