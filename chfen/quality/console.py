"""The quality report's key figures as rich tables (`chfen quality`, `chfen run`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table

from chfen.quality.figures import fmt


def print_quality(summary: Mapping[str, Any], console: Console) -> None:
    """The key figures of a `quality_report` summary as rich tables."""
    agreement = summary["agreement"]
    counts = Table(title="Dataset quality")
    counts.add_column("figure")
    counts.add_column("value", justify="right")
    for key, value in summary["counts"].items():
        counts.add_row(key, fmt(value))
    for p in agreement["projects"]:
        counts.add_row(f"alpha (project {p['project_id']})", fmt(p["alpha"]))
    counts.add_row("near-duplicate pairs", fmt(summary["near_duplicates"]["n_pairs"]))
    counts.add_row("items needing annotation", fmt(summary["queue"]["n_items"]))
    console.print(counts)

    if agreement["annotators"]:
        t = Table(title="Annotators, lowest ranked first (alpha_delta < 0: better without them)")
        for col in ("project", "rank", "annotator", "items", "alpha_delta", "pairwise",
                    "agrees w/ others", "median lead s"):  # fmt: skip
            t.add_column(col, justify="left" if col == "annotator" else "right")
        for a in agreement["annotators"][:20]:
            t.add_row(
                fmt(a["project_id"]), fmt(a["rank"]), a["annotator"], fmt(a["n_items"]),
                fmt(a["alpha_delta"]), fmt(a["pairwise_agreement"]),
                fmt(a["agreement_with_others"]), fmt(a["median_lead_time_s"], 1),
            )  # fmt: skip
        console.print(t)

    if summary["labels"]:
        t = Table(title="Labels")
        for col in ("label", "votes", "share", "majority items"):
            t.add_column(col, justify="left" if col == "label" else "right")
        for r in summary["labels"]:
            t.add_row(r["label"], fmt(r["n_votes"]), fmt(r["vote_share"]),
                      fmt(r["n_majority_items"]))  # fmt: skip
        console.print(t)

    if summary["sources"]:
        t = Table(title="Per-source yield")
        cols = ("source", "discovered", "downloaded", "failed", "with_scenes", "with_asr",
                "labelled")  # fmt: skip
        for col in cols:
            t.add_column(col, justify="left" if col == "source" else "right")
        for r in summary["sources"][:20]:
            t.add_row(*(fmt(r[c]) for c in cols))
        console.print(t)
    languages = summary["asr"].get("languages") or []
    if languages:
        t = Table(title="Spoken languages per source")
        cols = ("source", "language", "n_videos", "n_segments", "speech_s", "speech_share")
        for col in cols:
            t.add_column(col, justify="left" if col in ("source", "language") else "right")
        for r in languages[:20]:
            t.add_row(*(fmt(r[c]) for c in cols))
        console.print(t)
    if summary["failures"]:
        t = Table(title="Failures by reason")
        for col in ("source", "stage", "kind", "videos", "example"):
            t.add_column(col, justify="right" if col == "videos" else "left")
        for r in summary["failures"][:20]:
            t.add_row(fmt(r["source"]), r["stage"], r["error_kind"], fmt(r["n_videos"]),
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
        t.add_row(label, fmt(value))
    console.print(t)

    dupes = summary["near_duplicates"]
    if dupes["pairs"]:
        t = Table(title=f"Near-duplicate videos (≤ {dupes['max_bits']} bits)")
        for col in ("video a", "video b", "uploader a", "uploader b", "share", "mean bits"):
            t.add_column(col)
        for p in dupes["pairs"][:10]:
            t.add_row(p["video_a"], p["video_b"], fmt(p["uploader_a"]), fmt(p["uploader_b"]),
                      fmt(p["share"], 2), fmt(p["mean_distance"], 1))  # fmt: skip
        console.print(t)

    runs = summary["leakage"]["runs"]
    if runs:
        t = Table(title="Split leakage per training run")
        cols = ("run_id", "n_train", "n_val", "n_test", "leaking_uploaders",
                "held_out_with_train_uploader", "duplicate_pairs_across", "is_latest")  # fmt: skip
        for col in cols:
            t.add_column(col)
        for r in runs[:10]:
            t.add_row(*(fmt(r[c]) for c in cols))
        console.print(t)

    queue = summary["queue"]
    if queue["top"]:
        t = Table(title=f"Annotation queue: {queue['n_items']} item(s), first 10")
        for col in ("video_id", "task", "reasons", "votes", "majority share", "confidence"):
            t.add_column(col)
        for q in queue["top"][:10]:
            t.add_row(q["video_id"], fmt(q["task_id"]), ", ".join(q["reasons"]),
                      fmt(q["n_votes"]), fmt(q["majority_share"], 2),
                      fmt(q["confidence"], 2))  # fmt: skip
        console.print(t)

    for problem in summary["problems"]:
        console.print(f"[yellow]•[/yellow] {problem}")
    if summary.get("report_html"):
        console.print(f"report: {summary['report_html']}")
