"""The dataset quality report as files: `quality_report` computes the figures
(chfen/quality/figures.py), draws the plots while the rest is computed (plots.py), and writes
`index.html` (page.py) and `summary.json` under <data_root>/reports/quality-<UTC timestamp>/.

`reports/quality-latest` is a symlink to the newest report (a copy where links fail).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from chfen.config import Settings
from chfen.media.keyframe_hash import fill_keyframe_hashes
from chfen.quality.figures import collect_figures
from chfen.quality.page import render_html
from chfen.quality.plots import draw_plots
from warehouse import Warehouse
from warehouse.quality import catalog_is_current

LATEST = "quality-latest"
INDEX_HTML = "index.html"
SUMMARY_JSON = "summary.json"


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


def quality_report(
    settings: Settings,
    wh: Warehouse,
    out_dir: Path | None = None,
    *,
    fill_hashes: bool = True,
    write: bool = True,
) -> dict[str, Any]:
    """Compute the quality figures, write the HTML report with plots, return a JSON-able dict.

    The report goes to `out_dir`, by default <data_root>/reports/quality-<UTC timestamp>/
    (and `reports/quality-latest` then points at it). Its thresholds are `settings.quality`;
    the queue's vote thresholds are the training set's (`train.min_votes`,
    `train.min_agreement`). `fill_hashes` first hashes keyframes that lack a hash (local data
    roots only); `write=False` skips the files.
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
                drawn.append(pool.submit(draw_plots, figures, out_dir))

            def figures(stop_if_unhashed: bool) -> dict[str, Any] | None:
                return collect_figures(
                    con,
                    settings.quality,
                    min_votes=settings.train.min_votes,
                    min_agreement=settings.train.min_agreement,
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
