"""PNG plots of the quality report's figures (matplotlib, no pyplot state)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from chfen.domain.labels import CHOICES

ALL_LABELS = CHOICES


def draw_plots(fig: Mapping[str, Any], out: Path) -> dict[str, str]:
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
