"""The `chfen` command line (Typer). A command here either works or is not listed.

Global options come first: `chfen [--config FILE] [--set key=value ...] COMMAND`.
"""

from __future__ import annotations

import contextlib
import csv
import importlib
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from chfen.config import ConfigError, Settings, flatten, load_settings, origin_of

app = typer.Typer(
    name="chfen",
    help="Short-video affective computing: crawl, process, label, embed, train.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect the resolved configuration.", no_args_is_help=True)
warehouse_app = typer.Typer(help="Maintain the Parquet/DuckDB warehouse.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(warehouse_app, name="warehouse")
labelstudio_app = typer.Typer(help="The local Label Studio server.", no_args_is_help=True)
label_app = typer.Typer(
    help="Push tasks to and pull annotations from Label Studio.", no_args_is_help=True
)
demo_app = typer.Typer(help="Demo helpers (clearly marked simulations).", no_args_is_help=True)
app.add_typer(labelstudio_app, name="labelstudio")
app.add_typer(label_app, name="label")
app.add_typer(demo_app, name="demo")
train_app = typer.Typer(
    help="Train CHFEN on cached embeddings (no subcommand: one run).",
    invoke_without_command=True,
)
app.add_typer(train_app, name="train")
prefect_app = typer.Typer(
    help="The local Prefect server (UI and API) for this data root.", no_args_is_help=True
)
app.add_typer(prefect_app, name="prefect")

console = Console()
err_console = Console(stderr=True)


class _State:
    config: Path | None = None
    overrides: list[str] = []
    _loaded: tuple[Settings, dict] | None = None

    def load(self) -> tuple[Settings, dict]:
        if self._loaded is None:
            try:
                self._loaded = load_settings(self.config, self.overrides)
            except ConfigError as exc:
                err_console.print(f"[red]config error:[/red] {exc}")
                raise typer.Exit(2) from None
        return self._loaded

    @property
    def settings(self) -> Settings:
        return self.load()[0]


state = _State()


@app.callback()
def main(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="YAML config file (default: $CHFEN_CONFIG, ./chfen.yaml, or the shipped one).",
            dir_okay=False,
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", "-s", help="Override one setting: section.key=value (repeatable)."),
    ] = None,
) -> None:
    state.config = config
    state.overrides = list(set_ or [])
    state._loaded = None


def open_warehouse(settings: Settings | None = None):
    from warehouse import Warehouse

    settings = settings or state.settings
    return Warehouse(settings.data_path)


# ---- config -------------------------------------------------------------------------------


@config_app.command("show")
def config_show(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the resolved config as JSON.")
    ] = False,
) -> None:
    """Print the resolved config and where each value came from (secrets masked)."""
    settings, prov = state.load()
    if as_json:
        print(json.dumps(settings.model_dump(mode="json"), indent=2))
        return
    table = Table(title="Resolved configuration", show_lines=False)
    table.add_column("setting", style="cyan", no_wrap=True)
    table.add_column("value")
    table.add_column("from", style="dim")
    for key, value in flatten(settings).items():
        origin = _short(origin_of(key, prov))
        style = "" if origin == "default" else "bold"
        table.add_row(key, f"[{style}]{value!s}[/{style}]" if style else str(value), origin)
    if not settings.sources:
        table.add_row("sources", "[] (the local demo site)", origin_of("sources", prov))
    console.print(table)


def _short(origin: str) -> str:
    """'file:/abs/path/x.yaml' -> 'file:x.yaml' relative to the working dir when possible."""
    if not origin.startswith("file:"):
        return origin
    path = Path(origin[len("file:") :])
    try:
        return f"file:{path.relative_to(Path.cwd())}"
    except ValueError:
        return f"file:{path.name}" if path.parent.name == "configs" else origin


# ---- sql ----------------------------------------------------------------------------------


@app.command("sql")
def sql(
    query: Annotated[str, typer.Argument(help="DuckDB SQL over the warehouse tables.")],
    as_csv: Annotated[bool, typer.Option("--csv", help="Write CSV to stdout.")] = False,
    limit: Annotated[int, typer.Option(help="Rows shown in the table view.")] = 50,
) -> None:
    """Query the warehouse with DuckDB SQL (tables and their *_latest views)."""
    from warehouse import WarehouseError

    try:
        result = open_warehouse().query(query)
    except WarehouseError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    if as_csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(result.column_names)
        for row in result.to_pylist():
            writer.writerow(row[c] for c in result.column_names)
        return
    table = Table(show_lines=False)
    for name in result.column_names:
        table.add_column(name)
    for row in result.slice(0, limit).to_pylist():
        table.add_row(*("NULL" if v is None else str(v) for v in row.values()))
    console.print(table)
    more = result.num_rows - min(limit, result.num_rows)
    console.print(f"[dim]{result.num_rows} row(s){f', {more} not shown' if more else ''}[/dim]")


