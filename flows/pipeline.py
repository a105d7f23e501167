"""The whole DAG as one flow of subflows: crawl → process → label push → (demo: simulated crew)
→ label pull → embed → train (when enough new labels) → quality report. Every node is
incremental through the stage ledger, so a re-run only does new work.

Nodes that are not built yet are listed in `NOT_BUILT` and reported as such, never faked.
"""

from __future__ import annotations

from prefect import flow, get_run_logger

from chfen.config import Settings
from flows.crawl import crawl_flow
from flows.embed import embed_flow
from flows.label import demo_annotate_flow, label_pull_flow, label_push_flow
from flows.process import process_flow
from flows.quality import quality_flow
from flows.runtime import ResolvedSettings, resolve_settings, without_subflow_heartbeats
from flows.train import train_flow
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


def maybe_train(settings: Settings) -> dict:
    """Train when there is enough new signal (`chfen.train.retrain`: the same rule as the
    served automation); otherwise say why not."""
    from chfen.train.retrain import new_agreed_labels  # imports torch: only when needed

    waiting = new_agreed_labels(settings, Warehouse(settings.data_path)).waiting()
    if waiting is not None:
        return {"skipped": waiting}
    return train_flow(settings=settings)


@flow(name="pipeline")
def pipeline_flow(
    settings_file: str | None = None,
    overrides: list[str] | None = None,
    label: bool = True,
    annotators: int = 3,
    settings: ResolvedSettings = None,
) -> dict:
    """Run every built node on the configured sources (default: the local demo site)."""
    logger = get_run_logger()
    settings = resolve_settings(settings, settings_file, overrides)
    args = {"settings": settings}  # resolved once, handed to every node
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
        summary["train"] = maybe_train(settings)
        summary["quality"] = quality_flow(**args)
    summary["not_built"] = NOT_BUILT
    summary["dataset"] = dataset_figures(Warehouse(settings.data_path))
    return summary
