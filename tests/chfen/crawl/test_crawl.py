"""The crawl stage with real yt-dlp against the real demo site on 127.0.0.1."""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from chfen.config import CrawlConfig, SourceConfig
from chfen.crawl import Crawler
from chfen.crawl.crawler import sanitize_id, url_id
from chfen.demo import DemoSite
from warehouse import Warehouse

# Ground truth's reason for an item that must fail -> the failure kind the crawl records.
EXPECTED_KIND = {
    "http_404": "http",
    "corrupt": "corrupt",
    "too_long": "limit",
    "too_large": "limit",
    "timeout": "timeout",
}

CFG = CrawlConfig(
    socket_timeout_s=2.0,  # the demo site stalls for 10 s
    retries=1,
    retry_backoff_s=0.1,
    max_filesize_mb=10,  # the oversized item is 30 MB, sent without Content-Length
    max_duration_s=180,  # the too-long item is 200 s
)


def sources(site: DemoSite) -> list[SourceConfig]:
    feeds = [SourceConfig(name=name, url=url) for name, url in site.feed_urls.items()]
    return [*feeds, SourceConfig(name="hardcases", url=site.hardcases_feed_url)]


def crawl_all(wh: Warehouse, site: DemoSite) -> list:
    crawler = Crawler(CFG, wh)
    candidates = [c for src in sources(site) for c in crawler.discover(src)]
    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(crawler.crawl, candidates))


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory, demo_site: DemoSite):
    root = tmp_path_factory.mktemp("crawl") / "data"
    home_cache = Path.home() / ".cache" / "yt-dlp"
    had_cache = home_cache.exists()
    wh = Warehouse(root)
    outcomes = crawl_all(wh, demo_site)
    return wh, outcomes, demo_site.ground_truth, had_cache


def vid(item: dict) -> str:
    return sanitize_id(f"Generic-{item['id']}")


def test_every_good_video_lands_matching_ground_truth(crawled) -> None:
    wh, _, gt, _ = crawled
    rows = {r["video_id"]: r for r in wh.rows("SELECT * FROM videos_latest")}
    good = [v for v in gt["videos"] if v["expect"] == "ok"]
    assert len(good) >= 8
    for item in good:
        row = rows[vid(item)]
        assert row["status"] == "ok"
        assert row["duration_s"] == pytest.approx(item["duration"], abs=0.1), item["id"]
        if not item["vfr"]:
            assert row["fps"] == pytest.approx(item["fps"], abs=0.01), item["id"]
        assert (row["width"], row["height"]) == (item["width"], item["height"])
        assert row["has_audio"] == item["has_audio"]
        assert row["title"] == item["title"]
        assert row["uploader"] == item["uploader"]
        assert row["upload_date"].isoformat() == item["upload_date"]
        assert row["webpage_url"] == item["page_url"]
        assert len(row["sha256"]) == 64
        media = wh.root.media_dir() / row["media_path"]
        assert media.is_file() and media.stat().st_size == row["file_size"]
        assert (wh.root.media_dir() / row["info_path"]).is_file()
        if item["has_audio"]:
            assert (wh.root.media_dir() / row["audio_path"]).is_file()
    vfr = [v for v in good if v["vfr"]]
    assert vfr and rows[vid(vfr[0])]["variable_fps"] is True


def test_each_bad_item_gives_one_failure_and_no_video(crawled) -> None:
    wh, outcomes, gt, _ = crawled
    bad = [v for v in gt["videos"] if v["expect"] == "fail"]
    assert {v["fail_kind"] for v in bad} == set(EXPECTED_KIND)
    failures = wh.rows("SELECT * FROM failures WHERE stage = 'crawl'")
    assert len(failures) == len(bad)
    videos = {r["video_id"] for r in wh.rows("SELECT video_id FROM videos")}
    for item in bad:
        mine = [f for f in failures if f["url"] == item["page_url"]]
        assert len(mine) == 1, item["id"]
        assert mine[0]["error_kind"] == EXPECTED_KIND[item["fail_kind"]], (item["id"], mine[0])
        assert mine[0]["error"]  # a readable reason
        assert vid(item) not in videos and mine[0]["video_id"] not in videos
        assert not (wh.root.media_dir() / vid(item)).exists()
    # the reasons say what happened in words a user understands
    reasons = {f["url"].rsplit("/", 1)[-1]: f["error"] for f in failures}
    assert "404" in reasons["hard-404"]
    assert "truncated" in reasons["hard-truncated"] or "decod" in reasons["hard-truncated"]
    assert "max_duration_s" in reasons["hard-too-long"]
    assert "max_filesize_mb" in reasons["hard-oversized"]
    assert sum(1 for o in outcomes if not o.ok) == len(bad)


def test_items_that_must_land_safely(crawled) -> None:
    wh, _, gt, _ = crawled
    rows = {r["video_id"]: r for r in wh.rows("SELECT * FROM videos_latest")}
    silent = rows["generic-hard-no-audio"]
    assert silent["has_audio"] is False and silent["audio_path"] is None
    trav_item = next(v for v in gt["videos"] if v["id"] == "hard-traversal")
    trav = rows["generic-hard-traversal"]
    assert trav["title"] == trav_item["title"] and "../../" in trav["title"]
    zh_item = next(v for v in gt["videos"] if v["id"] == "hard-chinese")
    zh = rows["generic-hard-chinese"]
    assert zh["title"] == zh_item["title"] and zh["description"] == zh_item["description"]
    # no path is ever built from a title
    for row in rows.values():
        for key in ("media_path", "audio_path", "info_path"):
            if row[key]:
                assert row[key].split("/")[0] == row["video_id"]
                assert re.fullmatch(r"[a-z0-9_-]+/[a-z0-9_.-]+", row[key]), row[key]


