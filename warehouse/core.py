"""The warehouse: Delta Lake tables of Parquet files, queried through DuckDB.

- `append` validates rows against `warehouse.schema` and commits them atomically (delta-rs):
  a reader sees a whole batch or none of it, also when the writer is killed mid-write, and
  appends from many processes commit without locks of ours.
- `query` runs DuckDB SQL over each table's current snapshot (an Arrow dataset of the live
  files), with parameters. `<table>_latest` views give one row per key for superseded rows.
- `warehouse.duckdb` holds the same views over the live file lists for the plain duckdb shell,
  plus the quality views of `warehouse.quality`. It is rebuilt in a temporary file and renamed
  into place after every commit, so writers never wait on a lock and a shell that has the old
  file open keeps working; the rebuild copies `.catalog-template-<key>` (the quality views,
  bound once per code version) and swaps in the tables' file views.
- `version(table)` is the Delta version: a training run records it and `read(table, version)`
  gives back exactly what it read.

Worker processes must be started with the `spawn` (or forkserver) method: delta-rs's runtime
refuses to run in a forked child.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import TableNotFoundError

from warehouse.quality import VERSION as QUALITY_VERSION
from warehouse.quality import create_quality_views
from warehouse.schema import TABLES, TableSpec, spec
from warehouse.storage import DataRoot

log = logging.getLogger(__name__)

# Non-nullable timestamp columns with these names are filled with "now" when a row omits them.
AUTO_NOW = {"updated_at", "created_at", "finished_at", "failed_at", "pushed_at"}

STATUS_DONE = "done"
STATUS_FAILED = "failed"


class WarehouseError(Exception):
    """A warehouse operation that cannot be done; the message says which table and why."""


class ReadOnlyError(WarehouseError):
    """SQL that would write (DDL, COPY, ATTACH, INSTALL, SET, ...) given to a read-only query."""


class SchemaError(WarehouseError, ValueError):
    """Rows that do not match a table's schema. Nothing was written."""

    def __init__(self, table: str, column: str | None, reason: str):
        self.table, self.column = table, column
        where = f"{table}.{column}" if column else table
        super().__init__(f"rows rejected for table {where}: {reason} (nothing was written)")


# What `query_read_only` runs; DuckDB's parser reports SHOW, DESCRIBE, SUMMARIZE, VALUES,
# FROM-first queries and `PRAGMA show_tables` as SELECTs too.
READ_ONLY_STATEMENTS = frozenset({"SELECT", "EXPLAIN"})


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def latest_view_sql(table: TableSpec, source: str | None = None) -> str:
    """SELECT giving the newest row per primary key (ties broken arbitrarily but stably)."""
    src = quote_ident(source or table.name)
    keys = ", ".join(quote_ident(k) for k in table.key)
    return (
        f"SELECT * FROM {src} QUALIFY row_number() OVER "
        f"(PARTITION BY {keys} ORDER BY {quote_ident(table.latest_by)} DESC) = 1"
    )


def _create_views(con: duckdb.DuckDBPyConnection, table: TableSpec, files: list[str]) -> None:
    """The table as a view over exactly its live files (plus `<table>_latest`)."""
    ident = quote_ident(table.name)
    if files:
        listing = ", ".join(_quote_str(f) for f in files)
        con.execute(
            f"CREATE VIEW {ident} AS SELECT * FROM read_parquet([{listing}], union_by_name = true)"
        )
    else:
        # An empty table of the right shape, so queries still bind.
        con.register("_empty", table.schema.empty_table())
        con.execute(f"CREATE TABLE {ident} AS SELECT * FROM _empty")
        con.unregister("_empty")
    if table.latest_by:
        con.execute(f"CREATE VIEW {quote_ident(table.latest_view)} AS {latest_view_sql(table)}")


def _use_files(con: duckdb.DuckDBPyConnection, files: Mapping[str, list[str]]) -> None:
    """Replace the empty placeholder of every table that has files by a view over them."""
    for name, table_files in files.items():
        if table_files:
            ident = quote_ident(name)
            listing = ", ".join(_quote_str(f) for f in table_files)
            con.execute(f"DROP TABLE {ident}")
            con.execute(
                f"CREATE VIEW {ident} AS "
                f"SELECT * FROM read_parquet([{listing}], union_by_name = true)"
            )


