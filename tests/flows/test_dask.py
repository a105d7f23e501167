"""The Dask switch (`prefect.task_runner=dask`): crawl → process → embed of the demo site into
two data roots, once with Prefect's thread pool and once on a local Dask cluster of two worker
processes. The warehouses must hold the same data, the tasks must have run in the workers, and
the per-stage limits must have held across the processes.

The cluster is the session's (`dask_address`, the one `task_runner` would start), reached
through `prefect.dask_address`: the three flows share it instead of each starting one."""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from chfen.config import load_settings
from chfen.demo import DemoSite
from flows import scaleout
from warehouse import Warehouse


def feed_sources(site: DemoSite) -> str:
    items = ", ".join(f'{{name: "{n}", url: "{u}"}}' for n, u in site.feed_urls.items())
    return f"[{items}]"


def run_nodes(root: Path, site: DemoSite, extra: list[str]) -> dict:
    from flows.crawl import crawl_flow
    from flows.embed import embed_flow
    from flows.process import process_flow

    overrides = [f"data_root={root}", f"sources={feed_sources(site)}", *extra]
    return {
        "crawl": crawl_flow(overrides=overrides),
        "process": process_flow(overrides=overrides),
        "embed": embed_flow(overrides=overrides),
    }


def contents(root: Path) -> dict:
    wh = Warehouse(root)
    emb = {}
    for r in wh.rows(
        "SELECT video_id, modality, encoder_key, grid_idx, dim, dtype, vector FROM embeddings"
    ):
        key = (r["video_id"], r["modality"], r["encoder_key"], r["grid_idx"])
        assert key not in emb, f"embedding written twice: {key}"
        vec = None if r["vector"] is None else np.frombuffer(r["vector"], dtype=r["dtype"])
        emb[key] = (r["dim"], vec)
    return {
        "videos": wh.rows(
            "SELECT video_id, sha256, duration_s, has_audio, status FROM videos_latest ORDER BY 1"
        ),
        "scenes": wh.rows(
            "SELECT video_id, scene_idx, start_s, end_s, start_frame, end_frame FROM scenes "
            "ORDER BY 1, 2"
        ),
        "words": wh.rows(
            "SELECT video_id, word_idx, word, start_s, end_s FROM transcript_words ORDER BY 1, 2"
        ),
        "ledger": wh.rows(
            "SELECT video_id, stage, stage_version, status FROM stage_runs_latest ORDER BY 1, 2, 3"
        ),
        "embeddings": emb,
    }


def most_at_once(spans: list[tuple[dt.datetime, dt.datetime]]) -> int:
    """The largest number of [start, end] spans that overlap at one instant."""
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    most = now = 0
    for _, step in edges:  # an end sorts before a start at the same instant
        now += step
        most = max(most, now)
    return most


def test_task_runner_follows_the_settings(tmp_path: Path) -> None:
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    def runner(*items: str):
        settings, _ = load_settings(None, [f"data_root={tmp_path}", *items])
        return scaleout.task_runner(settings, max_workers=3)

    assert isinstance(runner(), ThreadPoolTaskRunner)
    local = runner("prefect.task_runner=dask", "prefect.dask_workers=3")
    assert isinstance(local, DaskTaskRunner) and local.address is None
    assert local.cluster_kwargs == {
        "n_workers": 3,
        "threads_per_worker": 1,
        "processes": True,
        "local_directory": str(tmp_path / "dask"),
        "dashboard_address": "127.0.0.1:0",
    }
    remote = runner("prefect.task_runner=dask", "prefect.dask_address=tcp://127.0.0.1:8786")
    assert remote.address == "tcp://127.0.0.1:8786" and not remote.cluster_kwargs


_spans: list[tuple[str, float, float]] = []
_spans_lock = threading.Lock()


@task(cache_policy=NO_CACHE)
def nap(kind: str, i: int) -> tuple[str, int]:
    t0 = time.monotonic()
    time.sleep(0.5)
    with _spans_lock:
        _spans.append((kind, t0, time.monotonic()))
    return kind, i


