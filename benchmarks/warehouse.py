"""Warehouse benchmark: append 1,000,000 rows in batches, then time three typical queries.

    .venv/bin/python -m benchmarks.warehouse [--rows 1000000] [--batch 10000] [--out FILE]

Prints a table and writes JSON (default benchmarks/results/warehouse.json).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

# This file's name shadows the `warehouse` package when run as a script: drop its folder.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from warehouse import Warehouse  # noqa: E402

STATUSES = np.array(["done", "failed"])
LABELS = np.array(
    ["joy", "trust", "fear", "surprise", "sadness", "disgust", "anger", "anticipation"]
)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def video_batch(rng: np.random.Generator, start: int, n: int, now: dt.datetime) -> pa.Table:
    ids = [f"demo-{i:07d}" for i in range(start, start + n)]
    return pa.table(
        {
            "video_id": ids,
            "source": ["demo"] * n,
            "title": [f"video {i}" for i in range(start, start + n)],
            "uploader": [f"@up{i % 1000}" for i in range(start, start + n)],
            "duration_s": rng.uniform(8, 45, n),
            "width": pa.array(rng.choice([720, 1280], n), pa.int32()),
            "height": pa.array(rng.choice([1280, 720], n), pa.int32()),
            "has_audio": rng.random(n) > 0.05,
            "status": np.where(rng.random(n) > 0.03, "ok", "failed"),
            "updated_at": pa.array([now] * n, pa.timestamp("us", tz="UTC")),
        }
    )


def stage_batch(rng: np.random.Generator, n_videos: int, n: int, now: dt.datetime) -> pa.Table:
    vid = rng.integers(0, n_videos, n)
    stage = rng.choice(["scenes", "asr", "embed"], n)
    return pa.table(
        {
            "video_id": [f"demo-{i:07d}" for i in vid],
            "stage": stage,
            "stage_version": ["1"] * n,
            "status": STATUSES[(rng.random(n) > 0.9).astype(int)],
            "finished_at": pa.array([now] * n, pa.timestamp("us", tz="UTC")),
            "duration_s": rng.uniform(0.1, 5, n),
        }
    )


def annotation_batch(
    rng: np.random.Generator, start: int, n_videos: int, n: int, now: dt.datetime
) -> pa.Table:
    vid = rng.integers(0, n_videos, n)
    return pa.table(
        {
            "annotation_id": pa.array(np.arange(start, start + n), pa.int64()),
            "task_id": pa.array(vid, pa.int64()),
            "video_id": [f"demo-{i:07d}" for i in vid],
            "annotator": [f"ann{i}" for i in rng.integers(0, 12, n)],
            "choice": LABELS[rng.integers(0, len(LABELS), n)],
            "intensity": pa.array(rng.integers(1, 4, n), pa.int32()),
            "lead_time_s": rng.uniform(5, 90, n),
            "updated_at": pa.array([now] * n, pa.timestamp("us", tz="UTC")),
        }
    )


QUERIES = {
    "count by status": "SELECT status, count(*) AS n FROM videos_latest GROUP BY 1",
    "pending for a stage": None,  # Warehouse.pending
    "videos ⋈ annotations": """
        SELECT v.uploader, a.choice, count(*) AS n, avg(a.intensity) AS mean_intensity
        FROM videos_latest v JOIN annotations_latest a USING (video_id)
        GROUP BY 1, 2 ORDER BY n DESC LIMIT 20""",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/warehouse.json"))
    args = ap.parse_args()
    console = Console()
    rng = np.random.default_rng(0)
    now = dt.datetime.now(dt.UTC)

    # 10% videos, 60% stage runs, 30% annotations
    n_videos = args.rows // 10
    plan = [("videos", n_videos), ("stage_runs", args.rows * 6 // 10)]
    plan.append(("annotations", args.rows - sum(n for _, n in plan)))

    with tempfile.TemporaryDirectory(prefix="chfen-bench-") as tmp:
        wh = Warehouse(Path(tmp) / "data")
        appended = 0
        commits = 0
        t0 = time.perf_counter()
        for table, total in plan:
            done = 0
            while done < total:
                n = min(args.batch, total - done)
                if table == "videos":
                    batch = video_batch(rng, done, n, now)
                elif table == "stage_runs":
                    batch = stage_batch(rng, n_videos, n, now)
                else:
                    batch = annotation_batch(rng, done, n_videos, n, now)
                wh.append(table, batch)  # validated, committed, catalog refreshed: the real path
                done += n
                commits += 1
            appended += total
        append_s = time.perf_counter() - t0
        console.print(f"appended {appended:,} rows in {commits} commits: {append_s:.1f} s")

        timings: dict[str, dict[str, float]] = {}
        for name, sql in QUERIES.items():
            runs = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                if sql is None:
                    result_rows = len(wh.pending("scenes", "1"))
                else:
                    result_rows = wh.query(sql).num_rows
                runs.append(time.perf_counter() - t)
            timings[name] = {"median_s": statistics.median(runs), "rows": result_rows}

        t = time.perf_counter()
        compacted = {name: wh.compact(name)["numFilesRemoved"] for name, _ in plan}
        compact_s = time.perf_counter() - t
        after = {}
        for name, sql in QUERIES.items():
            t = time.perf_counter()
            if sql is None:
                wh.pending("scenes", "1")
            else:
                wh.query(sql)
            after[name] = time.perf_counter() - t

    result = {
        "benchmark": "warehouse",
        "when": now.isoformat(),
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
        "rows": appended,
        "batch": args.batch,
        "commits": commits,
        "append_s": append_s,
        "append_rows_per_s": appended / append_s,
        "queries": timings,
        "compact_s": compact_s,
        "files_compacted": compacted,
        "queries_after_compaction_s": after,
        "peak_rss_mib": peak_rss_mib(),
    }
    table = Table(title=f"Warehouse benchmark: {appended:,} rows, batches of {args.batch:,}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("append throughput", f"{result['append_rows_per_s']:,.0f} rows/s")
    table.add_row("append total", f"{append_s:.1f} s ({commits} commits)")
    for name, t in timings.items():
        table.add_row(f"query: {name}", f"{t['median_s'] * 1000:.0f} ms ({t['rows']:,} rows)")
    table.add_row("compact 3 tables", f"{compact_s:.2f} s")
    for name, s in after.items():
        table.add_row(f"query after compaction: {name}", f"{s * 1000:.0f} ms")
    table.add_row("peak RSS", f"{result['peak_rss_mib']:.0f} MiB")
    console.print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
