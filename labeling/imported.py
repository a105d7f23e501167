"""Imported labels into Label Studio: each vote of a dataset brought in with `chfen import`
becomes an annotation of a real Label Studio user, so people can review it in the UI and
`label pull` brings it back like every other vote (origin `imported`).

The users are named by `chfen.domain.origins.import_email`: one per rater of a ratings file,
and one named after the dataset for a dataset with one label per file. The path is the one the
simulated crew takes (`labeling.simulate.ensure_user`, `annotations.create` with
`completed_by`); a task gets a user's vote once, so running it again only adds what is new
(votes of files whose tasks were pushed since). Runs after `label push`: a file's task exists
once its ASR is done.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from label_studio_sdk import LabelStudio

from chfen.config import Settings
from chfen.ingest import imported_votes
from labeling import config as lc
from labeling.project import connect, describe_api_error, ensure_project, is_unreachable
from labeling.server import LabelStudioError
from labeling.simulate import completed_by, ensure_user
from warehouse import Warehouse

log = logging.getLogger("labeling.imported")

COMPONENT = "label_import"  # not a stage: it only prefixes error messages


@dataclass
class ImportedLabelsReport:
    """What one submission of imported labels did."""

    project_id: int
    created: dict[str, int] = field(default_factory=dict)  # e-mail -> annotations created
    already_done: int = 0
    waiting: int = 0  # votes whose file has no task yet (not processed or not pushed)


def imported_result(label: str, intensity: int | None) -> list[dict[str, Any]]:
    """The annotation result of one imported vote: the emotion, and its intensity if known."""
    if label not in lc.LABELS:
        raise ValueError(f"imported label {label!r} is not one of {lc.LABELS}")
    result: list[dict[str, Any]] = [
        {
            "from_name": lc.EMOTION,
            "to_name": lc.VIDEO,
            "type": "choices",
            "value": {"choices": [label]},
        }
    ]
    if intensity is not None:
        result.append(
            {
                "from_name": lc.INTENSITY,
                "to_name": lc.VIDEO,
                "type": "rating",
                "value": {"rating": int(intensity)},
            }
        )
    return result


def submit_imported_labels(
    settings: Settings,
    wh: Warehouse,
    *,
    client: LabelStudio | None = None,
    say: Callable[[str], None] | None = None,
) -> ImportedLabelsReport | None:
    """Submit every imported vote whose task exists and that its user has not given yet.
    None when nothing was imported. Raises `LabelStudioError` when Label Studio cannot be
    reached."""
    votes = imported_votes(wh)
    if not votes:
        return None
    say = say or log.info
    client = client or connect(settings)
    project = ensure_project(settings, client, log=say)
    report = ImportedLabelsReport(project.id)
    try:
        tasks = {
            (t.data or {}).get("video_id"): t
            for t in client.tasks.list(project=project.id, fields="all", page_size=500)
        }
        by_email: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for vote in votes:
            by_email[vote["email"]].append(vote)
        for email, mine in by_email.items():
            uid: int | None = None
            made = 0
            for vote in mine:
                task = tasks.get(vote["video_id"])
                if task is None:
                    report.waiting += 1
                    continue
                if uid is None:
                    uid = ensure_user(client, email, first_name="Imported")
                if any(completed_by(a) == uid for a in task.annotations or []):
                    report.already_done += 1
                    continue
                client.annotations.create(
                    id=int(task.id),
                    result=imported_result(vote["label"], vote.get("intensity")),
                    completed_by=uid,
                )
                made += 1
            if made:
                report.created[email] = made
    except Exception as exc:
        if is_unreachable(exc) or hasattr(exc, "status_code"):
            raise LabelStudioError(f"[{COMPONENT}] {describe_api_error(exc, settings)}") from exc
        raise
    say(
        f"[{COMPONENT}] project {project.id}: {sum(report.created.values())} imported label(s) "
        f"submitted, {report.already_done} already there, {report.waiting} waiting for their "
        "task (process and push the files first)"
    )
    return report
