"""How `chfen` shows results: the consoles and one rich table per kind of flow summary.

Each `print_*` writes to `out`, by default this module's `console` (stdout); errors go to
`err_console` (stderr). The quality report's tables are the library's
(`chfen.quality.print_quality`).
"""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


def print_dict(title: str, data: dict, out: Console | None = None) -> None:
    """A flow's flat summary as a two-column table (empty lists and dicts left out)."""
    table = Table(title=title)
    table.add_column("")
    table.add_column("", justify="right")
    for key, value in data.items():
        if isinstance(value, float):
            value = f"{value:.3f}"
        if not isinstance(value, list | dict) or value:
            table.add_row(key, str(value))
    (out or console).print(table)


def print_crawl_summary(summary: dict, out: Console | None = None) -> None:
    out = out or console
    table = Table(title="Crawl")
    table.add_column("result")
    table.add_column("videos", justify="right")
    table.add_row("downloaded and verified", str(summary["downloaded"]))
    table.add_row("already in the warehouse", str(summary["already_known"]))
    if summary.get("failed_before"):
        table.add_row("failed before, not due again", str(summary["failed_before"]))
    for kind, n in sorted(summary["failed_by_kind"].items()):
        table.add_row(f"failed: {kind}", str(n))
    if summary.get("retried"):
        # not an outcome of its own: these pages are in the downloaded and failed rows above
        table.add_row("of these, failed before and tried again", str(summary["retried"]))
    for name, counts in summary.get("imported", {}).items():
        table.add_row(
            f"imported from {name} (new + changed)", str(counts["new"] + counts["changed"])
        )
    out.print(table)
    for failure in summary["failures"]:
        out.print(f"  [red]✗[/red] {failure['video_id']}: {failure['reason']}")
    for err in summary["source_errors"]:
        out.print(f"  [red]source failed[/red] {err}")


def print_process_summary(summary: dict, out: Console | None = None) -> None:
    out = out or console
    table = Table(title="Process")
    for col in ("stage", "done", "failed", "rows", "s/video", "notes"):
        table.add_column(col)
    for name, st in summary.items():
        rows = ", ".join(f"{t}: {n}" for t, n in st["rows"].items())
        notes = ", ".join(f"{k}: {n}" for k, n in st["notes"].items())
        table.add_row(
            name,
            str(st["done"]),
            str(st["failed"]),
            rows,
            str(st["seconds_per_video"] or "-"),
            notes,
        )
    out.print(table)
    for name, st in summary.items():
        for f in st["failures"]:
            out.print(f"  [red]✗[/red] [{name}] {f['video_id']}: {f['reason']}")


def print_embed_summary(summary: dict, out: Console | None = None) -> None:
    out = out or console
    table = Table(title=f"Embed ({summary['version']})")
    table.add_column("modality")
    table.add_column("new vectors", justify="right")
    for modality, n in sorted(summary["vectors"].items()):
        table.add_row(modality, str(n))
    out.print(table)
    out.print(
        f"{summary['done']} video(s) embedded, {summary['failed']} failed, "
        f"{summary['seconds_per_video'] or '-'} s/video"
    )
    for f in summary["failures"]:
        out.print(f"  [red]✗[/red] {f['video_id']}: {f['reason']}")


def _score_cell(value: object, ci: object, signed: bool = False) -> str:
    """ "0.69 [0.47–0.93]", or "-0.10 [-0.36,+0.15]" for a difference; "-" without a value."""
    if not isinstance(value, float):
        return "-"
    fmt = "{:+.2f}" if signed else "{:.2f}"
    text = fmt.format(value)
    if isinstance(ci, list | tuple) and len(ci) == 2:
        sep = "," if signed else "–"  # a dash between signed numbers reads as a minus
        text += f" [{fmt.format(ci[0])}{sep}{fmt.format(ci[1])}]"
    return text


def print_train_summary(summary: dict, out: Console | None = None) -> None:
    """CHFEN, majority, the best baseline and the other baselines with 95 % intervals, then
    the verdict of CHFEN against the best baseline (`chfen train` and `chfen run`)."""
    out = out or console
    if "skipped" in summary:
        out.print(f"[yellow]train skipped:[/yellow] {summary['skipped']}")
        return
    comparison = summary.get("comparison") or {}
    best = comparison.get("best_baseline")
    versus = comparison.get("versus") or {}
    scores = summary.get("scores") or {"CHFEN": summary}
    order = ["CHFEN", *(["majority"] if "majority" in scores else [])]
    order += [k for k in (best,) if k and k not in order]
    order += [k for k in scores if k not in order]
    table = Table(
        title=f"CHFEN run {summary['run_id']}: test split, 95 % bootstrap intervals",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        caption="* the best baseline; CHFEN − model: paired difference in weighted F1",
    )
    table.add_column("model", no_wrap=True)
    table.add_column("weighted F1", justify="right", no_wrap=True)
    table.add_column("macro F1", justify="right", no_wrap=True)
    table.add_column("CHFEN − model", justify="right", no_wrap=True)
    for name in order:
        row = scores[name]
        diff = versus.get(name, {}).get("weighted_f1", {})
        table.add_row(
            name + (" *" if name == best else ""),
            _score_cell(row.get("weighted_f1"), row.get("weighted_f1_ci")),
            _score_cell(row.get("macro_f1"), row.get("macro_f1_ci")),
            _score_cell(diff.get("difference"), diff.get("ci"), signed=True),
        )
    out.print(table)
    if comparison:
        style = {"above": "green", "below": "red"}.get(comparison.get("outcome"), "yellow")
        out.print(f"[bold {style}]{comparison['verdict']}[/bold {style}]")
        if comparison.get("note"):
            out.print(f"[yellow]{comparison['note']}[/yellow]")
    accuracy = summary.get("accuracy")
    out.print(
        (f"CHFEN accuracy {accuracy:.3f}; " if isinstance(accuracy, float) else "")
        + f"train/val/test videos {summary['n_train']}/{summary['n_val']}/{summary['n_test']}"
    )
    if summary.get("report"):
        out.print(f"report: [bold]{summary['report']}[/bold]")
