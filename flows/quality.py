"""The dataset quality report: key figures from the warehouse's quality views, an HTML page
with plots under <data_root>/reports/quality-<timestamp>/, and the `quality` flow.

- `quality_report(settings, wh, out_dir=None) -> dict` hashes keyframes that lack a hash,
  reads the `quality_*` views (`warehouse.quality`), checks Krippendorff's alpha against
  `labeling.agreement` where the votes are few enough, writes the report and returns a
  JSON-able summary (`problems` lists what needs attention, in words);
- `print_quality(summary, console)` prints the key figures as rich tables;
- `quality_flow(config=None, overrides=None) -> dict` is the Prefect flow around the report.

`reports/quality-latest` is a symlink to the newest report (a copy where links fail).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
import os
import shutil
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
from prefect import flow, get_run_logger
from rich.console import Console
from rich.table import Table

from chfen.config import Settings, load_settings
from chfen.domain import Votes, krippendorff_alpha
from chfen.labels import NO_EMOTION, PLUTCHIK
from chfen.media.keyframe_hash import ALGORITHM as HASH_ALGORITHM
from chfen.media.keyframe_hash import MISSING_HASHES_SQL, fill_keyframe_hashes
from warehouse import Warehouse
from warehouse.quality import (
    DEFAULT_MAX_BITS,
    DEFAULT_MAX_CONFIDENCE,
    DEFAULT_MIN_SHARE,
    SHARED_ANNOTATION_VIEWS,
    SHARED_MEDIA_VIEWS,
    catalog_is_current,
    is_in_memory,
    materialize_shared_views,
)

LATEST = "quality-latest"
INDEX_HTML = "index.html"
SUMMARY_JSON = "summary.json"
# Krippendorff's own guide: alpha >= 0.8 reliable, >= 0.667 for tentative conclusions only.
ALPHA_TENTATIVE = 0.667
# Above this many votes, alpha comes from SQL only (labeling.agreement is pure Python).
REFERENCE_MAX_VOTES = 50_000
MAX_LISTED = 100  # rows kept in the summary for long lists (pairs, queue, leakage)
ALL_LABELS = (*PLUTCHIK, NO_EMOTION)
PROJECT_COLUMNS = (
    "project_id", "alpha", "alpha_reference", "observed_agreement", "expected_agreement",
    "n_items", "n_pairable_items", "n_votes", "n_annotators",
)  # fmt: skip
ANNOTATOR_COLUMNS = (
    "project_id", "rank", "annotator", "n_items", "alpha_delta", "alpha_without",
    "pairwise_agreement", "agreement_with_others", "n_compared", "median_lead_time_s",
    "n_skipped",
)  # fmt: skip
QUEUE_COLUMNS = (
    "video_id", "project_id", "task_id", "reasons", "n_votes", "majority", "majority_share",
    "predicted", "confidence",
)  # fmt: skip


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
    """Krippendorff's alpha of one project computed by labeling.agreement (pure Python)."""
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
    *,
    max_bits: int = DEFAULT_MAX_BITS,
    min_share: float = DEFAULT_MIN_SHARE,
    min_votes: int = 2,
    min_agreement: float = 0.5,
    max_confidence: float = DEFAULT_MAX_CONFIDENCE,
    reference_max_votes: int = REFERENCE_MAX_VOTES,
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
    views were there ('prepare') and after ('figures').
    """
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
    out["problems"] = find_problems(out)
    return out


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def find_problems(fig: Mapping[str, Any]) -> list[str]:
    """What needs attention, in words, most important first."""
    out: list[str] = []
    agreement = fig["agreement"]
    for p in agreement["projects"]:
        alpha = p["alpha"]
        if alpha is not None and alpha < ALPHA_TENTATIVE:
            out.append(
                f"project {p['project_id']}: Krippendorff's alpha is {alpha:.3f}, below "
                f"{ALPHA_TENTATIVE} (too low even for tentative conclusions)"
            )
        ref = p.get("alpha_reference")
        if alpha is not None and ref is not None and abs(alpha - ref) > 1e-9:
            out.append(
                f"project {p['project_id']}: SQL alpha {alpha:.6f} differs from "
                f"labeling.agreement's {ref:.6f}; please report this"
            )
    lowest = agreement["lowest_annotator"]
    if lowest is not None:
        a = next(r for r in agreement["annotators"] if r["annotator"] == lowest)
        if a["alpha_delta"] is not None and a["alpha_delta"] < 0:
            out.append(
                f"annotator {lowest} ranks lowest: alpha would be {a['alpha_without']:.3f} "
                f"without them ({-a['alpha_delta']:+.3f}); they agree with the others' majority "
                f"on {_fmt(a['agreement_with_others'], 2)} of {a['n_compared']} items"
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
        if shares[0] > 0 and shares[-1] / shares[0] > 3:
            out.append(
                f"labels are imbalanced: the commonest emotion has {shares[-1] / shares[0]:.1f}x "
                "the votes of the rarest"
            )
    queue = fig["queue"]
    if queue["n_items"]:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(queue["by_reason"].items()))
        out.append(f"{queue['n_items']} item(s) need more annotation ({reasons})")
    return out


# ---- plots and the HTML page ------------------------------------------------------------------


def _plots(fig: Mapping[str, Any], out: Path) -> dict[str, str]:
    """PNG plots of the key figures in `fig` (any part of them: the report draws each part as
    it comes); returns name -> file name (only plots with data)."""
    # Figure without pyplot: no global state, and fixed margins instead of tight_layout,
    # which draws every figure twice.
    from matplotlib.figure import Figure

    made: dict[str, str] = {}

    def new(width: float, height: float, left: float = 0.1, bottom: float = 0.18) -> Any:
        figure = Figure(figsize=(width, height), dpi=80)
        figure.subplots_adjust(left=left, bottom=bottom, right=0.97, top=0.88)
        return figure, figure.add_subplot()

    def save(name: str, figure: Any) -> None:
        figure.savefig(out / name)
        made[name.removesuffix(".png")] = name

    def left_for(labels: Sequence[str], width: float) -> float:
        # room for the longest tick label (about 0.09 inch per character at 9 pt)
        return min(0.6, 0.04 + 0.075 * max((len(x) for x in labels), default=1) / width)

    votes: dict[str, int] = {}
    for r in fig.get("labels", []):
        votes[r["label"]] = votes.get(r["label"], 0) + r["n_votes"]
    if votes:
        names = [lb for lb in ALL_LABELS if lb in votes] + sorted(set(votes) - set(ALL_LABELS))
        f, ax = new(7, 3.4, bottom=0.3)
        ax.bar(names, [votes[n] for n in names], color="#3b6fb6")
        ax.set_ylabel("votes")
        ax.set_title("Label distribution (current votes)")
        ax.tick_params(axis="x", rotation=30)
        save("labels.png", f)

    agreement = fig.get("agreement", {})
    annotators = agreement.get("annotators", [])
    if annotators:
        rows = list(reversed(annotators[:30]))
        names = [r["annotator"] for r in rows]
        f, ax = new(8, 0.35 * len(rows) + 1.3, left=left_for(names, 8), bottom=0.12)
        y = list(range(len(rows)))
        ax.barh([i + 0.2 for i in y], [r["pairwise_agreement"] or 0 for r in rows], height=0.4,
                label="pairwise agreement", color="#3b6fb6")  # fmt: skip
        ax.barh([i - 0.2 for i in y], [r["agreement_with_others"] or 0 for r in rows],
                height=0.4, label="agrees with others' majority", color="#f39c3d")  # fmt: skip
        ax.set_yticks(y, names)
        ax.set_xlim(0, 1)
        ax.set_title("Annotators, lowest ranked at the top")
        ax.legend(loc="lower right", fontsize=8)
        save("annotators.png", f)

    hist = agreement.get("items", {}).get("majority_share_histogram") or []
    if hist:
        f, ax = new(6, 3)
        ax.bar([h["from_share"] for h in hist], [h["n_items"] for h in hist], width=0.09,
               align="edge", color="#8fcf5a")  # fmt: skip
        ax.set_xlabel("majority share of the votes")
        ax.set_ylabel("items (2+ votes)")
        ax.set_title("Per-item agreement")
        save("item_agreement.png", f)

    lead = [r for r in fig.get("lead_times", []) if r["median_s"] is not None][:30]
    if lead:
        names = [r["annotator"] for r in lead]
        f, ax = new(8, 0.3 * len(lead) + 1.3, left=left_for(names, 8), bottom=0.2)
        med = [r["median_s"] for r in lead]
        lo = [r["median_s"] - (r["p10_s"] or r["median_s"]) for r in lead]
        hi = [(r["p90_s"] or r["median_s"]) - r["median_s"] for r in lead]
        ax.barh(names, med, xerr=[lo, hi], color="#9b59b6")
        ax.set_xlabel("seconds per task (median, 10th-90th percentile)")
        ax.set_title("Annotation lead times")
        save("lead_times.png", f)

    media = fig.get("media", {})
    durations = media.get("duration_histogram", [])
    if durations:
        f, ax = new(6, 3)
        ax.bar([d["from_s"] for d in durations], [d["n_videos"] for d in durations],
               width=[d["to_s"] - d["from_s"] for d in durations], align="edge",
               color="#3fa7d6", edgecolor="white")  # fmt: skip
        ax.set_xlabel("duration (s)")
        ax.set_ylabel("videos")
        ax.set_title("Video durations")
        save("durations.png", f)

    res = list(reversed(media.get("resolutions", [])[:10]))
    if res:
        names = [f"{r['width']}x{r['height']}" if r["width"] else "unknown" for r in res]
        f, ax = new(6, 3, left=left_for(names, 6), bottom=0.18)
        ax.barh(names, [r["n_videos"] for r in res], color="#e0413a")
        ax.set_xlabel("videos")
        ax.set_title("Resolutions")
        save("resolutions.png", f)

    scenes = fig.get("scenes", {}).get("distribution", [])
    if scenes:
        f, ax = new(6, 3)
        ax.bar([s["n_scenes"] for s in scenes], [s["n_videos"] for s in scenes], color="#2e8b57")
        ax.set_xlabel("scenes per video")
        ax.set_ylabel("videos")
        ax.set_title("Scenes per video")
        save("scenes.png", f)

    coverage = fig.get("asr", {}).get("coverage_histogram", [])
    if coverage:
        f, ax = new(6, 3)
        ax.bar([c["from_coverage"] for c in coverage], [c["n_videos"] for c in coverage],
               width=0.09, align="edge", color="#f7d44a")  # fmt: skip
        ax.set_xlabel("share of the video covered by transcribed speech")
        ax.set_ylabel("videos")
        ax.set_title("ASR coverage")
        save("asr_coverage.png", f)

    sources = fig.get("sources", [])[:20]
    if sources:
        names = [str(s["source"]) for s in sources]
        f, ax = new(7, 0.35 * len(sources) + 1.3, left=left_for(names, 7), bottom=0.2)
        ax.barh(names, [s["downloaded"] for s in sources], label="downloaded", color="#2e8b57")
        ax.barh(names, [s["failed"] for s in sources], left=[s["downloaded"] for s in sources],
                label="failed", color="#e0413a")  # fmt: skip
        ax.set_xlabel("videos")
        ax.set_title("Per-source yield")
        ax.legend(loc="lower right", fontsize=8)
        save("sources.png", f)
    return made


def _table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    if not rows:
        return "<p class='none'>none</p>"
    columns = list(columns or rows[0].keys())
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c)))}</td>" for c in columns) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _img(plots: Mapping[str, str], key: str) -> str:
    return f"<img src='{html.escape(plots[key])}' alt='{key}'>" if key in plots else ""


def render_html(fig: Mapping[str, Any], plots: Mapping[str, str]) -> str:
    """The report page (plots are files beside it)."""
    agreement = fig["agreement"]
    problems = "".join(f"<li>{html.escape(p)}</li>" for p in fig["problems"]) or "<li>none</li>"
    counts = [{"figure": k, "value": v} for k, v in fig["counts"].items()]
    media = {k: v for k, v in fig["media"].items() if not isinstance(v, list)}
    asr = {k: v for k, v in fig["asr"].items() if not isinstance(v, list)}
    leak = fig["leakage"]
    sections = [
        ("Problems", f"<ul>{problems}</ul>"),
        ("Overview", _table(counts)),
        (
            "Agreement per project",
            _table(
                agreement["projects"],
                PROJECT_COLUMNS,
            )
            + _img(plots, "item_agreement"),
        ),
        (
            "Annotators (lowest ranked first)",
            _table(
                agreement["annotators"],
                ANNOTATOR_COLUMNS,
            )
            + _img(plots, "annotators")
            + _img(plots, "lead_times"),
        ),
        (
            "Annotator vs the others' majority",
            _table(agreement["confusion"][:MAX_LISTED]),
        ),
        ("Labels", _table(fig["labels"]) + _img(plots, "labels")),
        (
            "Media",
            _table([{"figure": k, "value": v} for k, v in media.items()])
            + _img(plots, "durations")
            + _img(plots, "resolutions")
            + _table(fig["media"]["fps"])
            + _table(fig["media"]["audio"]),
        ),
        (
            "ASR",
            _table([{"figure": k, "value": v} for k, v in asr.items()])
            + _img(plots, "asr_coverage"),
        ),
        (
            "Scenes",
            _table([{k: v for k, v in fig["scenes"].items() if not isinstance(v, list)}])
            + _img(plots, "scenes"),
        ),
        ("Per-source yield", _table(fig["sources"]) + _img(plots, "sources")),
        ("Failures by reason", _table(fig["failures"])),
        (
            f"Near-duplicates ({fig['near_duplicates']['n_pairs']} pairs, "
            f"≤ {fig['near_duplicates']['max_bits']} bits)",
            _table(fig["near_duplicates"]["pairs"]),
        ),
        (
            f"Split leakage (latest run: {leak['latest_run'] or 'none'})",
            _table(leak["runs"]) + _table(leak["uploaders"]) + _table(leak["duplicates"]),
        ),
        (
            f"Annotation queue ({fig['queue']['n_items']} items)",
            _table(
                fig["queue"]["top"],
                QUEUE_COLUMNS,
            ),
        ),
    ]
    body = "".join(f"<h2>{html.escape(t)}</h2>{content}" for t, content in sections)
    style = (
        "body{font-family:sans-serif;margin:2em;max-width:75em}"
        "table{border-collapse:collapse;margin:.5em 0;font-size:90%}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
        "th{background:#eee}img{display:block;margin:.5em 0;max-width:100%}.none{color:#888}"
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Dataset quality</title>"
        f"<style>{style}</style></head><body><h1>Dataset quality</h1>"
        f"<p>Generated {html.escape(fig['generated_at'])} from "
        f"{html.escape(fig['data_root'])}. Definitions: <code>warehouse/quality.py</code>; "
        "every figure is a view in <code>warehouse.duckdb</code>.</p>"
        f"{body}</body></html>"
    )


def _link_latest(report_dir: Path) -> None:
    """reports/quality-latest -> the newest report (a copy where symlinks are refused)."""
    latest = report_dir.parent / LATEST
    tmp = report_dir.parent / f".{LATEST}.{os.getpid()}"
    try:
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(report_dir.name, target_is_directory=True)
        if latest.is_dir() and not latest.is_symlink():
            shutil.rmtree(latest)
        os.replace(tmp, latest)  # atomic: a reader sees the old or the new report
    except OSError:
        tmp.unlink(missing_ok=True)
        if latest.is_symlink():
            latest.unlink()
        shutil.rmtree(latest, ignore_errors=True)
        shutil.copytree(report_dir, latest)


# ---- entry points -----------------------------------------------------------------------------


def quality_report(
    settings: Settings,
    wh: Warehouse,
    out_dir: Path | None = None,
    *,
    fill_hashes: bool = True,
    max_bits: int = DEFAULT_MAX_BITS,
    min_share: float = DEFAULT_MIN_SHARE,
    max_confidence: float = DEFAULT_MAX_CONFIDENCE,
    write: bool = True,
) -> dict[str, Any]:
    """Compute the quality figures, write the HTML report with plots, return a JSON-able dict.

    The report goes to `out_dir`, by default <data_root>/reports/quality-<UTC timestamp>/
    (and `reports/quality-latest` then points at it). The queue's thresholds are the training
    set's (`train.min_votes`, `train.min_agreement`). `fill_hashes` first hashes keyframes
    that lack a hash (local data roots only); `write=False` skips the files.
    """
    t0 = time.perf_counter()
    now = dt.datetime.now(dt.UTC)
    timings: dict[str, float] = {}

    def lap(step: str, since: float) -> float:
        timings[step] = round(time.perf_counter() - since, 3)
        return time.perf_counter()

    hashed = 0
    link = False
    if write:
        link = out_dir is None
        out_dir = Path(out_dir or wh.root.reports_dir() / f"quality-{now:%Y%m%dT%H%M%SZ}")
        out_dir.mkdir(parents=True, exist_ok=True)
    con = wh.connect()
    try:
        # DuckDB releases the GIL: the plots are drawn while the other figures are computed.
        with ThreadPoolExecutor(1) as pool:
            drawn: list[Future[dict[str, str]]] = []

            def draw(figures: dict[str, Any]) -> None:
                drawn.append(pool.submit(_plots, figures, out_dir))

            def figures(stop_if_unhashed: bool) -> dict[str, Any] | None:
                return collect_figures(
                    con,
                    max_bits=max_bits,
                    min_share=min_share,
                    min_votes=settings.train.min_votes,
                    min_agreement=settings.train.min_agreement,
                    max_confidence=max_confidence,
                    stop_if_unhashed=stop_if_unhashed,
                    on_plottable=draw if write else None,
                    timings=timings,
                )

            fig = figures(stop_if_unhashed=fill_hashes and wh.root.is_local)
            if fig is None:  # keyframes without a current hash: hash them, then start over
                con.close()
                hashed = fill_keyframe_hashes(wh)
                lap("hashes", t0)
                con = wh.connect()  # the views over the tables' files as they are now
                fig = figures(stop_if_unhashed=False)
                assert fig is not None
            t = time.perf_counter()
            plots = {name: file for future in drawn for name, file in future.result().items()}
            t = lap("plots_wait", t)
    finally:
        con.close()
    summary: dict[str, Any] = {
        "generated_at": now.isoformat(timespec="seconds"),
        "data_root": wh.root.url,
        "report_dir": None,
        "report_html": None,
        "keyframes_hashed_now": hashed,
        "timings": timings,
        "plots": sorted(plots.values()),
        **fig,
    }
    if write and out_dir is not None:
        summary["report_dir"] = str(out_dir)
        summary["report_html"] = str(out_dir / INDEX_HTML)
        (out_dir / INDEX_HTML).write_text(render_html(summary, plots), encoding="utf-8")
        summary["seconds"] = round(time.perf_counter() - t0, 3)
        (out_dir / SUMMARY_JSON).write_text(json.dumps(summary, indent=1), encoding="utf-8")
        if link:
            _link_latest(out_dir)
        t = lap("html", t)
    if wh.catalog_enabled and not catalog_is_current(wh.root.catalog_path()):
        wh.refresh_catalog()  # so the duckdb shell has this version of the quality views
        t = lap("catalog", t)
    summary["seconds"] = round(time.perf_counter() - t0, 3)
    return summary


def print_quality(summary: Mapping[str, Any], console: Console) -> None:
    """The key figures of a `quality_report` summary as rich tables."""
    agreement = summary["agreement"]
    counts = Table(title="Dataset quality")
    counts.add_column("figure")
    counts.add_column("value", justify="right")
    for key, value in summary["counts"].items():
        counts.add_row(key, _fmt(value))
    for p in agreement["projects"]:
        counts.add_row(f"alpha (project {p['project_id']})", _fmt(p["alpha"]))
    counts.add_row("near-duplicate pairs", _fmt(summary["near_duplicates"]["n_pairs"]))
    counts.add_row("items needing annotation", _fmt(summary["queue"]["n_items"]))
    console.print(counts)

    if agreement["annotators"]:
        t = Table(title="Annotators, lowest ranked first (alpha_delta < 0: better without them)")
        for col in ("project", "rank", "annotator", "items", "alpha_delta", "pairwise",
                    "agrees w/ others", "median lead s"):  # fmt: skip
            t.add_column(col, justify="left" if col == "annotator" else "right")
        for a in agreement["annotators"][:20]:
            t.add_row(
                _fmt(a["project_id"]), _fmt(a["rank"]), a["annotator"], _fmt(a["n_items"]),
                _fmt(a["alpha_delta"]), _fmt(a["pairwise_agreement"]),
                _fmt(a["agreement_with_others"]), _fmt(a["median_lead_time_s"], 1),
            )  # fmt: skip
        console.print(t)

    if summary["labels"]:
        t = Table(title="Labels")
        for col in ("label", "votes", "share", "majority items"):
            t.add_column(col, justify="left" if col == "label" else "right")
        for r in summary["labels"]:
            t.add_row(r["label"], _fmt(r["n_votes"]), _fmt(r["vote_share"]),
                      _fmt(r["n_majority_items"]))  # fmt: skip
        console.print(t)

    if summary["sources"]:
        t = Table(title="Per-source yield")
        cols = ("source", "discovered", "downloaded", "failed", "with_scenes", "with_asr",
                "labelled")  # fmt: skip
        for col in cols:
            t.add_column(col, justify="left" if col == "source" else "right")
        for r in summary["sources"][:20]:
            t.add_row(*(_fmt(r[c]) for c in cols))
        console.print(t)
    if summary["failures"]:
        t = Table(title="Failures by reason")
        for col in ("source", "stage", "kind", "videos", "example"):
            t.add_column(col, justify="right" if col == "videos" else "left")
        for r in summary["failures"][:20]:
            t.add_row(_fmt(r["source"]), r["stage"], r["error_kind"], _fmt(r["n_videos"]),
                      (r["example_error"] or "")[:70])  # fmt: skip
        console.print(t)

    media, asr, scenes = summary["media"], summary["asr"], summary["scenes"]
    t = Table(title="Media, ASR, scenes")
    t.add_column("figure")
    t.add_column("value", justify="right")
    for label, value in (
        ("videos", media.get("n_videos")),
        ("hours", media.get("total_hours")),
        ("median duration s", media.get("median_duration_s")),
        ("portrait / landscape", f"{media.get('n_portrait')} / {media.get('n_landscape')}"),
        ("without audio", media.get("n_without_audio")),
        ("variable frame rate", media.get("n_variable_fps")),
        ("transcribed", asr.get("n_transcribed")),
        ("mean ASR coverage", asr.get("mean_coverage")),
        ("mean word score", asr.get("mean_word_score")),
        ("mean segment avg_logprob", asr.get("mean_avg_logprob")),
        ("mean scenes per video", scenes.get("mean_scenes")),
        ("videos without scenes", scenes.get("n_videos_pending")),
    ):
        t.add_row(label, _fmt(value))
    console.print(t)

    dupes = summary["near_duplicates"]
    if dupes["pairs"]:
        t = Table(title=f"Near-duplicate videos (≤ {dupes['max_bits']} bits)")
        for col in ("video a", "video b", "uploader a", "uploader b", "share", "mean bits"):
            t.add_column(col)
        for p in dupes["pairs"][:10]:
            t.add_row(p["video_a"], p["video_b"], _fmt(p["uploader_a"]), _fmt(p["uploader_b"]),
                      _fmt(p["share"], 2), _fmt(p["mean_distance"], 1))  # fmt: skip
        console.print(t)

    runs = summary["leakage"]["runs"]
    if runs:
        t = Table(title="Split leakage per training run")
        cols = ("run_id", "n_train", "n_val", "n_test", "leaking_uploaders",
                "held_out_with_train_uploader", "duplicate_pairs_across", "is_latest")  # fmt: skip
        for col in cols:
            t.add_column(col)
        for r in runs[:10]:
            t.add_row(*(_fmt(r[c]) for c in cols))
        console.print(t)

    queue = summary["queue"]
    if queue["top"]:
        t = Table(title=f"Annotation queue: {queue['n_items']} item(s), first 10")
        for col in ("video_id", "task", "reasons", "votes", "majority share", "confidence"):
            t.add_column(col)
        for q in queue["top"][:10]:
            t.add_row(q["video_id"], _fmt(q["task_id"]), ", ".join(q["reasons"]),
                      _fmt(q["n_votes"]), _fmt(q["majority_share"], 2),
                      _fmt(q["confidence"], 2))  # fmt: skip
        console.print(t)

    for problem in summary["problems"]:
        console.print(f"[yellow]•[/yellow] {problem}")
    if summary.get("report_html"):
        console.print(f"report: {summary['report_html']}")


@flow(name="quality")
def quality_flow(config: str | None = None, overrides: list[str] | None = None) -> dict:
    """Hash new keyframes, compute the quality figures, write the HTML report."""
    logger = get_run_logger()
    settings, _ = load_settings(config, overrides or [])
    wh = Warehouse(settings.data_path)
    summary = quality_report(settings, wh)
    logger.info(
        "quality report: %s (%d problem(s))", summary["report_html"], len(summary["problems"])
    )
    return summary
