"""The `crawl` flow: discover candidates per source, then one task per video, a few at a time
(`crawl.concurrency`), where `prefect.task_runner` says (flows/scaleout.py). A local-folder
source (`path`) is imported instead (`chfen.ingest.import_source`: its new and changed files).

One bad video never fails the flow: each task returns an Outcome, failures are recorded in
the warehouse by the stage itself.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from chfen.config import Settings, SourceConfig
from chfen.crawl import Candidate, Crawler
from chfen.crawl.crawler import STAGE, STAGE_VERSION
from chfen.stages import Outcome, StageError
from flows import scaleout
from flows.runtime import ResolvedSettings, UsageError, locked, report, resolve_settings
from warehouse import Warehouse


def check_source(settings: Settings, only: str | None) -> None:
    """Raise `UsageError` when `only` names no enabled source (with none configured: no
    channel of the demo site). Cheap: the demo site's channels come from its plan, nothing is
    rendered, so a mistyped `--source` fails before any server starts."""
    if only is None:
        return
    if settings.sources:
        if not any(s.enabled and s.name == only for s in settings.sources):
            names = ", ".join(s.name for s in settings.sources)
            raise UsageError(f"no enabled source named {only!r}; configured: {names}")
        return
    from chfen.demo.catalogue import plan_catalogue

    channels = [u.handle for u in plan_catalogue(settings.demo_site).uploaders]
    if only not in channels:
        raise UsageError(f"the demo site has no channel {only!r}; `chfen demo-site` lists them")


@contextlib.contextmanager
def crawl_sources(settings: Settings, only: str | None = None) -> Iterator[list[SourceConfig]]:
    """The configured sources; with none configured, the local demo site for the duration."""
    check_source(settings, only)  # before the demo catalogue is rendered
    if settings.sources:
        yield [s for s in settings.sources if s.enabled and (only is None or s.name == only)]
        return
    from chfen.demo import resolve_cache_dir, serve_demo_site

    cache = resolve_cache_dir(settings.demo_site, settings.data_path)
    with serve_demo_site(settings.demo_site, cache, show_progress=True) as site:
        sources = [SourceConfig(name=name, url=url) for name, url in site.feed_urls.items()]
        if only is not None:
            sources = [s for s in sources if s.name == only]
            if not sources:  # the plan listed it (check_source): the site must serve it
                raise UsageError(f"the demo site has no channel {only!r}")
        yield sources


@task(name="import-folder", cache_policy=NO_CACHE)
def import_folder_source(settings: Settings, source: SourceConfig) -> dict:
    """A local-folder source (`path`): its new and changed files, as `chfen import` does."""
    from chfen.ingest import import_source

    logger = get_run_logger()
    wh = Warehouse(settings.data_path)
    r = import_source(wh, source, crawl=settings.crawl, say=logger.info)
    return {
        "new": len(r.new),
        "changed": len(r.changed),
        "unchanged": len(r.unchanged),
        "removed": len(r.removed),
        "audio_only": r.audio_only,
        "votes": r.votes,
    }


@task(name="discover", cache_policy=NO_CACHE)
def discover(
    crawler: Crawler, source: SourceConfig, retry_kinds: list[str] | None = None
) -> tuple[list[Candidate], dict[str, int], StageError | None]:
    """A source's new candidates and counts, or the error that stopped its discovery
    (returned, not raised: a dead source is a recorded failure, not a task traceback)."""
    try:
        return crawler.discover(source, retry_kinds), dict(crawler.last_discovery), None
    except StageError as exc:
        return [], {}, exc


def record_source(
    wh: Warehouse,
    source: SourceConfig,
    *,
    seen: int | None,
    error: StageError | str | None = None,
) -> None:
    """The source's row in `sources` (one per discovery), and a failure row when it failed."""
    now = dt.datetime.now(dt.UTC)
    where = source.url if source.url is not None else Path(source.path or "").resolve().as_uri()
    message = error.message if isinstance(error, StageError) else error
    wh.append(
        "sources",
        [
            {
                "name": source.name,
                "url": where,
                "kind": "folder" if source.is_folder else "feed",
                "enabled": source.enabled,
                "updated_at": now,
                "status": "failed" if error is not None else "ok",
                "items_seen": seen,
                "error": message,
            }
        ],
        refresh_catalog=False,
    )
    if error is not None:
        wh.append(
            "failures",
            [
                {
                    "video_id": f"source:{source.name}",
                    "stage": STAGE,
                    "failed_at": now,
                    "stage_version": str(STAGE_VERSION),
                    "source": source.name,
                    "url": where,
                    "error_kind": error.kind if isinstance(error, StageError) else "unsupported",
                    "error": f"source {source.name}: {message}",
                    "transient": error.transient if isinstance(error, StageError) else False,
                }
            ],
            refresh_catalog=False,
        )


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


def summarize(
    outcomes: list[Outcome],
    source_errors: list[str],
    imported: dict[str, dict] | None = None,
    discovered: dict[str, dict[str, int]] | None = None,
) -> dict:
    new = [o for o in outcomes if o.ok and o.note != "already crawled"]
    failed = [o for o in outcomes if not o.ok]
    found = list((discovered or {}).values())
    return {
        "imported": imported or {},  # local-folder source -> its import's counts
        "sources": discovered or {},  # url source -> what its discovery listed and skipped
        "candidates": len(outcomes),
        "downloaded": len(new),
        # pages known before this run (skipped at discovery) and ones that turned out known
        "already_known": sum(d.get("known", 0) for d in found)
        + sum(1 for o in outcomes if o.note == "already crawled"),
        "failed_before": sum(d.get("failed_before", 0) for d in found),
        "retried": sum(d.get("retrying", 0) for d in found),
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
    retry_failed: list[str] | None = None,
) -> dict:
    """Crawl every enabled source (or one, by name) into the warehouse. Pages that failed
    before are tried again when due (`Crawler.known_urls`) or when `retry_failed` names their
    kind ("all" for every kind)."""
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
        imported: dict[str, dict] = {}
        discovered: dict[str, dict[str, int]] = {}
        for src in sources:
            if src.is_folder:
                # a local folder: imported whole here (new and changed files; a bad file or
                # label is this source's error, nothing of it written)
                from chfen.ingest import DatasetImportError, LabelsError

                try:
                    imported[src.name] = counts = import_folder_source(settings, src)
                except (DatasetImportError, LabelsError) as exc:
                    logger.error("source %s: %s", src.name, exc)
                    source_errors.append(f"{src.name}: {exc}")
                    record_source(wh, src, seen=None, error=str(exc))
                    continue
                seen = sum(counts[k] for k in ("new", "changed", "unchanged"))
                record_source(wh, src, seen=seen)
                continue
            found, counts, error = discover(crawler, src, retry_failed)
            if error is not None:
                logger.error("source %s: %s (%s)", src.name, error.message, error.kind)
                source_errors.append(f"{src.name}: {error.message}")
                record_source(wh, src, seen=None, error=error)
                continue
            record_source(wh, src, seen=counts.get("seen"))
            discovered[src.name] = counts
            logger.info(
                "source %s: %d new candidate(s) (%d listed, %d known, %d failed before, "
                "%d of them tried again)", src.name, len(found), counts.get("seen", 0),
                counts.get("known", 0), counts.get("failed_before", 0), counts.get("retrying", 0),
            )  # fmt: skip
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
    summary = summarize(outcomes, source_errors, imported, discovered)
    logger.info(
        "crawl: %d new, %d known, %d failed", summary["downloaded"], summary["already_known"],
        summary["failed"],
    )  # fmt: skip
    return summary
