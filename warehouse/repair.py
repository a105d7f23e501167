"""Checking and repairing the Delta tables of a data root.

A table is damaged when its Delta log cannot be loaded or a file of its current snapshot is
missing, cut short or unreadable. `check` reads every table's log and every live file.
`repair` writes a new version of one table that holds every row still readable:

- the intact files of the current snapshot;
- for a damaged file written by a compaction (OPTIMIZE), the small files it merged, when they
  are still on disk and intact (a compaction removes them from the snapshot only; `VACUUM`
  deletes them), so nothing is lost;
- what is left is lost: the repair lists each such file with its row count and the range of
  its `video_id`s (from the statistics in the log), and resets the ledger rows (`stage_runs`)
  of the stages that write the table for the videos in those ranges, so a normal run derives
  them again.

The older versions stay in the log (time travel still reads them). Repair while nothing else
writes the table: an append between the read and the new version would be dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable, write_deltalake

from warehouse.core import Warehouse, WarehouseError, utcnow
from warehouse.schema import TABLES, spec

STATUS_RESET = "reset"  # a ledger row that undoes a 'done': the video is pending again


@dataclass
class TableCheck:
    """What `check` found in one table: its version, live files and problems (none: intact)."""

    table: str
    version: int | None
    files: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class LostFile:
    """A damaged file whose rows no intact file holds."""

    file: str
    rows: int | None
    video_ids: tuple[str, str] | None  # (min, max) from the log's statistics


@dataclass
class RepairResult:
    table: str
    version_before: int
    version_after: int | None  # None: nothing to repair
    rows_kept: int = 0
    recovered: list[str] = field(default_factory=list)  # damaged files rebuilt from merged ones
    lost: list[LostFile] = field(default_factory=list)
    videos: list[str] = field(default_factory=list)  # videos whose rows were lost
    ledger_reset: int = 0  # stage_runs rows set back to pending


def _file_problem(path: Path, size: int | None) -> str | None:
    """Why one Parquet file cannot be read whole, or None."""
    try:
        actual = path.stat().st_size
    except FileNotFoundError:
        return "missing"
    if size is not None and actual != size:
        return f"{actual} of its {size} bytes"
    try:
        pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - any read failure is damage
        return f"unreadable: {str(exc).splitlines()[0][:160]}"
    return None


def _actions(dtable: DeltaTable) -> list[dict[str, Any]]:
    return pa.table(dtable.get_add_actions(flatten=True)).to_pylist()


def check_table(wh: Warehouse, table: str) -> TableCheck:
    """Read one table's Delta log and every live file whole."""
    spec(table)
    uri = wh.root.table_uri(table)
    try:
        dtable = DeltaTable(uri, storage_options=wh.root.storage_options)
        actions = _actions(dtable)
    except Exception as exc:  # noqa: BLE001 - a log that does not load is the damage
        return TableCheck(table, None, 0, [f"Delta log: {str(exc).splitlines()[0][:200]}"])
    result = TableCheck(table, dtable.version(), len(actions))
    if not wh.root.is_local:
        return result  # object stores: the log loaded; files are not read here
    for action in actions:
        path = Path(uri) / unquote(action["path"])
        problem = _file_problem(path, action.get("size_bytes"))
        if problem:
            result.problems.append(f"{path.name}: {problem}")
    return result


def check(wh: Warehouse, tables: Iterable[str] | None = None) -> list[TableCheck]:
    """`check_table` of every table (default: all)."""
    return [check_table(wh, name) for name in (tables if tables is not None else TABLES)]


def _log_commits(uri: str) -> dict[str, tuple[str, list[tuple[str, int | None]]]]:
    """For each file added by a commit still in the JSON log: the commit's operation and the
    files (path, size) it removed."""
    added: dict[str, tuple[str, list[tuple[str, int | None]]]] = {}
    for commit in sorted(Path(uri, "_delta_log").glob("*.json")):
        operation, adds, removes = "", [], []
        try:
            lines = commit.read_text(encoding="utf-8").splitlines()
        except OSError:
            continue
        for line in lines:
            try:
                action = json.loads(line)
            except ValueError:
                continue
            if "commitInfo" in action:
                operation = action["commitInfo"].get("operation", "")
            elif "add" in action:
                adds.append(unquote(action["add"]["path"]))
            elif "remove" in action:
                removes.append((unquote(action["remove"]["path"]), action["remove"].get("size")))
        for path in adds:
            added[path] = (operation, removes)
    return added


