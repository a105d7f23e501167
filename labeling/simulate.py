"""A SIMULATED annotation crew for the demo and the tests — not people, and says so.

Each simulated annotator is a real Label Studio user named `sim-annotator-<n>@chfen.local`
and submits real annotations through the API, derived from a ground-truth mapping
(video_id -> emotion; the demo site's ground truth) with seeded, per-annotator noise. How each
annotator votes (careful ones near misses on Plutchik's wheel, the last one deliberately poor,
everyone skipping a few tasks) is the domain layer's crew model (`chfen.domain.crew`); here
each vote also gets an intensity 1–3, sometimes a timeline segment, and a plausible time (lead
time) per task.

The same seed gives the same labels, independent of task order; running it again only fills
in tasks an annotator has not done yet.
"""

from __future__ import annotations

import logging
import random
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from label_studio_sdk import LabelStudio

from chfen.config import Settings
from chfen.domain.crew import SimulatedAnnotator, default_crew, sim_email, simulated_label
from chfen.domain.labels import NO_EMOTION
from labeling import config as lc
from labeling.project import connect, describe_api_error, ensure_project, is_unreachable
from labeling.pull import seconds_to_frames
from labeling.server import LabelStudioError

log = logging.getLogger("labeling.simulate")

COMPONENT = "label_simulate"  # not a stage: it only prefixes error messages
BANNER = "SIMULATION: these annotations come from simulated annotators, not from people."

# The crew model is named here too, beside the stage that submits its votes.
__all__ = [
    "BANNER",
    "COMPONENT",
    "SimulatedAnnotator",
    "SimulationReport",
    "default_crew",
    "completed_by",
    "ensure_user",
    "sim_email",
    "simulate_annotations",
    "simulated_label",
    "simulated_result",
]


@dataclass
class SimulationReport:
    """What the simulated crew did."""

    project_id: int
    annotators: list[str]
    created: dict[str, int] = field(default_factory=dict)  # email -> annotations created
    skipped: dict[str, int] = field(default_factory=dict)  # email -> tasks skipped
    already_done: int = 0
    no_ground_truth: list[str] = field(default_factory=list)


def simulated_result(
    label: str, data: Mapping[str, Any], annotator: SimulatedAnnotator, rng: random.Random
) -> list[dict[str, Any]]:
    """A full annotation result: emotion, intensity, maybe one timeline segment."""
    result: list[dict[str, Any]] = [
        {
            "from_name": lc.EMOTION,
            "to_name": lc.VIDEO,
            "type": "choices",
            "value": {"choices": [label]},
        },
        {
            "from_name": lc.INTENSITY,
            "to_name": lc.VIDEO,
            "type": "rating",
            "value": {"rating": rng.choice([1, 2, 2, 3]) if label != NO_EMOTION else 1},
        },
    ]
    duration, fps = data.get("duration_s"), data.get("fps")
    if label != NO_EMOTION and duration and fps and rng.random() < annotator.segment_rate:
        start_s = round(rng.uniform(0, duration * 0.6), 2)
        end_s = round(min(duration, start_s + rng.uniform(0.5, max(duration * 0.4, 0.6))), 2)
        start, end = seconds_to_frames(start_s, end_s, float(fps))
        result.append(
            {
                "from_name": lc.SEGMENTS,
                "to_name": lc.VIDEO,
                "type": "timelinelabels",
                "value": {"ranges": [{"start": start, "end": end}], "timelinelabels": [label]},
            }
        )
    return result


def ensure_user(client: LabelStudio, email: str, first_name: str = "Simulated") -> int:
    """The Label Studio user id of `email`, created (with a random password) if missing."""
    for user in client.users.list():
        if (user.email or "").lower() == email.lower() and user.id is not None:
            return int(user.id)
    user = client.users.create(
        username=email,
        email=email,
        first_name=first_name,
        last_name=email.split("@")[0],
        password=secrets.token_urlsafe(16),
    )
    return int(user.id)


def simulate_annotations(
    settings: Settings,
    ground_truth: Mapping[str, str],
    *,
    n_annotators: int = 3,
    seed: int = 0,
    crew: list[SimulatedAnnotator] | None = None,
    client: LabelStudio | None = None,
    say: Callable[[str], None] = print,
) -> SimulationReport:
    """Let a simulated crew annotate every task of the project that has a ground truth.

    `ground_truth` maps video_id -> emotion (one of chfen.labels). Prints that this is a
    simulation. Raises `LabelStudioError` when Label Studio cannot be reached.
    """
    say(BANNER)
    client = client or connect(settings)
    crew = crew or default_crew(n_annotators)
    project = ensure_project(settings, client, log=say)
    report = SimulationReport(project.id, [a.email for a in crew])
    try:
        user_ids = {a.email: ensure_user(client, a.email) for a in crew}
        tasks = list(client.tasks.list(project=project.id, fields="all", page_size=200))
        for annotator in crew:
            uid = user_ids[annotator.email]
            made = skipped = 0
            for task in tasks:
                data = task.data or {}
                video_id = data.get("video_id")
                truth = ground_truth.get(video_id) if video_id else None
                if truth is None:
                    if video_id and video_id not in report.no_ground_truth:
                        report.no_ground_truth.append(video_id)
                    continue
                if any(completed_by(a) == uid for a in task.annotations or []):
                    report.already_done += 1
                    continue
                rng = random.Random(f"{seed}:{annotator.email}:{video_id}")
                lead_time = round(rng.uniform(6.0, 45.0), 1)
                if rng.random() < annotator.skip_rate:
                    client.annotations.create(
                        id=int(task.id),
                        result=[],
                        was_cancelled=True,
                        completed_by=uid,
                        lead_time=lead_time,
                    )
                    skipped += 1
                    continue
                label = simulated_label(truth, annotator, rng)
                client.annotations.create(
                    id=int(task.id),
                    result=simulated_result(label, data, annotator, rng),
                    completed_by=uid,
                    lead_time=lead_time,
                )
                made += 1
            report.created[annotator.email] = made
            report.skipped[annotator.email] = skipped
            say(
                f"  {annotator.email}{' (deliberately poor)' if annotator.poor else ''}: "
                f"{made} annotations, {skipped} skipped"
            )
    except Exception as exc:
        if is_unreachable(exc) or hasattr(exc, "status_code"):
            raise LabelStudioError(f"[{COMPONENT}] {describe_api_error(exc, settings)}") from exc
        raise
    if report.no_ground_truth:
        log.warning(
            "[%s] %d task(s) have no ground truth and were left alone",
            COMPONENT,
            len(report.no_ground_truth),
        )
    return report


def completed_by(annotation: Any) -> int | None:
    """The Label Studio user id that made an annotation (an SDK object or a dict)."""
    value = (
        annotation.get("completed_by")
        if isinstance(annotation, Mapping)
        else getattr(annotation, "completed_by", None)
    )
    if isinstance(value, Mapping):
        value = value.get("id")
    return int(value) if value is not None else None
