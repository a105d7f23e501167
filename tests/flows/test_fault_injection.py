"""Fault injection: `chfen crawl` and `chfen process` SIGKILLed at random moments, several
times, then a normal run. What must hold after (issue 18): no duplicate latest rows, no media
folder without its video (nor a partial download), the ledger agrees with the tables, no
process of ours left running, and the final run completes the work."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chfen.demo import DemoSite
from warehouse import Warehouse

KILLS = {"crawl": 2, "process": 1}
SEED = 18


def _ours(marker: str) -> list[str]:
    """Command lines of live processes that mention `marker` (our temporary folder)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            env = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if marker in cmd or marker.encode() in env:
            found.append(f"{pid}: {cmd[:120]}")
    return found


@pytest.mark.slow
def test_random_sigkills_then_a_normal_run(
    tmp_path: Path, demo_site: DemoSite, prefect_api_url: str
) -> None:
    from flows.crawl import crawl_flow
    from flows.process import process_flow

    rng = random.Random(SEED)
    root = tmp_path / "data"
    channels = sorted(demo_site.feed_urls)[:2]  # a few videos: minutes, not tens of them
    feeds = ", ".join(f'{{name: "{n}", url: "{demo_site.feed_urls[n]}"}}' for n in channels)
    overrides = [
        f"data_root={root}",
        f"sources=[{feeds}]",
        "crawl.concurrency=1",
        "warehouse.commit_videos=1",  # a commit per video: the kills fall between commits
    ]
    marker = str(tmp_path)
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect-cli"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    env.pop("PREFECT_API_URL", None)  # with `env` a run starts its own embedded Prefect server
    # The crawl runs report to the session's server (as with `chfen prefect start`): no
    # embedded server to start, 10-20 s each on 2 cores. The process run keeps its own, so a
    # server is among the children that must die with a randomly killed run (test_children
    # kills one at a set moment).
    shared = {**env, "PREFECT_API_URL": prefect_api_url}
    cmd = [str(Path(sys.executable).parent / "chfen")]
    for item in overrides:
        cmd += ["--set", item]
    wh = Warehouse(root)
    killed = []
    for command, times in KILLS.items():
        table = "videos" if command == "crawl" else "scenes"
        for _ in range(times):
            start = wh.version(table)
            proc = subprocess.Popen(
                [*cmd, command], env=env if command == "process" else shared,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            deadline = time.monotonic() + 240
            # wait for this run's first commit, then kill it a random moment later
            while (
                wh.version(table) <= start and proc.poll() is None and time.monotonic() < deadline
            ):
                time.sleep(0.1)
            time.sleep(rng.uniform(0.2, 2.5))
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)  # the parent only: its children must follow
                killed.append(command)
            proc.wait()
    assert killed, "every run finished before it could be killed"
    deadline = time.monotonic() + 20
    while _ours(marker) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _ours(marker) == [], "a child of a killed run is still running"

    good = {v["id"] for v in demo_site.ground_truth["videos"] if v["uploader"] in channels}
    crawl = crawl_flow(overrides=overrides)
    assert crawl["failed"] == 0
    process = process_flow(overrides=overrides)
    assert process["scenes"]["failed"] == 0 and process["asr"]["failed"] == 0

    # no duplicate latest rows
    for table, key in (("videos", "video_id"), ("scenes", "video_id, scene_idx")):
        rows = wh.rows(f"SELECT count(*) AS n, count(DISTINCT ({key})) AS d FROM {table}_latest")
        assert rows[0]["n"] == rows[0]["d"], table
    ids = {r["video_id"] for r in wh.rows("SELECT video_id FROM videos_latest")}
    assert len(ids) == len(good)
    # media: one folder per video, nothing partial
    media = root / "media"
    assert {p.name for p in media.iterdir() if not p.name.startswith(".")} == ids
    assert not list(media.rglob("*.part")) and not list(media.rglob("*.tmp*"))
    # the ledger agrees with the tables: every video done at every stage, with its rows
    for stage in ("crawl", "scenes", "asr"):
        done = {
            r["video_id"]
            for r in wh.rows(
                "SELECT video_id FROM stage_runs_latest WHERE stage = ? AND status = 'done'",
                [stage],
            )
        }
        assert done == ids, stage
    with_scenes = {r["video_id"] for r in wh.rows("SELECT DISTINCT video_id FROM scenes")}
    assert with_scenes == ids
    # and a last run finds nothing to do
    assert crawl_flow(overrides=overrides)["downloaded"] == 0
    again = process_flow(overrides=overrides)
    assert again["scenes"]["done"] == 0 and again["asr"]["done"] == 0
