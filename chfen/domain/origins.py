"""Where a vote comes from, read from who cast it: a person, the simulated crew, or an imported
dataset (`chfen import`); and the vote policy for imported datasets.

Imported labels reach Label Studio as annotations of real Label Studio users whose e-mail
says where they come from (`import_email`):

- `<source>@import.chfen.local`: the dataset's own label, one per file (a dataset published
  with one label per file, or a file-name preset such as RAVDESS). It stands for the label the
  dataset's makers agreed on, so it is the *dataset label* of the item;
- `<source>.<rater>@import.chfen.local`: one rater of a dataset published with one row per
  rating (e.g. CREMA-D's crowd ratings); a vote like a person's.

The vote policy (`min_votes_for`): an item that carries its dataset label needs one vote to
train (and is not queued for "too few votes": `chfen.domain.votes.queue_reasons`), whatever
`train.min_votes` says; everything else (people, the simulated crew, imported
raters) needs `train.min_votes`. So a one-label-per-file dataset trains without anyone lowering
`train.min_votes` by hand, and its items still count as contested when people disagree with
the dataset (the agreement rule is unchanged).

Pure: no I/O, no import of the project above the domain layer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from chfen.domain.crew import EMAIL_DOMAIN

IMPORT_DOMAIN = f"import.{EMAIL_DOMAIN}"

PERSON = "person"
SIMULATED = "simulated"
IMPORTED = "imported"
ORIGINS: tuple[str, ...] = (PERSON, SIMULATED, IMPORTED)
# The votes an item that carries an imported dataset's own label needs (to train, and to leave
# the annotation queue's "too few votes"): that label alone.
DATASET_LABEL_MIN_VOTES = 1

_SIM = re.compile(rf"^sim-annotator-\d+@{re.escape(EMAIL_DOMAIN)}$")


def _slug(text: str) -> str:
    """Lowercase `[a-z0-9_-]` only (what an e-mail's local part and a video id both allow)."""
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9_-]+", "-", text.lower())).strip("-_")


def import_email(source: str, rater: str | None = None) -> str:
    """The Label Studio user of an imported dataset's label (`rater=None`: the dataset's own
    label, one per file) or of one of its raters."""
    src = _slug(source)
    if not src:
        raise ValueError(f"source name {source!r} has no letters or digits")
    if rater is None:
        return f"{src}@{IMPORT_DOMAIN}"
    who = _slug(rater)
    if not who:
        raise ValueError(f"rater name {rater!r} has no letters or digits")
    return f"{src}.{who}@{IMPORT_DOMAIN}"


def origin_of(annotator: str | None) -> str:
    """`imported`, `simulated` or `person` for an annotator (an e-mail, as `label pull` stores
    it)."""
    text = (annotator or "").lower()
    if text.endswith("@" + IMPORT_DOMAIN):
        return IMPORTED
    if _SIM.match(text):
        return SIMULATED
    return PERSON


def is_dataset_label(annotator: str | None) -> bool:
    """Whether this annotator is an imported dataset's own label (one per file)."""
    text = (annotator or "").lower()
    return origin_of(text) == IMPORTED and "." not in text.split("@", 1)[0]


def dataset_label_sql(annotator: str) -> str:
    """`is_dataset_label` as a DuckDB expression on an annotator column (false on NULL), for
    the quality views (tests/warehouse/test_quality_votes.py compares the two)."""
    low = f"lower(coalesce({annotator}, ''))"
    return f"(suffix({low}, '@{IMPORT_DOMAIN}') AND position('.' IN split_part({low}, '@', 1)) = 0)"


def min_votes_for(annotators: Iterable[str], min_votes: int) -> int:
    """The votes an item needs to train (module docstring): `DATASET_LABEL_MIN_VOTES` when one
    of its votes is an imported dataset's own label, else `min_votes`."""
    return DATASET_LABEL_MIN_VOTES if any(is_dataset_label(a) for a in annotators) else min_votes
