"""Label Studio flows: `label_push` (tasks for processed videos) and `label_pull` (annotations
back into the warehouse, with agreement), plus the demo's simulated annotation crew.

The work is in `labeling/`; these are thin Prefect wrappers.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict

from prefect import flow, get_run_logger

from chfen.config import Settings
from chfen.domain import stages as stage_names
from flows.runtime import ResolvedSettings, locked, report, resolve_settings
from labeling.agreement import project_agreement
from labeling.imported import submit_imported_labels
from labeling.pull import pull_annotations
from labeling.push import push_tasks
from labeling.simulate import simulate_annotations
from warehouse import Warehouse

# Events `label_pull` emits (the served `train` deployment's trigger listens for READY).
LABELS_PULLED = "chfen.labels.pulled"
LABELS_READY = "chfen.labels.ready-to-train"


def data_root_resource(settings: Settings) -> dict[str, str]:
    """The Prefect event resource standing for one data root (its dataset)."""
    root = str(settings.data_path)
    digest = hashlib.sha1(root.encode()).hexdigest()[:16]
    return {"prefect.resource.id": f"chfen.data-root.{digest}", "prefect.resource.name": root}


def announce_labels(settings: Settings, wh: Warehouse) -> dict:
    """Emit LABELS_PULLED with the agreed-label counts, and LABELS_READY when at least
    `prefect.retrain_min_new_labels` agreed labels arrived since the last training run (before
    the first run: `prefect.train_min_labeled`). Returns the payload."""
    from prefect.events import emit_event

    from chfen.train.retrain import new_agreed_labels  # imports torch: only when needed

    counts = new_agreed_labels(settings, wh)
    payload = {**asdict(counts), "enough": counts.enough}
    resource = data_root_resource(settings)
    emit_event(LABELS_PULLED, resource=resource, payload=payload)
    if counts.enough:
        emit_event(LABELS_READY, resource=resource, payload=payload)
    return payload


@flow(name="label_push")
@locked(stage_names.LABEL_PUSH)
def label_push_flow(
    settings_file: str | None = None,
    overrides: list[str] | None = None,
    settings: ResolvedSettings = None,
) -> dict:
    """Push tasks (with the latest model's pre-annotations, when one exists) to Label Studio,
    then the labels of imported datasets as their users' annotations."""
    logger = get_run_logger()
    settings = resolve_settings(settings, settings_file, overrides)
    wh = Warehouse(settings.data_path)

    def on_batch(done: int, total: int) -> None:
        report("label_push:total", total)
        report("label_push:progress", done)

    predictions = None
    if wh.rows("SELECT 1 FROM training_runs_latest WHERE status = 'done' LIMIT 1"):
        from chfen.train import predict_unlabeled  # heavy import: only once a model exists

        predictions = predict_unlabeled(settings, wh, say=logger.info)
        logger.info("pre-annotations from the latest model for %d video(s)", len(predictions))
    result = push_tasks(settings, wh, predictions=predictions, on_batch=on_batch, say=logger.info)
    wh.refresh_catalog()
    # labels of imported datasets (`chfen import`) go in as their users' annotations once the
    # files' tasks exist
    imported = submit_imported_labels(settings, wh, say=logger.info)
    return {
        "project_id": result.project_id,
        "pushed": len(result.pushed),
        "recovered": len(result.recovered),
        "already_pushed": result.already_pushed,
        "predictions_added": len(result.predictions_added),
        "failed": result.failed,
        "imported_labels": sum(imported.created.values()) if imported else 0,
        "seconds": round(result.seconds, 2),
    }


@flow(name="label_pull")
@locked(stage_names.LABEL_PULL)
def label_pull_flow(
    settings_file: str | None = None,
    overrides: list[str] | None = None,
    settings: ResolvedSettings = None,
) -> dict:
    """Pull new, changed and deleted annotations; report agreement; announce new agreed labels
    (the event that starts retraining when `chfen serve` runs)."""
    logger = get_run_logger()
    settings = resolve_settings(settings, settings_file, overrides)
    wh = Warehouse(settings.data_path)
    result = pull_annotations(settings, wh, say=logger.info)
    wh.refresh_catalog()
    agreement = project_agreement(wh, result.project_id)
    labels = announce_labels(settings, wh)
    if labels["enough"]:
        logger.info(
            "%d new agreed label(s) since the last training run: emitted %s",
            labels["new"],
            LABELS_READY,
        )
    return {
        "project_id": result.project_id,
        "exported": result.exported,
        "new": result.new,
        "updated": result.updated,
        "deleted": result.deleted,
        "unchanged": result.unchanged,
        "items": agreement.n_items,
        "votes": agreement.n_votes,
        "alpha": agreement.alpha,
        "annotators": [
            {
                "annotator": a.annotator,
                "items": a.n_items,
                "alpha_delta": a.alpha_delta,
                "agreement_with_others": a.agreement_with_others,
            }
            for a in agreement.annotators
        ],
        "warnings": result.warnings,
        "agreed_labels": labels["agreed"],
        "new_agreed_labels": labels["new"],
        "retrain_due": labels["enough"],
    }


def demo_ground_truth(settings: Settings, wh: Warehouse) -> dict[str, str]:
    """warehouse video_id -> emotion for videos crawled from the local demo site."""
    from chfen.crawl import video_id_for
    from chfen.demo import generate_catalogue, resolve_cache_dir

    catalogue = generate_catalogue(
        settings.demo_site, resolve_cache_dir(settings.demo_site, settings.data_path)
    )
    truth = {
        video_id_for({"extractor_key": "Generic", "id": v["id"]}): v["emotion"]
        for v in catalogue.ground_truth["videos"]
        if v.get("emotion")
    }
    known = {r["video_id"] for r in wh.rows("SELECT video_id FROM videos_latest")}
    return {k: v for k, v in truth.items() if k in known}


@flow(name="demo_annotate")
def demo_annotate_flow(
    settings_file: str | None = None,
    overrides: list[str] | None = None,
    annotators: int = 3,
    settings: ResolvedSettings = None,
) -> dict:
    """SIMULATION: label the demo site's tasks from its ground truth with a noisy crew."""
    logger = get_run_logger()
    settings = resolve_settings(settings, settings_file, overrides)
    if settings.sources:
        raise ValueError(
            "the simulated crew only labels the local demo site; this config has real sources"
        )
    wh = Warehouse(settings.data_path)
    result = simulate_annotations(
        settings, demo_ground_truth(settings, wh), n_annotators=annotators, say=logger.warning
    )
    return {
        "simulation": True,
        "annotators": result.annotators,
        "created": result.created,
        "skipped": result.skipped,
        "already_done": result.already_done,
    }
