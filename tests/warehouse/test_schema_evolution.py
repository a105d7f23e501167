"""A column added to a table's schema (always nullable) joins a warehouse made before it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from warehouse import Warehouse
from warehouse.schema import spec


def test_an_older_annotations_table_takes_the_origin_column(tmp_path: Path) -> None:
    root = tmp_path / "data"
    uri = str(root / "warehouse" / "annotations")
    old = pa.schema([f for f in spec("annotations").schema if f.name != "origin"])
    base = {"task_id": 1, "project_id": 1, "video_id": "v", "annotator": "a@x.org"}
    # the table and a row as older code wrote them, before `origin` existed
    DeltaTable.create(uri, old)
    stamp = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    write_deltalake(
        uri,
        pa.Table.from_pylist([{"annotation_id": 1, **base, "updated_at": stamp}], schema=old),
        mode="append",
    )
    wh = Warehouse(root)
    wh.append("annotations", [{"annotation_id": 2, **base, "origin": "imported"}])
    rows = {r["annotation_id"]: r for r in wh.read("annotations").to_pylist()}
    assert rows[1]["origin"] is None and rows[2]["origin"] == "imported"
    got = wh.rows("SELECT annotation_id, origin FROM annotations_latest ORDER BY 1")
    assert [r["origin"] for r in got] == [None, "imported"]
