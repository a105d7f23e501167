"""The whole DAG as one flow of subflows: crawl → process → label push → (demo: simulated crew)
→ label pull → embed → train (when enough new labels) → quality report. Every node is
incremental through the stage ledger, so a re-run only does new work.

Nodes that are not built yet are listed in `NOT_BUILT` and reported as such, never faked.
"""

from __future__ import annotations

from prefect import flow, get_run_logger

from chfen.config import load_settings
from flows.crawl import crawl_flow
from flows.embed import embed_flow
from flows.label import demo_annotate_flow, label_pull_flow, label_push_flow
from flows.process import process_flow
from flows.quality import quality_flow
from flows.runtime import without_subflow_heartbeats
from flows.train import new_agreed_labels, train_flow
from labeling import server
from warehouse import Warehouse

NOT_BUILT: dict[str, str] = {}


def dataset_figures(wh: Warehouse) -> dict:
    """Headline counts of what the warehouse holds now."""
    one = wh.rows(
        """
        SELECT
          (SELECT count(*) FROM videos_latest WHERE status = 'ok') AS videos,
          (SELECT count(*) FROM failures) AS failures,
          (SELECT count(*) FROM scenes_latest) AS scenes,
          (SELECT count(*) FROM transcript_words_latest) AS words,
          (SELECT count(*) FROM label_tasks_latest) AS tasks,
          (SELECT count(*) FROM annotations_latest
             WHERE NOT coalesce(deleted, false) AND NOT coalesce(was_cancelled, false))
            AS annotations
        """
    )
    return one[0]


def maybe_train(settings, config: str | None, overrides: list[str]) -> dict:
    """Train when there is enough new signal: a first run once `prefect.train_min_labeled`
    videos have agreed labels, later runs after `prefect.retrain_min_new_labels` agreed labels
    the latest model has not trained on (the same rule as the served automation)."""
    counts = new_agreed_labels(settings, Warehouse(settings.data_path))
    if not counts.enough:
        what = "new agreed labels since the last run" if counts.trained else "agreed labels"
        return {"skipped": f"{counts.new} {what}; training waits for {counts.need}"}
    return train_flow(settings_file=config, overrides=overrides)


@flow(name="pipeline")
def pipeline_flow(
    config: str | None = None,
    overrides: list[str] | None = None,
    label: bool = True,
    annotators: int = 3,
) -> dict:
    """Run every built node on the configured sources (default: the local demo site)."""
    logger = get_run_logger()
    args = {"config": config, "overrides": overrides or []}
    settings, _ = load_settings(config, overrides or [])
    with without_subflow_heartbeats():  # about a second saved per node
        summary: dict = {"crawl": crawl_flow(**args), "process": process_flow(**args)}
        if label:
            info = server.start(settings, log=logger.info)  # installs once into its own venv
            summary["labelstudio_url"] = info.url
            summary["label_push"] = label_push_flow(**args)
            if not settings.sources:
                logger.warning("SIMULATION: a simulated annotation crew labels the demo videos")
                summary["simulation"] = demo_annotate_flow(**args, annotators=annotators)
            summary["label_pull"] = label_pull_flow(**args)
        summary["embed"] = embed_flow(**args)
        summary["train"] = maybe_train(settings, config, overrides or [])
        summary["quality"] = quality_flow(**args)
    summary["not_built"] = NOT_BUILT
    summary["dataset"] = dataset_figures(Warehouse(settings.data_path))
    return summary