# ---- warehouse ----------------------------------------------------------------------------


@warehouse_app.command("compact")
def warehouse_compact(
    tables: Annotated[list[str] | None, typer.Argument(help="Tables (default: all).")] = None,
) -> None:
    """Merge each table's small Parquet files; readers never see missing or doubled rows."""
    from warehouse import TABLES

    wh = open_warehouse()
    names = tables or list(TABLES)
    unknown = [t for t in names if t not in TABLES]
    if unknown:
        err_console.print(f"[red]unknown table(s): {', '.join(unknown)}[/red]")
        raise typer.Exit(2)
    out = Table(title="Compaction")
    for col in ("table", "files removed", "files added", "version"):
        out.add_column(col)
    for name in names:
        metrics = wh.compact(name)
        out.add_row(
            name,
            str(metrics.get("numFilesRemoved", 0)),
            str(metrics.get("numFilesAdded", 0)),
            str(metrics["version"]),
        )
    console.print(out)


@warehouse_app.command("info")
def warehouse_info() -> None:
    """Rows, files and Delta version of every table, and where the duckdb catalog is."""
    from warehouse import TABLES

    wh = open_warehouse()
    out = Table(title=f"Warehouse at {wh.root.url}")
    for col in ("table", "rows", "files", "version"):
        out.add_column(col)
    for name in TABLES:
        version, files = wh.live_files(name)
        out.add_row(name, str(wh.count(name)), str(len(files)), str(version))
    console.print(out)
    console.print(f"duckdb shell: [bold]duckdb {wh.root.catalog_path()}[/bold]")


def print_process_summary(summary: dict) -> None:
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
    console.print(table)
    for name, st in summary.items():
        for f in st["failures"]:
            console.print(f"  [red]✗[/red] [{name}] {f['video_id']}: {f['reason']}")


@app.command("process")
def process(
    limit: Annotated[int | None, typer.Option(help="At most this many videos per stage.")] = None,
    retry_failed: Annotated[bool, typer.Option(help="Also retry videos that failed.")] = False,
) -> None:
    """Scenes (PySceneDetect) and speech with word timings (whisper) for pending videos."""
    from flows import runtime

    runtime.configure(state.settings)
    from flows.process import process_flow

    with progress_for("process"):
        summary = process_flow(**_flow_args(), limit=limit, retry_failed=retry_failed)
    print_process_summary(summary)


def print_embed_summary(summary: dict) -> None:
    table = Table(title=f"Embed ({summary['version']})")
    table.add_column("modality")
    table.add_column("new vectors", justify="right")
    for modality, n in sorted(summary["vectors"].items()):
        table.add_row(modality, str(n))
    console.print(table)
    console.print(
        f"{summary['done']} video(s) embedded, {summary['failed']} failed, "
        f"{summary['seconds_per_video'] or '-'} s/video"
    )
    for f in summary["failures"]:
        console.print(f"  [red]✗[/red] {f['video_id']}: {f['reason']}")


@app.command("embed")
def embed(
    limit: Annotated[int | None, typer.Option(help="At most this many videos.")] = None,
    retry_failed: Annotated[bool, typer.Option(help="Also retry videos that failed.")] = False,
) -> None:
    """Multimodal embeddings on the shared time grid for videos with scenes and ASR done."""
    from flows import runtime

    runtime.configure(state.settings)
    from flows.embed import embed_flow

    with progress_for("embed"):
        summary = embed_flow(**_flow_args(), limit=limit, retry_failed=retry_failed)
    print_embed_summary(summary)


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


