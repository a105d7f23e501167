"""`chfen run` (the whole pipeline) and its nodes one at a time: `crawl`, `process`, `embed`,
`quality`. Each shows a progress bar per stage, fed by the flows' progress events."""

from __future__ import annotations

import contextlib
import json
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from flows.cli.runner import app, command, flow_args, state
from flows.cli.show import (
    console,
    print_crawl_summary,
    print_dict,
    print_embed_summary,
    print_process_summary,
    print_train_summary,
)


@contextlib.contextmanager
def progress_for(*stages: str):
    """One rich progress bar per stage, fed by the flows' progress events."""
    from flows.runtime import add_reporter, remove_reporter

    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[last]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        ids = {stage: bar.add_task(stage, total=None, last="", start=False) for stage in stages}

        def on_event(event: str, payload) -> None:
            stage, _, what = event.partition(":")
            tid = ids.get(stage)
            if tid is None:
                return
            if what == "total":
                bar.start_task(tid)
                bar.update(tid, total=payload)
            elif what == "done":
                mark = "[green]ok[/green]" if payload.ok else f"[red]{payload.kind}[/red]"
                bar.update(tid, advance=1, last=f"{payload.video_id} {mark}")

        add_reporter(on_event)
        try:
            yield bar
        finally:
            remove_reporter(on_event)


@command(app, "run", flows=True)
def run(
    label: Annotated[bool, typer.Option(help="Include the Label Studio nodes.")] = True,
    annotators: Annotated[int, typer.Option(help="Simulated annotators (demo only).")] = 3,
) -> None:
    """Run the whole pipeline on the configured sources (default: the local demo site)."""
    from chfen.quality import print_quality
    from flows.pipeline import pipeline_flow
    from warehouse import DataRoot

    settings = state.settings
    console.print(f"[bold]data root[/bold] {settings.data_path}")
    if not settings.sources:
        console.print("source: the local demo short-video site (no sources configured)")
    with progress_for("crawl", "process", "embed"):
        summary = pipeline_flow(**flow_args(), label=label, annotators=annotators)
    print_crawl_summary(summary["crawl"])
    print_process_summary(summary["process"])
    if "label_push" in summary:
        print_dict("Label push", summary["label_push"])
    if "simulation" in summary:
        console.print(
            "[bold yellow]SIMULATION[/bold yellow]: the annotations below were made "
            "by a simulated crew from the demo site's ground truth."
        )
    if "label_pull" in summary:
        pull = dict(summary["label_pull"])
        pull.pop("annotators", None)
        print_dict("Label pull and agreement", pull)
    if "embed" in summary:
        print_embed_summary(summary["embed"])
    if "train" in summary:
        print_train_summary(summary["train"])
    if "quality" in summary:
        print_quality(summary["quality"], console)
    figures = Table(title="Dataset now")
    figures.add_column("")
    figures.add_column("", justify="right")
    for key, value in summary["dataset"].items():
        figures.add_row(key, str(value))
    console.print(figures)
    catalog = DataRoot(settings.data_path).catalog_path()
    console.print(
        f'query it: [bold]chfen sql "SELECT * FROM videos_latest"[/bold] or '
        f"[bold].venv/bin/duckdb {catalog}[/bold]"
    )
    if "labelstudio_url" in summary:
        console.print(
            f"Label Studio UI: [bold]{summary['labelstudio_url']}[/bold] "
            f"(user {settings.labelstudio.username}; `chfen labelstudio stop` stops it)"
        )
    if summary["not_built"]:
        console.print(
            "[yellow]Not built yet, so not run: "
            + "; ".join(f"{k} ({v})" for k, v in summary["not_built"].items())
            + ". No output is faked.[/yellow]"
        )


@command(app, "crawl", flows=True)
def crawl(
    source: Annotated[
        str | None, typer.Option(help="Only this source (by name); default: every enabled one.")
    ] = None,
    retry_failed: Annotated[
        bool,
        typer.Option(
            help="Try pages that failed before again now (all kinds, or those of --kind). "
            "Without it, passing failures (timeout, network, HTTP 5xx) are tried again after "
            "crawl.retry_transient_after_s, and limit failures when the limit changes."
        ),
    ] = False,
    kind: Annotated[
        list[str] | None,
        typer.Option(help="With --retry-failed: only failures of this kind (repeatable)."),
    ] = None,
) -> None:
    """Crawl the configured sources (default: the local demo site) into the warehouse.
    Exit code 1 when a source could not be read (its error is in the summary and in the
    `sources` and `failures` tables)."""
    from chfen.stages import KINDS, StageError
    from flows.crawl import check_source, crawl_flow
    from flows.runtime import UsageError

    if kind and not retry_failed:
        raise UsageError("--kind goes with --retry-failed")
    unknown = sorted(set(kind or ()) - set(KINDS))
    if unknown:
        raise UsageError(f"unknown failure kind(s) {unknown}; kinds: {', '.join(KINDS)}")
    retry = (list(kind) if kind else ["all"]) if retry_failed else None
    check_source(state.settings, source)  # before the flow starts Prefect's embedded server
    with progress_for("crawl"):
        summary = crawl_flow(**flow_args(), source=source, retry_failed=retry)
    print_crawl_summary(summary)
    if summary["source_errors"]:
        n = len(summary["source_errors"])
        raise StageError(
            "sources", "crawl", f"{n} source(s) could not be read (see above); the others ran"
        )


@command(app, "process", flows=True)
def process(
    limit: Annotated[int | None, typer.Option(help="At most this many videos per stage.")] = None,
    retry_failed: Annotated[bool, typer.Option(help="Also retry videos that failed.")] = False,
) -> None:
    """Scenes (PySceneDetect) and speech with word timings (whisper) for pending videos."""
    from flows.process import process_flow

    with progress_for("process"):
        summary = process_flow(**flow_args(), limit=limit, retry_failed=retry_failed)
    print_process_summary(summary)


@command(app, "embed", flows=True)
def embed(
    limit: Annotated[int | None, typer.Option(help="At most this many videos.")] = None,
    retry_failed: Annotated[bool, typer.Option(help="Also retry videos that failed.")] = False,
) -> None:
    """Multimodal embeddings on the shared time grid for videos with scenes and ASR done."""
    from flows.embed import embed_flow

    with progress_for("embed"):
        summary = embed_flow(**flow_args(), limit=limit, retry_failed=retry_failed)
    print_embed_summary(summary)


@command(app, "quality", flows=True)
def quality(
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Dataset quality: key figures as tables, an HTML report with plots, or JSON."""
    from chfen.quality import print_quality
    from flows.quality import quality_flow

    summary = quality_flow(**flow_args())
    if as_json:
        print(json.dumps(summary, indent=2, default=str))
        return
    print_quality(summary, console)
