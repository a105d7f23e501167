"""The figures of the dataset quality report, read from the warehouse's `quality_*` views
(warehouse/quality.py) over one in-memory connection, and what needs attention in them.

- `collect_figures(con, cfg, ...)` computes every figure (two streams of queries at once);
- `find_problems(fig, cfg)` says in words what needs attention, most important first.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import duckdb

from chfen.config import QualityConfig
from chfen.domain import Votes, krippendorff_alpha
from chfen.labels import PLUTCHIK
from chfen.media.keyframe_hash import ALGORITHM as HASH_ALGORITHM
from chfen.media.keyframe_hash import MISSING_HASHES_SQL
from warehouse.quality import (
    SHARED_ANNOTATION_VIEWS,
    SHARED_MEDIA_VIEWS,
    is_in_memory,
    materialize_shared_views,
)

MAX_LISTED = 100  # rows kept in the summary for long lists (pairs, queue, leakage)

# ---- reading the views ------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A JSON-able copy of a value DuckDB returned."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _rows(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None
) -> list[dict[str, Any]]:
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [{n: _plain(v) for n, v in zip(names, row, strict=True)} for row in cur.fetchall()]


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None) -> dict:
    rows = _rows(con, sql, params)
    return rows[0] if rows else {}


def _reference_alpha(con: duckdb.DuckDBPyConnection, project_id: int) -> float | None:
    """Krippendorff's alpha of one project computed by chfen.domain.agreement (pure Python)."""
    votes: Votes = {}
    for video_id, annotator, label in con.execute(
        "SELECT video_id, annotator, label FROM quality_votes WHERE project_id = ?", [project_id]
    ).fetchall():
        votes.setdefault(video_id, {})[annotator] = label
    return krippendorff_alpha(votes)


