"""The warehouse's voting SQL and the domain layer's voting rules give the same answers.

The quality views build the majority label, the majority share and the annotation queue's
vote reasons from `chfen.domain.votes`' SQL fragments; here a real warehouse holds a set of
vote tables (ties, "no clear emotion" votes, single votes, none) and the views' answers are
compared with the Python rules, at the thresholds' edges; items voted by imported datasets
(one vote that is the dataset's own label is enough, as in training) among them.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from chfen.domain.labels import NO_EMOTION
from chfen.domain.origins import dataset_label_sql, import_email, is_dataset_label, min_votes_for
from chfen.domain.votes import (
    DEFAULT_MIN_AGREEMENT,
    DEFAULT_MIN_VOTES,
    LOW_AGREEMENT,
    TOO_FEW_VOTES,
    majority_label,
    majority_share,
    majority_share_sql,
    majority_sql,
    queue_reasons,
    queue_reasons_sql,
    training_target,
)
from warehouse import Warehouse
from warehouse.quality import OBJECTS

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
NO = NO_EMOTION

# video_id -> the labels of its votes, one annotator each
TABLES: dict[str, list[str]] = {
    "none": [],
    "one": ["joy"],
    "one_no_emotion": [NO],
    "two_same": ["joy", "joy"],
    "two_tied": ["joy", "fear"],
    "two_tied_no_emotion": [NO, "joy"],
    "two_no_emotion": [NO, NO],
    "three_two_one": ["joy", "joy", "fear"],
    "three_no_emotion_majority": [NO, NO, "joy"],
    "three_way_tie": ["joy", "fear", "anger"],
    "four_tied": ["joy", "joy", "fear", "fear"],
    "four_half": ["joy", "fear", "anger", "joy"],
    "four_no_emotion_half": [NO, "fear", NO, "joy"],
    "five_three_two": ["sadness", "sadness", "sadness", "anger", "anger"],
    "five_all": ["trust"] * 5,
}
# Items voted by imported datasets (`chfen import`): video_id -> (annotator, label) per vote.
# The dataset's own label needs no second vote; an imported rater's vote is a vote like a
# person's (chfen.domain.origins).
DATASET = import_email("ravdess")
RATER = import_email("crowd", "r1")
IMPORTED: dict[str, list[tuple[str, str]]] = {
    "dataset_one": [(DATASET, "joy")],
    "dataset_one_no_emotion": [(DATASET, NO)],
    "dataset_upper_case": [(DATASET.upper(), "fear")],
    "dataset_and_person_agree": [(DATASET, "joy"), ("a0", "joy")],
    "dataset_and_person_disagree": [(DATASET, "joy"), ("a0", "fear")],
    "rater_one": [(RATER, "joy")],
    "rater_two_agree": [(RATER, "joy"), (import_email("crowd", "r2"), "joy")],
    "lookalike_one": [("ravdess@import.chfen.local.example.org", "joy")],
}
VOTES: dict[str, list[tuple[str, str]]] = {
    **{v: [(f"a{i}", label) for i, label in enumerate(labels)] for v, labels in TABLES.items()},
    **IMPORTED,
}


def labels_of(video_id: str) -> list[str]:
    return [label for _, label in VOTES[video_id]]


def has_dataset_label(video_id: str) -> bool:
    return any(is_dataset_label(a) for a, _ in VOTES[video_id])


# (min_votes, min_agreement): the defaults, and edges where a share equals the threshold
# (1/2, 2/3, 3/5) or just misses it, and a vote count equals min_votes.
THRESHOLDS = [
    (1, 0.0),
    (DEFAULT_MIN_VOTES, DEFAULT_MIN_AGREEMENT),
    (2, 0.5),
    (3, 0.5),
    (2, 0.51),
    (3, 2 / 3),
    (4, 0.6),
    (5, 0.6000001),
    (2, 1.0),
    (6, 0.34),
]


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    wh = Warehouse(Path(tmp_path_factory.mktemp("votes")) / "data")
    wh.append(
        "videos",
        [{"video_id": v, "source": "chan", "status": "ok", "uploader": "@u"} for v in VOTES],
    )
    rows = []
    for video_id, votes in VOTES.items():
        for annotator, label in votes:
            n = len(rows) + 1
            rows.append(
                {
                    "annotation_id": n,
                    "project_id": 1,
                    "video_id": video_id,
                    "annotator": annotator,
                    "choice": label,
                    "updated_at": T0 + dt.timedelta(minutes=n),
                }
            )
    wh.append("annotations", rows)
    return wh


def test_majority_and_share_in_sql_are_the_python_rule(wh: Warehouse) -> None:
    items = {r["video_id"]: r for r in wh.rows("SELECT * FROM quality_item_agreement")}
    assert set(items) == {v for v, votes in VOTES.items() if votes}
    for video_id, row in items.items():
        labels = labels_of(video_id)
        assert row["n_votes"] == len(labels), video_id
        assert row["majority"] == majority_label(labels), video_id
        assert row["majority_share"] == majority_share(labels), video_id  # exactly
        assert row["has_dataset_label"] == has_dataset_label(video_id), video_id


@pytest.mark.parametrize(("min_votes", "min_agreement"), THRESHOLDS)
def test_annotation_queue_in_sql_is_the_python_rule(
    wh: Warehouse, min_votes: int, min_agreement: float
) -> None:
    rows = wh.rows(
        "SELECT video_id, reasons FROM quality_annotation_queue_with("
        "min_votes := ?, min_agreement := ?)",
        [min_votes, min_agreement],
    )
    got = {r["video_id"]: r["reasons"] for r in rows}
    want = {
        video_id: reasons
        for video_id in VOTES
        if (
            reasons := queue_reasons(
                labels_of(video_id),
                min_votes=min_votes,
                min_agreement=min_agreement,
                dataset_label=has_dataset_label(video_id),
            )
        )
    }
    assert got == want


def test_the_queue_at_its_defaults_uses_the_domain_defaults(wh: Warehouse) -> None:
    got = {r["video_id"]: r["reasons"] for r in wh.rows("SELECT * FROM quality_annotation_queue")}
    want = {
        v: r
        for v in VOTES
        if (r := queue_reasons(labels_of(v), dataset_label=has_dataset_label(v)))
    }
    assert got == want
    # the edges the defaults meet: a tie at exactly the threshold is queued, a unique majority
    # at exactly the threshold is not
    assert "four_tied" in want and "four_half" not in want
    # an imported dataset's one label is enough (the per-source vote policy), as in training;
    # a disagreeing person still makes it contested; an imported rater is one vote of many
    assert "dataset_one" not in want and "dataset_upper_case" not in want
    assert want["dataset_and_person_disagree"] == [LOW_AGREEMENT]
    assert want["rater_one"] == want["lookalike_one"] == [TOO_FEW_VOTES]
    for video_id in ("dataset_one", "dataset_and_person_agree", "rater_one"):
        by = dict(VOTES[video_id])
        trains = not isinstance(
            training_target(by.values(), min_votes=min_votes_for(by, DEFAULT_MIN_VOTES)), str
        )
        assert trains == (video_id not in want), video_id


def test_the_dataset_label_in_sql_is_the_python_rule() -> None:
    import duckdb

    names = [a for votes in VOTES.values() for a, _ in votes] + [
        "x@import.chfen.local", "a.b@import.chfen.local", "Sim-Annotator-1@chfen.local", "",
    ]  # fmt: skip
    con = duckdb.connect()
    for name in names:
        sql = f"SELECT {dataset_label_sql('a')} FROM (SELECT ?::VARCHAR AS a)"
        got = con.execute(sql, [name]).fetchone()[0]
        assert got == is_dataset_label(name), name
    assert con.execute(f"SELECT {dataset_label_sql('NULL')}").fetchone()[0] is False


def test_the_views_are_built_from_the_domain_sql() -> None:
    sql = {o.name: o.sql for o in OBJECTS}
    assert majority_sql("n_top_labels", "top_label") in sql["quality_item_agreement"]
    assert majority_share_sql("top_votes", "n_votes") in sql["quality_item_agreement"]
    queue = sql["quality_annotation_queue_with"]
    for fragment in queue_reasons_sql(
        "i.n_votes",
        "i.majority",
        "i.majority_share",
        "min_votes",
        "min_agreement",
        "i.has_dataset_label",
    ):
        assert fragment in queue
    assert dataset_label_sql("annotator") in sql["quality_soft_labels"]
