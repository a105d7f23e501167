"""One writer per stage per data root (issue 18, point 2): two real `chfen crawl` commands on
one data root download each video once, and the one that waited names the holder; a run that
cannot get the lock in time fails with exit 1 naming it. Real console commands against the
session's Prefect API, real demo site, real warehouse."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from chfen import procs
from chfen.demo import DemoSite
from warehouse import DataRoot, Warehouse


def _feeds(site: DemoSite) -> str:
    items = ", ".join(f'{{name: "{n}", url: "{u}"}}' for n, u in site.feed_urls.items())
    return f"[{items}]"


def _env() -> dict[str, str]:
    """The console commands report to the session's Prefect API (no server start each)."""
    from prefect.settings import get_current_settings

    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.pop("CHFEN_CONFIG", None)
    env["PREFECT_API_URL"] = str(get_current_settings().api.url)
    env["COLUMNS"] = "300"  # one log record per line
    return env


def _crawl(root: Path, site: DemoSite, *more: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "flows.cli", "--set", f"data_root={root}"]
    for item in (f"sources={_feeds(site)}", "crawl.concurrency=2", *more):
        cmd += ["--set", item]
    return subprocess.Popen(
        [*cmd, "crawl"], env=_env(), cwd=root.parent, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def test_two_crawls_on_one_root_download_each_video_once(
    tmp_path: Path, demo_site: DemoSite, prefect_harness: None
) -> None:
    root = tmp_path / "data"
    first, second = _crawl(root, demo_site), _crawl(root, demo_site)
    outs = [p.communicate(timeout=300)[0] for p in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outs
    wh = Warehouse(root)
    good = [v for v in demo_site.ground_truth["videos"] if v["channel"] != "hardcases"]
    # raw rows, every version: nothing was downloaded, verified or recorded twice
    assert wh.count("videos") == len(good)
    crawl_rows = wh.rows("SELECT video_id FROM stage_runs WHERE stage = 'crawl'")
    assert len(crawl_rows) == len(good) == len({r["video_id"] for r in crawl_rows})
    # the crawl committed its videos in a batch (warehouse.commit_videos), not a file each
    assert len(wh.live_files("videos")[1]) < len(good)
    # the run that waited said for whom: pid, host, command and since when
    waited = [
        (out, other) for out, other in zip(outs, (second, first), strict=True) if "waiting" in out
    ]
    assert len(waited) == 1, outs
    out, holder = waited[0]
    assert f"the crawl stage of {root} is in use by pid {holder.pid}" in out
    assert f"on host {socket.gethostname()}" in out and "crawl, since" in out


def test_a_run_that_cannot_get_the_lock_in_time_fails_naming_the_holder(
    tmp_path: Path, demo_site: DemoSite, prefect_harness: None
) -> None:
    root = tmp_path / "data"
    lock = DataRoot(root).run_dir("locks", "crawl.lock")
    with procs.exclusive(lock, "the crawl stage", wait_s=0):
        run = _crawl(root, demo_site, "prefect.stage_lock_wait_s=1")
        out = run.communicate(timeout=120)[0]
    assert run.returncode == 1, out
    assert f"is in use by pid {os.getpid()} on host {socket.gethostname()}" in out
    assert "prefect.stage_lock_wait_s" in out and "Traceback" not in out
    assert Warehouse(root).count("videos") == 0