def damaged_message(table: str, reason: str) -> str:
    """What a reader of a damaged table is told: which table, why, and what to run."""
    return (
        f"table {table} is damaged ({reason}); see `chfen warehouse check`, and "
        f"`chfen warehouse repair {table}` to restore it"
    )


# Comments before a statement's first word (`/* ... */`, `-- ...`), and the blanks around them.
_LEADING_COMMENTS = re.compile(r"\A(?:\s+|/\*.*?\*/|--[^\n]*)*", re.S)
_DAMAGED_READ = re.compile(r"table \S+ is damaged \(.*? to restore it", re.S)


def _query_failed(exc: duckdb.Error, sql: str) -> WarehouseError:
    """The error of a failed query: DuckDB's message and the SQL, or, when the query read a
    damaged table, that table's `damaged_message` alone (the SQL is often the pipeline's own,
    and the damage is what the reader can act on)."""
    damage = _DAMAGED_READ.search(str(exc))
    if damage is not None:
        return WarehouseError(damage.group(0))
    return WarehouseError(f"query failed: {exc}\n  sql: {sql.strip()}")


def _mark_damaged(con: duckdb.DuckDBPyConnection, table: str, reason: str) -> None:
    """Turn a table's empty placeholder into a view of the same columns that fails with
    `damaged_message` when it is read (binding, DESCRIBE and the views over it still work), so
    queries that do not touch the table run and those that do say why they cannot."""
    ident, hidden = quote_ident(table), quote_ident(f"_damaged_{table}")
    con.execute(f"ALTER TABLE {ident} RENAME TO {hidden}")
    message = _quote_str(damaged_message(table, reason))
    con.execute(
        f"CREATE VIEW {ident} AS SELECT * FROM {hidden} WHERE (SELECT error({message})) IS NULL"
    )


def _create_all_views(
    con: duckdb.DuckDBPyConnection,
    files: Mapping[str, list[str]],
    damaged: Mapping[str, str] | None = None,
) -> None:
    """Views of the given tables over their files, plus the quality views when every table is
    there. The quality views are bound against empty tables of each table's schema and the
    tables then replaced by their file views (DuckDB binds a view again when it is queried):
    binding ~50 nested views over `read_parquet` of many files cost about a second."""
    damaged = damaged or {}
    with_quality = set(TABLES) <= set(files)
    for name, table_files in files.items():
        _create_views(con, spec(name), [] if with_quality or name in damaged else table_files)
    if with_quality:
        create_quality_views(con)
        _use_files(con, {n: f for n, f in files.items() if n not in damaged})
    for name, reason in damaged.items():
        if name in files:
            _mark_damaged(con, name, reason)


# Changes with the table schemas and the quality views: names the catalog template.
CATALOG_TEMPLATE_KEY = hashlib.sha256(
    "|".join([QUALITY_VERSION, *(f"{n}:{t.schema}" for n, t in TABLES.items())]).encode()
).hexdigest()[:12]


class _Batch:
    """Rows waiting for a commit (`Warehouse.batched`): validated tables per table name."""

    def __init__(self, max_videos: int, max_seconds: float) -> None:
        self.max_videos, self.max_seconds = max(1, max_videos), max_seconds
        self.parts: dict[str, list[pa.Table]] = {}
        self.videos = 0
        self.since: float | None = None

    def add(self, table: str, data: pa.Table) -> None:
        self.parts.setdefault(table, []).append(data)
        if table == "stage_runs":
            self.videos += data.num_rows
        if self.since is None:
            self.since = time.monotonic()

    def due(self) -> bool:
        old = self.since is not None and time.monotonic() - self.since >= self.max_seconds
        return self.videos >= self.max_videos or old

    def take(self) -> dict[str, list[pa.Table]]:
        parts, self.parts, self.videos, self.since = self.parts, {}, 0, None
        return parts


