"""The simulated annotation crew, through the real API (clearly a simulation)."""

from __future__ import annotations

import random

import pytest
from label_studio_sdk import LabelStudio
from labkit import Lab

from chfen.labels import PLUTCHIK
from labeling.agreement import project_agreement
from labeling.pull import pull_annotations
from labeling.push import push_tasks
from labeling.simulate import BANNER, default_crew, simulate_annotations, simulated_label

pytestmark = pytest.mark.slow


def test_a_seeded_noisy_crew_with_one_poor_annotator(
    lab: Lab, client: LabelStudio, capsys: pytest.CaptureFixture[str]
) -> None:
    truth = {lab.add_video(n): PLUTCHIK[n % len(PLUTCHIK)] for n in range(12)}
    push_tasks(lab.settings, lab.wh)

    report = simulate_annotations(lab.settings, truth, n_annotators=3, seed=7)
    printed = capsys.readouterr().out

    assert BANNER in printed and "SIMULATION" in printed
    crew = [f"sim-annotator-{i}@chfen.local" for i in (1, 2, 3)]
    assert report.annotators == crew
    assert sum(report.created.values()) + sum(report.skipped.values()) == 36
    pull_annotations(lab.settings, lab.wh)
    rows = lab.wh.rows("SELECT * FROM annotations_latest")
    assert {r["annotator"] for r in rows} == set(crew)

    # Deterministic: every label is the one the random seed gives, whatever the task order.
    for row in rows:
        if row["was_cancelled"]:
            continue
        annotator = next(a for a in default_crew(3) if a.email == row["annotator"])
        rng = random.Random(f"7:{annotator.email}:{row['video_id']}")
        rng.uniform(6.0, 45.0)  # lead time
        rng.random()  # skip draw
        assert row["choice"] == simulated_label(truth[row["video_id"]], annotator, rng)

    by = {a.annotator: a for a in project_agreement(lab.wh).annotators}
    poor = by[crew[-1]]
    assert poor.agreement_with_others < min(by[c].agreement_with_others for c in crew[:-1])

    again = simulate_annotations(lab.settings, truth, n_annotators=3, seed=7)
    assert sum(again.created.values()) == 0 and again.already_done == 36
