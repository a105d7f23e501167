"""Training flows: `train(config: TrainConfig)` (its parameter is the pydantic model, so the
Prefect UI renders it as a form), the ablation list of the CHFEN paper (docs/chfen-paper.md),
and predictions for unlabeled videos (the pre-annotations Label Studio receives).

When to (re)train is the library's rule: `chfen.train.retrain`.
"""

from __future__ import annotations

from prefect import flow, get_run_logger

from chfen.config import TrainConfig
from chfen.domain import stages as stage_names
from flows.runtime import ResolvedSettings, locked, report, resolve_settings
from warehouse import Warehouse


@flow(name="train")
@locked(stage_names.TRAIN)
def train_flow(
    config: TrainConfig | None = None,
    settings_file: str | None = None,
    overrides: list[str] | None = None,
    settings: ResolvedSettings = None,
) -> dict:
    """Train CHFEN on the warehouse's cached embeddings and agreed labels.

    `config` (the form in the Prefect UI) replaces the `train` section of the resolved
    settings; leave it empty to use the settings as they are.
    """
    from chfen.train import train_run  # heavy import (torch, sklearn): only when training

    logger = get_run_logger()
    settings = resolve_settings(settings, settings_file, overrides)
    wh = Warehouse(settings.data_path)

    def on_epoch(info: dict) -> None:
        report("train:epoch", info)

    result = train_run(settings, wh, config, say=logger.info, on_epoch=on_epoch)
    summary = result.summary()
    summary["report"] = str(result.report_path) if result.report_path else None
    summary["model_version"] = result.model_version
    return summary


@flow(name="train_ablations")
def ablations_flow(
    settings_file: str | None = None,
    overrides: list[str] | None = None,
    settings: ResolvedSettings = None,
) -> dict:
    """The CHFEN paper's ablation list (docs/chfen-paper.md) on one dataset and split; writes
    one table."""
    from chfen.train import run_ablations

    logger = get_run_logger()
    settings = resolve_settings(settings, settings_file, overrides)
    table = run_ablations(settings, Warehouse(settings.data_path), say=logger.info)
    return {"rows": table.rows, "path": str(table.path), "markdown": table.markdown()}


@flow(name="predict")
def predict_flow(
    settings_file: str | None = None,
    overrides: list[str] | None = None,
    run_id: str | None = None,
    settings: ResolvedSettings = None,
) -> dict:
    """Predictions of a run (default: the latest) for videos nobody has labeled yet."""
    from chfen.train import predict_unlabeled

    logger = get_run_logger()
    settings = resolve_settings(settings, settings_file, overrides)
    preds = predict_unlabeled(settings, Warehouse(settings.data_path), run_id, say=logger.info)
    return {video_id: list(p) for video_id, p in preds.items()}
