"""The crawl flow in real Prefect, and the `chfen crawl` command killed mid-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from chfen.demo import DemoSite
from warehouse import Warehouse


def feed_sources(site: DemoSite) -> str:
    items = ", ".join(f'{{name: "{n}", url: "{u}"}}' for n, u in site.feed_urls.items())
    return f"[{items}]"


def test_sigkill_during_crawl_then_rerun(
    tmp_path: Path, demo_site: DemoSite, prefect_harness: None
) -> None:
    root = tmp_path / "data"
    overrides = [
        f"data_root={root}",
        f"sources={feed_sources(demo_site)}",
        "crawl.concurrency=1",
        "warehouse.commit_videos=1",  # a commit per video: killed between two of them
    ]
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect-cli"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    env.pop("PREFECT_API_URL", None)  # the CLI run uses its own embedded Prefect
    cmd = [str(Path(sys.executable).parent / "chfen")]
    for item in overrides:
        cmd += ["--set", item]
    proc = subprocess.Popen(
        [*cmd, "crawl"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    wh = Warehouse(root)
    deadline = time.monotonic() + 300
    while wh.version("videos") < 1 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert proc.poll() is None, "the crawl finished before it could be killed"
    time.sleep(0.5)  # well inside the next download
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    landed_before = wh.count("videos")
    good = [v for v in demo_site.ground_truth["videos"] if v["channel"] != "hardcases"]
    assert 1 <= landed_before < len(good)

    from flows.crawl import crawl_flow

    summary = crawl_flow(overrides=overrides)
    assert summary["failed"] == 0
    assert summary["downloaded"] + landed_before >= len(good)
    ids = [r["video_id"] for r in wh.rows("SELECT video_id FROM videos")]
    assert len(ids) == len(set(ids)) == len(good)  # no duplicate rows
    done = wh.rows(
        "SELECT count(*) AS n FROM stage_runs_latest WHERE stage = 'crawl' AND status = 'done'"
    )
    assert done == [{"n": len(good)}]
    media = root / "media"
    partial = media / ".partial"
    assert not partial.exists() or not any(partial.iterdir())  # no partial files left
    assert {p.name for p in media.iterdir() if p.name != ".partial"} == set(ids)
    assert not list(media.rglob("*.part")) and not list(media.rglob("*.tmp*"))
    # and a third run finds nothing new
    again = crawl_flow(overrides=overrides)
    assert again["candidates"] == 0 and again["downloaded"] == 0
    assert wh.count("videos") == len(good)
