"""Pipeline benchmark: the whole `pipeline` flow on the demo site, then again with nothing new.

    .venv/bin/python -m benchmarks.pipeline [--videos 24] [--cache data/demo_site] [--out FILE]

In a fresh data root, against this data root's local Prefect server (started before the clock,
as `chfen prefect start` would be) and Label Studio (started before the clock; its venv is
shared with the tests' cache when present). The demo catalogue is rendered (or taken from its
cache) before the clock too.

Reports, for the first run and the no-op re-run: wall time per node (each subflow's body,
timed from inside), the share spent in Prefect orchestration, and peak RSS.

Orchestration is what Prefect adds around our code:
- flow level: the pipeline's wall time minus the wall time of every node's body (each
  subflow's function timed from inside) and minus the pipeline body's own work outside its
  subflow calls (Label Studio's health check, the label counts, the figures): flow run
  creation, state changes, result handling, API calls;
- task level (inside the nodes, so not in the first term): the number of task runs the run
  made (read from the server) times the engine's cost per task run, measured on the same
  machine with empty tasks in the same thread-pool runner.
Goals: orchestration <= 5 % of the first run; the no-op re-run <= 10 % of the first run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import inspect
import json
import os
import platform
import resource
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

GOAL_ORCHESTRATION = 0.05
GOAL_NOOP = 0.10
NODES = (
    ("crawl", "flows.crawl", "crawl_flow"),
    ("process", "flows.process", "process_flow"),
    ("label_push", "flows.label", "label_push_flow"),
    ("simulated crew", "flows.label", "demo_annotate_flow"),
    ("label_pull", "flows.label", "label_pull_flow"),
    ("embed", "flows.embed", "embed_flow"),
    ("train", "flows.train", "train_flow"),
    ("quality", "flows.quality", "quality_flow"),
)


def peak_rss_mib() -> dict[str, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"process": own, "largest_child": kids}


class BodyTimer:
    """Times each node flow's body from inside (its function as Prefect calls it) and each
    node call from the pipeline's side (Prefect's subflow handling included)."""

    def __init__(self) -> None:
        self.body: dict[str, float] = defaultdict(float)
        self.call: dict[str, float] = defaultdict(float)

    @staticmethod
    def _timed(store: dict[str, float], name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)  # Prefect reads the signature to validate parameters
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                store[name] += time.perf_counter() - t0

        # Prefect resolves string annotations (`from __future__ import annotations`) in the
        # function's module; the wrapper lives here, so hand it the evaluated signature.
        timed.__signature__ = inspect.signature(fn, eval_str=True)  # type: ignore[attr-defined]
        return timed

    def install(self) -> None:
        import importlib

        import flows.pipeline as pipeline

        for name, module, attr in NODES:
            flow = getattr(importlib.import_module(module), attr)
            flow.fn = self._timed(self.body, name, flow.fn)
            if hasattr(pipeline, attr):  # how the pipeline calls it
                setattr(pipeline, attr, self._timed(self.call, name, getattr(pipeline, attr)))
        pipeline.pipeline_flow.fn = self._timed(self.body, "pipeline", pipeline.pipeline_flow.fn)

    def reset(self) -> None:
        self.body.clear()
        self.call.clear()

    def flow_level_orchestration(self, wall: float) -> tuple[float, float]:
        """(orchestration outside the nodes' bodies, the pipeline body's own work)."""
        own = self.body["pipeline"] - sum(self.call.values())
        nodes = sum(v for k, v in self.body.items() if k != "pipeline")
        return max(wall - own - nodes, 0.0), own


def count_task_runs(api: str) -> int:
    import httpx

    resp = httpx.post(f"{api}/task_runs/count", json={}, timeout=30)
    resp.raise_for_status()
    return int(resp.json())


def count_flow_runs(api: str) -> int:
    import httpx

    resp = httpx.post(f"{api}/flow_runs/count", json={}, timeout=30)
    resp.raise_for_status()
    return int(resp.json())


def per_task_overhead(n: int = 200) -> float:
    """Seconds the engine spends per task run: empty tasks through the thread-pool runner in
    one flow, as the nodes submit theirs."""
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE
    from prefect.task_runners import ThreadPoolTaskRunner

    @task(cache_policy=NO_CACHE)
    def empty(i: int) -> int:
        return i

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=4))
    def many(k: int) -> float:
        t0 = time.perf_counter()
        futures = [empty.submit(i) for i in range(k)]
        assert sum(f.result() for f in futures) == k * (k - 1) // 2
        return time.perf_counter() - t0

    many(10)  # warm-up
    return min(many(n) for _ in range(2)) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=24)
    ap.add_argument("--cache", type=Path, default=Path("data/demo_site"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/pipeline.json"))
    args = ap.parse_args()
    console = Console()

    from chfen.config import DemoSiteConfig

    tmp = Path(tempfile.mkdtemp(prefix="chfen-bench-pipeline-"))
    root = tmp / "data"
    overrides = [
        f"data_root={root}",
        f"demo_site.n_videos={args.videos}",
        f"demo_site.cache_dir={args.cache.resolve()}",
        # The demo site's configured port when free, as `chfen run` serves it: page URLs then
        # stay the same between the runs (on a new port every known page looks new to
        # discovery and is fetched again before its video id shows it is known).
        f"demo_site.port={_port_or_free(DemoSiteConfig().port)}",
        f"prefect.server_port={_free_port()}",
        f"labelstudio.port={_free_port()}",
    ]
    ls_venv = Path(os.environ.get("LABELSTUDIO_TEST_VENV", "~/.cache/chfen/labelstudio-venv"))
    if (ls_venv.expanduser() / "bin" / "label-studio").exists():
        overrides.append(f"labelstudio.venv_dir={ls_venv.expanduser()}")

    from chfen.config import load_settings
    from flows import runtime

    settings, _ = load_settings(None, overrides)
    runtime.configure(settings)

    from chfen.demo import generate_catalogue, resolve_cache_dir
    from flows import server as prefect_server
    from labeling import server as ls_server

    console.print(
        f"data root {root}; demo site on port {settings.demo_site.port}; rendering / checking "
        f"the {args.videos}-video demo catalogue"
    )
    generate_catalogue(settings.demo_site, resolve_cache_dir(settings.demo_site, root))
    t0 = time.perf_counter()
    state = prefect_server.start(settings, log=console.print)
    os.environ["PREFECT_API_URL"] = state.api_url
    prefect_start_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ls_server.start(settings, log=console.print)
    ls_start_s = time.perf_counter() - t0

    from flows.pipeline import pipeline_flow

    timer = BodyTimer()
    timer.install()
    runs: list[dict[str, Any]] = []
    try:
        for label in ("first run", "no-op re-run"):
            timer.reset()
            tasks_before = count_task_runs(state.api_url)
            flows_before = count_flow_runs(state.api_url)
            console.print(f"[bold]{label}[/bold] …")
            t0 = time.perf_counter()
            summary = pipeline_flow(settings_file=None, overrides=overrides)
            wall = time.perf_counter() - t0
            runs.append(
                {
                    "label": label,
                    "wall_s": wall,
                    "nodes_s": {k: v for k, v in timer.body.items() if k != "pipeline"},
                    "flow_level": timer.flow_level_orchestration(wall),
                    "task_runs": count_task_runs(state.api_url) - tasks_before,
                    "flow_runs": count_flow_runs(state.api_url) - flows_before,
                    "dataset": summary["dataset"],
                    "trained": "run_id" in summary.get("train", {}),
                }
            )
        task_overhead_s = per_task_overhead()
    finally:
        ls_server.stop(settings)
        prefect_server.stop(settings)

    for r in runs:
        flow_level, own = r.pop("flow_level")
        r["pipeline_own_work_s"] = own
        task_level = r["task_runs"] * task_overhead_s
        r["orchestration_s"] = flow_level + task_level
        r["orchestration_flow_level_s"] = flow_level
        r["orchestration_task_level_s"] = task_level
        r["orchestration_share"] = r["orchestration_s"] / r["wall_s"]
    first, second = runs
    noop_share = second["wall_s"] / first["wall_s"]

    table = Table(title=f"Pipeline on the {args.videos}-video demo site (local Prefect server)")
    table.add_column("node")
    for r in runs:
        table.add_column(f"{r['label']} s", justify="right")
    for name, _, _ in NODES:
        table.add_row(name, *(f"{r['nodes_s'].get(name, 0.0):.1f}" for r in runs))
    table.add_row("pipeline's own work", *(f"{r['pipeline_own_work_s']:.1f}" for r in runs))
    table.add_row("pipeline wall", *(f"{r['wall_s']:.1f}" for r in runs))
    table.add_row("flow runs / task runs", *(f"{r['flow_runs']} / {r['task_runs']}" for r in runs))
    table.add_row(
        "orchestration: flow level", *(f"{r['orchestration_flow_level_s']:.2f}" for r in runs)
    )
    table.add_row(
        "orchestration: task level", *(f"{r['orchestration_task_level_s']:.2f}" for r in runs)
    )
    table.add_row("orchestration share", *(f"{100 * r['orchestration_share']:.1f} %" for r in runs))
    console.print(table)
    rss = peak_rss_mib()
    console.print(
        f"engine cost per task run: {1000 * task_overhead_s:.1f} ms; "
        f"Prefect server start {prefect_start_s:.1f} s and Label Studio start {ls_start_s:.1f} s "
        "(one-off, before the clock)"
    )
    console.print(
        f"peak RSS: pipeline process {rss['process']:.0f} MiB, largest child "
        f"{rss['largest_child']:.0f} MiB"
    )
    verdict = (
        f"goal: orchestration <= {100 * GOAL_ORCHESTRATION:.0f} % -> "
        f"{100 * first['orchestration_share']:.1f} % "
        f"({'meets' if first['orchestration_share'] <= GOAL_ORCHESTRATION else 'MISSES'}); "
        f"no-op re-run <= {100 * GOAL_NOOP:.0f} % -> {100 * noop_share:.1f} % "
        f"({'meets' if noop_share <= GOAL_NOOP else 'MISSES'})"
    )
    console.print(verdict)
    load = os.getloadavg()
    result = {
        "benchmark": "pipeline",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "load_avg_after": load,
        },
        "videos": args.videos,
        "runs": runs,
        "engine_cost_per_task_s": task_overhead_s,
        "prefect_server_start_s": prefect_start_s,
        "labelstudio_start_s": ls_start_s,
        "noop_share": noop_share,
        "peak_rss_mib": rss,
        "goals": {"orchestration_share": GOAL_ORCHESTRATION, "noop_share": GOAL_NOOP},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str))
    console.print(f"wrote {args.out} (load average after: {load[0]:.1f} on {os.cpu_count()} CPUs)")


def _free_port() -> int:
    return _port_or_free(0)


def _port_or_free(port: int) -> int:
    """`port` when it can be bound on 127.0.0.1, else a free one."""
    import socket

    for candidate in (port, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return s.getsockname()[1]
    raise OSError("no free port on 127.0.0.1")


if __name__ == "__main__":
    main()