def print_train_summary(summary: dict) -> None:
    """CHFEN, majority, the best baseline and the other baselines with 95 % intervals, then
    the verdict of CHFEN against the best baseline (`chfen train` and `chfen run`)."""
    if "skipped" in summary:
        console.print(f"[yellow]train skipped:[/yellow] {summary['skipped']}")
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
    console.print(table)
    if comparison:
        style = {"above": "green", "below": "red"}.get(comparison.get("outcome"), "yellow")
        console.print(f"[bold {style}]{comparison['verdict']}[/bold {style}]")
        if comparison.get("note"):
            console.print(f"[yellow]{comparison['note']}[/yellow]")
    accuracy = summary.get("accuracy")
    console.print(
        (f"CHFEN accuracy {accuracy:.3f}; " if isinstance(accuracy, float) else "")
        + f"train/val/test videos {summary['n_train']}/{summary['n_val']}/{summary['n_test']}"
    )
    if summary.get("report"):
        console.print(f"report: [bold]{summary['report']}[/bold]")


def _with_local(config: Path | None, set_: list[str] | None) -> None:
    """`chfen train --config X --set k=v` also works (after the command name)."""
    if config is not None:
        state.config = config
        state._loaded = None
    if set_:
        state.overrides = [*state.overrides, *set_]
        state._loaded = None


@train_app.callback()
def train(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML config file.", dir_okay=False)
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", "-s", help="Override a setting (repeatable).")
    ] = None,
) -> None:
    """Train CHFEN once with the resolved `train` settings; see also `train ablations`."""
    _with_local(config, set_)
    if ctx.invoked_subcommand is not None:
        return
    from flows import runtime

    runtime.configure(state.settings)
    from flows.train import train_flow

    args = _flow_args()
    try:
        summary = train_flow(settings_file=args["config"], overrides=args["overrides"])
    except ValueError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    print_train_summary(summary)


@train_app.command("ablations")
def train_ablations() -> None:
    """Run the seed's ablation list on one dataset and split; print and save one table."""
    from flows import runtime

    runtime.configure(state.settings)
    from flows.train import ablations_flow

    args = _flow_args()
    result = ablations_flow(settings_file=args["config"], overrides=args["overrides"])
    console.print(result["markdown"])
    console.print(f"table: [bold]{result['path']}[/bold]")


@app.command("predict")
def predict(
    run_id: Annotated[str | None, typer.Option(help="Training run (default: latest).")] = None,
) -> None:
    """Predict emotions for unlabeled videos (stored in `predictions`; used as pre-annotations)."""
    from flows import runtime

    runtime.configure(state.settings)
    from flows.train import predict_flow

    args = _flow_args()
    preds = predict_flow(settings_file=args["config"], overrides=args["overrides"], run_id=run_id)
    table = Table(title=f"Predictions for {len(preds)} unlabeled video(s)")
    for col in ("video", "label", "score", "model"):
        table.add_column(col)
    for video_id, (label, score, version) in sorted(preds.items()):
        table.add_row(video_id, label, f"{score:.2f}", version)
    console.print(table)


