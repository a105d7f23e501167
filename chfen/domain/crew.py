"""The model of a SIMULATED annotation crew: who the simulated annotators are and how each one
votes. Not people, and says so.

It is the annotators' side of the demo: `labeling.simulate` submits these votes to Label Studio
as real users named `sim-annotator-<n>@chfen.local`, and `chfen.demo.cues` computes from the
same model which training label the crew gives each true emotion. Votes derive from a
ground-truth emotion with seeded, per-annotator noise:

- a careful annotator mostly picks the true emotion, and when wrong picks a neighbour on
  Plutchik's wheel (the order of `PLUTCHIK`) or "no clear emotion";
- the last annotator of the crew is deliberately poor: right only now and then, otherwise any
  label at random;
- everyone skips a few tasks (`skip_rate`), and sometimes marks a timeline segment
  (`segment_rate`; what the segment is, is Label Studio's business).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from chfen.domain.labels import CHOICES, NO_EMOTION, PLUTCHIK

EMAIL_DOMAIN = "chfen.local"


@dataclass(frozen=True)
class SimulatedAnnotator:
    """One simulated annotator and how noisy it is."""

    email: str
    accuracy: float  # chance of picking the ground-truth label
    skip_rate: float = 0.03
    segment_rate: float = 0.4  # chance of also marking a timeline segment
    poor: bool = False  # wrong labels are uniform at random, not near misses


def sim_email(n: int) -> str:
    """The e-mail of simulated annotator n (1-based)."""
    return f"sim-annotator-{n}@{EMAIL_DOMAIN}"


def default_crew(n_annotators: int = 3) -> list[SimulatedAnnotator]:
    """n annotators of decreasing care; the last one (when n > 1) is the poor one."""
    if n_annotators < 1:
        raise ValueError("the crew needs at least one annotator")
    crew = [
        SimulatedAnnotator(sim_email(i + 1), accuracy=max(0.9 - 0.07 * i, 0.6))
        for i in range(n_annotators)
    ]
    if n_annotators > 1:
        crew[-1] = SimulatedAnnotator(
            sim_email(n_annotators), accuracy=0.3, skip_rate=0.08, segment_rate=0.1, poor=True
        )
    return crew


def simulated_label(truth: str, annotator: SimulatedAnnotator, rng: random.Random) -> str:
    """The label this annotator gives a video whose true emotion is `truth`."""
    if rng.random() < annotator.accuracy:
        return truth
    if annotator.poor or truth not in PLUTCHIK:
        return rng.choice([label for label in CHOICES if label != truth])
    i = PLUTCHIK.index(truth)
    near = [PLUTCHIK[(i - 1) % len(PLUTCHIK)], PLUTCHIK[(i + 1) % len(PLUTCHIK)], NO_EMOTION]
    return rng.choices(near, weights=[0.4, 0.4, 0.2])[0]
