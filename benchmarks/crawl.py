"""Crawl benchmark: crawl the 24-video demo site with real yt-dlp into a fresh warehouse.

    .venv/bin/python -m benchmarks.crawl [--videos 24] [--workers 2] [--out FILE]

Reports videos per minute (download + verify-by-decoding + probe + audio + warehouse rows),
peak RSS, and the time of a second crawl that finds nothing new. The demo catalogue is
generated (or taken from its cache) before the clock starts. Prints a table, writes JSON.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rich.console import Console
from rich.table import Table

from chfen.config import CrawlConfig, DemoSiteConfig, SourceConfig
from chfen.crawl import Crawler
from chfen.demo import serve_demo_site
from warehouse import Warehouse


def peak_rss_mib() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # ffmpeg/ffprobe
    return max(own, kids) / 1024


def crawl(wh: Warehouse, sources: list[SourceConfig], workers: int) -> tuple[int, int, float]:
    t0 = time.perf_counter()
    crawler = Crawler(CrawlConfig(concurrency=workers), wh)
    candidates = [c for s in sources for c in crawler.discover(s)]
    with ThreadPoolExecutor(workers) as pool:
        outcomes = list(pool.map(crawler.crawl, candidates))
    wh.refresh_catalog()
    return len(candidates), sum(o.ok for o in outcomes), time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=24)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cache", type=Path, default=Path("data/demo_site"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/crawl.json"))
    args = ap.parse_args()
    console = Console()
    cfg = DemoSiteConfig(port=0, n_videos=args.videos)
    with (
        serve_demo_site(cfg, args.cache, show_progress=True) as site,
        tempfile.TemporaryDirectory(prefix="chfen-crawl-bench-") as tmp,
    ):
        sources = [SourceConfig(name=n, url=u) for n, u in site.feed_urls.items()]
        wh = Warehouse(Path(tmp) / "data")
        found, ok, first_s = crawl(wh, sources, args.workers)
        again_found, _, second_s = crawl(wh, sources, args.workers)
        media_mb = sum(p.stat().st_size for p in (Path(tmp) / "data" / "media").rglob("*"))
    result = {
        "benchmark": "crawl",
        "catalogue_videos": args.videos,
        "candidates": found,
        "videos_ok": ok,
        "workers": args.workers,
        "first_crawl_s": first_s,
        "videos_per_minute": ok / first_s * 60,
        "second_crawl_s": second_s,
        "second_crawl_candidates": again_found,
        "media_mib": media_mb / 2**20,
        "peak_rss_mib": peak_rss_mib(),
    }
    table = Table(title=f"Crawl benchmark: demo site, {args.workers} workers")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("videos crawled (incl. 2 re-uploads)", f"{ok} of {found}")
    table.add_row("first crawl", f"{first_s:.1f} s")
    table.add_row("throughput", f"{result['videos_per_minute']:.1f} videos/min")
    table.add_row("second crawl (nothing new)", f"{second_s:.2f} s ({again_found} candidates)")
    table.add_row("media written", f"{result['media_mib']:.0f} MiB")
    table.add_row("peak RSS (max of process, ffmpeg)", f"{result['peak_rss_mib']:.0f} MiB")
    console.print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
