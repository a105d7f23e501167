"""The domain layer, at the bottom of the project: the label set, the voting and agreement
rules (pure functions and their parameters), and the model of the simulated annotation crew.

It imports nothing of the project above it, and nothing slow at import time, so every layer
may use it: `warehouse` (its quality SQL is generated from `chfen.domain.votes`), the `chfen`
library, `labeling` and `flows` (docs/architecture.md).

- `chfen.domain.labels`: PLUTCHIK, NO_EMOTION, CHOICES, EMOTION_INDEX;
- `chfen.domain.votes`: votes, soft/majority labels, majority share, `training_target`,
  `queue_reasons`, and the same rules as SQL;
- `chfen.domain.agreement`: Krippendorff's alpha, per-item and per-annotator agreement;
- `chfen.domain.crew`: the simulated annotators and how each one votes.
- `chfen.domain.stages`: the stage names (the rest of each stage: `chfen/registry.py`).
"""

from chfen.domain.agreement import (
    AgreementReport,
    AnnotatorAgreement,
    ItemAgreement,
    agreement,
    annotator_agreement,
    item_agreement,
    krippendorff_alpha,
)
from chfen.domain.crew import SimulatedAnnotator, default_crew, sim_email, simulated_label
from chfen.domain.labels import CHOICES, EMOTION_INDEX, NO_EMOTION, PLUTCHIK
from chfen.domain.votes import (
    DEFAULT_MIN_AGREEMENT,
    DEFAULT_MIN_VOTES,
    LOW_AGREEMENT,
    NO_EMOTION_MAJORITY,
    NO_EMOTION_POLICIES,
    TOO_FEW_VOTES,
    TrainingTarget,
    Votes,
    hard_label,
    majority_label,
    majority_share,
    majority_share_sql,
    majority_sql,
    queue_reasons,
    queue_reasons_sql,
    soft_label,
    training_target,
    votes_from_rows,
)

__all__ = [
    "CHOICES",
    "DEFAULT_MIN_AGREEMENT",
    "DEFAULT_MIN_VOTES",
    "EMOTION_INDEX",
    "LOW_AGREEMENT",
    "NO_EMOTION",
    "NO_EMOTION_MAJORITY",
    "NO_EMOTION_POLICIES",
    "PLUTCHIK",
    "TOO_FEW_VOTES",
    "AgreementReport",
    "AnnotatorAgreement",
    "ItemAgreement",
    "SimulatedAnnotator",
    "TrainingTarget",
    "Votes",
    "agreement",
    "annotator_agreement",
    "default_crew",
    "hard_label",
    "item_agreement",
    "krippendorff_alpha",
    "majority_label",
    "majority_share",
    "majority_share_sql",
    "majority_sql",
    "queue_reasons",
    "queue_reasons_sql",
    "sim_email",
    "simulated_label",
    "soft_label",
    "training_target",
    "votes_from_rows",
]
