"""The demo site's documents: video pages, RSS channel feeds, the index and channel pages.

Video pages carry what yt-dlp's generic extractor reads from real sites: a JSON-LD
`VideoObject` (id from the page name, title, ISO duration, upload date, uploader, view and like
counts, content and thumbnail URLs) and Open Graph tags. Channels are RSS 2.0 feeds whose items
link to the pages, which yt-dlp treats as a playlist. Every text is escaped for its context.
"""

from __future__ import annotations

import json
from datetime import datetime
from email.utils import format_datetime
from html import escape
from typing import Any
from xml.sax.saxutils import escape as xml_escape

SITE_NAME = "CHFEN demo shorts"


# The player is built by script from the og: tags, as many real sites do. A literal <video src>
# in the HTML would make yt-dlp's generic extractor take it over the JSON-LD (id "<page>-1",
# no duration or date), which is not what the crawl stage should see.
_PLAYER_JS = (
    "(function(){var m=function(p){return document.querySelector('meta[property=\"'+p+'\"]')"
    ".content;};var v=document.createElement('video');v.controls=true;v.playsInline=true;"
    "v.preload='metadata';v.style.width='100%';v.poster=m('og:image');v.src=m('og:video');"
    "document.getElementById('player').appendChild(v);})();"
)


def _attr(value: object) -> str:
    return escape(str(value), quote=True)


def _json_ld(obj: dict[str, Any]) -> str:
    # Inside <script>, "</script>" or "<!--" in a title would end or confuse the block; JSON's
    # \u escapes mean the same characters to any JSON parser.
    text = json.dumps(obj, ensure_ascii=False, indent=1)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _abs(base: str, path: str) -> str:
    return base.rstrip("/") + path


def video_object(entry: dict[str, Any], base: str) -> dict[str, Any]:
    """The schema.org VideoObject for one ground-truth entry."""
    obj: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "VideoObject",
        "@id": _abs(base, entry["page_path"]),
        "url": _abs(base, entry["page_path"]),
        "name": entry["title"],
        "description": entry["description"],
        "duration": entry["duration_iso"],
        "uploadDate": entry["upload_time"],
        "author": {
            "@type": "Person",
            "name": entry["uploader"],
            "url": _abs(base, f"/u/{entry['channel']}/"),
        },
        "interactionStatistic": [
            {
                "@type": "InteractionCounter",
                "interactionType": {"@type": "WatchAction"},
                "userInteractionCount": entry["view_count"],
            },
            {
                "@type": "InteractionCounter",
                "interactionType": {"@type": "LikeAction"},
                "userInteractionCount": entry["like_count"],
            },
        ],
        "contentUrl": _abs(base, entry["media_path"]),
        "thumbnailUrl": _abs(base, entry["thumbnail_path"]),
        "encodingFormat": "video/mp4",
        "width": entry["width"],
        "height": entry["height"],
    }
    if entry["tags"]:
        obj["keywords"] = ",".join(entry["tags"])
    if entry["content_length_sent"] and entry["size_bytes"] is not None:
        obj["contentSize"] = str(entry["size_bytes"])
    return obj


def video_page(entry: dict[str, Any], base: str) -> str:
    """The HTML page of one video (`/v/<id>`)."""
    page = _abs(base, entry["page_path"])
    media = _abs(base, entry["media_path"])
    thumb = _abs(base, entry["thumbnail_path"])
    feed = _abs(base, entry["feed_path"])
    title, desc = entry["title"], entry["description"]
    meta = [
        ("og:type", "video.other"),
        ("og:site_name", SITE_NAME),
        ("og:url", page),
        ("og:title", title),
        ("og:description", desc),
        ("og:image", thumb),
        ("og:video", media),
        ("og:video:type", "video/mp4"),
        ("og:video:width", entry["width"]),
        ("og:video:height", entry["height"]),
        ("video:duration", int(entry["duration"])),
    ]
    og = "\n".join(f'<meta property="{k}" content="{_attr(v)}">' for k, v in meta)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} | {escape(entry["uploader"])} | {SITE_NAME}</title>