@app.command("quality")
def quality(
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Dataset quality: key figures as tables, an HTML report with plots, or JSON."""
    from flows import runtime

    runtime.configure(state.settings)
    from flows.quality import print_quality, quality_flow

    summary = quality_flow(**_flow_args())
    if as_json:
        print(json.dumps(summary, indent=2, default=str))
        return
    print_quality(summary, console)


# ---- the demo site ------------------------------------------------------------------------


@app.command("demo-site")
def demo_site(
    port: Annotated[int | None, typer.Option(help="Port (default: demo_site.port).")] = None,
) -> None:
    """Generate the local demo short-video site and serve it until Ctrl-C."""
    from chfen.demo import resolve_cache_dir, run_demo_site

    settings = state.settings
    cfg = (
        settings.demo_site if port is None else settings.demo_site.model_copy(update={"port": port})
    )
    run_demo_site(cfg, resolve_cache_dir(cfg, settings.data_path))


# ---- stages -------------------------------------------------------------------------------


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


def _flow_args() -> dict:
    return {
        "config": str(state.config) if state.config else None,
        "overrides": list(state.overrides),
    }


def print_crawl_summary(summary: dict) -> None:
    table = Table(title="Crawl")
    table.add_column("result")
    table.add_column("videos", justify="right")
    table.add_row("downloaded and verified", str(summary["downloaded"]))
    table.add_row("already in the warehouse", str(summary["already_known"]))
    for kind, n in sorted(summary["failed_by_kind"].items()):
        table.add_row(f"failed: {kind}", str(n))
    console.print(table)
    for failure in summary["failures"]:
        console.print(f"  [red]✗[/red] {failure['video_id']}: {failure['reason']}")
    for err in summary["source_errors"]:
        console.print(f"  [red]source failed[/red] {err}")


@app.command("crawl")
def crawl(
    source: Annotated[
        str | None, typer.Option(help="Only this source (by name); default: every enabled one.")
    ] = None,
) -> None:
    """Crawl the configured sources (default: the local demo site) into the warehouse."""
    from flows import runtime

    runtime.configure(state.settings)
    from flows.crawl import crawl_flow

    with progress_for("crawl"):
        try:
            summary = crawl_flow(**_flow_args(), source=source)
        except ValueError as exc:
            err_console.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None
    print_crawl_summary(summary)


# ---- Label Studio -------------------------------------------------------------------------


def _labelstudio(action: str) -> None:
    from labeling.server import cli as server_cli

    code = server_cli(action, state.settings, print_fn=console.print)
    raise typer.Exit(code)


@labelstudio_app.command("start")
def labelstudio_start() -> None:
    """Install (once, into its own venv) and start Label Studio on 127.0.0.1."""
    _labelstudio("start")


@labelstudio_app.command("stop")
def labelstudio_stop() -> None:
    """Stop the local Label Studio server."""
    _labelstudio("stop")


@labelstudio_app.command("status")
def labelstudio_status() -> None:
    """Is the local Label Studio server running and healthy?"""
    _labelstudio("status")


def _run_flow(module_name: str, name: str, **kwargs):
    """Run a flow of flows/ with the CLI's config; Label Studio errors become clear exits."""
    from flows import runtime

    runtime.configure(state.settings)
    from labeling.server import LabelStudioError

    module = importlib.import_module(f"flows.{module_name}")
    try:
        return getattr(module, name)(**_flow_args(), **kwargs)
    except (LabelStudioError, ValueError) as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


def _print_dict(title: str, data: dict) -> None:
    table = Table(title=title)
    table.add_column("")
    table.add_column("", justify="right")
    for key, value in data.items():
        if isinstance(value, float):
            value = f"{value:.3f}"
        if not isinstance(value, list | dict) or value:
            table.add_row(key, str(value))
    console.print(table)


@label_app.command("push")
def label_push() -> None:
    """Push tasks for processed videos that are not in Label Studio yet."""
    _print_dict("Label push", _run_flow("label", "label_push_flow"))


@label_app.command("pull")
def label_pull() -> None:
    """Pull new, changed and deleted annotations into the warehouse; show agreement."""
    summary = _run_flow("label", "label_pull_flow")
    annotators = summary.pop("annotators")
    _print_dict("Label pull", summary)
    if annotators:
        table = Table(title="Annotators (alpha_delta < 0: agreement drops with them)")
        for col in ("annotator", "items", "alpha_delta", "agrees with others"):
            table.add_column(col)
        for a in annotators:
            fmt = lambda x: "-" if x is None else f"{x:.3f}"  # noqa: E731
            table.add_row(
                a["annotator"],
                str(a["items"]),
                fmt(a["alpha_delta"]),
                fmt(a["agreement_with_others"]),
            )
        console.print(table)


@demo_app.command("annotate")
def demo_annotate(
    annotators: Annotated[int, typer.Option(min=1, help="Simulated annotators.")] = 3,
) -> None:
    """SIMULATION: label the demo site's tasks from its ground truth, with noise."""
    console.print(
        "[bold yellow]SIMULATION[/bold yellow]: these annotations are generated from "
        "the demo site's ground truth, not made by people."
    )
    _print_dict(
        "Simulated annotation", _run_flow("label", "demo_annotate_flow", annotators=annotators)
    )


# ---- Prefect server and deployments -------------------------------------------------------


def _prefect_server(action: str) -> None:
    from flows import server

    settings = state.settings
    try:
        if action == "start":
            st = server.start(settings, log=console.print)
            what = "started" if st.started else "already running"
            console.print(f"Prefect server {what}: UI {st.url}  API {st.api_url} (pid {st.pid})")
            console.print(f"  data {st.home}\n  log  {st.log_file}")
        elif action == "stop":
            stopped = server.stop(settings)
            console.print("Prefect server stopped" if stopped else "Prefect server was not running")
        else:
            st = server.status(settings)
            word = (
                "healthy" if st.healthy else "running, not answering" if st.running else "stopped"
            )
            console.print(
                f"Prefect server: {word} at {st.url}" + (f" (pid {st.pid})" if st.pid else "")
            )
            console.print(f"  data {st.home}\n  log  {st.log_file}")
            if st.running and not st.healthy:
                raise typer.Exit(1)
    except server.PrefectServerError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


@prefect_app.command("start")
def prefect_start() -> None:
    """Start the local Prefect server on 127.0.0.1 (data under <data_root>/prefect)."""
    _prefect_server("start")


@prefect_app.command("stop")
def prefect_stop() -> None:
    """Stop the local Prefect server."""
    _prefect_server("stop")


@prefect_app.command("status")
def prefect_status() -> None:
    """Is the local Prefect server running and healthy?"""
    _prefect_server("status")


@app.command("serve")
def serve(
    limit: Annotated[
        int | None, typer.Option(min=1, help="Flow runs at once (default: no limit).")
    ] = None,
) -> None:
    """Register and serve the deployments (ingest on a cron, label sync, embed, train with its
    TrainConfig form, retraining on new agreed labels) until Ctrl-C.

    Uses prefect.api_url or $PREFECT_API_URL; otherwise starts this data root's local server.
    """
    from flows import runtime, server

    settings = state.settings
    runtime.configure(settings)
    if runtime.api_url() is None:
        try:
            st = server.start(settings, log=console.print)
        except server.PrefectServerError as exc:
            err_console.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from None
        import os

        os.environ["PREFECT_API_URL"] = st.api_url
    api = runtime.api_url() or ""
    from chfen.config import default_config_path
    from flows.deployments import serve as serve_deployments

    # Pinned as an absolute path: served runs may start in another working folder.
    config = str((state.config or default_config_path()).resolve())
    overrides = list(state.overrides)
    ui = api.removesuffix("/api")
    table = Table(title=f"Serving deployments against {api}")
    for col in ("deployment", "schedule / trigger"):
        table.add_column(col)
    p = settings.prefect
    table.add_row("ingest/ingest", f"cron {p.crawl_cron}")
    table.add_row("label_sync/label-sync", f"every {p.label_sync_minutes} min")
    table.add_row("embed/embed", "on demand")
    table.add_row(
        "train/train",
        "on demand (TrainConfig form); automation: "
        f">= {p.retrain_min_new_labels} new agreed labels",
    )
    console.print(table)
    console.print(f"Prefect UI: [bold]{ui}[/bold]  (Ctrl-C stops serving)")
    serve_deployments(settings, config, overrides, limit=limit)


# ---- run: the main job -------------------------------------------------------------------


@app.command("run")
def run(
    label: Annotated[bool, typer.Option(help="Include the Label Studio nodes.")] = True,
    annotators: Annotated[int, typer.Option(help="Simulated annotators (demo only).")] = 3,
) -> None:
    """Run the whole pipeline on the configured sources (default: the local demo site)."""
    from flows import runtime

    settings = state.settings
    runtime.configure(settings)
    from flows.pipeline import pipeline_flow
    from labeling.server import LabelStudioError

    console.print(f"[bold]data root[/bold] {settings.data_path}")
    if not settings.sources:
        console.print("source: the local demo short-video site (no sources configured)")
    try:
        with progress_for("crawl", "process", "embed"):
            summary = pipeline_flow(**_flow_args(), label=label, annotators=annotators)
    except LabelStudioError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    print_crawl_summary(summary["crawl"])
    print_process_summary(summary["process"])
    if "label_push" in summary:
        _print_dict("Label push", summary["label_push"])
    if "simulation" in summary:
        console.print(
            "[bold yellow]SIMULATION[/bold yellow]: the annotations below were made "
            "by a simulated crew from the demo site's ground truth."
        )
    if "label_pull" in summary:
        pull = dict(summary["label_pull"])
        pull.pop("annotators", None)
        _print_dict("Label pull and agreement", pull)
    if "embed" in summary:
        print_embed_summary(summary["embed"])
    if "train" in summary:
        print_train_summary(summary["train"])
    if "quality" in summary:
        from flows.quality import print_quality

        print_quality(summary["quality"], console)
    figures = Table(title="Dataset now")
    figures.add_column("")
    figures.add_column("", justify="right")
    for key, value in summary["dataset"].items():
        figures.add_row(key, str(value))
    console.print(figures)
    wh_path = settings.data_path / "warehouse.duckdb"
    console.print(
        f'query it: [bold]chfen sql "SELECT * FROM videos_latest"[/bold] or '
        f"[bold].venv/bin/duckdb {wh_path}[/bold]"
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


if __name__ == "__main__":  # pragma: no cover
    app()
