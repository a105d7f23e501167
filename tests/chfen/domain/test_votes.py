"""The domain layer's voting rules on small vote lists with known answers, and the layer's own
promises: the defaults are training's, and importing it loads nothing slow."""

from __future__ import annotations

import subprocess
import sys

import pytest

from chfen.domain import (
    DEFAULT_MIN_AGREEMENT,
    DEFAULT_MIN_VOTES,
    LOW_AGREEMENT,
    NO_EMOTION,
    NO_EMOTION_MAJORITY,
    PLUTCHIK,
    TOO_FEW_VOTES,
    TrainingTarget,
    hard_label,
    majority_label,
    majority_share,
    queue_reasons,
    training_target,
)


def test_majority_share_counts_every_vote_and_the_tied_share_on_a_tie() -> None:
    assert majority_share(["joy", "joy", NO_EMOTION]) == 2 / 3
    assert majority_share(["joy", "fear"]) == 0.5 and majority_label(["joy", "fear"]) is None
    assert majority_share([NO_EMOTION, NO_EMOTION, "joy", "fear"]) == 0.5
    assert majority_share([]) == 0.0 and majority_label([]) is None


def test_training_keeps_a_clear_majority_and_splits_a_tie_that_is_agreed_enough() -> None:
    kept = training_target(["joy", "joy", "fear"], min_votes=2, min_agreement=0.5)
    assert isinstance(kept, TrainingTarget)
    assert kept.n_votes == 3 and kept.agreement == 2 / 3 and kept.hard_label == "joy"
    assert kept.soft[PLUTCHIK.index("joy")] == 2 / 3
    tie = training_target(["fear", "joy"], min_votes=2, min_agreement=0.5)
    assert isinstance(tie, TrainingTarget) and tie.agreement == 0.5
    assert tie.hard_label == "joy"  # the first of the tied in PLUTCHIK order
    assert training_target(["fear", "joy"], min_votes=2, min_agreement=0.51) == LOW_AGREEMENT


def test_training_drop_reasons_at_the_edges() -> None:
    assert training_target(["joy"], min_votes=2) == TOO_FEW_VOTES
    assert training_target([]) == TOO_FEW_VOTES
    # votes outside the label set do not count towards min_votes
    assert training_target(["joy", "meh"], min_votes=2) == TOO_FEW_VOTES
    assert training_target(["joy", "fear", "anger"], min_agreement=1 / 3) != LOW_AGREEMENT
    assert training_target(["joy", "fear", "anger"], min_agreement=0.34) == LOW_AGREEMENT
    assert training_target([NO_EMOTION, NO_EMOTION, "joy"]) == NO_EMOTION_MAJORITY
    assert training_target([NO_EMOTION]) == NO_EMOTION_MAJORITY
    # a tie between "no clear emotion" and an emotion is no "no clear emotion" majority
    tie = training_target([NO_EMOTION, "joy"])
    assert isinstance(tie, TrainingTarget) and tie.hard_label == "joy"


def test_no_emotion_votes_dropped_or_spread_uniformly() -> None:
    votes = ["joy", "joy", NO_EMOTION]
    dropped = training_target(votes, no_emotion="drop_votes")
    uniform = training_target(votes, no_emotion="uniform")
    assert isinstance(dropped, TrainingTarget) and isinstance(uniform, TrainingTarget)
    assert dropped.soft[PLUTCHIK.index("joy")] == 1.0 and sum(dropped.soft) == 1.0
    assert uniform.soft[PLUTCHIK.index("joy")] == pytest.approx((2 + 1 / 8) / 3)
    assert uniform.soft[PLUTCHIK.index("fear")] == pytest.approx(1 / 24)
    assert sum(uniform.soft) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no_emotion policy"):
        training_target(votes, no_emotion="ignore")


def test_hard_label_ties_go_to_the_first_in_plutchik_order() -> None:
    soft = [0.0] * len(PLUTCHIK)
    soft[PLUTCHIK.index("anger")] = soft[PLUTCHIK.index("fear")] = 0.5
    assert hard_label(soft) == "fear"


def test_queue_asks_more_votes_for_few_or_contested_votes() -> None:
    assert queue_reasons([]) == [TOO_FEW_VOTES]
    assert queue_reasons(["joy"]) == [TOO_FEW_VOTES]
    assert queue_reasons(["joy", "joy"]) == []
    # a tie is contested even where training keeps it (share 0.5 >= 0.5)
    assert queue_reasons(["joy", "fear"]) == [LOW_AGREEMENT]
    assert isinstance(
        training_target(["joy", "fear"], min_votes=2, min_agreement=0.5), TrainingTarget
    )
    assert queue_reasons(["joy", "fear", "anger", "joy"]) == []  # a majority at exactly 0.5
    assert queue_reasons(["joy", "fear", "anger", "joy"], min_agreement=0.51) == [LOW_AGREEMENT]
    assert queue_reasons(["joy", "fear"], min_votes=3) == [TOO_FEW_VOTES, LOW_AGREEMENT]
    # "no clear emotion" is a category like the others: an agreed "none" is not contested
    assert queue_reasons([NO_EMOTION, NO_EMOTION]) == []


def test_the_defaults_are_trainings_defaults() -> None:
    from chfen.config import TrainConfig

    cfg = TrainConfig()
    assert (cfg.min_votes, cfg.min_agreement) == (DEFAULT_MIN_VOTES, DEFAULT_MIN_AGREEMENT)


def test_the_domain_layer_imports_nothing_slow() -> None:
    """Every command imports the label set: it must not pull in numpy, torch, duckdb, pydantic
    or any package of the layers above."""
    code = (
        "import sys, chfen.domain, chfen.labels; "
        "heavy = {'numpy', 'torch', 'duckdb', 'pydantic', 'krippendorff', 'warehouse', "
        "'labeling', 'flows', 'chfen.config'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
