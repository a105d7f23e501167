"""The quality views and macros on small hand-made warehouses with known answers, on empty
tables, and from the plain duckdb shell."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from chfen.domain import agreement, krippendorff_alpha
from warehouse import Warehouse
from warehouse.quality import (
    DEFAULT_MAX_BITS,
    OBJECTS,
    QUALITY_MACROS,
    QUALITY_VIEWS,
    SHARED_ANNOTATION_VIEWS,
    SHARED_MEDIA_VIEWS,
    STORED_SCHEMA,
    VERSION,
    catalog_is_current,
    describe,
    materialize_shared_views,
)

DUCKDB_CLI = Path(os.environ.get("VIRTUAL_ENV", ".venv")) / "bin" / "duckdb"
T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)

# The example of tests/chfen/domain/test_agreement.py, worked out by hand there:
# alpha = 13/23, without c 16/23, without a 8/13.
VOTES = {
    "v1": {"a": "joy", "b": "joy", "c": "joy"},
    "v2": {"a": "fear", "b": "fear", "c": "sadness"},
    "v3": {"a": "anger", "b": "anger"},
    "v4": {"a": "joy", "b": "trust", "c": "trust"},
}


def duckdb_shell(db: Path, sql: str) -> str:
    cli = DUCKDB_CLI if DUCKDB_CLI.exists() else Path(shutil.which("duckdb") or "duckdb")
    out = subprocess.run(
        [str(cli), "-csv", "-noheader", str(db), "-c", sql],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout.strip()


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def vote_rows(votes: dict[str, dict[str, str]], project_id: int = 1, start: int = 1) -> list:
    rows = []
    for video_id, by in votes.items():
        for annotator, label in by.items():
            rows.append(
                {
                    "annotation_id": start + len(rows),
                    "project_id": project_id,
                    "video_id": video_id,
                    "annotator": annotator,
                    "choice": label,
                    "lead_time_s": 10.0 + len(rows),
                    "updated_at": at(len(rows)),
                }
            )
    return rows


def by_key(rows: list[dict[str, Any]], *keys: str) -> dict:
    return {tuple(r[k] for k in keys) if len(keys) > 1 else r[keys[0]]: r for r in rows}


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    return Warehouse(tmp_path / "data")


# ---- empty tables, the catalog, the shell ----------------------------------------------------


def test_every_view_and_macro_answers_on_empty_tables(wh: Warehouse) -> None:
    con = wh.connect()
    for view in QUALITY_VIEWS:
        rows = con.execute(f"SELECT * FROM {view}").fetchall()
        one_row = {"quality_media_summary", "quality_asr_summary", "quality_version"}
        assert len(rows) == (1 if view in one_row else 0), view
    summary = con.execute("SELECT n_videos, n_with_audio FROM quality_media_summary").fetchone()
    assert summary == (0, 0)
    for call in (
        "quality_near_duplicates_at(max_bits := 0, min_share := 0)",
        "quality_keyframe_matches(max_bits := 63)",
        "quality_annotation_queue_with(min_votes := 5)",
        "quality_duration_histogram_by(bucket_s := 1)",
    ):
        assert con.execute(f"SELECT count(*) FROM {call}").fetchone() == (0,)
    assert {d["name"] for d in describe()} == set(QUALITY_VIEWS) | set(QUALITY_MACROS)
    assert all(d["description"] for d in describe())


def test_duckdb_shell_opens_the_catalog_and_the_views_answer(wh: Warehouse) -> None:
    wh.append("annotations", vote_rows(VOTES))
    db = wh.root.catalog_path()
    assert catalog_is_current(db)
    assert duckdb_shell(db, "SELECT version FROM quality_version") == VERSION
    assert duckdb_shell(db, "SELECT round(alpha, 6) FROM quality_alpha") == str(round(13 / 23, 6))
    listed = duckdb_shell(
        db, "SELECT count(*) FROM duckdb_views() WHERE view_name LIKE 'quality_%' AND comment <> ''"
    )
    assert int(listed) == len(QUALITY_VIEWS)
    assert duckdb_shell(db, "SELECT count(*) FROM quality_near_duplicates_at(max_bits := 5)") == "0"


def test_python_queries_see_the_views_and_partial_connections_skip_them(wh: Warehouse) -> None:
    wh.append("annotations", vote_rows(VOTES), refresh_catalog=False)
    assert wh.rows("SELECT count(*) AS n FROM quality_votes") == [{"n": 11}]
    con = wh.connect(["videos"])  # some tables only: no quality views, no error
    names = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}
    assert not any(n.startswith("quality_") for n in names)


def reads(name: str) -> set[str]:
    """The quality views and macros an object reads, directly or through others."""
    sql = {o.name: re.sub(r"--.*", "", o.sql) for o in OBJECTS}  # not the comments
    seen: set[str] = set()
    todo = [name]
    while todo:
        for used in re.findall(r"\bquality_\w+", sql[todo.pop()]):
            if used in sql and used not in seen:
                seen.add(used)
                todo.append(used)
    return seen


def test_the_two_chains_of_shared_views_read_nothing_of_each_other() -> None:
    # the report computes them at the same time, each chain on its own cursor
    for name in SHARED_ANNOTATION_VIEWS:
        assert not reads(name) & set(SHARED_MEDIA_VIEWS), name
    for name in SHARED_MEDIA_VIEWS:
        assert not reads(name) & set(SHARED_ANNOTATION_VIEWS), name
    # and each chain is in dependency order
    for chain in (SHARED_ANNOTATION_VIEWS, SHARED_MEDIA_VIEWS):
        for i, name in enumerate(chain):
            assert not reads(name) & set(chain[i + 1 :]), name


def test_stored_views_are_seen_by_every_cursor_and_leave_the_catalog_alone(
    wh: Warehouse,
) -> None:
    import duckdb

    wh.append("annotations", vote_rows(VOTES))
    con = wh.connect()
    materialize_shared_views(con, SHARED_ANNOTATION_VIEWS[:2])
    stored = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = ?", [STORED_SCHEMA]
    ).fetchall()
    assert sorted(stored) == sorted((n,) for n in SHARED_ANNOTATION_VIEWS[:2])
    # a snapshot: rows committed later do not show, on this connection or its cursors
    wh.append("annotations", vote_rows({"v9": {"a": "joy"}}, start=100))
    cur = con.cursor()
    assert cur.execute("SELECT count(*) FROM quality_votes").fetchone() == (11,)
    assert cur.execute("SELECT round(alpha, 6) FROM quality_alpha").fetchone() == (
        round(13 / 23, 6),
    )
    assert wh.rows("SELECT count(*) AS n FROM quality_votes") == [{"n": 12}]
    # on the catalog file: temporary tables, the file keeps its views
    catalog = duckdb.connect(str(wh.root.catalog_path()))
    try:
        materialize_shared_views(catalog, SHARED_ANNOTATION_VIEWS[:2])
        assert catalog.execute("SELECT count(*) FROM quality_votes").fetchone() == (12,)
    finally:
        catalog.close()
    assert catalog_is_current(wh.root.catalog_path())
    assert duckdb_shell(wh.root.catalog_path(), "SELECT count(*) FROM quality_votes") == "12"
    names = duckdb_shell(
        wh.root.catalog_path(),
        "SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE 'quality_%'",
    )
    assert names == "0"


def test_an_outdated_catalog_is_not_current(wh: Warehouse, tmp_path: Path) -> None:
    import duckdb

    assert catalog_is_current(wh.root.catalog_path())
    assert not catalog_is_current(tmp_path / "missing.duckdb")
    old = tmp_path / "old.duckdb"
    duckdb.connect(str(old)).close()
    assert not catalog_is_current(old)


# ---- annotations -----------------------------------------------------------------------------


def test_votes_follow_the_newest_current_annotation(wh: Warehouse) -> None:
    rows = vote_rows(VOTES)
    n = len(rows)
    rows += [
        # v1/a revised: the newer row of the same annotation wins
        {**rows[0], "choice": "surprise", "updated_at": at(100)},
        # a second, newer annotation by b on v1: the newest per annotator wins
        {**rows[1], "annotation_id": n + 1, "choice": "fear", "updated_at": at(101)},
        # skipped, deleted, choice-less and unassigned annotations are no votes
        {"annotation_id": n + 2, "project_id": 1, "video_id": "v5", "annotator": "a",
         "choice": "joy", "was_cancelled": True, "updated_at": at(1)},
        {"annotation_id": n + 3, "project_id": 1, "video_id": "v5", "annotator": "b",
         "choice": "joy", "deleted": True, "updated_at": at(1)},
        {"annotation_id": n + 4, "project_id": 1, "video_id": "v5", "annotator": "c",
         "choice": None, "updated_at": at(1)},
    ]  # fmt: skip
    wh.append("annotations", rows)
    votes = by_key(wh.rows("SELECT * FROM quality_votes"), "video_id", "annotator")
    assert len(votes) == 11 and ("v5", "a") not in votes
    assert votes[("v1", "a")]["label"] == "surprise"
    assert votes[("v1", "b")]["label"] == "fear"
    times = wh.rows("SELECT * FROM quality_lead_times WHERE annotator = 'a'")[0]
    assert times["n_annotations"] == 5 and times["n_skipped"] == 1  # deleted ones not counted


def test_item_agreement_soft_labels_and_label_distribution(wh: Warehouse) -> None:
    wh.append("annotations", vote_rows({**VOTES, "v5": {"a": "sadness", "b": "anger"}}))
    items = by_key(wh.rows("SELECT * FROM quality_item_agreement"), "video_id")
    assert items["v1"]["majority"] == "joy" and items["v1"]["majority_share"] == 1.0
    assert items["v1"]["pairwise_agreement"] == 1.0
    assert items["v2"]["majority"] == "fear"
    assert items["v2"]["majority_share"] == pytest.approx(2 / 3)
    assert items["v2"]["pairwise_agreement"] == pytest.approx(1 / 3)  # 1 of 3 pairs agree
    assert items["v5"]["majority"] is None and items["v5"]["majority_share"] == 0.5
    soft = by_key(wh.rows("SELECT * FROM quality_soft_labels"), "video_id", "label")
    assert soft[("v4", "trust")]["share"] == pytest.approx(2 / 3)
    assert soft[("v4", "joy")]["n_votes"] == 1
    labels = by_key(wh.rows("SELECT * FROM quality_label_distribution"), "label")
    assert labels["joy"]["n_votes"] == 4 and labels["joy"]["vote_share"] == pytest.approx(4 / 13)
    assert labels["joy"]["n_majority_items"] == 1  # v1 (v4's majority is trust)
    assert labels["trust"]["n_majority_items"] == 1
    assert "sadness" in labels and labels["sadness"]["n_majority_items"] == 0


def test_alpha_and_leave_one_out_alpha_match_the_hand_computation(wh: Warehouse) -> None:
    wh.append("annotations", vote_rows(VOTES))
    project = wh.rows("SELECT * FROM quality_alpha")[0]
    assert project["alpha"] == pytest.approx(13 / 23)
    assert (project["n_items"], project["n_pairable_items"], project["n_votes"]) == (4, 4, 11)
    assert project["n_annotators"] == 3
    assert project["observed_agreement"] == pytest.approx(1 - 4 / 11)
    ann = by_key(wh.rows("SELECT * FROM quality_annotator_agreement"), "annotator")
    assert ann["c"]["alpha_without"] == pytest.approx(16 / 23)
    assert ann["c"]["alpha_delta"] == pytest.approx(13 / 23 - 16 / 23)
    assert ann["a"]["alpha_without"] == pytest.approx(8 / 13)
    # c vs the others' majority: v1 joy=joy, v2 sadness vs fear, v4 trust vs a tie (no majority)
    assert (ann["c"]["n_compared"], ann["c"]["agreement_with_others"]) == (2, 0.5)
    pairs = by_key(wh.rows("SELECT * FROM quality_annotator_pairs"), "annotator_a", "annotator_b")
    assert pairs[("a", "b")]["n_items"] == 4 and pairs[("a", "b")]["agreement"] == 0.75
    confusion = by_key(
        wh.rows("SELECT * FROM quality_annotator_confusion WHERE annotator = 'c'"),
        "label",
        "majority_of_others",
    )
    assert set(confusion) == {("joy", "joy"), ("sadness", "fear")}
    assert confusion[("sadness", "fear")]["n_items"] == 1


@pytest.mark.parametrize("seed", range(6))
def test_sql_agreement_equals_domain_agreement_on_random_votes(wh: Warehouse, seed: int) -> None:
    """Every figure the views share with chfen.domain.agreement, on seeded random crews."""
    rng = random.Random(seed)
    labels = ["joy", "fear", "sadness", "no clear emotion"][: rng.randint(2, 4)]
    annotators = [f"ann{i}" for i in range(rng.randint(2, 6))]
    votes: dict[str, dict[str, str]] = {}
    for v in range(rng.randint(5, 40)):
        chosen = rng.sample(annotators, rng.randint(1, len(annotators)))
        votes[f"v{v:03d}"] = {a: rng.choice(labels) for a in chosen}
    wh.append("annotations", vote_rows(votes))
    want = agreement(votes)
    got = wh.rows("SELECT * FROM quality_alpha")[0]
    if want.alpha is None:
        assert got["alpha"] is None
    else:
        assert got["alpha"] == pytest.approx(want.alpha, abs=1e-9)
    sql_ann = by_key(wh.rows("SELECT * FROM quality_annotator_agreement"), "annotator")
    for a in want.annotators:
        row = sql_ann[a.annotator]
        assert row["n_items"] == a.n_items and row["n_compared"] == a.n_compared
        for name in ("alpha_without", "alpha_delta", "agreement_with_others"):
            expected = getattr(a, name)
            assert (row[name] is None) == (expected is None), (a.annotator, name)
            if expected is not None:
                assert row[name] == pytest.approx(expected, abs=1e-9), (a.annotator, name)
    sql_items = by_key(wh.rows("SELECT * FROM quality_item_agreement"), "video_id")
    for item in want.items:
        row = sql_items[item.video_id]
        assert row["majority"] == item.majority and row["n_votes"] == item.n_votes
        assert row["majority_share"] == pytest.approx(item.majority_share)


def test_alpha_is_null_where_domain_agreement_says_undefined(wh: Warehouse) -> None:
    same = {"v1": {"a": "joy", "b": "joy"}, "v2": {"a": "joy", "b": "joy"}}
    alone = {"v3": {"a": "fear"}, "v4": {"a": "joy"}}
    wh.append("annotations", vote_rows(same, project_id=1) + vote_rows(alone, 2, start=100))
    assert krippendorff_alpha(same) is None and krippendorff_alpha(alone) is None
    alphas = {r["project_id"]: r["alpha"] for r in wh.rows("SELECT * FROM quality_alpha")}
    assert alphas == {1: None, 2: None}


# ---- media, ASR, scenes, crawl ---------------------------------------------------------------


def video(vid: str, **kw: Any) -> dict[str, Any]:
    return {"video_id": vid, "source": "chan", "status": "ok", "uploader": "@u", **kw}


def test_media_distributions(wh: Warehouse) -> None:
    wh.append(
        "videos",
        [
            video("a", duration_s=3.0, width=720, height=1280, fps=30.0, has_audio=True),
            video("b", duration_s=7.0, width=720, height=1280, fps=30.0, has_audio=False),
            video("c", duration_s=12.0, width=1280, height=720, fps=25.0, has_audio=True,
                  variable_fps=True),
            video("d", duration_s=99.0, status="failed"),  # not a good video: left out
        ],
    )  # fmt: skip
    summary = wh.rows("SELECT * FROM quality_media_summary")[0]
    assert summary["n_videos"] == 3 and summary["median_duration_s"] == 7.0
    assert (summary["n_portrait"], summary["n_landscape"]) == (2, 1)
    assert (summary["n_with_audio"], summary["n_without_audio"]) == (2, 1)
    assert summary["n_variable_fps"] == 1
    hist = wh.rows("SELECT from_s, n_videos FROM quality_duration_histogram")
    assert hist == [{"from_s": 0.0, "n_videos": 1}, {"from_s": 5.0, "n_videos": 1},
                    {"from_s": 10.0, "n_videos": 1}]  # fmt: skip
    wide = wh.rows("SELECT * FROM quality_duration_histogram_by(bucket_s := 10)")
    assert [(r["from_s"], r["n_videos"]) for r in wide] == [(0.0, 2), (10.0, 1)]
    res = by_key(wh.rows("SELECT * FROM quality_resolution_counts"), "width", "height")
    assert res[(720, 1280)]["n_videos"] == 2 and res[(720, 1280)]["orientation"] == "portrait"
    fps = by_key(wh.rows("SELECT * FROM quality_fps_counts"), "fps")
    assert fps[30.0]["n_videos"] == 2 and fps[25.0]["variable_fps"] is True
    audio = by_key(wh.rows("SELECT * FROM quality_audio_presence"), "has_audio")
    assert audio[True]["share"] == pytest.approx(2 / 3)


def test_asr_coverage_and_confidence_use_the_newest_run(wh: Warehouse) -> None:
    wh.append("videos", [video("a", duration_s=10.0, has_audio=True),
                         video("b", duration_s=5.0, has_audio=True)])  # fmt: skip
    wh.mark_done("a", "asr", "1")
    wh.mark_done("b", "asr", "1")
    old, new = at(0), at(10)
    wh.append(
        "transcript_segments",
        [
            {"video_id": "a", "segment_idx": 0, "start_s": 0.0, "end_s": 9.0,
             "avg_logprob": -9.0, "created_at": old},  # superseded by the rerun below
            {"video_id": "a", "segment_idx": 0, "start_s": 0.0, "end_s": 2.0,
             "avg_logprob": -0.2, "created_at": new},
            {"video_id": "a", "segment_idx": 1, "start_s": 5.0, "end_s": 8.0,
             "avg_logprob": -0.4, "created_at": new},
        ],
    )  # fmt: skip
    wh.append(
        "transcript_words",
        [
            {"video_id": "a", "word_idx": i, "word": "w", "score": s, "created_at": new}
            for i, s in enumerate([0.9, 0.8, 0.3, 0.7])
        ],
    )
    per = by_key(wh.rows("SELECT * FROM quality_asr_per_video"), "video_id")
    assert per["a"]["asr_done"] and per["a"]["n_segments"] == 2
    assert per["a"]["coverage"] == pytest.approx(0.5)
    assert per["a"]["mean_avg_logprob"] == pytest.approx(-0.3)
    assert per["a"]["n_words"] == 4 and per["a"]["low_score_share"] == 0.25
    assert per["b"]["coverage"] == 0.0 and per["b"]["n_words"] == 0
    summary = wh.rows("SELECT * FROM quality_asr_summary")[0]
    assert (summary["n_videos"], summary["n_transcribed"], summary["n_with_speech"]) == (2, 2, 1)
    assert summary["n_audio_without_speech"] == 1
    assert summary["mean_coverage"] == pytest.approx(0.25)
    assert summary["mean_word_score"] == pytest.approx(0.675)
    assert summary["n_words"] == 4


def test_scenes_per_video_ignore_leftovers_of_older_runs(wh: Warehouse) -> None:
    wh.append("videos", [video("a", duration_s=60.0), video("b", duration_s=30.0)])
    wh.mark_done("a", "scenes", "1")
    scenes = [
        {"video_id": "a", "scene_idx": i, "start_s": 10.0 * i, "end_s": 10.0 * i + 10,
         "keyframe_path": f"a/keyframes/scene_{i:04d}.jpg", "created_at": at(0)}
        for i in range(4)
    ] + [
        {"video_id": "a", "scene_idx": i, "start_s": 20.0 * i, "end_s": 20.0 * i + 20,
         "keyframe_path": f"a/keyframes/scene_{i:04d}.jpg", "created_at": at(5)}
        for i in range(3)
    ]  # fmt: skip
    wh.append("scenes", scenes)
    per = by_key(wh.rows("SELECT * FROM quality_scenes_per_video"), "video_id")
    assert per["a"]["n_scenes"] == 3 and per["a"]["mean_scene_s"] == 20.0
    assert per["a"]["scenes_per_minute"] == 3.0 and per["a"]["scenes_done"]
    assert per["b"]["n_scenes"] == 0 and not per["b"]["scenes_done"]
    assert wh.rows("SELECT * FROM quality_scene_count_distribution") == [
        {"n_scenes": 3, "n_videos": 1}
    ]


def test_per_source_yield_and_failures_by_reason(wh: Warehouse) -> None:
    wh.append("videos", [video("a"), video("b"), video("c", source="other")])
    for vid in ("a", "b", "c"):
        wh.mark_done(vid, "crawl", "1")
    wh.mark_done("a", "scenes", "1")
    wh.mark_failed("b", "scenes", "1", "cannot decode frame 3", error_kind="corrupt")
    # two pages of `chan` that never landed, one that failed first and landed later
    wh.mark_failed("url-1", "crawl", "1", "HTTP 404", error_kind="http", source="chan")
    wh.mark_failed("url-2", "crawl", "1", "socket timeout", error_kind="timeout", source="chan")
    wh.mark_failed("a", "crawl", "1", "HTTP 503", error_kind="http", source="chan")
    wh.mark_done("a", "crawl", "1")  # the retry worked
    wh.append("annotations", [{"annotation_id": 1, "project_id": 1, "video_id": "a",
                               "annotator": "x", "choice": "joy"}])  # fmt: skip
    yields = by_key(wh.rows("SELECT * FROM quality_source_yield"), "source")
    chan = yields["chan"]
    assert (chan["discovered"], chan["downloaded"], chan["failed"]) == (4, 2, 2)
    assert chan["downloaded_share"] == 0.5
    assert (chan["with_scenes"], chan["with_asr"], chan["labelled"]) == (1, 0, 1)
    assert (yields["other"]["discovered"], yields["other"]["downloaded"]) == (1, 1)
    failures = by_key(
        wh.rows("SELECT * FROM quality_failures_by_reason"), "source", "stage", "error_kind"
    )
    assert set(failures) == {
        ("chan", "crawl", "http"), ("chan", "crawl", "timeout"), ("chan", "scenes", "corrupt")
    }  # fmt: skip
    assert failures[("chan", "crawl", "http")]["example_error"] == "HTTP 404"
    assert failures[("chan", "scenes", "corrupt")]["n_videos"] == 1


# ---- near-duplicates -------------------------------------------------------------------------


def flip(value: int, bits: list[int]) -> int:
    """`value` (signed int64) with the given bit positions flipped."""
    u = value & (2**64 - 1)
    for b in bits:
        u ^= 1 << b
    return u - 2**64 if u >= 2**63 else u


def hashed_video(wh: Warehouse, vid: str, hashes: list[int | None], **kw: Any) -> None:
    wh.append("videos", [video(vid, duration_s=10.0, **kw)], refresh_catalog=False)
    wh.append(
        "scenes",
        [{"video_id": vid, "scene_idx": i, "start_s": float(i), "end_s": i + 1.0,
          "keyframe_path": f"{vid}/k{i}.jpg", "created_at": at(0)} for i in range(len(hashes))],
        refresh_catalog=False,
    )  # fmt: skip
    wh.append(
        "keyframe_hashes",
        [{"video_id": vid, "scene_idx": i, "phash": h, "algorithm": "test",
          "created_at": at(1)} for i, h in enumerate(hashes)],
        refresh_catalog=False,
    )  # fmt: skip


def test_keyframe_matches_are_exact_at_every_threshold(wh: Warehouse) -> None:
    """Pairs at distance d are found for max_bits >= d and only then, whatever bands the
    flipped bits fall in (including the sign bit)."""
    rng = random.Random(3)
    base = [rng.getrandbits(64) - 2**63 for _ in range(8)]
    spread = [63, 5, 40, 17, 29, 52, 0, 11]  # positions in different bands for any band count
    hashed_video(wh, "orig", base)
    for d in range(8):
        hashed_video(wh, f"copy{d}", [flip(base[d], spread[:d])])
    con = wh.connect()
    for max_bits in range(8):
        found = con.execute(
            "SELECT video_a, scene_a, video_b, scene_b, distance "
            f"FROM quality_keyframe_matches(max_bits := {max_bits})"
        ).fetchall()
        # copyD < orig: each copy matches orig's keyframe D, at distance D
        want = {(f"copy{d}", 0, "orig", d, d) for d in range(max_bits + 1)}
        assert set(found) == want, max_bits


def test_near_duplicate_pairs_need_a_share_of_each_videos_keyframes(wh: Warehouse) -> None:
    rng = random.Random(5)
    a = [rng.getrandbits(64) - 2**63 for _ in range(4)]
    hashed_video(wh, "a", a, uploader="@one")
    hashed_video(wh, "a-reupload", [flip(h, [1, 33]) for h in a], uploader="@two")
    # shares one keyframe with `a`: 1 of 2 of its keyframes, 1 of 4 of a's
    hashed_video(wh, "b", [a[0], rng.getrandbits(64) - 2**63])
    hashed_video(wh, "flat", [None, None])  # flat keyframes match nothing
    hashed_video(wh, "flat2", [None])
    hashed_video(wh, "gone", list(a), status="removed")  # not a good video
    wh.refresh_catalog()
    pairs = wh.rows("SELECT * FROM quality_near_duplicates")
    assert [(p["video_a"], p["video_b"]) for p in pairs] == [("a", "a-reupload")]
    pair = pairs[0]
    assert pair["share"] == 1.0 and pair["min_distance"] == 2 and pair["matched_a"] == 4
    assert (pair["uploader_a"], pair["uploader_b"]) == ("@one", "@two")
    loose = wh.rows("SELECT video_a, video_b FROM quality_near_duplicates_at(min_share := 0.25)")
    assert {(p["video_a"], p["video_b"]) for p in loose} == {
        ("a", "a-reupload"), ("a", "b"), ("a-reupload", "b")
    }  # fmt: skip
    strict = wh.rows("SELECT * FROM quality_near_duplicates_at(max_bits := 1)")
    assert strict == []
    assert DEFAULT_MAX_BITS >= 2


def test_stale_hashes_are_ignored(wh: Warehouse) -> None:
    rng = random.Random(9)
    h = [rng.getrandbits(64) - 2**63 for _ in range(2)]
    hashed_video(wh, "x", h)
    hashed_video(wh, "y", h)
    assert len(wh.rows("SELECT * FROM quality_near_duplicates")) == 1
    # the scenes stage re-ran for y: its old hashes no longer describe its keyframes
    rerun = [
        {"video_id": "y", "scene_idx": i, "start_s": 0.0, "end_s": 1.0,
         "keyframe_path": "y/new.jpg", "created_at": at(5)}
        for i in range(2)
    ]  # fmt: skip
    wh.append("scenes", rerun)
    assert wh.rows("SELECT * FROM quality_keyframe_hashes WHERE video_id = 'y'") == []
    assert wh.rows("SELECT * FROM quality_near_duplicates") == []


# ---- split leakage and the annotation queue ------------------------------------------------


def test_split_leakage_by_uploader_and_near_duplicate(wh: Warehouse) -> None:
    rng = random.Random(11)
    h = [rng.getrandbits(64) - 2**63 for _ in range(3)]
    hashed_video(wh, "v1", h, uploader="@alice")
    hashed_video(wh, "v2", [flip(x, [7]) for x in h], uploader="@bob")  # re-upload of v1
    hashed_video(wh, "v3", [rng.getrandbits(64) - 2**63], uploader="@alice")
    hashed_video(wh, "v4", [rng.getrandbits(64) - 2**63], uploader="@carol")
    runs = [
        {"run_id": "old", "status": "done", "finished_at": at(1)},
        {"run_id": "new", "status": "done", "finished_at": at(2)},
        {"run_id": "broken", "status": "failed", "finished_at": at(3)},
    ]
    wh.append("training_runs", runs)
    preds = [
        ("old", "v1", "train"), ("old", "v2", "train"), ("old", "v3", "train"),
        ("old", "v4", "test"),  # clean
        ("new", "v1", "train"), ("new", "v2", "test"), ("new", "v3", "val"),
        ("new", "v4", "train"),
    ]  # fmt: skip
    wh.append(
        "predictions",
        [
            {"run_id": r, "video_id": v, "split": s, "label": "joy", "score": 0.9}
            for r, v, s in preds
        ],
    )  # fmt: skip
    summary = by_key(wh.rows("SELECT * FROM quality_split_leakage"), "run_id")
    assert (
        summary["old"]["leaking_uploaders"] == 0 and summary["old"]["duplicate_pairs_across"] == 0
    )
    assert summary["new"]["is_latest"] and not summary["old"]["is_latest"]
    assert summary["new"]["leaking_uploaders"] == 1  # alice: v1 train, v3 val
    assert summary["new"]["held_out_with_train_uploader"] == 1
    assert summary["new"]["duplicate_pairs_across"] == 1
    uploaders = wh.rows("SELECT * FROM quality_split_leakage_uploaders")
    assert [(u["run_id"], u["uploader"], u["n_train"], u["n_val"]) for u in uploaders] == [
        ("new", "@alice", 1, 1)
    ]
    dupes = wh.rows("SELECT * FROM quality_split_leakage_duplicates")
    assert [(d["video_a"], d["split_a"], d["video_b"], d["split_b"]) for d in dupes] == [
        ("v1", "train", "v2", "test")
    ]


def test_annotation_queue_reasons_and_order(wh: Warehouse) -> None:
    wh.append("videos", [video(v) for v in ("agreed", "tied", "single", "none", "unsure")])
    wh.append(
        "label_tasks",
        [{"video_id": v, "project_id": 1, "task_id": i} for i, v in enumerate(["agreed", "tied"])],
    )
    wh.append(
        "annotations",
        vote_rows(
            {
                "agreed": {"a": "joy", "b": "joy", "c": "joy"},
                "tied": {"a": "joy", "b": "fear"},
                "single": {"a": "anger"},
                "unsure": {"a": "joy", "b": "joy"},
            }
        ),
    )
    wh.append("training_runs", [{"run_id": "r", "status": "done", "finished_at": at(1)}])
    probs = {"joy": 0.3, "fear": 0.3, "anger": 0.4}
    wh.append(
        "predictions",
        [
            {"run_id": "r", "video_id": "unsure", "split": "unlabeled", "label": "anger",
             "score": 0.4, "probs_json": json.dumps(probs)},
            {"run_id": "r", "video_id": "agreed", "split": "train", "label": "joy",
             "score": 0.95},
        ],
    )  # fmt: skip
    queue = wh.rows("SELECT * FROM quality_annotation_queue")
    reasons = {q["video_id"]: q["reasons"] for q in queue}
    assert reasons == {
        "tied": ["low_agreement"],
        "single": ["too_few_votes"],
        "none": ["too_few_votes"],
        "unsure": ["model_uncertain"],
    }
    assert queue[0]["video_id"] == "tied"  # contested items first
    assert queue[0]["task_id"] == 1
    unsure = next(q for q in queue if q["video_id"] == "unsure")
    assert unsure["confidence"] == 0.4 and 0.9 < unsure["entropy"] < 1.0
    strict = wh.rows(
        "SELECT video_id, reasons FROM quality_annotation_queue_with(min_votes := 3, "
        "min_agreement := 0.9, max_confidence := 0.1)"
    )
    assert {q["video_id"] for q in strict} == {"tied", "single", "none", "unsure"}
    assert next(q for q in strict if q["video_id"] == "unsure")["reasons"] == ["too_few_votes"]


def test_catalog_refresh_copies_one_template_per_code_version(wh: Warehouse) -> None:
    from warehouse.core import CATALOG_TEMPLATE_KEY

    root = wh.root.local()
    current = root / f".catalog-template-{CATALOG_TEMPLATE_KEY}"
    assert [p.name for p in root.glob(".catalog-template-*")] == [current.name]
    (root / ".catalog-template-0ld0ld0ld0ld").write_bytes(b"left by older code")
    current.unlink()
    wh.append("annotations", vote_rows(VOTES))  # the commit rebuilds the template
    assert [p.name for p in root.glob(".catalog-template-*")] == [current.name]
    assert duckdb_shell(wh.root.catalog_path(), "SELECT count(*) FROM quality_votes") == "11"
