"""The dataset quality report: figures from the warehouse's `quality_*` views
(warehouse/quality.py), what needs attention in words, PNG plots and an HTML page.

- `quality_report(settings, wh, out_dir=None) -> dict` (report.py) hashes keyframes that lack
  a hash, computes every figure (figures.py), writes the page (page.py) with its plots
  (plots.py) and returns a JSON-able summary; `problems` lists what needs attention;
- `print_quality(summary, console)` (console.py) prints the key figures as rich tables.

Thresholds are settings (`quality.*`, `chfen.config.QualityConfig`). The Prefect flow around
the report is `flows.quality.quality_flow`.
"""

from chfen.quality.console import print_quality
from chfen.quality.figures import collect_figures, find_problems
from chfen.quality.page import render_html
from chfen.quality.plots import draw_plots
from chfen.quality.report import INDEX_HTML, LATEST, SUMMARY_JSON, quality_report

__all__ = [
    "INDEX_HTML",
    "LATEST",
    "SUMMARY_JSON",
    "collect_figures",
    "draw_plots",
    "find_problems",
    "print_quality",
    "quality_report",
    "render_html",
]
