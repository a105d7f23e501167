"""The `process` flow: scenes and ASR for every pending video; the `keyframe_hash` flow: a
perceptual hash per new keyframe, after scenes.

Scenes and ASR of different videos overlap (two task kinds, each with its own limit:
`scenes.concurrency` scene decodes and `asr.concurrency` transcriptions at once, one each by
default, which fills 2 cores). Tasks run where `prefect.task_runner` says (flows/scaleout.py);
each process builds a stage once, loads its models once and serves every video it is given.
"""

from __future__ import annotations

from collections import Counter

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from chfen.asr import stage as asr
from chfen.media import keyframe_hash, scenes
from chfen.stages import Outcome, run_for_video
from flows import scaleout
from flows.runtime import (
    ResolvedSettings,
    locked,
    quiet_lightning,
    report,
    resolve_settings,
)
from warehouse import Warehouse


def process_stage(payload: str, name: str):
    """This process's stage `name` (scenes or asr) for these settings; ASR warmed up."""

    def build():
        settings = scaleout.worker_settings(payload)
        wh = scaleout.warehouse(payload)
        if name == scenes.STAGE:
            return scenes.ScenesStage(wh, settings.scenes)
        stage = asr.AsrStage(wh, settings.asr, settings.sources)
        quiet_lightning()
        stage.warm_up()  # once per process, not per video
        return stage

    return scaleout.cached((name, payload), build)


@task(name="stage-video", cache_policy=NO_CACHE, task_run_name="{stage} {video_id}")
def stage_video(settings: str, stage: str, video_id: str) -> Outcome:
    """One stage for one video; `settings` is the flow's `scaleout.settings_payload`."""
    st = process_stage(settings, stage)
    return run_for_video(st.wh, st.name, st.version, video_id, st)


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


@flow(name="process")
@locked(scenes.STAGE, asr.STAGE)
def process_flow(
    settings_file: str | None = None,
    overrides: list[str] | None = None,
    limit: int | None = None,
    retry_failed: bool = False,
    settings: ResolvedSettings = None,
) -> dict:
    """Scene segmentation and speech transcription for videos pending at either stage."""
    logger = get_run_logger()
    settings = resolve_settings(settings, settings_file, overrides)
    wh = Warehouse(settings.data_path)
    todo_scenes = wh.pending(scenes.STAGE, scenes.STAGE_VERSION, retry_failed=retry_failed)
    todo_asr = wh.pending(asr.STAGE, asr.STAGE_VERSION, retry_failed=retry_failed)
    if limit is not None:
        todo_scenes, todo_asr = todo_scenes[:limit], todo_asr[:limit]
    report("process:total", len(todo_scenes) + len(todo_asr))
    logger.info("pending: %d for scenes, %d for asr", len(todo_scenes), len(todo_asr))
    payload = scaleout.settings_payload(settings)
    if todo_asr and scaleout.in_process(settings):
        process_stage(payload, asr.STAGE)  # load the models before the first video
    jobs = {
        name: [(stage_video, {"settings": payload, "stage": name, "video_id": v}) for v in todo]
        for name, todo in ((scenes.STAGE, todo_scenes), (asr.STAGE, todo_asr))
    }
    outcomes: dict[str, list[Outcome]] = {scenes.STAGE: [], asr.STAGE: []}
    if todo_scenes or todo_asr:
        limits = {scenes.STAGE: settings.scenes.concurrency, asr.STAGE: settings.asr.concurrency}
        with (
            scaleout.batched(settings, payload),
            scaleout.task_runner(settings, max_workers=sum(limits.values())) as runner,
        ):
            outcomes = scaleout.run_bounded(
                runner, jobs, limits, on_done=lambda _, o: report("process:done", o)
            )
    summary = {name: stage_summary(outs) for name, outs in outcomes.items()}
    wh.refresh_catalog()
    return summary


@flow(name="keyframe_hash")
@locked(keyframe_hash.STAGE)
def keyframe_hash_flow(
    settings_file: str | None = None,
    overrides: list[str] | None = None,
    retry_failed: bool = False,
    settings: ResolvedSettings = None,
) -> dict:
    """Hash the keyframes of videos pending at the keyframe-hash stage (after scenes)."""
    settings = resolve_settings(settings, settings_file, overrides)
    wh = Warehouse(settings.data_path)
    todo = keyframe_hash.pending_videos(wh, retry_failed=retry_failed)
    report("keyframe_hash:total", len(todo))
    hashed = keyframe_hash.fill_keyframe_hashes(wh, retry_failed=retry_failed) if todo else 0
    get_run_logger().info("keyframe hashes: %d keyframe(s) of %d video(s)", hashed, len(todo))
    return {"videos": len(todo), "hashed": hashed}
