"""The `embed` flow: multimodal embeddings for videos whose scenes and ASR are done.

The stage's version hashes every encoder setting, so changing an encoder makes videos pending
again, and the stage itself recomputes only the modalities whose encoder changed.

With the thread runner videos are embedded one at a time (the encoders use both cores); with
Dask (flows/scaleout.py) every worker process embeds its own videos with its own encoders,
loaded once per process.
"""

from __future__ import annotations

import time
from collections import Counter

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from chfen import registry
from chfen.embed.keys import STAGE
from chfen.embed.stage import EmbedResult, EmbedStage
from chfen.stages import Outcome, run_for_video
from flows import scaleout
from flows.runtime import ResolvedSettings, locked, report, resolve_settings
from warehouse import Warehouse


def ready_for_embed(wh: Warehouse, version: str, retry_failed: bool = False) -> list[str]:
    """Pending at the embed version, with the stages embed depends on (chfen/registry.py:
    scenes and ASR) done at their current versions."""
    pending = wh.pending(STAGE, version, retry_failed=retry_failed)
    sql, params = registry.ready_sql(STAGE)
    ready = {r["video_id"] for r in wh.rows(sql, params)}
    return [v for v in pending if v in ready]


def embed_stage(payload: str) -> EmbedStage:
    """This process's EmbedStage for these settings, its encoders loaded."""

    def build() -> EmbedStage:
        stage = EmbedStage(scaleout.warehouse(payload), scaleout.worker_settings(payload).embed)
        stage.warm_up()  # once per process, not per video
        return stage

    return scaleout.cached(("embed", payload), build)


@task(name="embed-video", cache_policy=NO_CACHE, task_run_name="embed {video_id}")
def embed_video(settings: str, video_id: str) -> tuple[Outcome, dict]:
    """Embed one video; `settings` is the flow's `scaleout.settings_payload`."""
    stage = embed_stage(settings)
    results: dict[str, EmbedResult] = {}

    def work(vid: str) -> EmbedResult:
        results[vid] = stage(vid)
        return results[vid]

    outcome = run_for_video(stage.wh, stage.name, stage.version, video_id, work)
    res = results.get(video_id)
    return outcome, (res.vectors if res else {})


@flow(name="embed")
@locked(STAGE)
def embed_flow(
    settings_file: str | None = None,
    overrides: list[str] | None = None,
    limit: int | None = None,
    retry_failed: bool = False,
    settings: ResolvedSettings = None,
) -> dict:
    """Embed every ready video."""
    logger = get_run_logger()
    settings = resolve_settings(settings, settings_file, overrides)
    wh = Warehouse(settings.data_path)
    payload = scaleout.settings_payload(settings)
    version = EmbedStage(wh, settings.embed).version
    todo = ready_for_embed(wh, version, retry_failed)[:limit]
    report("embed:total", len(todo))
    logger.info("embed %s: %d video(s) ready", version, len(todo))
    vectors: Counter = Counter()
    outcomes = []
    t0 = time.perf_counter()
    if todo:
        # one video at a time in this process; with Dask, one per worker process
        one_at_a_time = scaleout.in_process(settings)
        if one_at_a_time:
            embed_stage(payload)  # load the encoders before the first video
        jobs = {STAGE: [(embed_video, {"settings": payload, "video_id": v}) for v in todo]}

        def done(_: str, result: tuple[Outcome, dict]) -> None:
            report("embed:done", result[0])
            vectors.update(result[1])

        with (
            scaleout.batched(settings, payload),
            scaleout.task_runner(settings, max_workers=1) as runner,
        ):
            made = scaleout.run_bounded(
                runner, jobs, {STAGE: 1 if one_at_a_time else None}, on_done=done
            )
        outcomes = [outcome for outcome, _ in made[STAGE]]
    wh.refresh_catalog()
    ok = [o for o in outcomes if o.ok]
    return {
        "version": version,
        "done": len(ok),
        "failed": len(outcomes) - len(ok),
        "failures": [
            {"video_id": o.video_id, "kind": o.kind, "reason": o.message}
            for o in outcomes
            if not o.ok
        ],
        "vectors": dict(vectors),
        "seconds_per_video": round((time.perf_counter() - t0) / len(ok), 2) if ok else None,
    }
