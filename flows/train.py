"""Training flows: `train(config: TrainConfig)` (its parameter is the pydantic model, so the
Prefect UI renders it as a form), the seed's ablation list, and predictions for unlabeled
videos (the pre-annotations Label Studio receives)."""

from __future__ import annotations

from prefect import flow, get_run_logger

from chfen.config import TrainConfig, load_settings
from flows.runtime import report
from warehouse import Warehouse


def labeled_since_last_run(wh: Warehouse) -> tuple[int, int, bool]:
    """(videos with an emotion vote, of them new since the last finished run, any run yet?)."""
    rows = wh.rows(
        """
        WITH last AS (SELECT max(started_at) AS t FROM training_runs_latest
                      WHERE status = 'done'),
             voted AS (SELECT video_id, min(updated_at) AS first_vote FROM annotations_latest
                       WHERE choice IS NOT NULL AND NOT coalesce(deleted, false)
                         AND NOT coalesce(was_cancelled, false)
                       GROUP BY video_id)
        SELECT count(*) AS labeled,
               count(*) FILTER (WHERE (SELECT t FROM last) IS NULL
                                   OR first_vote > (SELECT t FROM last)) AS new,
               (SELECT t FROM last) IS NOT NULL AS trained
        FROM voted
        """
    )[0]
    return rows["labeled"], rows["new"], bool(rows["trained"])


@flow(name="train")
def train_flow(
    config: TrainConfig | None = None,
    settings_file: str | None = None,
    overrides: list[str] | None = None,
) -> dict:
    """Train CHFEN on the warehouse's cached embeddings and agreed labels.

    `config` (the form in the Prefect UI) replaces the `train` section of the resolved
    settings; leave it empty to use the settings file and overrides as they are.
    """
    from chfen.train import train_run  # heavy import (torch, sklearn): only when training

    logger = get_run_logger()
    settings, _ = load_settings(settings_file, overrides or [])
    wh = Warehouse(settings.data_path)

    def on_epoch(info: dict) -> None:
        report("train:epoch", info)

    result = train_run(settings, wh, config, say=logger.info, on_epoch=on_epoch)
    summary = result.summary()
    summary["report"] = str(result.report_path) if result.report_path else None
    summary["model_version"] = result.model_version
    return summary


@flow(name="train_ablations")
def ablations_flow(settings_file: str | None = None, overrides: list[str] | None = None) -> dict:
    """The seed's ablation list on one dataset and split; writes one table."""
    from chfen.train import run_ablations

    logger = get_run_logger()
    settings, _ = load_settings(settings_file, overrides or [])
    table = run_ablations(settings, Warehouse(settings.data_path), say=logger.info)
    return {"rows": table.rows, "path": str(table.path), "markdown": table.markdown()}


@flow(name="predict")
def predict_flow(
    settings_file: str | None = None,
    overrides: list[str] | None = None,
    run_id: str | None = None,
) -> dict:
    """Predictions of a run (default: the latest) for videos nobody has labeled yet."""
    from chfen.train import predict_unlabeled

    logger = get_run_logger()
    settings, _ = load_settings(settings_file, overrides or [])
    preds = predict_unlabeled(settings, Warehouse(settings.data_path), run_id, say=logger.info)
    return {video_id: list(p) for video_id, p in preds.items()}
