"""`chfen sql` and `chfen warehouse compact|info|check|repair`: the Parquet/DuckDB warehouse."""

from __future__ import annotations

import csv
import sys
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from flows.cli.runner import app, command, state
from flows.cli.show import console, err_console
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
    from warehouse.core import damaged_message

    for name in names:
        reason = wh.damage(name)
        if reason is not None:  # compacting would read the damaged file: skip, say so
            err_console.print(f"[red]skipped: {escape(damaged_message(name, reason))}[/red]")
            out.add_row(name, "-", "-", "damaged")
            continue
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
    from warehouse.core import damaged_message

    wh = open_warehouse()
    out = Table(title=f"Warehouse at {wh.root.url}")
    for col in ("table", "rows", "files", "version"):
        out.add_column(col)
    damaged = wh.damaged()
    for name in TABLES:
        if name in damaged:
            out.add_row(f"[red]{name}[/red]", "[red]DAMAGED[/red]", "-", "-")
            continue
        version, files = wh.live_files(name)
        out.add_row(name, str(wh.count(name)), str(len(files)), str(version))
    console.print(out)
    for name, reason in damaged.items():
        err_console.print(f"[red]{escape(damaged_message(name, reason))}[/red]")
    console.print(f"duckdb shell: [bold]duckdb {wh.root.catalog_path()}[/bold]")


@command(warehouse_app, "check")
def warehouse_check() -> None:
    """Read every table's Delta log and files whole; name what is damaged (exit 1 if any)."""
    from warehouse import WarehouseError
    from warehouse.repair import check

    wh = open_warehouse()
    out = Table(title=f"Check of {wh.root.url}")
    for col in ("table", "version", "files", "state"):
        out.add_column(col)
    results = check(wh)
    for r in results:
        state_text = "ok" if r.ok else f"[red]DAMAGED[/red]: {escape('; '.join(r.problems))}"
        out.add_row(r.table, "-" if r.version is None else str(r.version), str(r.files), state_text)
    console.print(out)
    bad = [r.table for r in results if not r.ok]
    if bad:
        raise WarehouseError(
            f"damaged: {', '.join(bad)}; run `chfen warehouse repair TABLE` for each "
            "(or restore a backup, see the README)"
        )


@command(warehouse_app, "repair")
def warehouse_repair(
    table: Annotated[str, typer.Argument(help="The damaged table.")],
) -> None:
    """Write a new version of TABLE from every readable row (files a compaction merged are
    used again), list the rows lost, and make their videos pending in the stage ledger."""
    from chfen import registry
    from warehouse import TABLES
    from warehouse.repair import repair

    if table not in TABLES:
        raise UsageError(f"unknown table {table!r}; tables: {', '.join(TABLES)}")
    writers: dict[str, list[str]] = {}
    for stage in registry.STAGES:
        for written in stage.writes:
            writers.setdefault(written, []).append(stage.name)
    result = repair(open_warehouse(), table, writers)
    if result.version_after is None:
        console.print(f"{table}: no damaged file at version {result.version_before}; nothing done")
        return
    console.print(
        f"{table}: version {result.version_before} -> {result.version_after}, "
        f"{result.rows_kept} row(s) kept"
    )
    for name in result.recovered:
        console.print(f"  recovered {name} from the files it had merged")
    for lost in result.lost:
        ids = "-" if lost.video_ids is None else "..".join(dict.fromkeys(lost.video_ids))
        rows = "?" if lost.rows is None else str(lost.rows)
        console.print(f"  [red]lost[/red] {lost.file}: {rows} row(s), video_id {ids}")
    if result.videos:
        console.print(
            f"  videos affected: {', '.join(result.videos)}; {result.ledger_reset} ledger "
            "row(s) reset, so the next run derives them again"
        )
