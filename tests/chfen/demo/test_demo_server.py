"""The demo site's HTTP behaviour: pages, feeds, ranges, CORS and the hard cases' failures."""

from __future__ import annotations

import http.client
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import xml.etree.ElementTree as ET
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from chfen.demo import Catalogue, DemoSite
from chfen.demo.catalogue import OVERSIZED_BYTES
from chfen.demo.server import UnsatisfiableRange, parse_range


def request(
    site: DemoSite,
    path: str,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[http.client.HTTPResponse, bytes]:
    """One raw HTTP request, so the tests see exactly the headers the server sent."""
    parts = urlsplit(site.base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp, resp.read()
    finally:
        conn.close()


def json_ld(html: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)
    assert match
    return json.loads(match.group(1))


def og(html: str) -> dict[str, str]:
    return dict(re.findall(r'<meta property="(og:[a-z:]+)" content="([^"]*)">', html))


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 100, None),
        ("bytes=0-9", 100, (0, 9)),
        ("bytes=90-", 100, (90, 99)),
        ("bytes=-10", 100, (90, 99)),
        ("bytes=-500", 100, (0, 99)),
        ("bytes=95-200", 100, (95, 99)),
        ("bytes=0-1,5-6", 100, None),  # multi-range: the whole body (allowed by RFC 9110)
        ("items=0-1", 100, None),
    ],
)
def test_parse_range(header: str | None, size: int, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=5-2", "bytes=-0", "bytes=a-b", "bytes=7"])
def test_parse_range_unsatisfiable(header: str) -> None:
    with pytest.raises(UnsatisfiableRange):
        parse_range(header, 100)


def test_index_and_ground_truth(demo_site: DemoSite) -> None:
    resp, body = request(demo_site, "/")
    assert resp.status == 200 and resp.getheader("Access-Control-Allow-Origin") == "*"
    for url in demo_site.feed_urls.values():
        assert urlsplit(url).path in body.decode()
    resp, body = request(demo_site, "/ground_truth.json")
    assert resp.status == 200
    assert int(resp.getheader("Content-Length")) == len(body)
    assert json.loads(body) == demo_site.ground_truth
    assert demo_site.ground_truth["hardcases_feed_url"] == demo_site.hardcases_feed_url


def test_video_page_carries_json_ld_and_open_graph(demo_site: DemoSite) -> None:
    entry = next(v for v in demo_site.ground_truth["videos"] if v["kind"] == "catalogue")
    resp, body = request(demo_site, entry["page_path"])
    assert resp.status == 200 and resp.getheader("Content-Type").startswith("text/html")
    html = body.decode()
    ld = json_ld(html)
    assert ld["@type"] == "VideoObject"
    assert ld["name"] == entry["title"] and ld["description"] == entry["description"]
    assert ld["duration"] == f"PT{int(entry['duration'])}S"
    assert ld["uploadDate"] == entry["upload_time"]
    assert ld["author"]["name"] == entry["uploader"]
    counts = {
        s["interactionType"]["@type"]: s["userInteractionCount"] for s in ld["interactionStatistic"]
    }
    assert counts == {"WatchAction": entry["view_count"], "LikeAction": entry["like_count"]}
    assert ld["contentUrl"] == entry["media_url"] and ld["thumbnailUrl"] == entry["thumbnail_url"]
    tags = og(html)
    assert tags["og:video"] == entry["media_url"]
    assert tags["og:image"] == entry["thumbnail_url"]
    assert tags["og:title"] and tags["og:description"]
    assert "<video" not in html  # a literal <video> would hide the JSON-LD from yt-dlp


def test_hostile_title_is_escaped(demo_site: DemoSite) -> None:
    entry = next(v for v in demo_site.ground_truth["videos"] if v["id"] == "hard-traversal")
    html = request(demo_site, entry["page_path"])[1].decode()
    assert "<b>" not in html
    assert json_ld(html)["name"] == entry["title"]
    assert og(html)["og:title"] == escape(entry["title"], quote=True)
    assert "&lt;b&gt;&quot;wow&quot;&lt;/b&gt; &amp;" in og(html)["og:title"]


def test_feeds_are_rss_playlists_of_pages(demo_site: DemoSite) -> None:
    gt = demo_site.ground_truth
    feeds = [*demo_site.feed_urls.items(), ("hardcases", demo_site.hardcases_feed_url)]
    for uploader, url in feeds:
        resp, body = request(demo_site, urlsplit(url).path)
        assert resp.status == 200 and "xml" in resp.getheader("Content-Type")
        channel = ET.fromstring(body).find("channel")
        assert channel is not None and channel.findtext("title") == uploader
        links = [item.findtext("link") for item in channel.findall("item")]
        expected = {v["page_url"] for v in gt["videos"] if v["uploader"] == uploader}
        assert set(links) == expected and len(links) == len(expected)


def test_range_requests(demo_site: DemoSite, demo_catalogue: Catalogue) -> None:
    entry = next(v for v in demo_site.ground_truth["videos"] if v["kind"] == "catalogue")
    data = demo_catalogue.media_file(entry["id"]).read_bytes()  # type: ignore[union-attr]
    size = len(data)
    path = entry["media_path"]

    resp, body = request(demo_site, path)
    assert resp.status == 200 and body == data
    assert int(resp.getheader("Content-Length")) == size == entry["size_bytes"]
    assert resp.getheader("Accept-Ranges") == "bytes"
    assert resp.getheader("Content-Type") == "video/mp4"

    resp, body = request(demo_site, path, headers={"Range": "bytes=100-1099"})
    assert resp.status == 206 and body == data[100:1100]
    assert resp.getheader("Content-Range") == f"bytes 100-1099/{size}"
    assert resp.getheader("Content-Length") == "1000"

    resp, body = request(demo_site, path, headers={"Range": "bytes=-500"})
    assert resp.status == 206 and body == data[-500:]
    assert resp.getheader("Content-Range") == f"bytes {size - 500}-{size - 1}/{size}"

    resp, body = request(demo_site, path, headers={"Range": f"bytes={size - 10}-"})
    assert resp.status == 206 and body == data[-10:]

    resp, _ = request(demo_site, path, headers={"Range": f"bytes={size}-"})
    assert resp.status == 416 and resp.getheader("Content-Range") == f"bytes */{size}"

    resp, body = request(demo_site, path, method="HEAD")
    assert resp.status == 200 and body == b"" and int(resp.getheader("Content-Length")) == size
    assert resp.getheader("Access-Control-Allow-Origin") == "*"


def test_keep_alive_serves_several_requests_on_one_connection(demo_site: DemoSite) -> None:
    parts = urlsplit(demo_site.base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        for _ in range(3):
            conn.request("GET", "/ground_truth.json")
            resp = conn.getresponse()
            assert resp.status == 200 and resp.read()
    finally:
        conn.close()


def test_absolute_urls_follow_the_host_header(demo_site: DemoSite) -> None:
    html = request(demo_site, "/v/v0001", headers={"Host": "demo.example:9000"})[1].decode()
    assert json_ld(html)["contentUrl"] == "http://demo.example:9000/media/v0001.mp4"


def test_not_found_and_the_404_hard_case(demo_site: DemoSite) -> None:
    assert request(demo_site, "/v/nope")[0].status == 404
    assert request(demo_site, "/media/hard-base.mp4")[0].status == 404  # hidden source
    assert request(demo_site, "/v/hard-404")[0].status == 200
    assert request(demo_site, "/media/hard-404.mp4")[0].status == 404


def test_truncated_file_downloads_fine_with_its_short_length(demo_site: DemoSite) -> None:
    entry = next(v for v in demo_site.ground_truth["videos"] if v["id"] == "hard-truncated")
    resp, body = request(demo_site, entry["media_path"])
    assert resp.status == 200 and int(resp.getheader("Content-Length")) == len(body)
    assert len(body) == entry["size_bytes"]


def test_oversized_file_has_no_content_length(demo_site: DemoSite) -> None:
    entry = next(v for v in demo_site.ground_truth["videos"] if v["id"] == "hard-oversized")
    assert entry["content_length_sent"] is False and entry["size_bytes"] == OVERSIZED_BYTES
    resp, body = request(demo_site, entry["media_path"], timeout=30)
    assert resp.status == 200
    assert resp.getheader("Content-Length") is None
    assert resp.getheader("Transfer-Encoding") == "chunked"
    assert len(body) == OVERSIZED_BYTES
    assert body[4:8] == b"ftyp"  # a real mp4 up front, padding behind


def test_stalled_page_times_out_the_client(demo_site: DemoSite) -> None:
    started = time.perf_counter()
    with pytest.raises((TimeoutError, socket.timeout)):
        request(demo_site, "/v/hard-stall", timeout=0.5)
    assert time.perf_counter() - started < demo_site.stall_s


def test_stalled_body_sends_a_quarter_then_stops(demo_site: DemoSite) -> None:
    entry = next(v for v in demo_site.ground_truth["videos"] if v["id"] == "hard-stall-body")
    parts = urlsplit(demo_site.base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=0.5)
    try:
        conn.request("GET", entry["media_path"])
        resp = conn.getresponse()
        assert int(resp.getheader("Content-Length")) == entry["size_bytes"]
        got = b""
        with pytest.raises((TimeoutError, socket.timeout)):
            while True:
                chunk = resp.read1(65536)
                if not chunk:
                    break
                got += chunk
        assert len(got) == entry["size_bytes"] // 4
    finally:
        conn.close()


def test_stop_does_not_wait_for_a_stalled_handler(demo_catalogue: Catalogue) -> None:
    site = DemoSite(demo_catalogue, "127.0.0.1", 0, stall_s=60).start()
    errors: list[BaseException] = []

    def stalled_client() -> None:
        try:
            request(site, "/v/hard-stall", timeout=120)
        except BaseException as exc:  # any ending is fine, hanging is not
            errors.append(exc)

    client = threading.Thread(target=stalled_client, daemon=True)
    client.start()
    time.sleep(0.3)  # the handler is now sleeping
    started = time.perf_counter()
    site.stop()
    assert time.perf_counter() - started < 3
    client.join(timeout=5)
    assert not client.is_alive(), "the stalled connection was not closed"


def test_run_demo_site_prints_urls_serves_and_stops_on_ctrl_c(
    demo_catalogue: Catalogue, demo_cache_dir: Path
) -> None:
    """The foreground entry point behind `chfen demo-site`, in a real subprocess."""
    plan = demo_catalogue.plan
    code = (
        "from pathlib import Path\n"
        "from chfen.config import DemoSiteConfig\n"
        "from chfen.demo import run_demo_site\n"
        f"run_demo_site(DemoSiteConfig(port=0, n_videos={plan.n_videos}, seed={plan.seed}),"
        f" Path({str(demo_cache_dir)!r}))\n"
    )
    # As a shell starts a background job: SIGINT ignored. The site must still stop on it.
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
    try:
        seen = []
        url = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            seen.append(line)
            if m := re.search(r"ground truth:\s+(http://\S+)", line):
                url = m.group(1)
        assert url, "".join(seen)
        assert "/u/hardcases/feed.xml" in "".join(seen)
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert json.loads(resp.read())["n_videos"] == plan.n_videos
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0  # a loaded 2-core CI machine exits slowly
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
