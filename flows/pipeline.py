"""The whole DAG as one flow of subflows, in the order of the stage registry
(chfen/registry.py, nodes in flows/dag.py): crawl → process (scenes, ASR) → keyframe hashes →
label push → (demo: simulated crew) → label pull → embed → train (when enough new labels) →
quality report. Every node is incremental through the stage ledger, so a re-run only does new
work.

Nodes that are not built yet are listed in `NOT_BUILT` and reported as such, never faked.
"""

from __future__ import annotations

from prefect import flow, get_run_logger

from flows import dag
from flows.runtime import ResolvedSettings, resolve_settings, without_subflow_heartbeats
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
    summary: dict = {}
    with without_subflow_heartbeats():  # about a second saved per node
        for node in dag.nodes():
            if node.labels and not label:
                continue
            if node.labels and "labelstudio_url" not in summary:
                info = server.start(settings, log=logger.info)  # installs once into its venv
                summary["labelstudio_url"] = info.url
            if node.key == "simulation":
                if settings.sources:
                    continue
                logger.warning("SIMULATION: a simulated annotation crew labels the demo videos")
                summary[node.key] = node.run(settings=settings, annotators=annotators)
                continue
            summary[node.key] = node.run(settings=settings)
    summary["not_built"] = NOT_BUILT
    summary["dataset"] = dataset_figures(Warehouse(settings.data_path))
    return summary
