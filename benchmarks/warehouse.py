"""Warehouse benchmark: append 1,000,000 rows in batches, then time three typical queries.

    .venv/bin/python -m benchmarks.warehouse [--rows 1000000] [--batch 10000] [--out FILE]

Prints a table and writes JSON (default benchmarks/results/warehouse.json).

    .venv/bin/python -m benchmarks.warehouse --small-files [--videos 1000]

Small files (issue 18): a stage's 1,000 one-video results (a `videos` row and a ledger row
each, through `Warehouse.append` and `mark_done`, the stages' path), committed per video as
before, in batches (`Warehouse.batched`, `warehouse.commit_videos`), and in batches with the
pipeline's compaction (`warehouse.compact_files`) after each run of 100 videos (also per video
with compaction: the Dask runner's path); Parquet files
and Delta versions per table, write time, and query time after. Writes
benchmarks/results/warehouse-small-files.json.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
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


def one_video_row(i: int, now: dt.datetime) -> dict:
    return {
        "video_id": f"demo-{i:07d}", "source": "demo", "title": f"video {i}",
        "uploader": f"@up{i % 50}", "duration_s": 10.0 + i % 30, "status": "ok",
        "updated_at": now,
    }  # fmt: skip


def timed_queries(wh: Warehouse, repeat: int) -> dict[str, float]:
    """Median seconds of two everyday reads: a count over `videos`, and what is pending."""
    out = {}
    for name, run in (
        ("count by status", lambda: wh.query(QUERIES["count by status"])),
        ("pending for a stage", lambda: wh.pending("scenes", "1")),
    ):
        runs = []
        for _ in range(repeat):
            t = time.perf_counter()
            run()
            runs.append(time.perf_counter() - t)
        out[name] = statistics.median(runs)
    return out


def small_files(
    n_videos: int, repeat: int, commit_videos: int, compact_files: int, only: str | None = None
) -> dict:
    """Per-video commits against batched ones (and batched plus compaction)."""
    now = dt.datetime.now(dt.UTC)
    variants = {
        "per video (before)": {"batch": None, "compact": 0},
        f"per video + compaction over {compact_files} files (Dask workers)": {
            "batch": None, "compact": compact_files,
        },
        f"batches of {commit_videos}": {"batch": commit_videos, "compact": 0},
        f"batches + compaction over {compact_files} files": {
            "batch": commit_videos, "compact": compact_files,
        },
    }  # fmt: skip
    results = {}
    for name, how in variants.items():
        if only and only not in name:
            continue
        with tempfile.TemporaryDirectory(prefix="chfen-bench-") as tmp:
            wh = Warehouse(Path(tmp) / "data")
            t0 = time.perf_counter()
            run = 100  # videos per stage run: the pipeline compacts after each run
            for start in range(0, n_videos, run):
                block = wh.batched(how["batch"], 30.0) if how["batch"] else contextlib.nullcontext()
                with block:
                    for i in range(start, min(start + run, n_videos)):
                        wh.append("videos", [one_video_row(i, now)], refresh_catalog=False)
                        wh.mark_done(f"demo-{i:07d}", "crawl", "1")
                wh.compact_small_files(["videos", "stage_runs"], how["compact"])
            write_s = time.perf_counter() - t0
            results[name] = {
                "write_s": write_s,
                "files": {t: len(wh.live_files(t)[1]) for t in ("videos", "stage_runs")},
                "versions": {t: wh.version(t) for t in ("videos", "stage_runs")},
                "query_s": timed_queries(wh, repeat),
                "rows": wh.count("videos"),
            }
    return results


def main_small_files(args: argparse.Namespace, console: Console) -> None:
    results = small_files(
        args.videos, args.repeat, args.commit_videos, args.compact_files, args.only
    )
    table = Table(title=f"Small files: {args.videos:,} one-video results")
    for col in ("commits", "files videos / stage_runs", "versions", "write", "count", "pending"):
        table.add_column(col, justify="right" if col != "commits" else "left")
    for name, r in results.items():
        q = r["query_s"]
        table.add_row(
            name,
            f"{r['files']['videos']} / {r['files']['stage_runs']}",
            f"{r['versions']['videos']} / {r['versions']['stage_runs']}",
            f"{r['write_s']:.1f} s",
            f"{q['count by status'] * 1000:.0f} ms",
            f"{q['pending for a stage'] * 1000:.0f} ms",
        )
    console.print(table)
    out = args.out or Path("benchmarks/results/warehouse-small-files.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "benchmark": "warehouse-small-files",
                "when": dt.datetime.now(dt.UTC).isoformat(),
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "videos": args.videos,
                "commit_videos": args.commit_videos,
                "compact_files": args.compact_files,
                "results": results,
            },
            indent=2,
        )
    )
    console.print(f"wrote {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--small-files", action="store_true", help="the small-files benchmark")
    ap.add_argument("--videos", type=int, default=1000)
    ap.add_argument("--commit-videos", type=int, default=20)
    ap.add_argument("--compact-files", type=int, default=64)
    ap.add_argument("--only", help="small files: run the variants whose name holds this")
    args = ap.parse_args()
    console = Console()
    if args.small_files:
        main_small_files(args, console)
        return
    args.out = args.out or Path("benchmarks/results/warehouse.json")
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
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
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