<meta name="description" content="{_attr(desc)}">
{og}
<link rel="canonical" href="{_attr(page)}">
<link rel="alternate" type="application/rss+xml"
 title="{_attr(entry["uploader"])}" href="{_attr(feed)}">
<script type="application/ld+json">
{_json_ld(video_object(entry, base))}
</script>
</head>
<body>
<main>
<h1>{escape(title)}</h1>
<p>by <a href="/u/{_attr(entry["channel"])}/">{escape(entry["uploader"])}</a>
 &middot; {escape(entry["upload_date"])} &middot; {entry["view_count"]:,} views
 &middot; {entry["like_count"]:,} likes</p>
<div id="player" style="max-width:{entry["width"] // 2}px"></div>
<script>{_PLAYER_JS}</script>
<p>{escape(desc)}</p>
</main>
</body>
</html>
"""


def _rfc822(iso: str) -> str:
    return format_datetime(datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S%z"))


def channel_feed(uploader: dict[str, Any], entries: list[dict[str, Any]], base: str) -> str:
    """The RSS 2.0 feed of one channel, newest first; each item links to a video page."""
    items = []
    for e in sorted(entries, key=lambda e: e["upload_time"], reverse=True):
        items.append(
            f"""<item>
<title>{xml_escape(e["title"])}</title>
<link>{xml_escape(_abs(base, e["page_path"]))}</link>
<guid isPermaLink="false">{xml_escape(e["id"])}</guid>
<pubDate>{_rfc822(e["upload_time"])}</pubDate>
<description>{xml_escape(e["description"])}</description>
<itunes:duration>{int(e["duration"])}</itunes:duration>
<itunes:image href="{xml_escape(_abs(base, e["thumbnail_path"]), {'"': "&quot;"})}"/>
</item>"""
        )
    name = xml_escape(uploader["uploader"])
    self_url = xml_escape(_abs(base, uploader["feed_path"]))
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd" xmlns:atom="http://www.w3.org/2005/Atom">
<channel>
<title>{name}</title>
<link>{xml_escape(_abs(base, f"/u/{uploader['channel']}/"))}</link>
<description>Short videos by {name} on {SITE_NAME}</description>
<language>en</language>
<atom:link href="{self_url}" rel="self" type="application/rss+xml"/>
{chr(10).join(items)}
</channel>
</rss>
"""


def _list_page(title: str, body: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{escape(title)}</title></head>
<body>
<h1>{escape(title)}</h1>
{body}
</body>
</html>
"""


def channel_page(uploader: dict[str, Any], entries: list[dict[str, Any]]) -> str:
    """An HTML list of one channel's videos."""
    rows = "\n".join(
        f'<li><a href="{_attr(e["page_path"])}">{escape(e["title"])}</a>'
        f" ({int(e['duration'])} s, {escape(e['upload_date'])})</li>"
        for e in sorted(entries, key=lambda e: e["upload_time"], reverse=True)
    )
    feed = f'<p><a href="{_attr(uploader["feed_path"])}">RSS feed</a></p>'
    return _list_page(f"{uploader['uploader']} | {SITE_NAME}", f"{feed}\n<ul>\n{rows}\n</ul>")


def index_page(ground_truth: dict[str, Any]) -> str:
    """The site's front page: every channel with its feed, and the ground truth."""
    rows = "\n".join(
        f'<li><a href="/u/{_attr(u["channel"])}/">{escape(u["uploader"])}</a>'
        f' ({u["n_videos"]} videos) &middot; <a href="{_attr(u["feed_path"])}">RSS</a></li>'
        for u in ground_truth["uploaders"]
    )
    body = f'<ul>\n{rows}\n</ul>\n<p><a href="/ground_truth.json">ground_truth.json</a></p>'
    return _list_page(SITE_NAME, body)