def _affected_videos(wh: Warehouse, table: str, lost: list[LostFile]) -> list[str]:
    """The videos whose rows went with the lost files. The log's statistics give each file's
    lowest and highest `video_id` only (a batched commit holds many videos): the range is
    resolved against `videos`, or, when `videos` itself lost the rows (or is damaged), against
    the videos the ledger has as done at some stage, leaving out those whose `videos` row
    survived in another file."""
    ids: set[str] = set()
    listings = {
        "videos": "SELECT DISTINCT video_id FROM videos WHERE video_id BETWEEN ? AND ?",
        "stage_runs": "SELECT DISTINCT video_id FROM stage_runs_latest "
        "WHERE status = 'done' AND video_id BETWEEN ? AND ?",
    }
    candidates = ("stage_runs",) if table == "videos" else ("videos", "stage_runs")
    source = next((name for name in candidates if not wh.damage(name)), None)
    for item in lost:
        if item.video_ids is None:
            continue
        low, high = item.video_ids
        ids.update({low, high})
        if low != high and source is not None:
            rows = wh.rows(listings[source], [low, high])
            ids.update(r["video_id"] for r in rows)
    if table == "videos" and ids:
        kept = wh.rows(
            "SELECT DISTINCT video_id FROM videos WHERE list_contains(?, video_id)", [sorted(ids)]
        )
        ids -= {r["video_id"] for r in kept}
    return sorted(ids)


def _reset_ledger(wh: Warehouse, table: str, videos: list[str], stages: Iterable[str]) -> int:
    """Append a 'reset' row over each 'done' ledger row of these videos at these stages (and
    their `stage:key` variants, e.g. `embed:audio`), so they are pending again."""
    stages = list(stages)
    if not videos or not stages or wh.damage("stage_runs"):
        return 0
    rows = wh.rows(
        "SELECT video_id, stage, stage_version FROM stage_runs_latest "
        "WHERE status = 'done' AND list_contains($videos, video_id) "
        "AND (list_contains($stages, stage) OR list_contains($stages, split_part(stage, ':', 1)))",
        {"videos": videos, "stages": stages},
    )
    if not rows:
        return 0
    now = utcnow()
    wh.append(
        "stage_runs",
        [
            {
                **r,
                "status": STATUS_RESET,
                "error_kind": "repair",
                "error": f"rows of table {table} were lost and removed by `chfen warehouse "
                "repair`; the next run derives them again",
                "started_at": now,
                "finished_at": now,
            }
            for r in rows
        ],
    )
    return len(rows)


def repair(
    wh: Warehouse, table: str, stages_writing: Mapping[str, Iterable[str]] | None = None
) -> RepairResult:
    """Write a new version of `table` with every row still readable (see the module's
    docstring); `stages_writing` maps a table to the stages whose ledger rows are reset for
    the videos that lost rows."""
    spec(table)
    if not wh.root.is_local:
        raise WarehouseError(f"repair of {table}: only local data roots can be repaired")
    uri = wh.root.table_uri(table)
    try:
        dtable = DeltaTable(uri, storage_options=wh.root.storage_options)
        actions = _actions(dtable)
    except Exception as exc:
        raise WarehouseError(
            f"table {table}: its Delta log cannot be read ({str(exc).splitlines()[0][:200]}); "
            "restore the table from a backup (README: backup and restore)"
        ) from exc
    result = RepairResult(table, dtable.version(), None)
    good: list[Path] = []
    damaged: list[dict[str, Any]] = []
    for action in actions:
        path = Path(uri) / unquote(action["path"])
        if _file_problem(path, action.get("size_bytes")):
            damaged.append(action)
        else:
            good.append(path)
    if not damaged:
        return result
    commits = _log_commits(uri)
    for action in damaged:
        rel = unquote(action["path"])
        operation, removed = commits.get(rel, ("", []))
        merged = [(Path(uri) / p, size) for p, size in removed]
        if operation == "OPTIMIZE" and merged and all(not _file_problem(p, s) for p, s in merged):
            good.extend(p for p, _ in merged)
            result.recovered.append(Path(rel).name)
            continue
        low, high = action.get("min.video_id"), action.get("max.video_id")
        result.lost.append(
            LostFile(
                Path(rel).name,
                action.get("num_records"),
                (low, high) if low is not None and high is not None else None,
            )
        )
    schema = spec(table).schema
    parts = [wh.validate(table, pq.read_table(p)) for p in good]
    data = pa.concat_tables(parts) if parts else schema.empty_table()
    try:
        write_deltalake(uri, data, mode="overwrite", storage_options=wh.root.storage_options)
    except Exception as exc:
        raise WarehouseError(f"repair of {table}: writing the new version failed: {exc}") from exc
    result.rows_kept = data.num_rows
    result.version_after = wh.version(table)
    wh.refresh_catalog()
    result.videos = _affected_videos(wh, table, result.lost)
    stages = (stages_writing or {}).get(table, ())
    result.ledger_reset = _reset_ledger(wh, table, result.videos, stages)
    return result
