"""The voting rules: what a vote is, an item's soft and majority label, and which items training
keeps and which need more annotation — once, for Python and (as generated SQL) for DuckDB.

A *vote* is an annotator's current choice on a video: the newest annotation that is neither
deleted nor skipped (cancelled) and has a choice; one vote per annotator per video.
"no clear emotion" is a category like the others.

For one video's votes:

- **soft label**: the share of its votes per label (sums to 1);
- **majority label**: the label with the most votes; None on a tie for first place;
- **majority share** (the *agreement* of the item): the top label's share of *all* votes,
  "no clear emotion" included (so a video half the crew found neutral has low agreement); on a
  tie it is the tied share.

Two rules read these with the same parameters, `min_votes` and `min_agreement`
(`TrainConfig.min_votes` / `min_agreement`; defaults `DEFAULT_MIN_VOTES`,
`DEFAULT_MIN_AGREEMENT`):

- `training_target` — what training learns from: an item is kept when it has at least
  `min_votes` votes in the label set, a majority share >= `min_agreement`, at least one emotion
  vote, and its majority is not "no clear emotion" (the head has the eight primaries only). A
  tie passes when its share is high enough (its soft label splits the weight). Drop reasons:
  `TOO_FEW_VOTES`, `LOW_AGREEMENT`, `NO_EMOTION_MAJORITY`. The soft label over PLUTCHIK:
  `no_emotion="drop_votes"` (default) the shares among the emotion votes only; `"uniform"`
  every vote counts, a "no clear emotion" vote spreading 1/8 over each emotion (it says "no
  evidence for any"). The hard label is the soft label's argmax, ties to the first in PLUTCHIK.
- `queue_reasons` — what the annotation queue asks more votes for: `TOO_FEW_VOTES` (fewer than
  `min_votes`; one vote suffices when one of them is an imported dataset's own label, the
  per-source policy of `chfen.domain.origins`), `LOW_AGREEMENT` (two or more votes and a tie
  or a majority share below `min_agreement`). A tie is contested here even where training
  keeps it: another vote can settle it.

The warehouse's quality views (`warehouse.quality`) build their majority, majority share and
queue reasons from `majority_sql`, `majority_share_sql` and `queue_reasons_sql`, so the SQL and
the Python rules cannot drift apart (tests/warehouse/test_quality_votes.py compares them).

Everything here is pure: no I/O, no import of the project above the domain layer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chfen.domain.labels import EMOTION_INDEX, NO_EMOTION, PLUTCHIK
from chfen.domain.origins import DATASET_LABEL_MIN_VOTES

Votes = dict[str, dict[str, str]]  # video_id -> annotator -> label

# The defaults of the rules' parameters (TrainConfig's defaults, and the quality macros').
DEFAULT_MIN_VOTES = 2  # fewer and training drops the item
DEFAULT_MIN_AGREEMENT = 0.5  # majority share below this and training drops the item
# Agreement needs at least two votes: one vote is never contested.
MIN_CONTESTED_VOTES = 2

# Reasons an item is dropped by training or queued for more annotation.
TOO_FEW_VOTES = "too_few_votes"
LOW_AGREEMENT = "low_agreement"
NO_EMOTION_MAJORITY = "no_emotion"

NO_EMOTION_POLICIES: tuple[str, ...] = ("drop_votes", "uniform")


# ---------------------------------------------------------------------------------------------
# Votes and per-item figures
# ---------------------------------------------------------------------------------------------


def votes_from_rows(rows: Iterable[Mapping[str, Any]]) -> Votes:
    """Votes from `annotations` rows (skips deleted, cancelled and choice-less rows; the newest
    row per video and annotator wins)."""
    newest: dict[tuple[str, str], tuple[Any, str]] = {}
    for row in rows:
        if row.get("deleted") or row.get("was_cancelled") or not row.get("choice"):
            continue
        key = (row["video_id"], row["annotator"])
        stamp = row.get("updated_at")
        if key not in newest or (stamp is not None and stamp > newest[key][0]):
            newest[key] = (stamp, row["choice"])
    votes: Votes = {}
    for (video_id, annotator), (_, label) in newest.items():
        votes.setdefault(video_id, {})[annotator] = label
    return votes


def soft_label(labels: Iterable[str]) -> dict[str, float]:
    """label -> share of the votes (only labels that got a vote)."""
    counts = Counter(labels)
    total = sum(counts.values())
    return {label: n / total for label, n in sorted(counts.items())} if total else {}


def majority_label(labels: Iterable[str]) -> str | None:
    """The most frequent label, or None when there is no vote or a tie for first place."""
    ranked = Counter(labels).most_common()
    if not ranked or (len(ranked) > 1 and ranked[0][1] == ranked[1][1]):
        return None
    return ranked[0][0]


def majority_share(labels: Iterable[str]) -> float:
    """The top label's share of all votes (the tied share on a tie); 0.0 without votes."""
    counts = Counter(labels)
    total = sum(counts.values())
    return max(counts.values()) / total if total else 0.0