def _rank_annotators(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Lowest first, per project: alpha_delta (most negative first), then pairwise agreement."""

    def key(r: dict[str, Any]) -> tuple:
        delta, pair = r["alpha_delta"], r["pairwise_agreement"]
        return (
            r["project_id"],
            delta is None,
            delta if delta is not None else 0.0,
            pair if pair is not None else 1.0,
            r["annotator"],
        )

    ranked = sorted(rows, key=key)
    rank: dict[int, int] = {}
    for r in ranked:
        rank[r["project_id"]] = rank.get(r["project_id"], 0) + 1
        r["rank"] = rank[r["project_id"]]
    return ranked


def _missing_hashes(con: duckdb.DuckDBPyConnection) -> int:
    """Keyframes that need a (new) hash (`MISSING_HASHES_SQL`), 0 asked cheaply first.

    A keyframe whose current hash (`quality_keyframe_hashes`, newer than its scene) has this
    algorithm needs none; when every keyframe has one, that plain anti-join over the stored
    views answers in a fraction of the time the exact query takes."""
    unhashed = con.execute(
        """
        SELECT count(*) FROM quality_scenes s
        JOIN quality_videos v ON v.video_id = s.video_id
        ANTI JOIN (SELECT video_id, scene_idx FROM quality_keyframe_hashes
                   WHERE algorithm = $algorithm) h
          ON h.video_id = s.video_id AND h.scene_idx = s.scene_idx
        WHERE s.keyframe_path IS NOT NULL
        """,
        {"algorithm": HASH_ALGORITHM},
    ).fetchone()[0]
    if not unhashed:
        return 0
    sql = f"SELECT count(*) FROM ({MISSING_HASHES_SQL})"
    return con.execute(sql, {"algorithm": HASH_ALGORITHM}).fetchone()[0]


def _agreement_figures(con: duckdb.DuckDBPyConnection, reference_max_votes: int) -> dict[str, Any]:
    """Counts, agreement per project, item and annotator, labels and lead times."""
    out: dict[str, Any] = {}
    out["counts"] = _one(
        con,
        """
        SELECT (SELECT count(*) FROM quality_videos) AS videos,
               (SELECT count(*) FROM quality_annotation_times) AS annotations,
               (SELECT count(*) FROM quality_votes) AS votes,
               (SELECT count(*) FROM quality_item_stats) AS items,
               (SELECT count(DISTINCT annotator) FROM quality_votes) AS annotators,
               (SELECT count(*) FROM quality_keyframe_hashes) AS keyframes_hashed,
               (SELECT count(*) FROM quality_keyframe_hashes WHERE phash IS NULL)
                 AS keyframes_flat
        """,
    )
    projects = _rows(con, "SELECT * FROM quality_alpha ORDER BY n_votes DESC, project_id")
    for p in projects:
        p["alpha_reference"] = None
        if p["n_votes"] <= reference_max_votes:
            p["alpha_reference"] = _reference_alpha(con, p["project_id"])
    annotators = _rank_annotators(_rows(con, "SELECT * FROM quality_annotator_agreement"))
    lead_times = _rows(con, "SELECT * FROM quality_lead_times ORDER BY median_s, annotator")
    lead = {(r["project_id"], r["annotator"]): r for r in lead_times}
    for a in annotators:
        times = lead.get((a["project_id"], a["annotator"]), {})
        a["median_lead_time_s"] = times.get("median_s")
        a["n_skipped"] = times.get("n_skipped", 0)
    main_project = projects[0]["project_id"] if projects else None
    main = [a for a in annotators if a["project_id"] == main_project]
    items = _one(
        con,
        """
        SELECT count(*) AS n_items, avg(majority_share) AS mean_majority_share,
               count(*) FILTER (WHERE majority IS NULL) AS ties,
               count(*) FILTER (WHERE n_labels = 1 AND n_votes >= 2) AS unanimous,
               count(*) FILTER (WHERE n_votes = 1) AS single_vote,
               avg(n_votes) AS mean_votes
        FROM quality_item_agreement
        """,
    )
    items["majority_share_histogram"] = _rows(
        con,
        """
        SELECT least(floor(majority_share * 10) / 10, 0.9) AS from_share, count(*) AS n_items
        FROM quality_item_agreement WHERE n_votes >= 2 GROUP BY 1 ORDER BY 1
        """,
    )
    out["agreement"] = {
        "projects": projects,
        "annotators": annotators,
        "lowest_annotator": main[0]["annotator"] if len(main) >= 2 else None,
        "items": items,
        "confusion": _rows(
            con,
            "SELECT * FROM quality_annotator_confusion "
            "ORDER BY project_id, annotator, label, majority_of_others",
        ),
    }
    out["labels"] = _rows(
        con, "SELECT * FROM quality_label_distribution ORDER BY project_id, n_votes DESC"
    )
    out["lead_times"] = lead_times
    return out


def _media_figures(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Media, ASR and scenes of the good videos."""
    return {
        "media": {
            **_one(con, "SELECT * FROM quality_media_summary"),
            "duration_histogram": _rows(con, "SELECT * FROM quality_duration_histogram"),
            "resolutions": _rows(con, "SELECT * FROM quality_resolution_counts LIMIT 20"),
            "fps": _rows(con, "SELECT * FROM quality_fps_counts LIMIT 20"),
            "audio": _rows(con, "SELECT * FROM quality_audio_presence"),
        },
        "asr": {
            **_one(con, "SELECT * FROM quality_asr_summary"),
            "languages": _rows(con, "SELECT * FROM quality_asr_languages"),
            "coverage_histogram": _rows(
                con,
                """
                SELECT least(floor(coverage * 10) / 10, 0.9) AS from_coverage,
                       count(*) AS n_videos
                FROM quality_asr_coverage WHERE asr_done GROUP BY 1 ORDER BY 1
                """,
            ),
        },
        "scenes": {
            **_one(
                con,
                """
                SELECT count(*) FILTER (WHERE scenes_done) AS n_videos_done,
                       count(*) FILTER (WHERE NOT scenes_done) AS n_videos_pending,
                       avg(n_scenes) FILTER (WHERE scenes_done) AS mean_scenes,
                       median(mean_scene_s) FILTER (WHERE scenes_done) AS median_scene_s,
                       count(*) FILTER (WHERE scenes_done AND n_scenes <= 1) AS single_shot
                FROM quality_scenes_per_video
                """,
            ),
            "distribution": _rows(con, "SELECT * FROM quality_scene_count_distribution"),
        },
    }


def _crawl_figures(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Per-source yield and the current failures."""
    return {
        "sources": _rows(con, "SELECT * FROM quality_source_yield"),
        "failures": _rows(con, f"SELECT * FROM quality_failures_by_reason LIMIT {MAX_LISTED}"),
    }


def _duplicate_figures(
    con: duckdb.DuckDBPyConnection, max_bits: int, min_share: float
) -> dict[str, Any]:
    """Near-duplicate pairs at these thresholds and the training runs' split leakage."""
    # The pairs at this report's thresholds stand in for the view (the leakage views read it).
    con.execute(
        "CREATE OR REPLACE TEMP TABLE quality_near_duplicates AS "
        "SELECT * FROM quality_near_duplicates_at(max_bits := ?, min_share := ?)",
        [max_bits, min_share],
    )
    near_duplicates = {
        "max_bits": max_bits,
        "min_share": min_share,
        "n_pairs": con.execute("SELECT count(*) FROM quality_near_duplicates").fetchone()[0],
        "pairs": _rows(con, f"SELECT * FROM quality_near_duplicates LIMIT {MAX_LISTED}"),
    }
    latest = _one(con, "SELECT run_id FROM quality_latest_run").get("run_id")
    leak: dict[str, Any] = {
        "latest_run": latest,
        "runs": _rows(con, "SELECT * FROM quality_split_leakage"),
        "uploaders": [],
        "duplicates": [],
    }
    if latest is not None:
        leak["uploaders"] = _rows(
            con,
            f"SELECT * FROM quality_split_leakage_uploaders WHERE run_id = ? "
            f"ORDER BY n_val + n_test DESC, uploader LIMIT {MAX_LISTED}",
            [latest],
        )
        leak["duplicates"] = _rows(
            con,
            f"SELECT * FROM quality_split_leakage_duplicates WHERE run_id = ? LIMIT {MAX_LISTED}",
            [latest],
        )
    return {"near_duplicates": near_duplicates, "leakage": leak}


def _queue_figures(
    con: duckdb.DuckDBPyConnection, min_votes: int, min_agreement: float, max_confidence: float
) -> dict[str, Any]:
    """The annotation queue at these thresholds: its size, reasons and most urgent items."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _queue AS SELECT * FROM quality_annotation_queue_with("
        "min_votes := ?, min_agreement := ?, max_confidence := ?)",
        [min_votes, min_agreement, max_confidence],
    )
    by_reason = dict(
        con.execute(
            "SELECT r, count(*) FROM (SELECT unnest(reasons) AS r FROM _queue) GROUP BY r"
        ).fetchall()
    )
    return {
        "queue": {
            "n_items": con.execute("SELECT count(*) FROM _queue").fetchone()[0],
            "by_reason": by_reason,
            "top": _rows(con, f"SELECT * FROM _queue LIMIT {MAX_LISTED}"),
        }
    }


def _duckdb_threads() -> int:
    """DuckDB's `threads` for the report. Each of its two streams runs its queries on its own
    thread too, so one fewer than the CPUs this process may use keeps them all busy; on 2 CPUs
    that is 1, each stream on a core of its own (DuckDB's parallelism within a query costs
    about a fifth more CPU here: most tables are one Parquet row group)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, cpus - 1)


def collect_figures(
    con: duckdb.DuckDBPyConnection,
    cfg: QualityConfig | None = None,
    *,
    min_votes: int = 2,
    min_agreement: float = 0.5,
    stop_if_unhashed: bool = False,
    on_plottable: Callable[[dict[str, Any]], None] | None = None,
    timings: dict[str, float] | None = None,
) -> dict[str, Any] | None:
    """Every figure of the report, from a fresh `Warehouse.connect()` connection.

    Two streams of queries run at the same time, each on its own cursor (DuckDB releases the
    GIL): the annotation views, then agreement and the annotation queue; the media views, then
    media, ASR, scenes, near-duplicates, split leakage and crawl yield (see `_duckdb_threads`).
    Each stream first computes its shared views once (`materialize_shared_views`), so the
    connection then shows a snapshot.

    `on_plottable` gets each part of the plotted figures as soon as it is there, so the plots
    are drawn while the rest is computed. With `stop_if_unhashed`, returns None, and computes
    no figure, when keyframes need a (new) hash. `timings` gets the seconds until the shared
    views were there ('prepare') and after ('figures'). The thresholds are `cfg`'s (the
    `quality` settings); the queue's `min_votes` and `min_agreement` are the training set's.
    """
    cfg = cfg or QualityConfig()
    max_bits, min_share = cfg.duplicate_max_bits, cfg.duplicate_min_share
    max_confidence, reference_max_votes = cfg.queue_max_confidence, cfg.reference_max_votes
    if not is_in_memory(con):
        raise ValueError(
            "collect_figures needs a private in-memory connection (Warehouse.connect())"
        )
    con.execute(f"SET threads = {_duckdb_threads()}")  # the database's: the cursors' too
    settings = {
        "max_bits": max_bits,
        "min_share": min_share,
        "min_votes": min_votes,
        "min_agreement": min_agreement,
        "max_confidence": max_confidence,
    }
    t0 = time.perf_counter()
    stop = threading.Event()  # keyframes need a hash: compute nothing more
    # figures that read the other stream's views wait for them (else they compute them again)
    annotation_views, media_views = threading.Event(), threading.Event()

    def plot(figures: dict[str, Any]) -> dict[str, Any]:
        if on_plottable is not None:
            on_plottable(figures)
        return figures

    def annotations(cur: duckdb.DuckDBPyConnection) -> dict[str, Any]:
        try:
            for name in SHARED_ANNOTATION_VIEWS:
                if stop.is_set():
                    return {}
                materialize_shared_views(cur, (name,))
        finally:
            annotation_views.set()
        media_views.wait()
        if stop.is_set():
            return {}
        if timings is not None:
            timings["prepare"] = round(time.perf_counter() - t0, 3)
        return {
            **plot(_agreement_figures(cur, reference_max_votes)),
            **_queue_figures(cur, min_votes, min_agreement, max_confidence),
        }

    def media(cur: duckdb.DuckDBPyConnection) -> dict[str, Any]:
        try:
            materialize_shared_views(cur, SHARED_MEDIA_VIEWS)
            if stop_if_unhashed and _missing_hashes(cur):
                stop.set()
                return {}
        finally:
            media_views.set()
        figures = {**plot(_media_figures(cur)), **_duplicate_figures(cur, max_bits, min_share)}
        annotation_views.wait()
        return {**figures, **plot(_crawl_figures(cur))}

    streams = (annotations, media)
    cursors = [con.cursor() for _ in streams]
    try:
        for cur in cursors:
            cur.execute("SET enable_progress_bar = false")  # the report prints its own output
        with ThreadPoolExecutor(len(streams)) as pool:
            futures = [pool.submit(s, c) for s, c in zip(streams, cursors, strict=True)]
            fig = {key: value for f in futures for key, value in f.result().items()}
    finally:
        for cur in cursors:
            cur.close()
    if stop.is_set():
        return None
    if timings is not None:
        timings["figures"] = round(time.perf_counter() - t0 - timings["prepare"], 3)
    order = ("counts", "agreement", "labels", "lead_times", "media", "asr", "scenes",
             "sources", "failures", "near_duplicates", "leakage", "queue")  # fmt: skip
    out: dict[str, Any] = {"settings": settings, **{key: fig[key] for key in order}}
    out["problems"] = find_problems(out, cfg)
    return out


def fmt(x: Any, digits: int = 3) -> str:
    """A figure as text: '-' for none, floats to `digits` places."""
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def find_problems(fig: Mapping[str, Any], cfg: QualityConfig | None = None) -> list[str]:
    """What needs attention, in words, most important first (thresholds: `cfg`)."""
    cfg = cfg or QualityConfig()
    out: list[str] = []
    agreement = fig["agreement"]
    for p in agreement["projects"]:
        alpha = p["alpha"]
        if alpha is not None and alpha < cfg.min_alpha:
            out.append(
                f"project {p['project_id']}: Krippendorff's alpha is {alpha:.3f}, below "
                f"{cfg.min_alpha} (too low even for tentative conclusions; quality.min_alpha)"
            )
        ref = p.get("alpha_reference")
        if alpha is not None and ref is not None and abs(alpha - ref) > 1e-9:
            out.append(
                f"project {p['project_id']}: SQL alpha {alpha:.6f} differs from "
                f"chfen.domain.agreement's {ref:.6f}; please report this"
            )
    lowest = agreement["lowest_annotator"]
    if lowest is not None:
        a = next(r for r in agreement["annotators"] if r["annotator"] == lowest)
        if a["alpha_delta"] is not None and a["alpha_delta"] < 0:
            out.append(
                f"annotator {lowest} ranks lowest: alpha would be {a['alpha_without']:.3f} "
                f"without them ({-a['alpha_delta']:+.3f}); they agree with the others' majority "
                f"on {fmt(a['agreement_with_others'], 2)} of {a['n_compared']} items"
            )
    items = agreement["items"]
    if items.get("ties"):
        out.append(f"{items['ties']} item(s) have no majority label (a tie)")
    dupes = fig["near_duplicates"]
    if dupes["n_pairs"]:
        shown = ", ".join(f"{p['video_a']} ~ {p['video_b']}" for p in dupes["pairs"][:5])
        more = " …" if dupes["n_pairs"] > 5 else ""
        out.append(f"{dupes['n_pairs']} near-duplicate video pair(s): {shown}{more}")
    leak = fig["leakage"]
    for run in leak["runs"]:
        if run["is_latest"] and (run["leaking_uploaders"] or run["duplicate_pairs_across"]):
            out.append(
                f"run {run['run_id']} leaks: {run['leaking_uploaders']} uploader(s) in several "
                f"splits, {run['duplicate_pairs_across']} near-duplicate pair(s) across splits"
            )
    failed: dict[str, int] = {}
    for f in fig["failures"]:
        failed[f"{f['stage']}/{f['error_kind']}"] = (
            failed.get(f"{f['stage']}/{f['error_kind']}", 0) + f["n_videos"]
        )
    if failed:
        parts = ", ".join(f"{k}: {n}" for k, n in sorted(failed.items(), key=lambda kv: -kv[1]))
        out.append(f"{sum(failed.values())} video(s) currently fail a stage ({parts})")
    media = fig["media"]
    if media.get("n_without_audio"):
        out.append(f"{media['n_without_audio']} good video(s) have no audio track")
    scenes = fig["scenes"]
    if scenes.get("n_videos_pending"):
        out.append(f"{scenes['n_videos_pending']} good video(s) have no scenes yet")
    asr = fig["asr"]
    if asr.get("n_videos") and asr.get("n_transcribed", 0) < asr["n_videos"]:
        out.append(f"{asr['n_videos'] - asr['n_transcribed']} good video(s) have no ASR yet")
    labels = [r for r in fig["labels"] if r["label"] in PLUTCHIK]
    if len(labels) >= 2:
        shares = sorted(r["vote_share"] for r in labels)
        if shares[0] > 0 and shares[-1] / shares[0] > cfg.max_label_imbalance:
            out.append(
                f"labels are imbalanced: the commonest emotion has {shares[-1] / shares[0]:.1f}x "
                "the votes of the rarest"
            )
    queue = fig["queue"]
    if queue["n_items"]:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(queue["by_reason"].items()))
        out.append(f"{queue['n_items']} item(s) need more annotation ({reasons})")
    return out
