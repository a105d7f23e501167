"""`chfen sql` and `chfen warehouse compact|info`: the Parquet/DuckDB warehouse."""

from __future__ import annotations

import csv
import sys
from typing import Annotated

import typer
from rich.table import Table

from flows.cli.runner import app, command, state
from flows.cli.show import console
from flows.runtime import UsageError

warehouse_app = typer.Typer(help="Maintain the Parquet/DuckDB warehouse.", no_args_is_help=True)
app.add_typer(warehouse_app, name="warehouse")


def open_warehouse():
    from warehouse import Warehouse

    return Warehouse(state.settings.data_path)


@command(app, "sql")
def sql(
    query: Annotated[str, typer.Argument(help="DuckDB SQL over the warehouse tables.")],
    as_csv: Annotated[bool, typer.Option("--csv", help="Write CSV to stdout.")] = False,
    limit: Annotated[int, typer.Option(help="Rows shown in the table view.")] = 50,
) -> None:
    """Query the warehouse with DuckDB SQL (tables and their *_latest views); read-only:
    statements that would write (CREATE, COPY, ATTACH, INSTALL, SET, ...) are refused."""
    from warehouse import ReadOnlyError

    if not query.strip():
        raise UsageError("no SQL given; e.g. chfen sql 'SELECT count(*) FROM videos_latest'")
    try:
        result = open_warehouse().query_read_only(query)
    except ReadOnlyError as exc:
        raise UsageError(str(exc)) from None
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


@command(warehouse_app, "compact")
def warehouse_compact(
    tables: Annotated[list[str] | None, typer.Argument(help="Tables (default: all).")] = None,
) -> None:
    """Merge each table's small Parquet files; readers never see missing or doubled rows."""
    from warehouse import TABLES

    names = tables or list(TABLES)
    unknown = [t for t in names if t not in TABLES]
    if unknown:
        raise UsageError(f"unknown table(s): {', '.join(unknown)}; tables: {', '.join(TABLES)}")
    wh = open_warehouse()
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


@command(warehouse_app, "info")
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
