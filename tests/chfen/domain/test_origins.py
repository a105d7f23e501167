"""Who cast a vote, and the vote policy for imported datasets."""

from __future__ import annotations

import pytest

from chfen.domain.crew import sim_email
from chfen.domain.origins import (
    IMPORTED,
    PERSON,
    SIMULATED,
    import_email,
    is_dataset_label,
    min_votes_for,
    origin_of,
)
from chfen.domain.votes import TOO_FEW_VOTES, training_target


def test_origins_are_read_from_the_annotator() -> None:
    assert origin_of(import_email("RAVDESS actor01")) == IMPORTED
    assert import_email("RAVDESS actor01") == "ravdess-actor01@import.chfen.local"
    assert origin_of(import_email("crema-d", "Rater 7")) == IMPORTED
    assert origin_of(sim_email(2)) == SIMULATED
    assert origin_of("ann@example.org") == PERSON and origin_of(None) == PERSON
    # a person whose address merely mentions the domain is a person
    assert origin_of("someone@import.chfen.local.example.org") == PERSON
    with pytest.raises(ValueError, match="no letters"):
        import_email("???")


def test_a_dataset_label_trains_alone_and_a_rater_does_not() -> None:
    dataset = import_email("ravdess")
    rater = import_email("crema-d", "r1")
    assert is_dataset_label(dataset) and not is_dataset_label(rater)
    assert min_votes_for([dataset], 2) == 1
    assert min_votes_for([rater], 2) == 2 and min_votes_for(["a@x.org"], 3) == 3
    # the rule training applies: one dataset vote passes the default min_votes, one rater not
    assert not isinstance(training_target(["joy"], min_votes=min_votes_for([dataset], 2)), str)
    assert training_target(["joy"], min_votes=min_votes_for([rater], 2)) == TOO_FEW_VOTES
