"""The crawl stage: discover with yt-dlp, download, verify by decoding, probe, extract audio.

One `Crawler` per worker. `discover(source)` lists candidate pages of a source (an RSS channel,
a page or a direct video URL); `crawl(candidate)` takes one candidate to a verified video in
`media/<video_id>/` with a `videos` row, or to one `failures` row with a reason — never both.

Files are downloaded into `media/.partial/<video_id>-<pid>-…/` and renamed into place only
after verification, so a killed crawl never leaves a half-written video where a good one is
expected; the next crawl removes partial folders whose process is gone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yt_dlp
from yt_dlp.networking.exceptions import HTTPError, TransportError
from yt_dlp.utils import DownloadError, UnsupportedError, unsmuggle_url

from chfen import procs, registry
from chfen.config import CrawlConfig, SourceConfig
from chfen.media.probe import MediaError, extract_audio, probe, sha256_file, verify_decodes
from chfen.stages import Outcome, StageError, StageResult, Timer, run_for_video
from warehouse import Warehouse

STAGE = registry.CRAWL
STAGE_VERSION = registry.version(STAGE)
PARTIAL_DIR = ".partial"

log = logging.getLogger("chfen.crawl")


@dataclass(frozen=True)
class Candidate:
    """A page (or direct video URL) found on a source, not yet fetched."""

    source: str
    url: str
    title: str | None = None


def sanitize_id(text: str) -> str:
    """Lowercase `[a-z0-9_-]` only; never empty, never a path."""
    clean = re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9_-]+", "-", text.lower())).strip("-_")
    return clean[:96] or hashlib.sha1(text.encode()).hexdigest()[:12]


def video_id_for(info: dict[str, Any]) -> str:
    """Platform/extractor key + platform id, sanitized (never a title), e.g. `generic-v0003`."""
    extractor = info.get("extractor_key") or info.get("extractor") or "url"
    return sanitize_id(f"{extractor}-{info.get('id') or info.get('webpage_url')}")


def url_id(url: str) -> str:
    """Id for a URL that failed before its page told us the platform id."""
    return f"url-{hashlib.sha1(url.encode()).hexdigest()[:12]}"


class _TooLarge(Exception):
    pass


def classify(exc: BaseException) -> tuple[str, str, bool]:
    """(kind, readable reason, transient?) for an error raised by yt-dlp or the network."""
    cause: BaseException | None = exc
    if isinstance(exc, DownloadError) and exc.exc_info and exc.exc_info[1] is not None:
        cause = exc.exc_info[1]
    seen = 0
    while cause is not None and seen < 5:
        if isinstance(cause, _TooLarge):
            return "limit", str(cause), False
        if isinstance(cause, HTTPError):
            status = cause.status
            transient = status >= 500 or status in (408, 429)
            return "http", f"the server answered HTTP {status} ({cause.reason})", transient
        if isinstance(cause, UnsupportedError):
            return "unsupported", "yt-dlp found no video on this page", False
        if isinstance(cause, TimeoutError) or "timed out" in str(cause).lower():
            return "timeout", "the server stopped answering (socket timeout)", True
        if isinstance(cause, TransportError | ConnectionError):
            return "network", f"network error: {cause}", True
        seen += 1
        cause = cause.__cause__ or cause.__context__
    text = str(exc)
    if "HTTP Error 404" in text or "HTTP Error 403" in text or "HTTP Error 410" in text:
        return "http", re.sub(r"^ERROR:\s*", "", text), False
    if "timed out" in text.lower():
        return "timeout", "the server stopped answering (socket timeout)", True
    return "network", re.sub(r"^ERROR:\s*", "", text), True


class Crawler:
    """Settings in `__init__`, one candidate per `crawl` call; safe to share between threads."""

    def __init__(self, cfg: CrawlConfig, wh: Warehouse):
        self.cfg = cfg
        self.wh = wh
        self.media_root = wh.root.media_dir()
        self.partial_root = self.media_root / PARTIAL_DIR
        self._last_fetch: dict[str, float] = {}
        self._polite = threading.Lock()
        self._retrying: set[str] = set()
        self.last_discovery: dict[str, int] = {}

    # ---- yt-dlp -----------------------------------------------------------------------------

    def _ydl_opts(self, **extra: Any) -> dict[str, Any]:
        return {
            "quiet": True,
            "no_warnings": True,
            "noprogress": True,
            "cachedir": False,  # nothing written outside the media root
            "socket_timeout": self.cfg.socket_timeout_s,
            "retries": 0,  # retries are ours: transient errors only, with back-off
            "fragment_retries": 0,
            "extractor_retries": 0,
            "noplaylist": True,
            "logger": _QuietLogger(),
            **extra,
        }

    def _with_retries(self, what: str, fn: Callable[[], Any]) -> Any:
        attempt = 0
        while True:
            try:
                return fn()
            except (DownloadError, TransportError, OSError, _TooLarge) as exc:
                kind, reason, transient = classify(exc)
                if not transient or attempt >= self.cfg.retries:
                    if transient and attempt:
                        reason += f" (after {attempt + 1} attempts)"
                    raise _Failure(kind, reason, transient) from exc
                delay = self.cfg.retry_backoff_s * (2**attempt)
                log.info("%s: %s; retrying in %.1f s", what, reason, delay)
                time.sleep(delay)
                attempt += 1

    def discover(
        self, source: SourceConfig, retry_kinds: Iterable[str] | None = None
    ) -> list[Candidate]:
        """Candidate pages of a source, in the source's order, skipping known pages (see
        `known_urls` for which failed pages are tried again). How many entries the source
        listed and why some were skipped: `last_discovery`."""
        if source.url is None:  # a local folder: `chfen.ingest.import_source` takes it
            raise StageError(
                f"source:{source.name}", "discover",
                "a local folder (path) is imported, not crawled: chfen.ingest.import_source",
                "internal",
            )  # fmt: skip

        url = source.url
        if not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://\S+$", url):
            raise StageError(
                f"source:{source.name}", "discover",
                f"{url!r} is not a URL (expected e.g. https://host/feed.xml)", "unsupported",
            )  # fmt: skip

        def extract() -> dict[str, Any]:
            with yt_dlp.YoutubeDL(self._ydl_opts(extract_flat="in_playlist")) as ydl:
                return ydl.extract_info(url, download=False)

        try:
            info = self._with_retries(source.name, extract)
        except _Failure as exc:
            raise StageError(
                f"source:{source.name}", "discover", exc.reason, exc.kind, transient=exc.transient
            ) from None
        entries = info.get("entries") if info.get("_type") == "playlist" else [info]
        candidates = []
        for entry in entries or []:
            url = entry.get("url") or entry.get("webpage_url")
            if url:
                # feed entries carry yt-dlp's private hints in the URL fragment; keep the page
                url, _ = unsmuggle_url(url)
                candidates.append(Candidate(source.name, url, entry.get("title")))
        done, failed = self.known_urls(retry_kinds)
        fresh = [c for c in candidates if c.url not in done and c.url not in failed]
        limit = source.max_videos or self.cfg.max_videos_per_source
        chosen = fresh[:limit] if limit else fresh
        urls = {c.url for c in candidates}
        self.last_discovery = {
            "seen": len(candidates),
            "known": len(urls & done),
            "failed_before": len(urls & failed),
            "retrying": sum(1 for c in chosen if c.url in self._retrying),
        }
        return chosen

    def known_urls(self, retry_kinds: Iterable[str] | None = None) -> tuple[set[str], set[str]]:
        """(pages that already gave a video, pages that failed and are not tried again yet).

        A failed page is tried again (left out of the second set) when its failure was
        transient (timeout, network, HTTP 5xx) and `crawl.retry_transient_after_s` has passed
        since, doubling with each failure, at most `crawl.max_transient_retries` times; when
        it hit a limit and the limits changed since; or when `retry_kinds` names its kind
        ("all": every kind: `chfen crawl --retry-failed`)."""
        # a page is known once its video row *and* its ledger entry are in: a crawl killed
        # between the two commits (rows first, ledger last) leaves a row whose page is
        # fetched again and its bookkeeping finished (`crawl`, `_landed_before`)
        done = {
            r["url"]
            for r in self.wh.rows(
                """
                SELECT v.webpage_url AS url FROM videos_latest v
                WHERE v.status = 'ok' AND EXISTS (
                    SELECT 1 FROM stage_runs_latest s WHERE s.video_id = v.video_id
                      AND s.stage = $stage AND s.status = 'done')
                """,
                {"stage": STAGE},
            )
        }
        rows = self.wh.rows(
            """
            SELECT f.url, arg_max(f.error_kind, f.failed_at) AS kind,
                   arg_max(f.transient, f.failed_at) AS transient,
                   arg_max(f.limits, f.failed_at) AS limits,
                   max(f.failed_at) AS failed_at, count(*) AS n
            FROM failures f
            WHERE f.stage = $stage AND f.stage_version = $version AND f.url IS NOT NULL
              AND EXISTS (SELECT 1 FROM stage_runs_latest s WHERE s.video_id = f.video_id
                  AND s.stage = $stage AND s.stage_version = $version AND s.status = 'failed')
            GROUP BY f.url
            """,
            {"stage": STAGE, "version": STAGE_VERSION},
        )
        kinds = set(retry_kinds or ())
        now = dt.datetime.now(dt.UTC)
        failed: set[str] = set()
        self._retrying: set[str] = set()
        for r in rows:
            if r["url"] in done:
                continue
            if self._retry_now(r, kinds, now):
                self._retrying.add(r["url"])
            else:
                failed.add(r["url"])
        return done, failed

    def _retry_now(self, failure: Mapping[str, Any], kinds: set[str], now: dt.datetime) -> bool:
        """Whether a page's latest failure (`known_urls`' row) is due to be tried again."""
        if "all" in kinds or failure["kind"] in kinds:
            return True
        if failure["kind"] == "limit":
            return failure["limits"] is not None and failure["limits"] != self.cfg.limits_key()
        transient = failure["transient"]
        if transient is None:  # recorded before the column: the kinds that always are
            transient = failure["kind"] in ("timeout", "network")
        if not transient or failure["n"] > self.cfg.max_transient_retries:
            return False
        wait = self.cfg.retry_transient_after_s * 2 ** (failure["n"] - 1)
        failed_at = failure["failed_at"]
        if failed_at.tzinfo is None:
            failed_at = failed_at.replace(tzinfo=dt.UTC)
        return (now - failed_at).total_seconds() >= wait

    # ---- one candidate ------------------------------------------------------------------------

    def crawl(self, cand: Candidate) -> Outcome:
        """Take one candidate to a verified video, or to one recorded failure."""
        self._be_polite(cand.source)
        try:
            info = self._with_retries(cand.url, lambda: self._extract(cand.url))
        except _Failure as exc:
            vid = url_id(cand.url)
            self.wh.mark_failed(
                vid, STAGE, STAGE_VERSION, exc.reason, error_kind=exc.kind,
                source=cand.source, url=cand.url, transient=exc.transient,
                limits=self.cfg.limits_key(),
            )  # fmt: skip
            return Outcome(vid, STAGE, False, exc.kind, exc.reason)
        vid = video_id_for(info)
        if self.wh.stage_status(vid, STAGE, STAGE_VERSION) == "done":
            return Outcome(vid, STAGE, True, note="already crawled")
        if self._landed_before(vid):
            # A crawl killed between writing the row and the ledger: finish its bookkeeping.
            self.wh.mark_done(vid, STAGE, STAGE_VERSION, {"recovered": 0.0})
            return Outcome(vid, STAGE, True, note="already crawled")
        return run_for_video(
            self.wh, STAGE, STAGE_VERSION, vid,
            lambda v: self._download(v, info, cand),
            source=cand.source, url=cand.url, limits=self.cfg.limits_key(),
        )  # fmt: skip

    def _landed_before(self, vid: str) -> bool:
        rows = self.wh.rows(
            "SELECT media_path FROM videos_latest WHERE video_id = ? AND status = 'ok'", [vid]
        )
        return bool(rows) and (self.media_root / rows[0]["media_path"]).exists()

    def _extract(self, url: str) -> dict[str, Any]:
        with yt_dlp.YoutubeDL(self._ydl_opts()) as ydl:
            info = ydl.extract_info(url, download=False)
        if info.get("_type") == "playlist":
            raise _Failure("unsupported", "the URL is a playlist, not one video")
        return info

    def _be_polite(self, source: str) -> None:
        if not self.cfg.politeness_delay_s:
            return
        with self._polite:
            wait = self._last_fetch.get(source, 0) + self.cfg.politeness_delay_s - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._last_fetch[source] = time.monotonic()

    def _check_limits(self, vid: str, info: dict[str, Any]) -> None:
        duration = info.get("duration")
        if duration and duration > self.cfg.max_duration_s:
            raise StageError(
                vid, STAGE,
                f"video is {duration:.0f} s long; the limit is crawl.max_duration_s = "
                f"{self.cfg.max_duration_s:.0f} s",
                "limit",
            )  # fmt: skip
        size = info.get("filesize") or info.get("filesize_approx")
        if size and size > self.max_bytes:
            raise StageError(vid, STAGE, self._too_large_reason(size), "limit")

    @property
    def max_bytes(self) -> int:
        return int(self.cfg.max_filesize_mb * 1024 * 1024)

    def _too_large_reason(self, size: int | None = None) -> str:
        seen = f" ({size / 1024 / 1024:.1f} MB received)" if size else ""
        return f"file is larger than crawl.max_filesize_mb = {self.cfg.max_filesize_mb:g} MB{seen}"

    def _download(self, vid: str, info: dict[str, Any], cand: Candidate) -> StageResult:
        self._check_limits(vid, info)
        timer = Timer()
        self.partial_root.mkdir(parents=True, exist_ok=True)
        tmp = self.partial_root / f"{vid}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            return self._download_into(vid, info, cand, tmp, timer)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _download_into(
        self, vid: str, info: dict[str, Any], cand: Candidate, tmp: Path, timer: Timer
    ) -> StageResult:
        max_bytes = self.max_bytes

        def guard(progress: dict[str, Any]) -> None:
            # yt-dlp's max_filesize trusts Content-Length; count the bytes as they arrive.
            got = progress.get("downloaded_bytes") or 0
            if got > max_bytes:
                raise _TooLarge(self._too_large_reason(got))

        opts = self._ydl_opts(
            outtmpl={"default": str(tmp / "video.%(ext)s")},
            writeinfojson=True,
            format="best[ext=mp4]/best",
            max_filesize=max_bytes,
            progress_hooks=[guard],
            overwrites=True,
        )

        def fetch() -> None:
            for leftover in tmp.iterdir():
                leftover.unlink()
            with yt_dlp.YoutubeDL(opts) as ydl:
                ydl.process_ie_result(dict(info), download=True)

        with timer("download"):
            try:
                self._with_retries(vid, fetch)
            except _Failure as exc:
                raise StageError(
                    vid, STAGE, exc.reason, exc.kind, transient=exc.transient
                ) from None
        videos = [p for p in tmp.glob("video.*") if p.suffix not in (".json", ".part", ".ytdl")]
        if not videos:
            # yt-dlp skips a file over max_filesize without an error
            raise StageError(vid, STAGE, self._too_large_reason(), "limit")
        video = videos[0]
        with timer("verify"):
            try:
                facts = probe(video)
                decoded = verify_decodes(video, facts)
            except MediaError as exc:
                raise StageError(vid, STAGE, str(exc), "corrupt") from None
            claimed = info.get("duration")
            if claimed and abs(facts.duration_s - claimed) > max(1.0, 0.05 * claimed):
                raise StageError(
                    vid, STAGE,
                    f"the page says {claimed:.1f} s but the file holds {facts.duration_s:.1f} s",
                    "corrupt",
                )  # fmt: skip
            if facts.duration_s > self.cfg.max_duration_s:
                raise StageError(
                    vid, STAGE,
                    f"video is {facts.duration_s:.0f} s long; the limit is "
                    f"crawl.max_duration_s = {self.cfg.max_duration_s:.0f} s",
                    "limit",
                )  # fmt: skip
        audio = None
        if facts.has_audio:
            with timer("audio"):
                try:
                    audio = extract_audio(video, tmp / "audio.wav", self.cfg.audio_sample_rate)
                except MediaError as exc:
                    raise StageError(vid, STAGE, str(exc), "corrupt") from None
        with timer("hash"):
            digest = sha256_file(video)
        dest = self.media_root / vid
        info_json = next(tmp.glob("*.info.json"), None)
        with timer("commit_files"):
            if dest.exists():
                shutil.rmtree(dest)
            os.replace(tmp, dest)

        def rel(p: Path | None) -> str | None:
            return f"{vid}/{p.name}" if p is not None else None

        now = dt.datetime.now(dt.UTC)
        upload = info.get("upload_date")
        row = {
            "video_id": vid,
            "source": cand.source,
            "extractor": info.get("extractor_key") or info.get("extractor"),
            "platform_id": str(info.get("id")),
            "url": info.get("url"),
            "webpage_url": cand.url,
            "title": info.get("title"),
            "description": info.get("description"),
            "tags": list(info.get("tags") or []),
            "uploader": info.get("uploader"),
            "uploader_id": info.get("uploader_id") or info.get("channel_id"),
            "upload_date": dt.datetime.strptime(upload, "%Y%m%d").date() if upload else None,
            "duration_s": facts.duration_s,
            "width": facts.width,
            "height": facts.height,
            "fps": facts.fps,
            "frame_count": decoded.frames,
            "variable_fps": facts.variable_fps,
            "has_audio": facts.has_audio,
            "video_codec": facts.video_codec,
            "audio_codec": facts.audio_codec,
            "view_count": info.get("view_count"),
            "like_count": info.get("like_count"),
            "comment_count": info.get("comment_count"),
            "file_size": facts.file_size,
            "media_path": rel(video),
            "audio_path": rel(audio),
            "info_path": rel(info_json),
            "sha256": digest,
            "status": "ok",
            "crawled_at": now,
            "updated_at": now,
        }
        return StageResult(vid, {"videos": [row]}, timer.timings)

    # ---- housekeeping -------------------------------------------------------------------------

    def remove_stale_partials(self) -> int:
        """Delete partial download folders left by crawls that are no longer running."""
        removed = 0
        if not self.partial_root.exists():
            return 0
        for path in self.partial_root.iterdir():
            match = re.search(r"-(\d+)-[0-9a-f]{8}$", path.name)
            if match and int(match.group(1)) != os.getpid() and procs.alive(int(match.group(1))):
                continue
            if match and int(match.group(1)) == os.getpid():
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
        return removed


class _Failure(Exception):
    def __init__(self, kind: str, reason: str, transient: bool = False):
        super().__init__(reason)
        self.kind, self.reason, self.transient = kind, reason, transient


class _QuietLogger:
    """yt-dlp's messages go to our logger (debug/info), not to the terminal."""

    def debug(self, msg: str) -> None:
        log.debug(msg)

    def info(self, msg: str) -> None:
        log.debug(msg)

    def warning(self, msg: str) -> None:
        log.debug(msg)

    def error(self, msg: str) -> None:
        log.debug(msg)
