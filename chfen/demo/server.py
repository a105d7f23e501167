"""The demo site's HTTP server: pages, feeds, media with byte ranges, and the hard cases.

A stdlib `ThreadingHTTPServer` speaking HTTP/1.1 (keep-alive, chunked bodies), with the
behaviour a crawler meets on real sites: `Content-Length` on every normal response, byte-range
requests answered 206 (or 416 when unsatisfiable), `Access-Control-Allow-Origin: *` so a browser
(Label Studio) can play the videos, and the failure modes of the hard-cases channel — a 404, a
stalled page, a body that stalls mid-download, an oversized body without a length.

Stopping never waits for a stalled handler: stalls wait on an event that `stop()` sets, and open
connections are shut down, so handler threads end at once.
"""

from __future__ import annotations

import contextlib
import copy
import email.utils
import json
import logging
import re
import signal
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from chfen.config import DemoSiteConfig
from chfen.demo import pages
from chfen.demo.catalogue import HARDCASES_UPLOADER, OVERSIZED_BYTES, VideoSpec
from chfen.demo.generate import DEFAULT_WORKERS, Catalogue, generate_catalogue

log = logging.getLogger(__name__)

DEFAULT_STALL_S = 30.0
CHUNK = 256 * 1024
# Host headers we are willing to echo into absolute URLs (host, IPv4, [IPv6], optional port).
_HOST_RE = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$")


