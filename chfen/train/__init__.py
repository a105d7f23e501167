"""Training CHFEN on cached embeddings: dataset, loop, metrics, baselines, report, runs."""

from chfen.train.data import (
    DatasetError,
    EmbeddingDataset,
    Example,
    LabeledDataset,
    Split,
    collate,
    load_labeled,
    soft_target,
    split_by_uploader,
)
from chfen.train.loop import History, class_weights, fit, predict_proba, soft_cross_entropy
from chfen.train.metrics import classification_metrics
from chfen.train.run import (
    ABLATIONS,
    AblationTable,
    RunResult,
    VideoPrediction,
    latest_run,
    load_run,
    load_training_data,
    model_version,
    predict_unlabeled,
    predict_videos,
    run_ablations,
    train_run,
)

__all__ = [
    "ABLATIONS",
    "AblationTable",
    "DatasetError",
    "EmbeddingDataset",
    "Example",
    "History",
    "LabeledDataset",
    "RunResult",
    "Split",
    "VideoPrediction",
    "class_weights",
    "classification_metrics",
    "collate",
    "fit",
    "latest_run",
    "load_labeled",
    "load_run",
    "load_training_data",
    "model_version",
    "predict_proba",
    "predict_unlabeled",
    "predict_videos",
    "run_ablations",
    "soft_cross_entropy",
    "soft_target",
    "split_by_uploader",
    "train_run",
]