@flow
def bounded_naps() -> tuple[dict, list]:
    from prefect.task_runners import ThreadPoolTaskRunner

    jobs = {k: [(nap, {"kind": k, "i": i}) for i in range(n)] for k, n in (("a", 4), ("b", 5))}
    seen: list[tuple[str, int]] = []
    with ThreadPoolTaskRunner(max_workers=8) as runner:
        out = scaleout.run_bounded(
            runner, jobs, {"a": 1, "b": 2}, on_done=lambda _, r: seen.append(r)
        )
    return out, seen


def test_run_bounded_keeps_each_limit_and_overlaps_kinds(prefect_harness: None) -> None:
    _spans.clear()
    out, seen = bounded_naps()
    assert out == {"a": [("a", i) for i in range(4)], "b": [("b", i) for i in range(5)]}
    assert sorted(seen) == sorted(out["a"] + out["b"])
    spans = {k: [(s, e) for kind, s, e in _spans if kind == k] for k in ("a", "b")}
    assert most_at_once(spans["a"]) == 1 and most_at_once(spans["b"]) == 2
    # the kinds ran side by side
    assert any(sa < eb and sb < ea for sa, ea in spans["a"] for sb, eb in spans["b"])


@pytest.mark.slow
def test_dask_runner_matches_the_thread_runner(
    tmp_path: Path, demo_site: DemoSite, prefect_harness: None, dask_address: str
) -> None:
    threads_root, dask_root = tmp_path / "threads", tmp_path / "dask"
    by_threads = run_nodes(threads_root, demo_site, [])
    by_dask = run_nodes(
        dask_root, demo_site, ["prefect.task_runner=dask", f"prefect.dask_address={dask_address}"]
    )

    good = [v for v in demo_site.ground_truth["videos"] if v["channel"] != "hardcases"]
    n = len(good)
    for summary in (by_threads, by_dask):
        assert summary["crawl"]["downloaded"] == n and summary["crawl"]["failed"] == 0
        for stage in ("scenes", "asr"):
            assert summary["process"][stage]["done"] == n, summary["process"][stage]
        assert summary["embed"]["done"] == n and summary["embed"]["failed"] == 0
    assert by_dask["process"]["scenes"]["rows"] == by_threads["process"]["scenes"]["rows"]
    assert by_dask["process"]["asr"]["rows"] == by_threads["process"]["asr"]["rows"]
    assert by_dask["embed"]["vectors"] == by_threads["embed"]["vectors"]

    want, got = contents(threads_root), contents(dask_root)
    assert [v["video_id"] for v in got["videos"]] == sorted(f"generic-{v['id']}" for v in good)
    assert got["videos"] == want["videos"]
    assert got["ledger"] == want["ledger"]
    assert got["scenes"] == want["scenes"]  # cut times are frame timestamps: exactly equal
    assert len(got["words"]) == len(want["words"]) > 0
    for a, b in zip(got["words"], want["words"], strict=True):
        key = ("video_id", "word_idx", "word")
        assert [a[k] for k in key] == [b[k] for k in key]
        assert a["start_s"] == pytest.approx(b["start_s"], abs=1e-6)
        assert a["end_s"] == pytest.approx(b["end_s"], abs=1e-6)
    assert got["embeddings"].keys() == want["embeddings"].keys()
    assert got["embeddings"]
    for key, (dim, vec) in want["embeddings"].items():
        other_dim, other = got["embeddings"][key]
        assert other_dim == dim, key
        if vec is None:
            assert other is None, key
        else:
            assert other.shape == vec.shape, key
            np.testing.assert_allclose(other, vec, rtol=1e-4, atol=1e-5, err_msg=str(key))

    # every row was written by a Dask worker process, and by more than one of them
    runs = Warehouse(dask_root).rows(
        "SELECT stage, pid, started_at, finished_at FROM stage_runs WHERE status = 'done'"
    )
    pids = {r["pid"] for r in runs}
    assert os.getpid() not in pids
    assert len(pids) >= 2, pids
    # the limits held across the processes: one scene decode and one transcription at once
    # (the defaults), at most crawl.concurrency = 2 downloads
    limits = {"scenes": 1, "asr": 1, "crawl": 2}
    for stage, limit in limits.items():
        spans = [(r["started_at"], r["finished_at"]) for r in runs if r["stage"] == stage]
        assert len(spans) == n
        assert most_at_once(spans) <= limit, stage
