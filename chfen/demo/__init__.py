"""The local demo short-video site: a seeded catalogue of synthetic videos with ground truth.

It is what the crawl stage (yt-dlp) and every later stage's tests run against:

- `generate_catalogue(cfg, cache_dir)` renders (or loads from cache) the videos, thumbnails and
  `ground_truth.json`;
- `serve_demo_site(cfg, cache_dir)` is a context manager yielding a running `DemoSite`
  (`.base_url`, `.feed_urls`, `.hardcases_feed_url`, `.ground_truth`, `.stop()`);
- `run_demo_site(cfg, cache_dir)` generates, prints the URLs and serves until Ctrl-C.
"""

from chfen.demo.catalogue import (
    GENERATOR_VERSION,
    HARDCASES_UPLOADER,
    CataloguePlan,
    VideoSpec,
    plan_catalogue,
)
from chfen.demo.generate import Catalogue, generate_catalogue, resolve_cache_dir
from chfen.demo.render import RenderError
from chfen.demo.server import DEFAULT_STALL_S, DemoSite, run_demo_site, serve_demo_site

__all__ = [
    "DEFAULT_STALL_S",
    "GENERATOR_VERSION",
    "HARDCASES_UPLOADER",
    "Catalogue",
    "CataloguePlan",
    "DemoSite",
    "RenderError",
    "VideoSpec",
    "generate_catalogue",
    "plan_catalogue",
    "resolve_cache_dir",
    "run_demo_site",
    "serve_demo_site",
]
