"""What the crawl stage will see: yt-dlp's Python API against the running demo site."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import yt_dlp

from chfen.demo import DemoSite


def ydl(**opts: Any) -> yt_dlp.YoutubeDL:
    return yt_dlp.YoutubeDL({"quiet": True, "no_warnings": True, "socket_timeout": 5, **opts})


def test_feed_is_a_playlist_of_the_channels_pages(demo_site: DemoSite) -> None:
    gt = demo_site.ground_truth
    for uploader, feed_url in demo_site.feed_urls.items():
        with ydl(extract_flat="in_playlist") as y:
            info = y.extract_info(feed_url, download=False)
        assert info["_type"] == "playlist" and info["title"] == uploader
        entries = info["entries"]
        expected = {v["page_url"]: v for v in gt["videos"] if v["uploader"] == uploader}
        assert len(entries) == len(expected)
        for e in entries:
            page = e["url"].split("#", 1)[0]  # yt-dlp smuggles the RSS guid after a '#'
            assert page in expected
            assert e["title"] == expected[page]["title"]
            assert e["duration"] == int(expected[page]["duration"])


def test_hardcases_feed_lists_every_hard_case(demo_site: DemoSite) -> None:
    with ydl(extract_flat="in_playlist") as y:
        info = y.extract_info(demo_site.hardcases_feed_url, download=False)
    pages = {e["url"].split("#", 1)[0] for e in info["entries"]}
    hard = {v["page_url"] for v in demo_site.ground_truth["videos"] if v["kind"] == "hard"}
    assert pages == hard


@pytest.mark.parametrize("video_id", ["v0001", "v0007", "hard-traversal", "hard-chinese"])
def test_page_metadata(demo_site: DemoSite, video_id: str) -> None:
    entry = next(v for v in demo_site.ground_truth["videos"] if v["id"] == video_id)
    with ydl() as y:
        info = y.extract_info(demo_site.page_url(video_id), download=False)
    assert info["id"] == video_id
    assert info["title"] == entry["title"]
    assert info["duration"] == entry["duration"]
    assert info["upload_date"] == entry["upload_date"].replace("-", "")
    assert info["uploader"] == entry["uploader"]
    assert info["view_count"] == entry["view_count"]
    assert info["like_count"] == entry["like_count"]
    assert (info["width"], info["height"]) == (entry["width"], entry["height"])
    assert info["ext"] == "mp4"


def test_feed_entry_resolves_to_the_page_id(demo_site: DemoSite) -> None:
    """Resolving a flat feed entry gives the same id as the page: the RSS guid is the id."""
    feed_url = next(iter(demo_site.feed_urls.values()))
    with ydl(extract_flat="in_playlist") as y:
        first = y.extract_info(feed_url, download=False)["entries"][0]
    with ydl() as y:
        info = y.extract_info(first["url"], download=False)
    assert info["webpage_url_basename"] == info["id"]
    assert demo_site.page_url(info["id"]) == first["url"].split("#", 1)[0]


def test_download_matches_the_served_bytes(demo_site: DemoSite, tmp_path: Path) -> None:
    entry = next(v for v in demo_site.ground_truth["videos"] if v["id"] == "hard-chinese")
    with ydl(outtmpl=str(tmp_path / "%(id)s.%(ext)s"), restrictfilenames=True) as y:
        assert y.download([demo_site.page_url(entry["id"])]) == 0
    (file,) = tmp_path.iterdir()
    assert file.name == "hard-chinese.mp4"
    assert hashlib.sha256(file.read_bytes()).hexdigest() == entry["sha256"]


def test_missing_video_is_a_download_error(demo_site: DemoSite, tmp_path: Path) -> None:
    with (
        ydl(outtmpl=str(tmp_path / "%(id)s.%(ext)s"), retries=0) as y,
        pytest.raises(yt_dlp.utils.DownloadError, match="404"),
    ):
        y.download([demo_site.page_url("hard-404")])