# ---------------------------------------------------------------------------------------------
# The rules
# ---------------------------------------------------------------------------------------------


def queue_reasons(
    labels: Sequence[str],
    *,
    min_votes: int = DEFAULT_MIN_VOTES,
    min_agreement: float = DEFAULT_MIN_AGREEMENT,
    dataset_label: bool = False,
) -> list[str]:
    """Why an item needs more annotation (empty: it does not), in `queue_reasons_sql`'s order.
    `dataset_label`: one of the votes is an imported dataset's own label, so the item needs
    only the votes the per-source policy asks (`chfen.domain.origins.min_votes_for`)."""
    reasons = []
    if len(labels) < (DATASET_LABEL_MIN_VOTES if dataset_label else min_votes):
        reasons.append(TOO_FEW_VOTES)
    if len(labels) >= MIN_CONTESTED_VOTES and (
        majority_label(labels) is None or majority_share(labels) < min_agreement
    ):
        reasons.append(LOW_AGREEMENT)
    return reasons


@dataclass(frozen=True)
class TrainingTarget:
    """What training learns from one video: its soft label over PLUTCHIK (sums to 1), the votes
    behind it and their agreement (majority share)."""

    soft: tuple[float, ...]
    n_votes: int
    agreement: float

    @property
    def hard_label(self) -> str:
        return hard_label(self.soft)


def training_target(
    labels: Iterable[str],
    *,
    min_votes: int = 1,
    min_agreement: float = 0.0,
    no_emotion: str = "drop_votes",
) -> TrainingTarget | str:
    """The training target of one video's votes, or the reason training drops it (module
    docstring). Votes outside the label set are ignored."""
    votes = [label for label in labels if label in EMOTION_INDEX or label == NO_EMOTION]
    if len(votes) < min_votes or not votes:
        return TOO_FEW_VOTES
    major = majority_label(votes)
    agreement = majority_share(votes)
    if agreement < min_agreement:
        return LOW_AGREEMENT
    emotion_votes = [v for v in votes if v in EMOTION_INDEX]
    if major == NO_EMOTION or not emotion_votes:
        return NO_EMOTION_MAJORITY
    counts = [0.0] * len(PLUTCHIK)
    for v in emotion_votes:
        counts[EMOTION_INDEX[v]] += 1
    if no_emotion == "drop_votes":
        total = sum(counts)
        soft = tuple(c / total for c in counts)
    elif no_emotion == "uniform":
        spread = (len(votes) - len(emotion_votes)) / len(PLUTCHIK)
        soft = tuple((c + spread) / len(votes) for c in counts)
    else:
        raise ValueError(
            f"unknown no_emotion policy {no_emotion!r}: one of {', '.join(NO_EMOTION_POLICIES)}"
        )
    return TrainingTarget(soft, len(votes), agreement)


def hard_label(soft: Sequence[float]) -> str:
    """The label of a soft label over PLUTCHIK: its argmax, ties to the first in PLUTCHIK."""
    best = max(range(len(PLUTCHIK)), key=lambda i: (soft[i], -i))
    return PLUTCHIK[best]


# ---------------------------------------------------------------------------------------------
# The same rules as SQL (DuckDB) expressions
# ---------------------------------------------------------------------------------------------
# Arguments are SQL expressions (column or macro parameter names, or literals), so the views
# can plug in their own columns.


def majority_sql(n_top_labels: str, top_label: str) -> str:
    """`majority_label` from the number of labels tied for the top and (one of) the top label."""
    return f"CASE WHEN {n_top_labels} = 1 THEN {top_label} END"


def majority_share_sql(top_votes: str, n_votes: str) -> str:
    """`majority_share` from the top label's votes and all votes (integers: DuckDB's `/`
    divides as doubles)."""
    return f"{top_votes} / {n_votes}"


def queue_reasons_sql(
    n_votes: str,
    majority: str,
    majority_share: str,
    min_votes: str | int = DEFAULT_MIN_VOTES,
    min_agreement: str | float = DEFAULT_MIN_AGREEMENT,
    dataset_label: str = "false",
) -> list[str]:
    """`queue_reasons` as SQL: one expression per reason, the reason's name or NULL (an item
    without votes has NULL `n_votes`; `dataset_label` a boolean expression, NULL = false)."""
    need = (
        f"CASE WHEN coalesce({dataset_label}, false) THEN {DATASET_LABEL_MIN_VOTES} "
        f"ELSE {min_votes} END"
    )
    return [
        f"CASE WHEN coalesce({n_votes}, 0) < {need} THEN '{TOO_FEW_VOTES}' END",
        f"CASE WHEN {n_votes} >= {MIN_CONTESTED_VOTES} AND ({majority} IS NULL "
        f"OR {majority_share} < {min_agreement}) THEN '{LOW_AGREEMENT}' END",
    ]
