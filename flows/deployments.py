"""What `chfen serve` registers and serves against a Prefect server (local or remote):

    ingest       crawl → process → keyframe hashes → embed, on `prefect.crawl_cron`
    label-sync   label push → label pull (announces new agreed labels) → quality snapshot,
                 every `prefect.label_sync_minutes`
    embed        embeddings for processed videos (on demand)
    train        `train(config: TrainConfig)`: a form in the UI's custom run; also started by
                 an automation when `label_pull` emits `chfen.labels.ready-to-train` for this
                 data root (at least `prefect.retrain_min_new_labels` new agreed labels)

Every deployment gets the settings file (`settings_file`) and the overrides `chfen serve` ran
with (the data root pinned as an absolute path), so a run started from the UI works on the same
data; a run resolves them once and hands the resolved settings to its subflows.

`ingest` and `label-sync` select stages of the stage registry (chfen/registry.py) and run
their nodes (flows/dag.py) in registry order, the same nodes the pipeline flow runs.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow, get_run_logger
from prefect.events import DeploymentEventTrigger

from chfen.config import Settings
from chfen.domain.stages import (
    ASR,
    CRAWL,
    EMBED,
    KEYFRAME_HASH,
    LABEL_PULL,
    LABEL_PUSH,
    QUALITY,
    SCENES,
)
from flows import dag
from flows.embed import embed_flow
from flows.label import LABELS_READY, data_root_resource
from flows.runtime import ResolvedSettings, resolve_settings
from flows.train import train_flow

TAGS = ["chfen"]
# The registry stages each scheduled deployment runs (in registry order, whatever the order
# here).
INGEST = (CRAWL, SCENES, ASR, KEYFRAME_HASH, EMBED)
LABEL_SYNC = (LABEL_PUSH, LABEL_PULL, QUALITY)


@flow(name="ingest")
def ingest_flow(
    settings_file: str | None = None,
    overrides: list[str] | None = None,
    settings: ResolvedSettings = None,
) -> dict:
    """Crawl the configured sources, then scenes and speech, keyframe hashes, then embeddings
    for new videos."""
    settings = resolve_settings(settings, settings_file, overrides)
    return dag.run_nodes(dag.nodes(INGEST), settings)


@flow(name="label_sync")
def label_sync_flow(
    settings_file: str | None = None,
    overrides: list[str] | None = None,
    settings: ResolvedSettings = None,
) -> dict:
    """Push new tasks, pull annotations (which announces new agreed labels), then refresh the
    quality report so its snapshot shows the new votes."""
    settings = resolve_settings(settings, settings_file, overrides)
    done = dag.run_nodes(dag.nodes(LABEL_SYNC), settings)
    push, pull, quality = done["label_push"], done["label_pull"], done["quality"]
    get_run_logger().info(
        "label sync: %s pushed, %s new annotation(s), quality report %s",
        push["pushed"],
        pull["new"],
        quality["report_html"],
    )
    return {
        "label_push": push,
        "label_pull": pull,
        "quality": {"report_html": quality["report_html"], "problems": quality["problems"]},
    }


def served_args(
    settings: Settings, settings_file: str | None, overrides: list[str]
) -> dict[str, Any]:
    """The parameters every deployment gets: the settings file as an absolute path and the
    overrides with the data root pinned (a served run's working folder may differ)."""
    pinned = [o for o in overrides if not o.startswith("data_root=")]
    pinned.append(f"data_root={settings.data_path}")
    return {"settings_file": settings_file, "overrides": pinned}


def build_deployments(
    settings: Settings, settings_file: str | None, overrides: list[str]
) -> list[Any]:
    """The RunnerDeployments `chfen serve` serves (module docstring)."""
    args = served_args(settings, settings_file, overrides)
    p = settings.prefect
    ingest = ingest_flow.to_deployment(
        "ingest",
        cron=p.crawl_cron,
        parameters=args,
        tags=TAGS,
        description="Crawl → process → keyframe hashes → embed, on prefect.crawl_cron.",
    )
    sync = label_sync_flow.to_deployment(
        "label-sync",
        interval=dt.timedelta(minutes=p.label_sync_minutes),
        parameters=args,
        tags=TAGS,
        description="Label Studio push → pull → quality snapshot, every "
        f"{p.label_sync_minutes} minutes.",
    )
    embed = embed_flow.to_deployment(
        "embed", parameters=args, tags=TAGS, description="Embeddings for processed videos."
    )
    train_args = {
        "config": settings.train.model_dump(mode="json"),
        "settings_file": args["settings_file"],
        "overrides": args["overrides"],
    }
    train = train_flow.to_deployment(
        "train",
        parameters=train_args,
        tags=TAGS,
        description="Train CHFEN; edit the TrainConfig form in a custom run. Started "
        f"automatically on {LABELS_READY} for {settings.data_path}.",
        triggers=[
            DeploymentEventTrigger(
                name="retrain on new agreed labels",
                expect={LABELS_READY},
                match={"prefect.resource.id": data_root_resource(settings)["prefect.resource.id"]},
            )
        ],
    )
    return [ingest, sync, embed, train]


def serve(
    settings: Settings, settings_file: str | None, overrides: list[str], limit: int | None = None
) -> None:
    """Register the deployments and serve them until interrupted (runs execute in subprocesses
    of this process)."""
    from prefect import serve as prefect_serve

    prefect_serve(*build_deployments(settings, settings_file, overrides), limit=limit)