class Warehouse:
    """All tables of one data root. Safe to use from several threads and processes."""

    def __init__(
        self,
        root: str | Path | DataRoot,
        *,
        catalog: bool = True,
        storage_options: dict[str, str] | None = None,
    ):
        self.root = root if isinstance(root, DataRoot) else DataRoot(root, storage_options)
        self.root.ensure()
        self.catalog_enabled = catalog and self.root.is_local
        self._tables: dict[str, DeltaTable] = {}
        self._intact: set[tuple[str, int]] = set()  # (table, version) whose files looked whole
        self._warned: set[tuple[str, str]] = set()
        self._lock = threading.RLock()
        self._batch: _Batch | None = None  # see `batched`
        self._flushing = threading.Lock()
        for table in TABLES.values():
            self._create_if_missing(table)
        if self.catalog_enabled and not self.root.catalog_path().exists():
            self.refresh_catalog()

    def __repr__(self) -> str:
        return f"Warehouse({self.root.url!r})"

    # ---- tables ------------------------------------------------------------------------------

    def _create_if_missing(self, table: TableSpec) -> None:
        uri = self.root.table_uri(table.name)
        if DeltaTable.is_deltatable(uri, storage_options=self.root.storage_options):
            return
        try:
            DeltaTable.create(
                uri,
                table.schema,
                mode="ignore",
                name=table.name,
                description=table.description or None,
                storage_options=self.root.storage_options,
            )
        except Exception as exc:  # another process created it between the check and here
            if not DeltaTable.is_deltatable(uri, storage_options=self.root.storage_options):
                raise WarehouseError(f"cannot create table {table.name} at {uri}: {exc}") from exc

    def _delta(self, table: str, version: int | None = None) -> DeltaTable:
        """A DeltaTable fixed at `version` (default: the current one)."""
        spec(table)
        uri = self.root.table_uri(table)
        if version is None:
            version = self._current(table).version()
        try:
            return DeltaTable(uri, version=version, storage_options=self.root.storage_options)
        except Exception as exc:
            raise WarehouseError(f"table {table} has no version {version}: {exc}") from exc

    def _current(self, table: str) -> DeltaTable:
        """The cached, refreshed DeltaTable of a table; only use it under self._lock."""
        uri = self.root.table_uri(table)
        with self._lock:
            cached = self._tables.get(table)
            if cached is None:
                try:
                    cached = DeltaTable(uri, storage_options=self.root.storage_options)
                except TableNotFoundError:
                    self._create_if_missing(spec(table))
                    cached = DeltaTable(uri, storage_options=self.root.storage_options)
                self._tables[table] = cached
            else:
                cached.update_incremental()
            return cached

    def live_files(self, table: str) -> tuple[int, list[str]]:
        """Version and live Parquet files of the current snapshot, taken together."""
        spec(table)
        with self._lock:
            current = self._current(table)
            return current.version(), current.file_uris()

    def damage(self, table: str) -> str | None:
        """Why the table's current snapshot cannot be read, or None when a quick look finds
        nothing: its Delta log does not load, or a live file is missing or not the size the log
        recorded (a cut or truncated file). `warehouse.repair.check` also reads every file."""
        spec(table)
        try:
            with self._lock:
                current = self._current(table)
                version = current.version()
                if (table, version) in self._intact:
                    return None
                actions = pa.table(current.get_add_actions(flatten=True))
        except Exception as exc:  # noqa: BLE001 - any failure to load the log is damage
            return f"its Delta log cannot be read: {str(exc).splitlines()[0][:200]}"
        if not self.root.is_local:
            return None  # object stores: only `warehouse check` reads the files
        base = Path(self.root.table_uri(table))
        problems = []
        for rel, size in zip(
            actions.column("path").to_pylist(),
            actions.column("size_bytes").to_pylist(),
            strict=True,
        ):
            path = base / unquote(rel)
            try:
                actual = path.stat().st_size
            except FileNotFoundError:
                problems.append(f"{path.name} is missing")
                continue
            if size is not None and actual != size:
                problems.append(f"{path.name} has {actual} of its {size} bytes")
        if problems:
            more = f" and {len(problems) - 2} more" if len(problems) > 2 else ""
            return "; ".join(problems[:2]) + more
        with self._lock:
            self._intact.add((table, version))
        return None

    def damaged(self, tables: Iterable[str] | None = None) -> dict[str, str]:
        """`damage` of each table (default: all) that has some; warns once per table and
        reason (the catalog and readers skip these tables)."""
        found = {}
        for name in tables if tables is not None else TABLES:
            reason = self.damage(name)
            if reason is not None:
                found[name] = reason
                if (name, reason) not in self._warned:
                    self._warned.add((name, reason))
                    log.warning(damaged_message(name, reason))
        return found

    def version(self, table: str) -> int:
        """The table's current Delta version (record it to read the same data later)."""
        spec(table)
        with self._lock:
            return self._current(table).version()

    def versions(self) -> dict[str, int]:
        return {name: self.version(name) for name in TABLES}

    def dataset(self, table: str, version: int | None = None) -> pads.Dataset:
        """The table's rows as an Arrow dataset over one snapshot's files."""
        return self._delta(table, version).to_pyarrow_dataset()

    def read(
        self, table: str, version: int | None = None, columns: Sequence[str] | None = None
    ) -> pa.Table:
        """The whole table (optionally at an older version) as Arrow."""
        return self.dataset(table, version).to_table(columns=list(columns) if columns else None)

    def count(self, table: str) -> int:
        return self.dataset(table).count_rows()

    # ---- writing -----------------------------------------------------------------------------

    def validate(self, table: str, rows: pa.Table | Iterable[Mapping[str, Any]]) -> pa.Table:
        """Rows as an Arrow table of exactly the table's schema, or a SchemaError."""
        tspec = spec(table)
        schema = tspec.schema
        if isinstance(rows, pa.Table):
            given = {name: rows.column(name) for name in rows.column_names}
            n = rows.num_rows
        else:
            rows = list(rows)
            n = len(rows)
            names: dict[str, None] = {}
            for row in rows:
                names.update(dict.fromkeys(row))
            given = {name: [row.get(name) for row in rows] for name in names}
        unknown = [c for c in given if c not in schema.names]
        if unknown:
            raise SchemaError(table, unknown[0], "not a column of this table")
        now = utcnow()
        arrays = []
        for field in schema:
            values = given.get(field.name)
            if values is None:
                if field.name in AUTO_NOW and not field.nullable:
                    values = pa.array([now] * n, type=field.type)
                elif field.name in tspec.key:
                    raise SchemaError(table, field.name, "key column is missing")
                elif not field.nullable:
                    raise SchemaError(table, field.name, "required column is missing")
                else:
                    values = pa.nulls(n, type=field.type)
            try:
                if isinstance(values, pa.ChunkedArray | pa.Array):
                    arr = values.cast(field.type, safe=True)
                elif pa.types.is_integer(field.type) and any(isinstance(v, float) for v in values):
                    # pa.array(type=int) truncates 1.5 silently; a safe cast refuses it.
                    arr = pa.array(values, from_pandas=True).cast(field.type, safe=True)
                else:
                    arr = pa.array(values, type=field.type, from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
                raise SchemaError(
                    table, field.name, f"values are not {field.type}: {exc}"
                ) from None
            if not field.nullable and arr.null_count:
                what = "key column" if field.name in tspec.key else "required column"
                raise SchemaError(
                    table, field.name, f"{what} is missing or null in {arr.null_count} row(s)"
                )
            arrays.append(arr)
        return pa.Table.from_arrays(arrays, schema=schema)

    def append(
        self,
        table: str,
        rows: pa.Table | Iterable[Mapping[str, Any]],
        *,
        refresh_catalog: bool = True,
    ) -> int:
        """Validate and commit rows as one atomic Delta commit; returns the new version.

        Inside `batched`, the validated rows are kept and committed with the batch instead
        (the current version is returned)."""
        data = self.validate(table, rows)
        if data.num_rows == 0:
            return self.version(table)
        with self._lock:
            batch = self._batch
            if batch is not None:
                batch.add(table, data)
        if batch is not None:
            if batch.due():
                self.flush()
            return self.version(table)
        uri = self.root.table_uri(table)
        try:
            # "merge": a column added to the schema (always nullable) joins an older table
            write_deltalake(
                uri,
                data,
                mode="append",
                schema_mode="merge",
                storage_options=self.root.storage_options,
            )
        except Exception as exc:
            raise WarehouseError(f"commit to table {table} failed: {exc}") from exc
        version = self.version(table)
        if refresh_catalog:
            self.refresh_catalog()
        return version

    @contextlib.contextmanager
    def batched(self, max_videos: int = 20, max_seconds: float = 30.0) -> Iterator[None]:
        """Commit the rows appended in this block (from any thread of this process) in batches:
        one commit per table when `max_videos` ledger rows (videos done or failed) are waiting,
        or the oldest waiting row is `max_seconds` old (checked as rows arrive), and at the
        end, also when the block raises. A table thus gets one file per batch, not per video.

        The ledger (`stage_runs`) is committed last, after the rows it vouches for: a process
        killed before a flush loses at most one batch of work, and those videos are still
        pending (done again next time), never marked done without their rows. Reads in the
        block do not see waiting rows. Nested blocks join the outer one.
        """
        with self._lock:
            outer = self._batch is None
            if outer:
                self._batch = _Batch(max_videos, max_seconds)
        if not outer:
            yield
            return
        try:
            yield
        finally:
            try:
                self.flush()
            finally:
                with self._lock:
                    self._batch = None
            self.refresh_catalog()

    def flush(self) -> dict[str, int]:
        """Commit what `batched` holds now: rows per table committed."""
        with self._flushing:
            with self._lock:
                batch = self._batch
                waiting = batch.take() if batch is not None else {}
            # the ledger last: a video is never marked done before its rows are in
            order = sorted(waiting, key=lambda t: (t == "stage_runs", t == "failures", t))
            for table in order:
                self._commit(table, pa.concat_tables(waiting[table]))
            return {t: sum(part.num_rows for part in waiting[t]) for t in order}

    def _commit(self, table: str, data: pa.Table) -> None:
        uri = self.root.table_uri(table)
        try:
            write_deltalake(
                uri, data, mode="append", schema_mode="merge",
                storage_options=self.root.storage_options,
            )  # fmt: skip
        except Exception as exc:
            raise WarehouseError(f"commit to table {table} failed: {exc}") from exc

    def compact_small_files(self, tables: Iterable[str], min_files: int) -> list[dict[str, Any]]:
        """Compact each of these tables whose current snapshot has more than `min_files`
        Parquet files (0: never); what each compaction did. Best effort: a table that cannot
        be compacted now (a concurrent commit, damage) is logged and left for next time."""
        done: list[dict[str, Any]] = []
        if min_files <= 0:
            return done
        for table in dict.fromkeys(tables):
            try:
                if len(self.live_files(table)[1]) <= min_files:
                    continue
                dtable = DeltaTable(
                    self.root.table_uri(table), storage_options=self.root.storage_options
                )
                metrics = dtable.optimize.compact()
                done.append({"table": table, "version": self.version(table), **metrics})
            except Exception as exc:  # noqa: BLE001 - compaction must never fail a run
                log.warning("compacting %s skipped: %s", table, exc)
        if done:
            self.refresh_catalog()
        return done

    def compact(self, table: str) -> dict[str, Any]:
        """Merge small files into few; readers see the same rows before, during and after."""
        spec(table)
        dtable = DeltaTable(self.root.table_uri(table), storage_options=self.root.storage_options)
        metrics = dtable.optimize.compact()
        self.refresh_catalog()
        return {"table": table, "version": self.version(table), **metrics}

    # ---- querying ----------------------------------------------------------------------------

    def connect(self, tables: Iterable[str] | None = None) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection with views over the given (default: all) tables'
        current files, plus their `_latest` views: the same SQL as the catalog file."""
        con = duckdb.connect()
        names = list(tables if tables is not None else TABLES)
        damaged = self.damaged(names)
        files = {n: [] if n in damaged else self.live_files(n)[1] for n in names}
        _create_all_views(con, files, damaged)
        return con

    def connect_read_only(self, tables: Iterable[str] | None = None) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection like `connect`, but sealed: the tables are Arrow
        datasets of their current snapshot (read by pyarrow, not by DuckDB's file system), and
        DuckDB's external access is then switched off and its configuration locked, so no
        statement can read or write a file, ATTACH a database (warehouse.duckdb included) or
        INSTALL/LOAD an extension. Views over file paths would need the live files on an allow
        list, and DuckDB lets a statement overwrite a file on that list."""
        con = duckdb.connect()
        names = list(tables if tables is not None else TABLES)
        damaged = self.damaged(names)
        datasets = {name: self.dataset(name) for name in names if name not in damaged}
        _create_all_views(con, {name: [] for name in names}, damaged)
        for name, data in datasets.items():
            con.execute(f"DROP TABLE {quote_ident(name)}")
            con.register(name, data)  # a temporary view: resolved before the main schema
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        return con

    def query_read_only(self, sql: str) -> pa.Table:
        """Run SQL typed by a person (`chfen sql`): only reading statements (SELECT, SHOW,
        DESCRIBE, EXPLAIN, ...) over a sealed connection (`connect_read_only`); anything else
        is a ReadOnlyError and nothing runs. Writing stays the pipeline's job."""
        probe = duckdb.connect()
        try:
            statements = probe.extract_statements(sql)
        except duckdb.Error as exc:
            raise WarehouseError(f"query failed: {exc}\n  sql: {sql.strip()}") from exc
        finally:
            probe.close()
        if not statements:
            raise WarehouseError(f"no SQL statement to run in {sql.strip()!r}")
        for statement in statements:
            kind = statement.type.name
            if kind not in READ_ONLY_STATEMENTS:
                text = _LEADING_COMMENTS.sub("", statement.query)
                first = (text.split(None, 1) or [kind])[0].upper()
                raise ReadOnlyError(
                    f"`chfen sql` is read-only: {first} ({kind.lower()}) statements are refused "
                    "and nothing was run. Writing is the pipeline's job; to export a result, "
                    "use `chfen sql --csv ... > file.csv`."
                )
        tables = self._tables_in(sql)
        if not tables and re.search(r"\b(show|information_schema|duckdb_\w+)\b", sql, re.I):
            tables = list(TABLES)  # asks what there is: show all of it
        con = self.connect_read_only(tables)
        try:
            return con.execute(sql).to_arrow_table()
        except duckdb.Error as exc:
            raise _query_failed(exc, sql) from exc
        finally:
            con.close()

    def _tables_in(self, sql: str) -> list[str]:
        words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", sql.lower()))
        if any(word.startswith("quality_") for word in words):
            return list(TABLES)
        return [
            name
            for name, tspec in TABLES.items()
            if name in words or (tspec.latest_view and tspec.latest_view in words)
        ]

    def query(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> pa.Table:
        """Run SQL (with `?` or `$name` parameters) over the current tables; Arrow result."""
        con = self.connect(self._tables_in(sql))
        try:
            return con.execute(sql, params).to_arrow_table()
        except duckdb.Error as exc:
            raise _query_failed(exc, sql) from exc
        finally:
            con.close()

    def rows(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        return self.query(sql, params).to_pylist()

    # ---- the duckdb catalog ------------------------------------------------------------------

    def refresh_catalog(self) -> Path | None:
        """Rebuild warehouse.duckdb's views over the live files, atomically.

        Loops until no table moved while it was building, so whichever writer finishes last
        leaves a catalog that shows every commit.
        """
        if not self.catalog_enabled:
            return None
        path = self.root.catalog_path()
        template = self._catalog_template()
        for _ in range(10):
            damaged = self.damaged()
            snapshot = {
                name: (-1, []) if name in damaged else self.live_files(name) for name in TABLES
            }
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
            try:
                try:
                    shutil.copyfile(template, tmp)
                except FileNotFoundError:  # removed by a process running newer code
                    template = self._catalog_template()
                    shutil.copyfile(template, tmp)
                con = duckdb.connect(str(tmp))
                try:
                    _use_files(
                        con,
                        {n: files for n, (_, files) in snapshot.items() if n not in damaged},
                    )
                    for name, reason in damaged.items():
                        _mark_damaged(con, name, reason)
                    con.execute("CHECKPOINT")
                finally:
                    con.close()
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
                tmp.with_name(tmp.name + ".wal").unlink(missing_ok=True)
            if all(n in damaged or self.version(n) == v for n, (v, _) in snapshot.items()):
                return path
        return path

    def _catalog_template(self) -> Path:
        """A catalog with every table as an empty placeholder and the quality views bound to
        them, built once per CATALOG_TEMPLATE_KEY: a refresh copies it and only swaps in the
        tables' file views, instead of binding every quality view again on each commit."""
        path = self.root.catalog_path().with_name(f".catalog-template-{CATALOG_TEMPLATE_KEY}")
        if path.exists():
            return path
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            con = duckdb.connect(str(tmp))
            try:
                _create_all_views(con, {name: [] for name in TABLES})
                con.execute("CHECKPOINT")
            finally:
                con.close()
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
            tmp.with_name(tmp.name + ".wal").unlink(missing_ok=True)
        for old in path.parent.glob(".catalog-template-*"):  # templates of older code
            if old.name != path.name and not old.name.endswith(".tmp"):
                old.unlink(missing_ok=True)
        return path

    # ---- the stage ledger --------------------------------------------------------------------

    def pending(
        self, stage: str, version: str, *, retry_failed: bool = False, limit: int | None = None
    ) -> list[str]:
        """Videos (status ok) not done at this stage version; failed ones only if asked."""
        skip = "('done')" if retry_failed else "('done', 'failed')"
        sql = f"""
            SELECT v.video_id FROM videos_latest v
            WHERE v.status = 'ok' AND NOT EXISTS (
                SELECT 1 FROM stage_runs_latest s
                WHERE s.video_id = v.video_id AND s.stage = $stage
                  AND s.stage_version = $version AND s.status IN {skip})
            ORDER BY v.video_id
        """
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [r["video_id"] for r in self.rows(sql, {"stage": stage, "version": version})]

    def stage_status(self, video_id: str, stage: str, version: str) -> str | None:
        rows = self.rows(
            "SELECT status FROM stage_runs_latest WHERE video_id = ? AND stage = ? "
            "AND stage_version = ?",
            [video_id, stage, version],
        )
        return rows[0]["status"] if rows else None

    def _ledger_row(
        self,
        video_id: str,
        stage: str,
        version: str,
        status: str,
        timings: Mapping[str, float] | None,
        started_at: dt.datetime | None,
        error_kind: str | None = None,
        error: str | None = None,
    ) -> dict[str, Any]:
        finished = utcnow()
        duration = (finished - started_at).total_seconds() if started_at else None
        if duration is None and timings:
            duration = float(sum(timings.values()))
        return {
            "video_id": video_id,
            "stage": stage,
            "stage_version": str(version),
            "status": status,
            "error_kind": error_kind,
            "error": error,
            "started_at": started_at,
            "finished_at": finished,
            "duration_s": duration,
            "timings_json": json.dumps(dict(timings)) if timings else None,
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }

    def mark_done(
        self,
        video_id: str,
        stage: str,
        version: str,
        timings: Mapping[str, float] | None = None,
        *,
        started_at: dt.datetime | None = None,
    ) -> None:
        """Record that `stage` at `version` finished for this video."""
        self.append(
            "stage_runs",
            [self._ledger_row(video_id, stage, version, STATUS_DONE, timings, started_at)],
        )

    def mark_done_many(
        self,
        stage: str,
        version: str,
        runs: Iterable[tuple[str, Mapping[str, float] | None, dt.datetime | None]],
        *,
        refresh_catalog: bool = True,
    ) -> None:
        """Record many videos done at `stage`/`version` in one commit: (video_id, timings,
        started_at) each. For stages whose per-video work is too small for a commit each."""
        rows = [self._ledger_row(v, stage, version, STATUS_DONE, t, s) for v, t, s in runs]
        if rows:
            self.append("stage_runs", rows, refresh_catalog=refresh_catalog)

    def mark_failed(
        self,
        video_id: str,
        stage: str,
        version: str,
        error: BaseException | str,
        timings: Mapping[str, float] | None = None,
        *,
        error_kind: str | None = None,
        started_at: dt.datetime | None = None,
        source: str | None = None,
        url: str | None = None,
        transient: bool | None = None,
        limits: str | None = None,
    ) -> None:
        """Record a failure in the ledger and in `failures` (kind + a readable reason;
        `transient`: may succeed later; `limits`: the limits in force, see the schema)."""
        if isinstance(error, BaseException):
            kind = error_kind or getattr(error, "kind", None) or type(error).__name__
            message = str(error) or type(error).__name__
        else:
            kind, message = error_kind or "error", error
        row = self._ledger_row(
            video_id, stage, version, STATUS_FAILED, timings, started_at, kind, message
        )
        self.append("stage_runs", [row], refresh_catalog=False)
        self.append(
            "failures",
            [
                {
                    "video_id": video_id,
                    "stage": stage,
                    "failed_at": row["finished_at"],
                    "stage_version": str(version),
                    "source": source,
                    "url": url,
                    "error_kind": kind,
                    "error": message,
                    "transient": transient,
                    "limits": limits,
                }
            ],
        )
