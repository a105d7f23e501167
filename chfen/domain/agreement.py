"""Agreement between annotators: per item, per annotator, and Krippendorff's alpha.

Votes, soft labels and majority labels are defined in `chfen.domain.votes`. Figures, each over
videos with at least one vote unless said otherwise:

- per item: its votes, soft label, majority label (None on a tie) and majority share;
- **alpha** (project): Krippendorff's alpha, nominal, over all annotators and videos (videos
  with one vote carry no pairs and do not count); None when it is undefined (fewer than two
  pairable values, or every vote is the same label);
- per annotator, two figures:
  - **alpha_delta** = alpha(all annotators) − alpha(everyone except this annotator). Negative
    means the data agree better without them (a poor annotator); positive, they help.
  - **agreement_with_others**: on the videos this annotator labelled where the *other*
    annotators have a unique majority label, the share where this annotator chose it.

The quality views of the warehouse compute the same figures in SQL (tests compare them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from chfen.domain.labels import CHOICES
from chfen.domain.votes import Votes, majority_label, majority_share, soft_label


@dataclass(frozen=True)
class ItemAgreement:
    """Agreement on one video."""

    video_id: str
    n_votes: int
    soft_label: dict[str, float]
    majority: str | None
    majority_share: float


@dataclass(frozen=True)
class AnnotatorAgreement:
    """How one annotator agrees with the others (definitions in the module docstring)."""

    annotator: str
    n_items: int
    alpha_without: float | None
    alpha_delta: float | None
    agreement_with_others: float | None
    n_compared: int


@dataclass
class AgreementReport:
    """Agreement of a whole project."""

    alpha: float | None
    n_items: int
    n_votes: int
    items: list[ItemAgreement] = field(default_factory=list)
    annotators: list[AnnotatorAgreement] = field(default_factory=list)


def krippendorff_alpha(votes: Votes, exclude: str | None = None) -> float | None:
    """Nominal Krippendorff's alpha over the votes (optionally without one annotator)."""
    # Imported here: numpy and krippendorff take ~0.4 s, and the label set and voting rules of
    # this layer are imported by nearly every command.
    import krippendorff
    import numpy as np

    annotators = sorted({a for by in votes.values() for a in by if a != exclude})
    items = sorted(votes)
    categories = {label: i for i, label in enumerate(CHOICES)}
    for by in votes.values():  # labels outside the label set still count as categories
        for label in by.values():
            categories.setdefault(label, len(categories))
    if len(annotators) < 2 or not items:
        return None
    data = np.full((len(annotators), len(items)), np.nan)
    row_of = {a: i for i, a in enumerate(annotators)}
    for j, item in enumerate(items):
        for annotator, label in votes[item].items():
            if annotator != exclude:
                data[row_of[annotator], j] = categories[label]
    pairable = data[:, (~np.isnan(data)).sum(axis=0) >= 2]
    values = pairable[~np.isnan(pairable)]
    if values.size < 2 or np.unique(values).size < 2:
        return None  # no disagreement is possible: alpha is undefined
    alpha = float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))
    return None if math.isnan(alpha) else alpha


def item_agreement(votes: Votes) -> list[ItemAgreement]:
    """Soft label and majority of every video, by video id."""
    out = []
    for video_id in sorted(votes):
        labels = list(votes[video_id].values())
        out.append(
            ItemAgreement(
                video_id,
                len(labels),
                soft_label(labels),
                majority_label(labels),
                majority_share(labels),
            )
        )
    return out


def annotator_agreement(votes: Votes, alpha_all: float | None = None) -> list[AnnotatorAgreement]:
    """alpha_delta and agreement_with_others of every annotator, by name."""
    if alpha_all is None:
        alpha_all = krippendorff_alpha(votes)
    annotators = sorted({a for by in votes.values() for a in by})
    out = []
    for annotator in annotators:
        without = krippendorff_alpha(votes, exclude=annotator)
        agree = compared = 0
        for by in votes.values():
            if annotator not in by:
                continue
            others = majority_label(label for a, label in by.items() if a != annotator)
            if others is not None:
                compared += 1
                agree += by[annotator] == others
        out.append(
            AnnotatorAgreement(
                annotator=annotator,
                n_items=sum(annotator in by for by in votes.values()),
                alpha_without=without,
                alpha_delta=(alpha_all - without)
                if alpha_all is not None and without is not None
                else None,
                agreement_with_others=agree / compared if compared else None,
                n_compared=compared,
            )
        )
    return out


def agreement(votes: Votes) -> AgreementReport:
    """All figures for a set of votes."""
    alpha = krippendorff_alpha(votes)
    return AgreementReport(
        alpha=alpha,
        n_items=len(votes),
        n_votes=sum(len(by) for by in votes.values()),
        items=item_agreement(votes),
        annotators=annotator_agreement(votes, alpha),
    )
