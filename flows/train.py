"""Training flows: `train(config: TrainConfig)` (its parameter is the pydantic model, so the
Prefect UI renders it as a form), the seed's ablation list, and predictions for unlabeled
videos (the pre-annotations Label Studio receives)."""

from __future__ import annotations

from dataclasses import dataclass

from prefect import flow, get_run_logger

from chfen.config import Settings, TrainConfig, load_settings
from flows.runtime import report
from warehouse import Warehouse


@dataclass(frozen=True)
class LabelCounts:
    """Agreed labels now and how many of them the latest finished training run has not seen."""

    agreed: int  # videos whose votes pass the training filters (train.min_votes/min_agreement)
    new: int  # of them, not in the latest finished run's train/val/test split
    trained: bool  # is there a finished run at all?
    need: int  # new agreed labels a (re)training waits for

    @property
    def enough(self) -> bool:
        return self.new >= self.need


def new_agreed_labels(settings: Settings, wh: Warehouse) -> LabelCounts:
    """Count agreed labels the model has not trained on, with the training run's own filters.

    Before the first run every agreed label is new and training waits for
    `prefect.train_min_labeled` of them; later runs wait for `prefect.retrain_min_new_labels`.
    """
    from chfen.domain.votes import votes_from_rows
    from chfen.train.data import soft_target  # the training filters themselves (imports torch)

    cfg = settings.train
    votes = votes_from_rows(
        wh.rows(
            "SELECT video_id, annotator, choice, deleted, was_cancelled, updated_at "
            "FROM annotations_latest"
        )
    )
    agreed = {
        video_id
        for video_id, by in votes.items()
        if not isinstance(
            soft_target(
                by.values(),
                min_votes=cfg.min_votes,
                min_agreement=cfg.min_agreement,
                no_emotion=cfg.no_emotion,
            ),
            str,
        )
    }
    last = wh.rows(
        "SELECT run_id FROM training_runs_latest WHERE status = 'done' "
        "ORDER BY finished_at DESC NULLS LAST, started_at DESC LIMIT 1"
    )
    seen: set[str] = set()
    if last:
        seen = {
            r["video_id"]
            for r in wh.rows(
                "SELECT DISTINCT video_id FROM predictions "
                "WHERE run_id = ? AND split <> 'unlabeled'",
                [last[0]["run_id"]],
            )
        }
    p = settings.prefect
    return LabelCounts(
        agreed=len(agreed),
        new=len(agreed - seen),
        trained=bool(last),
        need=p.retrain_min_new_labels if last else p.train_min_labeled,
    )


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
