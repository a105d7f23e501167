"""Where the per-video tasks run, and what they carry there.

`prefect.task_runner` picks the runner (`task_runner(settings)`): Prefect's thread pool in the
flow's own process (`thread`, the default), or prefect-dask's `DaskTaskRunner` (`dask`): a
local cluster of `prefect.dask_workers` worker processes, or the scheduler at
`prefect.dask_address`. Flows open the runner inside their own body, so every way of starting
them (the CLI, the pipeline, a served deployment) gets the configured one.

Tasks never receive live objects (a Warehouse, a stage holding loaded models, a crawler):
under Dask those would be pickled into other processes. A task gets the resolved settings as
JSON (`settings_payload`) and a video id, and builds what it needs with `cached(...)`: once per
process and settings, so a worker loads its models once and serves every video it is given.

Per-stage limits (one scene decode, `asr.concurrency` transcriptions, `crawl.concurrency`
downloads) are kept by the flow, not by locks inside tasks: `run_bounded` submits a task of a
kind only while fewer than its limit are running, so a limit holds however many threads or
processes there are, and no worker ever sits blocked on a lock while other work waits.
"""

from __future__ import annotations

import contextlib
import queue
from collections import deque
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, TypeVar

from chfen.config import Settings
from chfen.runtime import ProcessCache
from warehouse import DataRoot, Warehouse

T = TypeVar("T")

# (task, parameters) to submit; `run_bounded` takes them per kind.
Job = tuple[Any, dict[str, Any]]

# Objects built by tasks, per process: the settings, a Warehouse per data root, and the stages
# per settings. A handful of entries in practice; bounded so that a long-lived process that
# sees many data roots (a test session) does not keep them all.
CACHE_SIZE = 32
_cache = ProcessCache(max_size=CACHE_SIZE)


def task_runner(settings: Settings, max_workers: int | None = None):
    """A fresh (not yet started) task runner as `prefect.*` configures it; use it as a
    context manager in the flow and `runner.submit(task, parameters)`.

    thread: Prefect's ThreadPoolTaskRunner with `max_workers` threads in this process.
    dask: a DaskTaskRunner on `prefect.dask_address`, or on a LocalCluster of
    `prefect.dask_workers` spawned processes with one thread each (`local_cluster`).
    """
    p = settings.prefect
    if p.task_runner == "thread":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=max_workers)
    from prefect_dask import DaskTaskRunner

    if p.dask_address:
        return DaskTaskRunner(address=p.dask_address)
    scratch = DataRoot(settings.data_path).local("dask")
    scratch.mkdir(parents=True, exist_ok=True)
    return DaskTaskRunner(
        cluster_class=local_cluster,
        cluster_kwargs={
            "n_workers": p.dask_workers,
            "threads_per_worker": 1,
            "processes": True,  # spawned: delta-rs refuses to run in a forked child
            "local_directory": str(scratch),
            "dashboard_address": "127.0.0.1:0",
        },
    )


def local_cluster(**kwargs: Any):
    """A distributed.LocalCluster whose workers keep this process's thread settings.

    Dask's nanny starts workers with OMP/MKL/OPENBLAS_NUM_THREADS=1. That changes
    CTranslate2's arithmetic, and whisper then decodes some words differently than in this
    process (measured: "I am" for "I'm", a sentence split in two), so the same videos would
    get different transcripts under the two runners. The threads are CHFEN's settings
    (`asr.cpu_threads`, `embed.cpu_threads`: set them to 1 for many workers on few cores).
    """
    import dask
    from distributed import LocalCluster

    environ = dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {}
    keep = {k: v for k, v in environ.items() if not k.endswith("_NUM_THREADS")}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": keep}):
        return LocalCluster(**kwargs)


def in_process(settings: Settings) -> bool:
    """True when tasks run in this process (the thread runner): the flow may then build and
    warm up the stages itself, and its tasks find them in this process's cache."""
    return settings.prefect.task_runner == "thread"


def settings_payload(settings: Settings) -> str:
    """The resolved settings as JSON for a task, with the data root made absolute (a worker
    may run in another folder). Secrets are masked: no task of these flows needs them."""
    return settings.model_copy(update={"data_root": str(settings.data_path)}).model_dump_json()


def cached(key: Hashable, build: Callable[[], T]) -> T:
    """`build()`'s object for this key, built once per process (e.g. a stage that loads its
    models: key it by the settings JSON). Concurrent callers of one key wait for one build;
    other keys build meanwhile."""
    return _cache.get(key, build)


def worker_settings(payload: str) -> Settings:
    """The settings a task was given (`settings_payload`), parsed once per process."""
    return cached(("settings", payload), lambda: Settings.model_validate_json(payload))


def warehouse(payload: str) -> Warehouse:
    """This process's Warehouse of the payload's data root."""
    root = worker_settings(payload).data_path
    return cached(("warehouse", str(root)), lambda: Warehouse(root))


def batched(settings: Settings, payload: str) -> contextlib.AbstractContextManager[None]:
    """Commit the tasks' rows in batches (`warehouse.commit_videos` / `commit_seconds`) when
    they run in this process (the thread runner: they share `warehouse(payload)`); a Dask
    worker's tasks commit per video, as a worker cannot know when the flow ends."""
    if not in_process(settings):
        return contextlib.nullcontext()
    w = settings.warehouse
    return warehouse(payload).batched(w.commit_videos, w.commit_seconds)


def run_bounded(
    runner: Any,
    jobs: Mapping[str, Sequence[Job]],
    limits: Mapping[str, int | None],
    on_done: Callable[[str, Any], None] | None = None,
) -> dict[str, list[Any]]:
    """Submit every job to a started runner, at most `limits[kind]` of a kind at once (None:
    no limit but the runner's), kinds interleaved so they overlap; results per kind in job
    order. `on_done(kind, result)` runs in this thread as each finishes. A task that raises
    raises here (the stages record per-video failures themselves and return an Outcome)."""
    todo = {kind: deque(enumerate(items)) for kind, items in jobs.items()}
    results: dict[str, list[Any]] = {kind: [None] * len(items) for kind, items in jobs.items()}
    running: dict[str, int] = dict.fromkeys(jobs, 0)
    finished: queue.Queue = queue.Queue()
    owner: dict[int, tuple[str, int, Any]] = {}  # id(future) -> kind, index, the future

    def top_up() -> None:
        submitted = True
        while submitted:
            submitted = False
            for kind, waiting in todo.items():
                cap = limits.get(kind)
                if waiting and (cap is None or running[kind] < cap):
                    i, (task, params) = waiting.popleft()
                    future = runner.submit(task, params)
                    owner[id(future)] = (kind, i, future)
                    running[kind] += 1
                    future.add_done_callback(finished.put)
                    submitted = True

    top_up()
    while any(running.values()):
        future = finished.get()
        kind, i, _ = owner.pop(id(future))
        running[kind] -= 1
        results[kind][i] = future.result()
        if on_done is not None:
            on_done(kind, results[kind][i])
        top_up()
    return results