class UnsatisfiableRange(ValueError):
    """A Range header that cannot be served (answered 416)."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """One `bytes=` range -> (first, last) inclusive; None means "send the whole body".

    Raises UnsatisfiableRange for a range past the end, a reversed range, an empty suffix or
    numbers that do not parse. Other units and multi-range requests are ignored (200), which
    RFC 9110 allows.
    """
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_s, dash, last_s = spec.strip().partition("-")
    first_s, last_s = first_s.strip(), last_s.strip()
    numbers_ok = all(part.isdigit() or part == "" for part in (first_s, last_s))
    if not dash or not numbers_ok:
        raise UnsatisfiableRange(header)
    if first_s == "":
        if last_s == "" or int(last_s) == 0 or size == 0:
            raise UnsatisfiableRange(header)
        return max(0, size - int(last_s)), size - 1
    first = int(first_s)
    last = size - 1 if last_s == "" else min(int(last_s), size - 1)
    if first >= size or (last_s != "" and int(last_s) < first):
        raise UnsatisfiableRange(header)
    return first, last


def _url_host(host: str, port: int) -> str:
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The stdlib joins every handler thread on close; a stalled one would hold stop() up.
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], site: DemoSite) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.site = site
        self.stopping = threading.Event()
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "chfen-demo/1"
    # Idle keep-alive connections are closed after this long.
    timeout = 60
    server: _Server

    # -- connection bookkeeping, so stop() can cut every open connection -----------------------

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def handle(self) -> None:
        try:
            super().handle()
        except (ConnectionError, TimeoutError, OSError) as exc:
            # Clients hang up mid-body all the time (timeouts, max_filesize); not an error here.
            log.debug("demo site: connection ended: %s", exc)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        log.debug("demo site %s: %s", self.address_string(), format % args)

    # -- helpers ---------------------------------------------------------------------------------

    @property
    def site(self) -> DemoSite:
        return self.server.site

    def _base(self) -> str:
        # Absolute URLs follow the Host the client used, so the site also works when reached
        # under another name (a container's host.docker.internal, a LAN address).
        host = self.headers.get("Host", "")
        if _HOST_RE.match(host):
            return f"http://{host}"
        return self.site.base_url

    def _common_headers(self) -> None:
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header(
            "Access-Control-Expose-Headers", "Content-Length, Content-Range, Accept-Ranges"
        )

    def _send_body(
        self, status: int, body: bytes, ctype: str, head: bool, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self._common_headers()
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _not_found(self, head: bool) -> None:
        self._send_body(404, b"not found\n", "text/plain; charset=utf-8", head)

    # -- methods ---------------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 (stdlib name)
        self._dispatch(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch(head=True)

    def do_OPTIONS(self) -> None:  # noqa: N802
        self.send_response(204)
        self._common_headers()
        self.send_header("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
        self.send_header("Access-Control-Allow-Headers", "Range")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _dispatch(self, head: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        base = self._base()
        gt = self.site.ground_truth_for(base)
        html, xml = "text/html; charset=utf-8", "application/rss+xml; charset=utf-8"
        if path in ("/", "/index.html"):
            self._send_body(200, pages.index_page(gt).encode(), html, head)
        elif path == "/ground_truth.json":
            body = json.dumps(gt, indent=2, ensure_ascii=False).encode()
            self._send_body(200, body, "application/json; charset=utf-8", head)
        elif m := re.fullmatch(r"/u/([a-z0-9_-]+)/feed\.xml", path):
            uploader, entries = self.site.channel(m.group(1), gt)
            if uploader is None:
                return self._not_found(head)
            self._send_body(200, pages.channel_feed(uploader, entries, base).encode(), xml, head)
        elif m := re.fullmatch(r"/u/([a-z0-9_-]+)/?", path):
            uploader, entries = self.site.channel(m.group(1), gt)
            if uploader is None:
                return self._not_found(head)
            self._send_body(200, pages.channel_page(uploader, entries).encode(), html, head)
        elif m := re.fullmatch(r"/v/([a-z0-9_-]+)", path):
            entry = self.site.entry(m.group(1), gt)
            if entry is None:
                return self._not_found(head)
            if self.site.spec(entry["id"]).page_stalls and self._stall():
                return None
            self._send_body(200, pages.video_page(entry, base).encode(), html, head)
        elif m := re.fullmatch(r"/media/([a-z0-9_-]+)\.mp4", path):
            self._media(m.group(1), head)
        elif m := re.fullmatch(r"/thumbs/([a-z0-9_-]+)\.jpg", path):
            thumb = self.site.catalogue.root / "thumbs" / f"{m.group(1)}.jpg"
            if not thumb.is_file():
                return self._not_found(head)
            self._file(thumb, "image/jpeg", head)
        else:
            self._not_found(head)
        return None

    def _stall(self) -> bool:
        """Wait the stall time; True when the server is stopping (then send nothing)."""
        self.close_connection = True
        return self.server.stopping.wait(self.site.stall_s)

    def _media(self, video_id: str, head: bool) -> None:
        if self.site.entry(video_id, self.site.catalogue.ground_truth) is None:
            return self._not_found(head)  # unknown, or the hidden base of derived hard cases
        spec = self.site.spec(video_id)
        path = self.site.catalogue.media_file(video_id)
        if spec.serve == "missing" or path is None or not path.is_file():
            return self._not_found(head)
        if spec.serve == "oversized":
            return self._oversized(path, head)
        if spec.serve == "stall_body":
            return self._stalled_body(path, head)
        return self._file(path, "video/mp4", head)

    def _file(self, path: Path, ctype: str, head: bool) -> None:
        """A static file with Content-Length, byte ranges, ETag and Last-Modified."""
        stat = path.stat()
        size = stat.st_size
        validators = {
            "ETag": f'"{size:x}-{int(stat.st_mtime):x}"',
            "Last-Modified": email.utils.formatdate(stat.st_mtime, usegmt=True),
            "Accept-Ranges": "bytes",
        }
        try:
            byte_range = parse_range(self.headers.get("Range"), size)
        except UnsatisfiableRange:
            return self._send_body(
                416,
                b"range not satisfiable\n",
                "text/plain; charset=utf-8",
                head,
                {"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"},
            )
        first, last = byte_range if byte_range is not None else (0, size - 1)
        length = max(0, last - first + 1)
        self.send_response(206 if byte_range is not None else 200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        if byte_range is not None:
            self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        for key, value in validators.items():
            self.send_header(key, value)
        self._common_headers()
        self.end_headers()
        if head:
            return None
        with path.open("rb") as fh:
            fh.seek(first)
            remaining = length
            while remaining > 0:
                block = fh.read(min(CHUNK, remaining))
                if not block:
                    break
                self.wfile.write(block)
                remaining -= len(block)
        return None

    def _oversized(self, path: Path, head: bool) -> None:
        """A valid mp4 padded with a `free` box to OVERSIZED_BYTES, chunked: no length given."""
        head_bytes = path.read_bytes()
        pad = OVERSIZED_BYTES - len(head_bytes)
        # An ISO-BMFF box: 32-bit size, type; players skip `free` boxes, so the file stays valid.
        box_header = pad.to_bytes(4, "big") + b"free"
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Accept-Ranges", "none")
        self._common_headers()
        self.end_headers()
        if head:
            return
        zeros = bytes(CHUNK)
        self._chunk(head_bytes)
        self._chunk(box_header)
        remaining = pad - len(box_header)
        while remaining > 0:
            n = min(CHUNK, remaining)
            self._chunk(zeros[:n])
            remaining -= n
        self.wfile.write(b"0\r\n\r\n")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")

    def _stalled_body(self, path: Path, head: bool) -> None:
        """Full Content-Length, a quarter of the bytes, then silence for the stall time."""
        data = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(len(data)))
        # No ranges: a resumed download would stall the same way.
        self.send_header("Accept-Ranges", "none")
        self._common_headers()
        self.end_headers()
        if head:
            return
        cut = len(data) // 4
        self.wfile.write(data[:cut])
        self.wfile.flush()
        if self._stall():
            return
        self.wfile.write(data[cut:])


class DemoSite:
    """A running (or startable) demo site over a generated catalogue."""

    def __init__(
        self,
        catalogue: Catalogue,
        host: str = "127.0.0.1",
        port: int = 0,
        stall_s: float = DEFAULT_STALL_S,
    ) -> None:
        self.catalogue = catalogue
        self.stall_s = stall_s
        try:
            self._server = _Server((host, port), self)
        except OSError as exc:
            raise OSError(
                exc.errno,
                f"demo site: cannot listen on {host}:{port} ({exc.strerror}); pick another port "
                "with --set demo_site.port=N (0 = any free port)",
            ) from exc
        self._thread: threading.Thread | None = None
        self.host = host
        self.port = int(self._server.server_address[1])
        self.base_url = f"http://{_url_host(host, self.port)}"
        self._gt_cache: dict[str, dict[str, Any]] = {}
        self._gt_lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> DemoSite:
        """Serve in a background thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.1},
                name=f"demo-site:{self.port}",
                daemon=True,
            )
            self._thread.start()
            log.info("demo site serving at %s", self.base_url)
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until stop() (or KeyboardInterrupt)."""
        self._server.serve_forever(poll_interval=0.1)

    def stop(self) -> None:
        """Stop serving, wake stalled handlers and cut open connections; safe to call twice."""
        self._server.stopping.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        with self._server.connections_lock:
            open_conns = list(self._server.connections)
        for conn in open_conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._server.server_close()

    def __enter__(self) -> DemoSite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what the site serves --------------------------------------------------------------------

    @property
    def ground_truth(self) -> dict[str, Any]:
        """The ground truth with absolute URLs for this server (same as /ground_truth.json)."""
        return self.ground_truth_for(self.base_url)

    @property
    def ground_truth_url(self) -> str:
        return f"{self.base_url}/ground_truth.json"

    @property
    def feed_urls(self) -> dict[str, str]:
        """Regular uploader handle -> RSS feed URL (the hard-cases channel is not included)."""
        return {
            u["uploader"]: self.base_url + u["feed_path"]
            for u in self.catalogue.ground_truth["uploaders"]
            if u["uploader"] != HARDCASES_UPLOADER
        }

    @property
    def hardcases_feed_url(self) -> str:
        return f"{self.base_url}/u/{HARDCASES_UPLOADER}/feed.xml"

    def page_url(self, video_id: str) -> str:
        return f"{self.base_url}/v/{video_id}"

    def media_url(self, video_id: str) -> str:
        return self.base_url + self.catalogue.entry(video_id)["media_path"]

    def ground_truth_for(self, base: str) -> dict[str, Any]:
        """The ground truth with every path also given as an absolute URL under `base`."""
        with self._gt_lock:
            cached = self._gt_cache.get(base)
            if cached is not None:
                return cached
            gt = copy.deepcopy(self.catalogue.ground_truth)
            gt["base_url"] = base
            gt["hardcases_feed_url"] = f"{base}/u/{HARDCASES_UPLOADER}/feed.xml"
            for u in gt["uploaders"]:
                u["feed_url"] = base + u["feed_path"]
            for v in gt["videos"]:
                for key in ("page", "media", "thumbnail", "feed"):
                    v[f"{key}_url"] = base + v[f"{key}_path"]
            if len(self._gt_cache) < 16:  # a handful of Host names at most
                self._gt_cache[base] = gt
            return gt

    def spec(self, video_id: str) -> VideoSpec:
        return self.catalogue.plan.spec(video_id)

    def entry(self, video_id: str, gt: dict[str, Any]) -> dict[str, Any] | None:
        return next((v for v in gt["videos"] if v["id"] == video_id), None)

    def channel(
        self, slug: str, gt: dict[str, Any]
    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        uploader = next((u for u in gt["uploaders"] if u["channel"] == slug), None)
        return uploader, [v for v in gt["videos"] if v["channel"] == slug]


@contextlib.contextmanager
def serve_demo_site(
    cfg: DemoSiteConfig,
    cache_dir: Path,
    *,
    stall_s: float = DEFAULT_STALL_S,
    workers: int = DEFAULT_WORKERS,
    show_progress: bool = False,
) -> Iterator[DemoSite]:
    """Generate (or load) the catalogue, serve it on cfg.host:cfg.port, stop on exit.

    `cfg.port = 0` picks a free port; the yielded site's `base_url` says which.
    """
    catalogue = generate_catalogue(cfg, cache_dir, workers=workers, show_progress=show_progress)
    site = DemoSite(catalogue, cfg.host, cfg.port, stall_s=stall_s)
    try:
        yield site.start()
    finally:
        site.stop()


def run_demo_site(
    cfg: DemoSiteConfig,
    cache_dir: Path,
    *,
    stall_s: float = DEFAULT_STALL_S,
    workers: int = DEFAULT_WORKERS,
) -> None:
    """Generate the catalogue (with a progress bar), print the URLs, serve until Ctrl-C."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    catalogue = generate_catalogue(cfg, cache_dir, workers=workers, show_progress=True)
    site = DemoSite(catalogue, cfg.host, cfg.port, stall_s=stall_s)
    gt = site.ground_truth
    table = Table(title=f"demo site at {site.base_url}", show_lines=False)
    table.add_column("channel")
    table.add_column("videos", justify="right")
    table.add_column("RSS feed (a playlist for yt-dlp)")
    for u in gt["uploaders"]:
        table.add_row(u["uploader"], str(u["n_videos"]), u["feed_url"])
    console.print(table)
    console.print(f"index:        {site.base_url}/")
    console.print(f"ground truth: {site.ground_truth_url}")
    console.print(f"media cache:  {catalogue.root}")
    console.print("[dim]Ctrl-C stops the server.[/]")
    if threading.current_thread() is threading.main_thread():
        # A process started in the background of a non-interactive shell (`cmd &`, nohup, some
        # CI runners) inherits SIGINT as ignored, and Python then never raises
        # KeyboardInterrupt: Ctrl-C / `kill -INT` would not stop the site.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        site.serve_forever()
    except KeyboardInterrupt:
        console.print("stopping the demo site")
    finally:
        site.stop()