def test_nothing_written_outside_the_media_root(crawled) -> None:
    wh, _, _, had_cache = crawled
    root = Path(wh.root.url)
    # the warehouse's own files may sit beside the media root; nothing downloaded may
    top = {p.name for p in root.iterdir() if not p.name.startswith(".catalog-template")}
    assert top <= {"media", "warehouse", "warehouse.duckdb", "models", "reports"}
    media = wh.root.media_dir()
    ids = {r["video_id"] for r in wh.rows("SELECT video_id FROM videos_latest")}
    for entry in media.iterdir():
        if entry.name == ".partial":
            assert not any(entry.iterdir())  # nothing left half-downloaded
            continue
        assert entry.name in ids
        assert {p.name for p in entry.iterdir()} <= {"video.mp4", "video.info.json", "audio.wav"}
    assert not list(root.rglob("*.part"))
    if not had_cache:
        assert not (Path.home() / ".cache" / "yt-dlp").exists()


def test_second_crawl_downloads_nothing(crawled, demo_site: DemoSite) -> None:
    wh, _, _, _ = crawled
    before = {t: wh.version(t) for t in ("videos", "failures", "stage_runs")}
    crawler = Crawler(CFG, wh)
    assert [c for src in sources(demo_site) for c in crawler.discover(src)] == []
    assert {t: wh.version(t) for t in before} == before


def test_known_page_is_not_fetched_again(crawled, demo_site: DemoSite) -> None:
    wh, _, _, _ = crawled
    from chfen.crawl import Candidate

    out = Crawler(CFG, wh).crawl(Candidate("x", demo_site.page_url("v0001")))
    assert out.ok and out.note == "already crawled"
    assert wh.rows("SELECT count(*) AS n FROM videos WHERE video_id = 'generic-v0001'") == [
        {"n": 1}
    ]


def test_url_ids_are_stable_and_safe() -> None:
    assert url_id("http://a/b") == url_id("http://a/b") != url_id("http://a/c")
    assert sanitize_id("Generic-../../etc/passwd 🎉") == "generic-etc-passwd"
    assert os.sep not in sanitize_id("a/b\\c")


def test_failed_pages_are_tried_again_when_due(crawled, demo_site: DemoSite) -> None:
    """A timeout is tried again once its back-off has passed, a limit failure once the limits
    change, any kind when asked; a 404 only when asked. Discovery counts what it skipped."""
    wh, _, truth, _ = crawled
    url_of = {v["fail_kind"]: v["page_url"] for v in truth["videos"] if v["expect"] == "fail"}
    failure = {r["url"]: r for r in wh.rows("SELECT url, transient FROM failures")}
    assert failure[url_of["timeout"]]["transient"] is True
    assert failure[url_of["http_404"]]["transient"] is False

    def failed(cfg: CrawlConfig, kinds: list[str] | None = None) -> set[str]:
        return Crawler(cfg, wh).known_urls(kinds)[1] & set(url_of.values())

    assert failed(CFG) == set(url_of.values())  # within the back-off: nothing is due
    due = failed(CFG.model_copy(update={"retry_transient_after_s": 0}))
    assert url_of["timeout"] not in due and url_of["http_404"] in due
    # a failure's limits are recorded with it: a looser limit makes its pages due
    looser = failed(CFG.model_copy(update={"max_duration_s": 300}))
    assert url_of["too_long"] not in looser and url_of["too_large"] not in looser
    assert url_of["http_404"] in looser and url_of["timeout"] in looser
    assert failed(CFG, ["http"]) == set(url_of.values()) - {url_of["http_404"]}
    assert failed(CFG, ["all"]) == set()
    # the second discovery says why it found nothing new
    crawler = Crawler(CFG, wh)
    hard = SourceConfig(name="hardcases", url=demo_site.hardcases_feed_url)
    assert crawler.discover(hard) == []
    counts = crawler.last_discovery
    assert counts["seen"] == counts["known"] + counts["failed_before"]
    assert counts["failed_before"] >= len(url_of) and counts["retrying"] == 0


def test_a_crawl_killed_between_its_row_and_its_ledger_is_finished_next_time(
    tmp_path: Path, demo_site: DemoSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The video row is committed before the ledger entry; a process killed between the two
    leaves a row with no `done`. The next discovery must list the page again (so its
    bookkeeping is finished), not count it as known: the ledger then agrees with the table."""
    from chfen.crawl import Candidate

    wh = Warehouse(tmp_path / "data")
    url = demo_site.page_url("v0001")

    def killed(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # not an Exception: nothing catches it, as a SIGKILL

    with monkeypatch.context() as patch:
        patch.setattr(wh, "mark_done", killed)
        with pytest.raises(KeyboardInterrupt):
            Crawler(CFG, wh).crawl(Candidate("x", url))
    assert wh.count("videos") == 1 and wh.count("stage_runs") == 0

    crawler = Crawler(CFG, wh)
    assert url not in crawler.known_urls()[0]
    item = next(v for v in demo_site.ground_truth["videos"] if v["id"] == "v0001")
    source = SourceConfig(name="x", url=demo_site.feed_urls[item["uploader"]])
    again = [c for c in crawler.discover(source) if c.url == url]
    assert len(again) == 1
    out = crawler.crawl(again[0])
    assert out.ok and out.note == "already crawled"
    assert wh.count("videos") == 1  # not downloaded a second time
    assert url in Crawler(CFG, wh).known_urls()[0]
