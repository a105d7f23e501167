"""demo_site.languages [en, zh]: a Mandarin channel and a code-switched one beside the catalogue,
which stays exactly as it is without them (the model benchmark and `make demo` use it)."""

from __future__ import annotations

import urllib.request

import pytest

from chfen.config import DemoSiteConfig
from chfen.demo import Catalogue, DemoSite, plan_catalogue
from chfen.demo.catalogue import MIXED_UPLOADER, ZH_UPLOADER
from chfen.demo.generate import cache_key, ground_truth_name
from chfen.demo.vocabulary import ZH_SENTENCES


def _has_cjk(text: str) -> bool:
    return any("\u4e00" <= c <= "\u9fff" for c in text)


@pytest.mark.parametrize("n_videos", [6, 24, 240])
def test_languages_add_videos_after_an_unchanged_catalogue(n_videos: int) -> None:
    en = plan_catalogue(DemoSiteConfig(n_videos=n_videos))
    zh = plan_catalogue(DemoSiteConfig(n_videos=n_videos, languages=["zh", "en"]))
    assert zh.languages == ("en", "zh") and en.languages == ("en",)
    assert zh.videos[: len(en.videos)] == en.videos
    assert zh.uploaders[: len(en.uploaders)] == en.uploaders
    extra = zh.videos[len(en.videos) :]
    assert {v.kind for v in extra} == {"language"} and not any(
        v.kind == "language" for v in en.videos
    )
    assert {v.uploader for v in extra} == {ZH_UPLOADER.handle, MIXED_UPLOADER.handle}
    # Same cache folder (the catalogue's items are shared), its own ground truth file.
    cfg_en, cfg_zh = (
        DemoSiteConfig(n_videos=n_videos),
        DemoSiteConfig(languages=["en", "zh"], n_videos=n_videos),
    )
    assert cache_key(cfg_en) == cache_key(cfg_zh)
    assert ground_truth_name(en.languages) == "ground_truth.json"
    assert ground_truth_name(zh.languages) == "ground_truth-en_zh.json"


def test_languages_must_include_english() -> None:
    with pytest.raises(ValueError, match="include 'en'"):
        DemoSiteConfig(languages=["zh"])
    with pytest.raises(ValueError):
        DemoSiteConfig(languages=["en", "fr"])


def test_language_channels_ground_truth(
    demo_zh_catalogue: Catalogue, demo_catalogue: Catalogue
) -> None:
    gt = demo_zh_catalogue.ground_truth
    assert gt["languages"] == ["en", "zh"] and "languages" not in demo_catalogue.ground_truth
    videos = {v["id"]: v for v in gt["videos"]}
    # The English catalogue's entries are the same in both ground truths.
    for entry in demo_catalogue.ground_truth["videos"]:
        assert videos[entry["id"]] == entry
    language = [v for v in gt["videos"] if v["kind"] == "language"]
    zh = [v for v in language if v["channel"] == ZH_UPLOADER.slug]
    mixed = [v for v in language if v["channel"] == MIXED_UPLOADER.slug]
    assert len(zh) == 3 and len(mixed) == 2
    for v in language:
        spec = demo_zh_catalogue.plan.spec(v["id"])
        # Every planned sentence fits and is said, in order, each with its language.
        assert [s["text"] for s in v["sentences"]] == list(spec.script)
        assert [s["language"] for s in v["sentences"]] == list(spec.languages)
        starts = [s["start"] for s in v["sentences"]]
        assert starts == sorted(starts) and v["sentences"][-1]["end"] <= v["duration"]
        assert _has_cjk(v["title"]) and _has_cjk(v["description"])
        assert v["emotion"] in gt["labels"] and v["carriers"] == ["visuals"]
    for v in zh:
        assert v["languages"] == ["zh"] and v["language_switches"] == []
        assert all(s["text"] in ZH_SENTENCES for s in v["sentences"])
    assert sorted(tuple(v["languages"]) for v in mixed) == [("en", "zh"), ("zh", "en")]
    for v in mixed:
        (switch,) = v["language_switches"]
        first_new = next(s for s in v["sentences"] if s["language"] == switch["to"])
        assert switch["at_s"] == first_new["start"] and switch["from"] == v["languages"][0]
        # A pause before the switch: whisper detects the language of each stretch of speech.
        before = [s for s in v["sentences"] if s["end"] <= switch["at_s"]][-1]
        assert switch["at_s"] - before["end"] >= 0.5


def test_the_site_serves_the_chinese_channels(demo_zh_catalogue: Catalogue) -> None:
    with DemoSite(demo_zh_catalogue, "127.0.0.1", 0) as site:
        assert set(site.feed_urls) >= {ZH_UPLOADER.handle, MIXED_UPLOADER.handle}
        feed = urllib.request.urlopen(site.feed_urls[ZH_UPLOADER.handle], timeout=10).read()
        text = feed.decode("utf-8")
        for v in site.ground_truth["videos"]:
            if v["channel"] == ZH_UPLOADER.slug:
                assert v["title"] in text and v["page_path"] in text
        page = urllib.request.urlopen(site.page_url("mix-001"), timeout=10).read().decode()
        assert site.catalogue.entry("mix-001")["title"] in page
