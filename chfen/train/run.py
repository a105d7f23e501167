"""A training run, top to bottom: snapshot → dataset → split → fit → evaluate → baselines →
checkpoint, config and report under models/<run_id>/ → rows in `training_runs` and `predictions`.

Also the original CHFEN ablation list (`run_ablations`, one table; docs/chfen-paper.md) and
predictions for unlabelled videos (`predict_unlabeled`, the pre-annotations pushed to Label
Studio).

Plain Python: the Prefect flow and the CLI call these functions.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from chfen.config import Settings, TrainConfig, resolved_dict
from chfen.domain.votes import votes_from_rows
from chfen.labels import PLUTCHIK
from chfen.media.keyframe_hash import fill_keyframe_hashes
from chfen.model import CAPTION, CHFEN
from chfen.runtime import torch_threads
from chfen.train.baselines import run_baselines
from chfen.train.data import (
    DatasetError,
    EmbeddingDataset,
    Example,
    LabeledDataset,
    Split,
    VideoFeatures,
    connect_snapshot,
    load_features,
    load_labeled,
    snapshot_versions,
    split_by_uploader,
    split_units,
)
from chfen.train.evaluation import METRICS, evaluate
from chfen.train.loop import (
    History,
    needs_cross_validation,
    predict_proba,
    train_model,
)
from chfen.train.metrics import classification_metrics
from chfen.train.report import SPLIT_BY_VIDEO, write_report
from warehouse import Warehouse

log = logging.getLogger("chfen.train")

CHECKPOINT = "model.pt"
CONFIG_JSON = "config.json"
METRICS_JSON = "metrics.json"
SPLIT_JSON = "split.json"
REPORT_DIR = "report"
MIN_EXAMPLES = 8

Say = Callable[[str], None]


# The ablations: name -> TrainConfig fields changed from the base config.
ABLATIONS: dict[str, dict[str, Any]] = {
    "CHFEN (hybrid)": {},
    # This project's small-data additions, each switched off alone.
    "without modality heads": {"modality_heads": False},
    "without modality dropout": {"modality_dropout": 0.0},
    "without standardization": {"standardize": False},
    # The original CHFEN ablation list (docs/chfen-paper.md).
    "without audio": {"use_audio": False},
    "without cross-attention (no condition)": {"use_cross_attention": False},
    "without face/scene fusion": {"use_face_scene_fusion": False},
    "feature-level fusion only": {"fusion": "feature"},
    "decision-level fusion only": {"fusion": "decision"},
    "vision only (scene + face)": {"modalities": ["scene", "face"]},
    "text only (title + transcript)": {"modalities": ["title", "text"]},
    "audio only (clip + per step)": {"modalities": ["audio", "audio_seq"]},
}
# Ablations that only mean something when their modality was embedded: name -> (modality the
# switch removes, overrides). No stage writes caption embeddings yet, and without them
# "without caption" trains the very network of the full model; `run_ablations` adds it when
# the dataset has captions and marks it not applicable when asked for by name without them.
CONDITIONAL_ABLATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "without caption": (CAPTION, {"use_caption": False}),
}


def new_run_id(now: dt.datetime | None = None) -> str:
    """Sortable and unique: UTC time + a short random suffix."""
    now = now or dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def model_version(run_id: str) -> str:
    """The name predictions carry (also Label Studio's model_version)."""
    return f"chfen-{run_id}"


@dataclass
class RunResult:
    """What a training run produced (paths are absolute; the warehouse stores them relative to
    the data root)."""

    run_id: str
    model_version: str
    run_dir: Path
    checkpoint_path: Path
    report_path: Path
    metrics: dict[str, Any]  # test split
    val_metrics: dict[str, Any]
    train_metrics: dict[str, Any]
    baselines: dict[str, dict[str, Any]]
    history: History
    split: Split
    versions: dict[str, int]
    encoder_keys: dict[str, str]
    modalities: tuple[str, ...]
    config: TrainConfig
    seconds: float = 0.0
    # CHFEN against its best baseline on the test split (`chfen.train.evaluation`); None
    # without baselines or test videos
    comparison: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        """Headline figures: CHFEN and its baselines on the test uploaders, with intervals.

        `scores`: model -> accuracy, weighted/macro F1 and their 95 % bootstrap intervals
        (CHFEN first); `comparison`: CHFEN against the best baseline, with the verdict.
        """
        return {
            "run_id": self.run_id,
            "n_train": len(self.split.train),
            "n_val": len(self.split.val),
            "n_test": len(self.split.test),
            "accuracy": self.metrics.get("accuracy"),
            "weighted_f1": self.metrics.get("weighted_f1"),
            "weighted_f1_ci": self.metrics.get("weighted_f1_ci"),
            "macro_f1": self.metrics.get("macro_f1"),
            "macro_f1_ci": self.metrics.get("macro_f1_ci"),
            "best_epoch": self.history.best_epoch,
            "epochs_run": len(self.history.epochs),
            "scores": score_table(self.metrics, self.baselines),
            "comparison": self.comparison,
        }


SCORE_KEYS = ("accuracy", "weighted_f1", "weighted_f1_ci", "macro_f1", "macro_f1_ci")


def score_table(
    metrics: Mapping[str, Any], baselines: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """model -> headline scores with intervals: CHFEN first, then the baselines."""
    rows = {"CHFEN": metrics} | dict(baselines)
    return {name: {k: m.get(k) for k in SCORE_KEYS} for name, m in rows.items()}


def attach_intervals(
    examples: Sequence[Example],
    probs: np.ndarray,
    metrics: dict[str, Any],
    baselines: dict[str, dict[str, Any]],
    seed: int,
) -> dict[str, Any] | None:
    """Add `weighted_f1_ci` / `macro_f1_ci` to CHFEN's test metrics and every baseline's (in
    place); return the comparison of CHFEN with its best baseline (None without one)."""
    y = np.array([e.label for e in examples], dtype=int)
    pred = probs.argmax(axis=1) if len(examples) else np.zeros(0, dtype=int)
    ev = evaluate(y, pred, metrics, baselines, len(PLUTCHIK), seed=seed)
    metrics.update(ev.intervals["CHFEN"])
    for name, b in baselines.items():
        b.update(ev.intervals.get(name, {f"{m}_ci": None for m in METRICS}))
    return ev.comparison


def load_training_data(
    settings: Settings,
    wh: Warehouse,
    cfg: TrainConfig | None = None,
    versions: Mapping[str, int] | None = None,
) -> LabeledDataset:
    """The labelled dataset a config asks for (every modality loaded; the model picks).

    Keyframes without a perceptual hash are hashed first (incremental, as the quality report
    does), so that re-uploads are found and kept on their originals' side of the split even
    before the first quality report."""
    cfg = cfg or settings.train
    fill_keyframe_hashes(wh)
    return load_labeled(
        wh,
        min_votes=cfg.min_votes,
        min_agreement=cfg.min_agreement,
        no_emotion=cfg.no_emotion,
        max_steps=cfg.max_steps,
        grid_hz=settings.embed.grid_hz,
        encoder_keys=cfg.encoder_keys,
        versions=versions,
    )


def _probs_json(p: np.ndarray) -> str:
    return json.dumps({label: round(float(v), 6) for label, v in zip(PLUTCHIK, p, strict=True)})


def _split_metrics(examples: Sequence[Example], probs: np.ndarray) -> dict[str, Any]:
    if not examples:
        return {"n": 0}
    soft = np.stack([e.soft for e in examples])
    y = np.array([e.label for e in examples])
    return classification_metrics(y, probs.argmax(axis=1), probs=probs, soft=soft)


def _compact(metrics: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if k not in ("predictions", "labels")}


@dataclass
class _RunData:
    """The data phase's result: the dataset, its split by uploader, the examples per split."""

    data: LabeledDataset
    split: Split
    parts: dict[str, list[Example]]  # "train" / "val" / "test" -> examples
    units: dict[str, Any]  # video_id -> its split unit (uploader, joined by near-duplicates)


@dataclass
class _Fit:
    """The fit phase's result: the trained model and its class probabilities per split."""

    model: CHFEN
    history: History
    probs: dict[str, np.ndarray]


@dataclass
class _Evaluation:
    """The evaluate phase's result: metrics per split, the baselines, the comparison."""

    metrics: dict[str, dict[str, Any]]
    baselines: dict[str, dict[str, Any]]
    comparison: dict[str, Any] | None


@dataclass
class _Files:
    """What the write phase put under models/<run_id>/."""

    checkpoint_path: Path
    report_path: Path
    dataset_info: dict[str, Any]


def train_run(
    settings: Settings,
    wh: Warehouse,
    train_cfg: TrainConfig | None = None,
    *,
    dataset: LabeledDataset | None = None,
    run_id: str | None = None,
    say: Say = log.info,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> RunResult:
    """Train and evaluate CHFEN once; everything lands under <data_root>/models/<run_id>/.

    `train_cfg` defaults to `settings.train`. `dataset` (from `load_training_data` with the
    same data settings) skips reloading, e.g. across ablations. A failure is recorded in
    `training_runs` (status failed, the error in metrics_json) and raised.

    The phases: data (load, split by uploader), fit, evaluate (metrics, baselines, intervals),
    write (files under models/<run_id>/, then rows in `predictions` and `training_runs`).
    """
    cfg = train_cfg or settings.train
    run_id = run_id or new_run_id()
    run_dir = wh.root.models_dir(run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC)
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    base_row = {"run_id": run_id, "config_json": cfg.model_dump_json(), "started_at": started}
    wh.append("training_runs", [base_row | {"status": "running"}])
    try:
        rd = _prepare_data(settings, wh, cfg, dataset, run_id, say, timings)
        fit = _fit(cfg, rd, on_epoch, timings)
        ev = _evaluate(cfg, rd, fit, run_id, say, timings)
        files = _write_files(settings, cfg, run_id, run_dir, rd, fit, ev, timings)
        seconds = _write_rows(wh, run_id, base_row, rd, fit, ev, files, timings, t_start)
    except BaseException as exc:
        wh.append(
            "training_runs",
            [
                base_row
                | {
                    "status": "failed",
                    "metrics_json": json.dumps({"error": f"{type(exc).__name__}: {exc}"}),
                    "finished_at": dt.datetime.now(dt.UTC),
                }
            ],
        )
        raise
    say(f"[train] {run_id}: done in {seconds:.1f} s; report {files.report_path}")
    return RunResult(
        run_id=run_id,
        model_version=model_version(run_id),
        run_dir=run_dir,
        checkpoint_path=files.checkpoint_path,
        report_path=files.report_path,
        metrics=ev.metrics["test"],
        val_metrics=ev.metrics["val"],
        train_metrics=ev.metrics["train"],
        baselines=ev.baselines,
        history=fit.history,
        split=rd.split,
        versions=dict(rd.data.versions),
        encoder_keys=dict(rd.data.encoder_keys),
        modalities=tuple(fit.model.modalities),
        config=cfg,
        seconds=seconds,
        comparison=ev.comparison,
    )


def _prepare_data(
    settings: Settings,
    wh: Warehouse,
    cfg: TrainConfig,
    dataset: LabeledDataset | None,
    run_id: str,
    say: Say,
    timings: dict[str, float],
) -> _RunData:
    """Data phase: the labelled dataset (given or loaded), split by uploader (near-duplicates
    kept on one side); no validation split when it is too small to stop on."""
    t0 = time.perf_counter()
    data = dataset or load_training_data(settings, wh, cfg)
    timings["load"] = time.perf_counter() - t0
    if len(data.examples) < MIN_EXAMPLES:
        raise DatasetError(
            f"[train] only {len(data.examples)} labelled videos pass the filters "
            f"(dropped: {data.dropped or 'none'}); need at least {MIN_EXAMPLES}. Label more "
            "videos, embed them, or lower train.min_agreement / train.min_votes."
        )
    uploader_of = {e.video_id: e.uploader for e in data.examples}
    # the unit kept on one side of the split (and of the cross-validation folds)
    groups = uploader_of if cfg.split_by == "uploader" else {v: v for v in uploader_of}
    split = split_by_uploader(
        groups,
        test_fraction=cfg.test_fraction,
        val_fraction=cfg.val_fraction,
        seed=cfg.seed,
        duplicates=data.duplicates,
    )
    if cfg.split_by == "video":  # the people behind each split, not the video ids
        split = dataclasses.replace(
            split,
            uploaders={
                name: tuple(sorted({uploader_of[v] for v in getattr(split, name)}))
                for name in ("train", "val", "test")
            },
        )
    by_id = data.by_id()
    if needs_cross_validation(cfg, [by_id[v] for v in split.val]):
        split = split.without_val()  # too small to stop on: it trains, CV picks epochs
    parts = {name: [by_id[v] for v in getattr(split, name)] for name in ("train", "val", "test")}
    units = split_units(groups, data.duplicates)
    say(
        f"[train] {run_id}: {len(parts['train'])} train / {len(parts['val'])} val / "
        f"{len(parts['test'])} test videos from {len(split.uploaders['train'])} / "
        f"{len(split.uploaders['val'])} / {len(split.uploaders['test'])} uploaders; "
        f"modalities {sorted(data.dims)}"
    )
    if cfg.split_by == "video":
        say(f"[train] {SPLIT_BY_VIDEO}")
    return _RunData(data, split, parts, units)


def _fit(
    cfg: TrainConfig,
    rd: _RunData,
    on_epoch: Callable[[dict[str, Any]], None] | None,
    timings: dict[str, float],
) -> _Fit:
    """Fit phase: train on the train split (val for stopping), then class probabilities for
    every split."""
    t0 = time.perf_counter()
    with torch_threads(cfg.threads):
        # the test split never goes in: standardization, epochs and tuning see train only
        model, history, _ = train_model(
            rd.data.dims,
            cfg,
            rd.parts["train"],
            rd.parts["val"],
            groups=[rd.units[e.video_id] for e in rd.parts["train"]],
            unit=cfg.split_by,
            duplicates=rd.data.duplicates,
            on_epoch=on_epoch,
        )
        probs = {
            name: predict_proba(
                model, EmbeddingDataset.of(ex), batch_size=cfg.batch_size, device=cfg.device
            )
            for name, ex in rd.parts.items()
        }
    timings["fit"] = time.perf_counter() - t0
    return _Fit(model, history, probs)


def _evaluate(
    cfg: TrainConfig,
    rd: _RunData,
    fit: _Fit,
    run_id: str,
    say: Say,
    timings: dict[str, float],
) -> _Evaluation:
    """Evaluate phase: metrics per split, the baselines on the same split, bootstrap intervals
    and the comparison of CHFEN with its best baseline on the test split."""
    parts, probs = rd.parts, fit.probs
    metrics = {name: _split_metrics(parts[name], probs[name]) for name in parts}
    baselines: dict[str, dict[str, Any]] = {}
    if cfg.baselines:
        t0 = time.perf_counter()
        baselines = run_baselines(
            parts["train"] + parts["val"],
            parts["test"],
            [m for m in fit.model.modalities if m in rd.data.dims],
            rd.data.dims,
            cfg.seed,
        )
        timings["baselines"] = time.perf_counter() - t0
    comparison = attach_intervals(
        parts["test"], probs["test"], metrics["test"], baselines, cfg.seed
    )
    say(
        f"[train] {run_id}: test weighted F1 {metrics['test'].get('weighted_f1') or 0:.3f} "
        + " ".join(f"{k} {v.get('weighted_f1') or 0:.3f}" for k, v in baselines.items())
    )
    if comparison:
        say(f"[train] {run_id}: {comparison['verdict']}")
    return _Evaluation(metrics, baselines, comparison)


def _write_files(
    settings: Settings,
    cfg: TrainConfig,
    run_id: str,
    run_dir: Path,
    rd: _RunData,
    fit: _Fit,
    ev: _Evaluation,
    timings: dict[str, float],
) -> _Files:
    """Write phase, files: checkpoint, config, metrics, split and report under
    models/<run_id>/."""
    model, history, data, split = fit.model, fit.history, rd.data, rd.split
    model.cpu()
    resolved = settings.model_copy(update={"train": cfg})
    dataset_info = {
        "versions": data.versions,
        "encoder_keys": data.encoder_keys,
        "input_dims": data.dims,
        "coverage": data.coverage,
        "dropped": data.dropped,
        "sizes": {name: len(ex) for name, ex in rd.parts.items()},
        "uploaders": {name: list(us) for name, us in split.uploaders.items()},
        "near_duplicates": [list(p) for p in data.duplicates],
    }
    checkpoint_path = run_dir / CHECKPOINT
    torch.save(
        {
            "run_id": run_id,
            "model": model.checkpoint(),
            "encoder_keys": {m: data.encoder_keys[m] for m in model.modalities},
            "max_steps": cfg.max_steps,
            "grid_hz": settings.embed.grid_hz,
            "labels": list(PLUTCHIK),
        },
        checkpoint_path,
    )
    config_doc = {
        "run_id": run_id,
        "train": cfg.model_dump(mode="json"),
        "settings": resolved_dict(resolved),
        "modalities": list(model.modalities),
        "dataset": dataset_info,
    }
    (run_dir / CONFIG_JSON).write_text(json.dumps(config_doc, indent=2, default=str))
    history_doc = {
        "epochs": history.epochs,
        "best_epoch": history.best_epoch,
        "stopped_early": history.stopped_early,
        "seconds": history.seconds,
        "samples_per_s": history.samples_per_s,
        "selection": history.selection,
        "mixing_weights": model.mixing_weights(),
    }
    (run_dir / METRICS_JSON).write_text(
        json.dumps(
            {
                **ev.metrics,
                "baselines": ev.baselines,
                "comparison": ev.comparison,
                "history": history_doc,
                "timings": timings,
            },
            indent=2,
        )
    )
    (run_dir / SPLIT_JSON).write_text(
        json.dumps(
            {
                "uploaders": dataset_info["uploaders"],
                "videos": {name: list(getattr(split, name)) for name in rd.parts},
            },
            indent=2,
        )
    )
    report_path = write_report(
        run_dir / REPORT_DIR,
        run_id=run_id,
        metrics=ev.metrics["test"],
        baselines={k: _compact(v) for k, v in ev.baselines.items()},
        comparison=ev.comparison,
        history=history_doc,
        dataset=dataset_info,
        config=config_doc["train"],
    )
    return _Files(checkpoint_path, report_path, dataset_info)


def _write_rows(
    wh: Warehouse,
    run_id: str,
    base_row: dict[str, Any],
    rd: _RunData,
    fit: _Fit,
    ev: _Evaluation,
    files: _Files,
    timings: dict[str, float],
    t_start: float,
) -> float:
    """Write phase, warehouse: a `predictions` row per video and split, then the run's `done`
    row in `training_runs`. Returns the run's seconds so far (its `timings.total`)."""
    version = model_version(run_id)
    now = dt.datetime.now(dt.UTC)
    rows = []
    for name, ex in rd.parts.items():
        for e, p in zip(ex, fit.probs[name], strict=True):
            rows.append(
                {
                    "run_id": run_id,
                    "video_id": e.video_id,
                    "split": name,
                    "label": PLUTCHIK[int(p.argmax())],
                    "score": float(p.max()),
                    "probs_json": _probs_json(p),
                    "model_version": version,
                    "created_at": now,
                }
            )
    wh.append("predictions", rows, refresh_catalog=False)
    seconds = time.perf_counter() - t_start
    metrics, history = ev.metrics, fit.history
    summary = {
        "test": _compact(metrics["test"]),
        "val": {k: metrics["val"].get(k) for k in ("n", "accuracy", "weighted_f1", "macro_f1")},
        "train": {k: metrics["train"].get(k) for k in ("n", "accuracy", "weighted_f1", "macro_f1")},
        "baselines": {k: {m: v.get(m) for m in SCORE_KEYS} for k, v in ev.baselines.items()},
        "comparison": ev.comparison,
        "best_epoch": history.best_epoch,
        "epochs_run": len(history.epochs),
        "modalities": list(fit.model.modalities),
        "encoder_keys": files.dataset_info["encoder_keys"],
        "timings": timings | {"total": seconds},
    }
    wh.append(
        "training_runs",
        [
            base_row
            | {
                "status": "done",
                "dataset_versions_json": json.dumps(rd.data.versions),
                "n_train": len(rd.parts["train"]),
                "n_test": len(rd.parts["test"]),
                "metrics_json": json.dumps(summary),
                "checkpoint_path": str(Path("models") / run_id / CHECKPOINT),
                "finished_at": dt.datetime.now(dt.UTC),
            }
        ],
    )
    return seconds


# ---------------------------------------------------------------------------------------------
# Ablations
# ---------------------------------------------------------------------------------------------


def _ci_cell(value: Any, ci: Any) -> str:
    if not isinstance(value, float):
        return "—"
    if not ci:
        return f"{value:.3f}"
    return f"{value:.3f} [{ci[0]:.2f}, {ci[1]:.2f}]"


@dataclass
class AblationTable:
    """One row per ablation (and the baselines of the full model's run), plus the files.

    Rows carry `accuracy`, `weighted_f1`, `macro_f1` with `weighted_f1_ci` / `macro_f1_ci`
    (95 % bootstrap intervals over the test videos, every row on the same resamples) and a
    `note` (e.g. why an ablation is not applicable).
    """

    rows: list[dict[str, Any]]
    path: Path  # the folder holding ablations.{json,csv,md}
    results: dict[str, RunResult] = field(default_factory=dict)

    def markdown(self) -> str:
        head = (
            "| setting | run | modalities | accuracy | weighted F1 [95 % CI] | "
            "macro F1 [95 % CI] | note |"
        )
        lines = [head, "|---|---|---|---:|---:|---:|---|"]
        for r in self.rows:
            acc = r.get("accuracy")
            cells = [
                f"{acc:.3f}" if isinstance(acc, float) else "—",
                _ci_cell(r.get("weighted_f1"), r.get("weighted_f1_ci")),
                _ci_cell(r.get("macro_f1"), r.get("macro_f1_ci")),
            ]
            lines.append(
                f"| {r['setting']} | {r.get('run_id') or '—'} | "
                f"{' '.join(r.get('modalities') or []) or '—'} | "
                + " | ".join(cells)
                + f" | {r.get('note') or ''} |"
            )
        return "\n".join(lines) + "\n"

    def write_csv(self, path: Path) -> None:
        """One line per row; intervals as `<metric>_ci_low` / `<metric>_ci_high` columns."""
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(
                [
                    "setting",
                    "run_id",
                    "modalities",
                    "accuracy",
                    "weighted_f1",
                    "weighted_f1_ci_low",
                    "weighted_f1_ci_high",
                    "macro_f1",
                    "macro_f1_ci_low",
                    "macro_f1_ci_high",
                    "note",
                ]
            )
            for r in self.rows:
                cells: list[Any] = [r["setting"], r["run_id"] or "", " ".join(r["modalities"])]
                cells.append("" if r.get("accuracy") is None else r["accuracy"])
                for m in ("weighted_f1", "macro_f1"):
                    ci = r.get(f"{m}_ci") or ["", ""]
                    cells += ["" if r.get(m) is None else r[m], *ci]
                cells.append(r.get("note") or "")
                writer.writerow(cells)


def applicable_ablations(dims: Mapping[str, int]) -> dict[str, dict[str, Any]]:
    """The ablation list for a dataset: ABLATIONS plus the conditional ones whose modality
    was embedded (name -> TrainConfig overrides)."""
    out = dict(ABLATIONS)
    out |= {name: over for name, (m, over) in CONDITIONAL_ABLATIONS.items() if m in dims}
    return out


def _row(setting: str, run_id: str | None, modalities: list[str], m: Mapping[str, Any]) -> dict:
    return {"setting": setting, "run_id": run_id, "modalities": modalities} | {
        k: m.get(k) for k in SCORE_KEYS
    }


def run_ablations(
    settings: Settings,
    wh: Warehouse,
    base: TrainConfig | None = None,
    *,
    names: Iterable[str] | None = None,
    say: Say = log.info,
) -> AblationTable:
    """Train the ablation list on one dataset and one split; write one table.

    Every ablation is a full run (its own row in `training_runs`); the first one also fits the
    baselines, which join the table. Scores carry 95 % bootstrap intervals over the test
    videos (the same resamples for every run: same seed, same split). An ablation whose
    modality was never embedded ("without caption" with no caption vectors) is not trained:
    by default it is left out, asked for by name it gets a row marked not applicable.
    Files: <data_root>/models/ablations-<stamp>/.
    """
    base = base or settings.train
    known = [*ABLATIONS, *CONDITIONAL_ABLATIONS]
    chosen = list(names) if names is not None else None
    unknown = [n for n in chosen or [] if n not in known]
    if unknown:
        raise KeyError(f"unknown ablation(s) {unknown}; known: {known}")
    data = load_training_data(settings, wh, base)
    applicable = applicable_ablations(data.dims)
    if chosen is None:
        chosen = list(applicable)
    rows: list[dict[str, Any]] = []
    results: dict[str, RunResult] = {}
    trained = 0
    for i, name in enumerate(chosen):
        if name not in applicable:
            modality = CONDITIONAL_ABLATIONS[name][0]
            note = f"not applicable: no {modality} embeddings (it would train the full model)"
            say(f"[train] ablation {i + 1}/{len(chosen)}: {name}: {note}")
            rows.append(_row(name, None, [], {}) | {"overrides": {}, "note": note})
            continue
        cfg = TrainConfig.model_validate(
            base.model_dump() | applicable[name] | {"baselines": base.baselines and trained == 0}
        )
        say(f"[train] ablation {i + 1}/{len(chosen)}: {name}")
        result = train_run(settings, wh, cfg, dataset=data, say=say)
        trained += 1
        results[name] = result
        rows.append(
            _row(name, result.run_id, list(result.modalities), result.metrics)
            | {"overrides": applicable[name], "note": None}
        )
        for bname, b in result.baselines.items():
            modalities = [bname.split(":", 1)[1]] if ":" in bname else []
            rows.append(
                _row(f"baseline: {bname}", None, modalities, b) | {"overrides": {}, "note": None}
            )
    out = wh.root.models_dir(f"ablations-{new_run_id()}")
    out.mkdir(parents=True, exist_ok=True)
    table = AblationTable(rows, out, results)
    (out / "ablations.json").write_text(
        json.dumps({"versions": data.versions, "rows": rows}, indent=2)
    )
    table.write_csv(out / "ablations.csv")
    (out / "ablations.md").write_text(table.markdown())
    say(f"[train] ablation table: {out / 'ablations.md'}")
    return table


# ---------------------------------------------------------------------------------------------
# Predictions for unlabelled videos
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoPrediction:
    video_id: str
    label: str
    score: float
    probs: dict[str, float]
    model_version: str


class NoFinishedRunError(LookupError, ValueError):
    """No finished training run (with a model) to predict with: the user's next step is to
    train (a ValueError, so `chfen` reports it as a failure of the work, exit 1)."""


def latest_run(wh: Warehouse) -> str:
    """The newest finished training run."""
    rows = wh.rows(
        "SELECT run_id FROM training_runs_latest WHERE status = 'done' "
        "ORDER BY finished_at DESC, run_id DESC LIMIT 1"
    )
    if not rows:
        raise NoFinishedRunError("no finished training run; train first (`chfen train`)")
    return rows[0]["run_id"]


def load_run(wh: Warehouse, run_id: str) -> tuple[CHFEN, dict[str, Any]]:
    """A finished run's network (eval mode) and its checkpoint metadata."""
    rows = wh.rows(
        "SELECT status, checkpoint_path FROM training_runs_latest WHERE run_id = ?", [run_id]
    )
    if not rows or rows[0]["status"] != "done" or not rows[0]["checkpoint_path"]:
        state = rows[0]["status"] if rows else "unknown"
        raise NoFinishedRunError(
            f"training run {run_id} is {state}, not a finished run with a model"
        )
    path = wh.root.local(rows[0]["checkpoint_path"])
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    return CHFEN.from_checkpoint(ckpt["model"]).eval(), ckpt


def predict_videos(
    wh: Warehouse,
    run_id: str,
    video_ids: Sequence[str],
    *,
    batch_size: int = 64,
) -> list[VideoPrediction]:
    """Predictions of one run for some videos (those without any cached embedding skipped)."""
    model, ckpt = load_run(wh, run_id)
    con = connect_snapshot(wh, snapshot_versions(wh, ("embeddings",)))
    try:
        features, dims = load_features(
            con,
            video_ids,
            ckpt["encoder_keys"],
            max_steps=int(ckpt["max_steps"]),
            grid_hz=float(ckpt["grid_hz"]),
        )
    finally:
        con.close()
    for m, d in dims.items():
        if model.input_dims.get(m) != d:
            raise DatasetError(
                f"[train] the {m} vectors are {d}-d now but run {run_id} was trained on "
                f"{model.input_dims.get(m)}-d ones; retrain (`chfen train`)"
            )
    order: list[VideoFeatures] = [features[v] for v in video_ids if v in features]
    if not order:
        return []
    probs = predict_proba(model, EmbeddingDataset(order), batch_size=batch_size)
    version = model_version(run_id)
    return [
        VideoPrediction(
            f.video_id,
            PLUTCHIK[int(p.argmax())],
            float(p.max()),
            {label: float(v) for label, v in zip(PLUTCHIK, p, strict=True)},
            version,
        )
        for f, p in zip(order, probs, strict=True)
    ]


def predict_unlabeled(
    settings: Settings,
    wh: Warehouse,
    run_id: str | None = None,
    *,
    video_ids: Sequence[str] | None = None,
    write: bool = True,
    say: Say = log.info,
) -> dict[str, tuple[str, float, str]]:
    """video_id -> (label, score, model_version) for videos nobody has labelled yet.

    Candidates: `video_ids`, else every ok video with no current vote. The run defaults to the
    newest finished one. Rows go to `predictions` (split "unlabeled"), once per run and video.
    The result is what `labeling.push.push_tasks(predictions=...)` takes.
    """
    del settings  # the run's checkpoint carries what prediction needs
    run_id = run_id or latest_run(wh)
    if video_ids is None:
        labeled = set(
            votes_from_rows(
                wh.rows(
                    "SELECT video_id, annotator, choice, deleted, was_cancelled, updated_at "
                    "FROM annotations_latest"
                )
            )
        )
        ok = wh.rows("SELECT video_id FROM videos_latest WHERE status = 'ok' ORDER BY video_id")
        video_ids = [r["video_id"] for r in ok if r["video_id"] not in labeled]
    preds = predict_videos(wh, run_id, list(video_ids))
    if write and preds:
        done = {
            r["video_id"]
            for r in wh.rows("SELECT video_id FROM predictions WHERE run_id = ?", [run_id])
        }
        now = dt.datetime.now(dt.UTC)
        rows = [
            {
                "run_id": run_id,
                "video_id": p.video_id,
                "split": "unlabeled",
                "label": p.label,
                "score": p.score,
                "probs_json": json.dumps({k: round(v, 6) for k, v in p.probs.items()}),
                "model_version": p.model_version,
                "created_at": now,
            }
            for p in preds
            if p.video_id not in done
        ]
        if rows:
            wh.append("predictions", rows)
    say(
        f"[train] predicted {len(preds)} of {len(video_ids)} unlabelled videos with "
        f"{model_version(run_id)}"
    )
    return {p.video_id: (p.label, p.score, p.model_version) for p in preds}
