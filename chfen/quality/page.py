"""The quality report's HTML page: every figure as a table, the plots beside it as files."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from chfen.quality.figures import MAX_LISTED, fmt

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


def _table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    if not rows:
        return "<p class='none'>none</p>"
    columns = list(columns or rows[0].keys())
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(fmt(r.get(c)))}</td>" for c in columns) + "</tr>"
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
        ("Spoken languages per source", _table(fig["asr"]["languages"])),
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
