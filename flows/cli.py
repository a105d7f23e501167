"""The `chfen` command line (Typer). A command here either works or is not listed.

Global options come first: `chfen [--config FILE] [--set key=value ...] COMMAND`.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
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


# ---- run: the main job -------------------------------------------------------------------

# The pipeline's nodes in DAG order, and the issue that builds each one. `run` runs what is
# built and names what is not, so the README's main command never pretends.
PIPELINE = [
    ("warehouse", "Parquet/Delta tables + DuckDB catalog", True),
    ("crawl", "demo site + yt-dlp crawl (issue #3)", False),
    ("process", "scenes + ASR (issue #4)", False),
    ("label", "Label Studio push/pull (issue #5)", False),
    ("embed", "multimodal embeddings (issue #6)", False),
    ("train", "CHFEN training (issue #7)", False),
    ("quality", "quality report (issue #8)", False),
]


@app.command("run")
def run() -> None:
    """Run the whole pipeline on the configured sources (default: the local demo site)."""
    settings = state.settings
    wh = open_warehouse(settings)
    console.print(f"[bold]data root[/bold] {settings.data_path}")
    status = Table(title="Pipeline")
    for col in ("node", "what", "state"):
        status.add_column(col)
    for node, what, built in PIPELINE:
        state_text = "[green]ran[/green]" if built else "[yellow]not built yet[/yellow]"
        status.add_row(node, what, state_text)
    console.print(status)
    console.print(
        f"warehouse ready: {len(wh.versions())} tables; "
        f"query it with [bold]chfen sql[/bold] or [bold]duckdb {wh.root.catalog_path()}[/bold]"
    )
    missing = [node for node, _, built in PIPELINE if not built]
    if missing:
        console.print(
            f"[yellow]Not built yet: {', '.join(missing)}. Nothing else was run; no output is "
            "faked.[/yellow]"
        )


if __name__ == "__main__":  # pragma: no cover
    app()
