"""The (re)training rule: train when there is enough new signal.

A first run waits for `prefect.train_min_labeled` videos with agreed labels; later runs for
`prefect.retrain_min_new_labels` agreed labels the latest finished run has not trained on.
"Agreed" means the training run's own filters (`train.min_votes`, `train.min_agreement`,
`train.no_emotion`) keep the video. The pipeline asks `new_agreed_labels(...).enough` before
it trains; `label_pull` asks it to announce new labels (the served retraining automation).
"""

from __future__ import annotations

from dataclasses import dataclass

from chfen.config import Settings
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

    def waiting(self) -> str | None:
        """Why training waits, in words; None when it is due."""
        if self.enough:
            return None
        what = "new agreed labels since the last run" if self.trained else "agreed labels"
        return f"{self.new} {what}; training waits for {self.need}"


def new_agreed_labels(settings: Settings, wh: Warehouse) -> LabelCounts:
    """Count agreed labels the model has not trained on, with the training run's own filters.

    Before the first run every agreed label is new and training waits for
    `prefect.train_min_labeled` of them; later runs wait for `prefect.retrain_min_new_labels`.
    """
    from chfen.domain.origins import min_votes_for
    from chfen.domain.votes import training_target, votes_from_rows  # the training filters

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
            training_target(
                by.values(),
                min_votes=min_votes_for(by, cfg.min_votes),
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
