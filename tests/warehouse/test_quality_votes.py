"""The warehouse's voting SQL and the domain layer's voting rules give the same answers.

The quality views build the majority label, the majority share and the annotation queue's
vote reasons from `chfen.domain.votes`' SQL fragments; here a real warehouse holds a set of
vote tables (ties, "no clear emotion" votes, single votes, none) and the views' answers are
compared with the Python rules, at the thresholds' edges.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from chfen.domain.labels import NO_EMOTION
from chfen.domain.votes import (
    DEFAULT_MIN_AGREEMENT,
    DEFAULT_MIN_VOTES,
    majority_label,
    majority_share,
    majority_share_sql,
    majority_sql,
    queue_reasons,
    queue_reasons_sql,
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
        [{"video_id": v, "source": "chan", "status": "ok", "uploader": "@u"} for v in TABLES],
    )
    rows = []
    for video_id, labels in TABLES.items():
        for i, label in enumerate(labels):
            n = len(rows) + 1
            rows.append(
                {
                    "annotation_id": n,
                    "project_id": 1,
                    "video_id": video_id,
                    "annotator": f"a{i}",
                    "choice": label,
                    "updated_at": T0 + dt.timedelta(minutes=n),
                }
            )
    wh.append("annotations", rows)
    return wh


def test_majority_and_share_in_sql_are_the_python_rule(wh: Warehouse) -> None:
    items = {r["video_id"]: r for r in wh.rows("SELECT * FROM quality_item_agreement")}
    assert set(items) == {v for v, labels in TABLES.items() if labels}
    for video_id, row in items.items():
        labels = TABLES[video_id]
        assert row["n_votes"] == len(labels), video_id
        assert row["majority"] == majority_label(labels), video_id
        assert row["majority_share"] == majority_share(labels), video_id  # exactly


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
        for video_id, labels in TABLES.items()
        if (reasons := queue_reasons(labels, min_votes=min_votes, min_agreement=min_agreement))
    }
    assert got == want


def test_the_queue_at_its_defaults_uses_the_domain_defaults(wh: Warehouse) -> None:
    got = {r["video_id"]: r["reasons"] for r in wh.rows("SELECT * FROM quality_annotation_queue")}
    want = {v: r for v, labels in TABLES.items() if (r := queue_reasons(labels))}
    assert got == want
    # the edges the defaults meet: a tie at exactly the threshold is queued, a unique majority
    # at exactly the threshold is not
    assert "four_tied" in want and "four_half" not in want


def test_the_views_are_built_from_the_domain_sql() -> None:
    sql = {o.name: o.sql for o in OBJECTS}
    assert majority_sql("n_top_labels", "top_label") in sql["quality_item_agreement"]
    assert majority_share_sql("top_votes", "n_votes") in sql["quality_item_agreement"]
    queue = sql["quality_annotation_queue_with"]
    for fragment in queue_reasons_sql(
        "i.n_votes", "i.majority", "i.majority_share", "min_votes", "min_agreement"
    ):
        assert fragment in queue
