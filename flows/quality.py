"""The `quality` flow: hash new keyframes, compute the dataset quality figures and write the
HTML report (the report itself: chfen/quality)."""

from __future__ import annotations

from prefect import flow, get_run_logger

from chfen.quality import quality_report
from flows.runtime import ResolvedSettings, resolve_settings
from warehouse import Warehouse


@flow(name="quality")
def quality_flow(
    settings_file: str | None = None,
    overrides: list[str] | None = None,
    settings: ResolvedSettings = None,
) -> dict:
    """Hash new keyframes, compute the quality figures, write the HTML report."""
    logger = get_run_logger()
    settings = resolve_settings(settings, settings_file, overrides)
    summary = quality_report(settings, Warehouse(settings.data_path))
    logger.info(
        "quality report: %s (%d problem(s))", summary["report_html"], len(summary["problems"])
    )
    return summary
