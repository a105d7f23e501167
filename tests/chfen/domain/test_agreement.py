"""Agreement figures against a small example worked out by hand (no server)."""

from __future__ import annotations

import datetime as dt

import pytest

from chfen.domain import (
    agreement,
    krippendorff_alpha,
    majority_label,
    soft_label,
    votes_from_rows,
)

# Three annotators, four videos; c did not label v3.
VOTES = {
    "v1": {"a": "joy", "b": "joy", "c": "joy"},
    "v2": {"a": "fear", "b": "fear", "c": "sadness"},
    "v3": {"a": "anger", "b": "anger"},
    "v4": {"a": "joy", "b": "trust", "c": "trust"},
}

# By hand, with the coincidence matrix (nominal alpha = 1 - D_o / D_e):
#   v1 (J,J,J): o_JJ += 3      v2 (F,F,S): o_FF += 1, o_FS = o_SF = 1
#   v3 (A,A):   o_AA += 2      v4 (J,T,T): o_TT += 1, o_JT = o_TJ = 1
#   n_J = 4, n_F = 2, n_S = 1, n_A = 2, n_T = 2, n = 11
#   D_o = 4 / 11;  D_e = (11² - (16+4+1+4+4)) / (11·10) = 92 / 110
#   alpha = 1 - (4/11) / (92/110) = 1 - 40/92 = 13/23
ALPHA = 13 / 23
# Without c: v1 (J,J) v2 (F,F) v3 (A,A) v4 (J,T); n_J=3, n_F=2, n_A=2, n_T=1, n=8
#   D_o = 2/8; D_e = (64 - 18) / 56 = 46/56; alpha = 1 - (2/8)/(46/56) = 16/23
ALPHA_WITHOUT_C = 16 / 23
# Without a: v1 (J,J) v2 (F,S) v4 (T,T) (v3 has one vote); n_J=2, n_F=1, n_S=1, n_T=2, n=6
#   D_o = 2/6; D_e = (36 - 10) / 30 = 26/30; alpha = 1 - (2/6)/(26/30) = 8/13
ALPHA_WITHOUT_A = 8 / 13


def test_project_alpha_matches_the_hand_computation() -> None:
    assert krippendorff_alpha(VOTES) == pytest.approx(ALPHA)
    assert krippendorff_alpha(VOTES, exclude="c") == pytest.approx(ALPHA_WITHOUT_C)
    assert krippendorff_alpha(VOTES, exclude="a") == pytest.approx(ALPHA_WITHOUT_A)


def test_soft_and_majority_labels() -> None:
    report = agreement(VOTES)
    items = {i.video_id: i for i in report.items}
    assert items["v2"].soft_label == pytest.approx({"fear": 2 / 3, "sadness": 1 / 3})
    assert items["v2"].majority == "fear" and items["v2"].majority_share == pytest.approx(2 / 3)
    assert items["v4"].majority == "trust"
    assert items["v3"].soft_label == {"anger": 1.0} and items["v3"].n_votes == 2
    assert majority_label(["joy", "fear"]) is None  # a tie has no majority
    assert majority_label([]) is None
    assert soft_label([]) == {}
    assert (report.n_items, report.n_votes) == (4, 11)


def test_each_annotator_against_the_others() -> None:
    report = agreement(VOTES)
    by = {a.annotator: a for a in report.annotators}
    assert report.alpha == pytest.approx(ALPHA)
    # alpha_delta = alpha(all) - alpha(without the annotator)
    assert by["c"].alpha_delta == pytest.approx(ALPHA - ALPHA_WITHOUT_C)  # -3/23: c hurts
    assert by["a"].alpha_delta == pytest.approx(ALPHA - ALPHA_WITHOUT_A)
    # c vs the majority of a and b: v1 joy=joy yes, v2 sadness≠fear no, v4 tie (a joy, b trust)
    assert (by["c"].agreement_with_others, by["c"].n_compared) == (0.5, 2)
    # a: v1 yes, v2 tie (fear/sadness) skipped, v3 yes (b alone), v4 joy≠trust no
    assert by["a"].agreement_with_others == pytest.approx(2 / 3)
    assert (by["a"].n_items, by["c"].n_items) == (4, 3)


def test_undefined_alpha_is_none() -> None:
    assert krippendorff_alpha({"v1": {"a": "joy", "b": "joy"}}) is None  # no variation
    assert krippendorff_alpha({"v1": {"a": "joy"}, "v2": {"b": "fear"}}) is None  # no pairs
    assert krippendorff_alpha({}) is None


def test_votes_skip_deleted_cancelled_and_keep_the_newest() -> None:
    t0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    rows = [
        {"video_id": "v1", "annotator": "a", "choice": "joy", "updated_at": t0},
        {"video_id": "v1", "annotator": "a", "choice": "fear",
         "updated_at": t0 + dt.timedelta(seconds=5)},
        {"video_id": "v1", "annotator": "b", "choice": "joy", "updated_at": t0, "deleted": True},
        {"video_id": "v1", "annotator": "c", "choice": None, "updated_at": t0,
         "was_cancelled": True},
        {"video_id": "v2", "annotator": "b", "choice": "trust", "updated_at": t0},
    ]  # fmt: skip
    assert votes_from_rows(rows) == {"v1": {"a": "fear"}, "v2": {"b": "trust"}}
