"""The `crawl` flow: discover candidates per source, then one task per video, a few at a time
(`crawl.concurrency`), where `prefect.task_runner` says (flows/scaleout.py).

One bad video never fails the flow: each task returns an Outcome, failures are recorded in
the warehouse by the stage itself.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from chfen.config import Settings, SourceConfig
from chfen.crawl import Candidate, Crawler
from chfen.crawl.crawler import STAGE
from chfen.stages import Outcome, StageError
from flows import scaleout
from flows.runtime import ResolvedSettings, UsageError, locked, report, resolve_settings
from warehouse import Warehouse


@contextlib.contextmanager
def crawl_sources(settings: Settings, only: str | None = None) -> Iterator[list[SourceConfig]]:
    """The configured sources; with none configured, the local demo site for the duration."""
    if settings.sources:
        chosen = [s for s in settings.sources if s.enabled and (only is None or s.name == only)]
        if only is not None and not chosen:
            names = ", ".join(s.name for s in settings.sources)
            raise UsageError(f"no enabled source named {only!r}; configured: {names}")
        yield chosen
        return
    from chfen.demo import resolve_cache_dir, serve_demo_site

    cache = resolve_cache_dir(settings.demo_site, settings.data_path)
    with serve_demo_site(settings.demo_site, cache, show_progress=True) as site:
        sources = [SourceConfig(name=name, url=url) for name, url in site.feed_urls.items()]
        if only is not None:
            sources = [s for s in sources if s.name == only]
            if not sources:
                raise UsageError(f"the demo site has no channel {only!r}")
        yield sources


@task(name="discover", cache_policy=NO_CACHE)
def discover(crawler: Crawler, source: SourceConfig) -> list[Candidate]:
    return crawler.discover(source)


def worker_crawler(payload: str) -> Crawler:
    """This process's Crawler for these settings."""
    return scaleout.cached(
        ("crawler", payload),
        lambda: Crawler(scaleout.worker_settings(payload).crawl, scaleout.warehouse(payload)),
    )


@task(name="crawl-video", cache_policy=NO_CACHE)
def crawl_video(settings: str, candidate: Candidate) -> Outcome:
    """One candidate to a verified video or a recorded failure; `settings` is the flow's
    `scaleout.settings_payload`."""
    return worker_crawler(settings).crawl(candidate)


def summarize(outcomes: list[Outcome], source_errors: list[str]) -> dict:
    new = [o for o in outcomes if o.ok and o.note != "already crawled"]
    failed = [o for o in outcomes if not o.ok]
    return {
        "candidates": len(outcomes),
        "downloaded": len(new),
        "already_known": sum(1 for o in outcomes if o.note == "already crawled"),
        "failed": len(failed),
        "failed_by_kind": dict(Counter(o.kind for o in failed)),
        "failures": [{"video_id": o.video_id, "kind": o.kind, "reason": o.message} for o in failed],
        "source_errors": source_errors,
        "seconds": round(sum(o.seconds for o in new), 2),
    }


@flow(name="crawl", log_prints=False)
@locked(STAGE)
def crawl_flow(
    settings_file: str | None = None,
    overrides: list[str] | None = None,
    source: str | None = None,
    settings: ResolvedSettings = None,
) -> dict:
    """Crawl every enabled source (or one, by name) into the warehouse."""
    logger = get_run_logger()
    settings = resolve_settings(settings, settings_file, overrides)
    wh = Warehouse(settings.data_path)
    payload = scaleout.settings_payload(settings)
    crawler = worker_crawler(payload)  # with the thread runner, the one the tasks use
    stale = crawler.remove_stale_partials()
    if stale:
        logger.info("removed %d partial download(s) left by an interrupted crawl", stale)
    source_errors: list[str] = []
    with crawl_sources(settings, source) as sources:
        candidates: list[Candidate] = []
        for src in sources:
            try:
                found = discover(crawler, src)
            except StageError as exc:
                logger.error("source %s: %s (%s)", src.name, exc.message, exc.kind)
                source_errors.append(f"{src.name}: {exc.message}")
                continue
            logger.info("source %s: %d new candidate(s)", src.name, len(found))
            candidates.extend(found)
        report("crawl:total", len(candidates))
        outcomes: list[Outcome] = []
        if candidates:
            jobs = [(crawl_video, {"settings": payload, "candidate": c}) for c in candidates]
            # crawl.concurrency downloads at once, whatever the runner's threads or processes
            with (
                scaleout.batched(settings, payload),
                scaleout.task_runner(settings, max_workers=settings.crawl.concurrency) as runner,
            ):
                outcomes = scaleout.run_bounded(
                    runner, {STAGE: jobs}, {STAGE: settings.crawl.concurrency},
                    on_done=lambda _, o: report("crawl:done", o),
                )[STAGE]  # fmt: skip
    wh.refresh_catalog()
    summary = summarize(outcomes, source_errors)
    logger.info(
        "crawl: %d new, %d known, %d failed", summary["downloaded"], summary["already_known"],
        summary["failed"],
    )  # fmt: skip
    return summary
