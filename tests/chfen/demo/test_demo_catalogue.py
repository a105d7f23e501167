"""The demo catalogue plan: deterministic, balanced, and shaped as the crawl tests need."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from chfen.config import DemoSiteConfig
from chfen.demo.catalogue import (
    CUT_GRID_S,
    HARDCASES_UPLOADER,
    MIN_CUT_DELTA,
    MIN_SHOT_S,
    content_delta,
    hsv_cv,
    iso_duration,
    n_uploaders_for,
    plan_catalogue,
)
from chfen.demo.vocabulary import NEUTRAL_PALETTE, NEUTRAL_SENTENCES, STYLES
from chfen.labels import NO_EMOTION, PLUTCHIK


def test_label_set_is_plutchiks_eight_and_styles_follow_it() -> None:
    assert PLUTCHIK == (
        "joy",
        "trust",
        "fear",
        "surprise",
        "sadness",
        "disgust",
        "anger",
        "anticipation",
    )
    assert NO_EMOTION not in PLUTCHIK
    assert tuple(STYLES) == PLUTCHIK


def test_same_seed_same_plan_other_seed_other_plan() -> None:
    a = plan_catalogue(DemoSiteConfig(seed=3, n_videos=24))
    b = plan_catalogue(DemoSiteConfig(seed=3, n_videos=24))
    c = plan_catalogue(DemoSiteConfig(seed=4, n_videos=24))
    assert a == b
    assert [v.title for v in a.videos] != [v.title for v in c.videos]


def test_default_catalogue_shape() -> None:
    plan = plan_catalogue(DemoSiteConfig())
    cat = [v for v in plan.videos if v.kind == "catalogue"]
    assert [v.id for v in cat] == [f"v{i:04d}" for i in range(1, 25)]
    assert 6 <= len(plan.uploaders) <= 9  # enough for a split by uploader to mean something
    assert all(re.fullmatch(r"@[a-z]+_[a-z]+", u.handle) for u in plan.uploaders)
    assert {v.uploader for v in cat} == {u.handle for u in plan.uploaders}
    counts = Counter(v.emotion for v in cat)
    assert set(counts) == set(PLUTCHIK) and max(counts.values()) - min(counts.values()) <= 1
    assert sum(v.vfr for v in plan.videos if v.kind != "duplicate") == 1
    sizes = Counter((v.width, v.height) for v in cat)
    assert sizes[(720, 1280)] > sizes[(1280, 720)] > 0
    assert {v.fps for v in cat} == {25, 30}
    assert all(6 <= v.duration <= 20 for v in cat)


@pytest.mark.parametrize(
    ("n_videos", "low", "high"), [(1, 3, 3), (6, 3, 3), (24, 6, 9), (240, 20, 34), (2000, 180, 220)]
)
def test_one_uploader_per_three_to_ten_videos(n_videos: int, low: int, high: int) -> None:
    plan = plan_catalogue(DemoSiteConfig(n_videos=n_videos))
    assert low <= len(plan.uploaders) == n_uploaders_for(n_videos) <= high
    owners = Counter(v.uploader for v in plan.videos if v.kind == "catalogue")
    if n_videos >= 3:
        assert set(owners) == {u.handle for u in plan.uploaders}  # nobody is empty


@pytest.mark.parametrize("seed", range(8))
def test_shots_cut_cleanly(seed: int) -> None:
    """Cuts on the frame grid, shots long enough, neighbours far apart for ContentDetector."""
    plan = plan_catalogue(DemoSiteConfig(seed=seed, n_videos=48))
    for video in plan.videos:
        shots = video.shots
        assert 2 <= len(shots) <= 6, video.id
        assert shots[0].start == 0 and shots[-1].end == video.duration
        for prev, shot in zip(shots, shots[1:], strict=False):
            assert shot.start == prev.end
            assert shot.start / CUT_GRID_S == pytest.approx(round(shot.start / CUT_GRID_S))
            delta = min(content_delta(a, b) for a in prev.colors for b in shot.colors)
            assert delta >= MIN_CUT_DELTA, (video.id, prev.colors, shot.colors)
        assert all(s.end - s.start >= MIN_SHOT_S - 1e-9 for s in shots)


def test_scripts_follow_what_the_words_channel_shows() -> None:
    seen = set()
    for video in plan_catalogue(DemoSiteConfig(n_videos=48)).videos:
        if video.kind != "catalogue":
            continue
        words = video.shows["words"]
        seen.add(words == video.emotion)
        if words in STYLES:
            allowed = set(STYLES[words].sentences) | set(NEUTRAL_SENTENCES)
            assert len(set(video.script) - set(NEUTRAL_SENTENCES)) >= 5, video.id
        else:
            allowed = set(NEUTRAL_SENTENCES)
        assert set(video.script) <= allowed, video.id
        assert len(video.pauses) == len(video.script)
    assert seen == {True, False}


def test_duplicates_are_reuploads_by_someone_else() -> None:
    plan = plan_catalogue(DemoSiteConfig())
    dupes = [v for v in plan.videos if v.kind == "duplicate"]
    assert [d.id for d in dupes] == ["v0025", "v0026"]
    for dupe in dupes:
        original = plan.spec(dupe.duplicate_of)
        assert original.kind == "catalogue"
        assert dupe.uploader != original.uploader
        assert dupe.emotion == original.emotion and dupe.shots == original.shots
        assert dupe.cues == original.cues and dupe.script == original.script
        assert dupe.width < original.width and dupe.crf > original.crf
        assert dupe.upload_time > original.upload_time


def test_hard_cases_say_what_to_expect() -> None:
    plan = plan_catalogue(DemoSiteConfig())
    hard = {v.id: v for v in plan.listed if v.uploader == HARDCASES_UPLOADER}
    fails = {v.fail_kind for v in hard.values() if v.expect == "fail"}
    assert fails == {"http_404", "corrupt", "too_long", "too_large", "timeout"}
    ok = {k for k, v in hard.items() if v.expect == "ok"}
    assert ok == {"hard-no-audio", "hard-traversal", "hard-chinese"}
    assert not hard["hard-no-audio"].has_audio
    assert "../../" in hard["hard-traversal"].title
    assert re.search("[\u4e00-\u9fff]", hard["hard-chinese"].title)
    assert hard["hard-too-long"].duration > 180
    assert all(v.emotion is None for v in hard.values() if v.expect == "fail")
    assert "hard-base" not in {v.id for v in plan.listed}


@pytest.mark.parametrize(
    ("seconds", "iso"), [(8, "PT8S"), (23.0, "PT23S"), (200, "PT3M20S"), (60, "PT1M0S")]
)
def test_iso_duration(seconds: float, iso: str) -> None:
    assert iso_duration(seconds) == iso


def test_palettes_allow_clean_cuts_and_differ_in_brightness() -> None:
    palettes = {emotion: style.palette for emotion, style in STYLES.items()}
    for emotion, palette in {**palettes, "neutral": NEUTRAL_PALETTE}.items():
        for color in palette:
            partners = [c for c in palette if content_delta(color, c) >= MIN_CUT_DELTA]
            assert partners, (emotion, color)

    def brightness(emotion: str) -> float:
        colors = STYLES[emotion].palette
        return sum(hsv_cv(c)[2] for c in colors) / len(colors)

    assert max(brightness("fear"), brightness("sadness")) < min(
        brightness("joy"), brightness("surprise")
    )
