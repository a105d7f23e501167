"""The demo's emotional signal: no field gives the label away, and the published ceilings hold.

Everything here works on plans (`plan_catalogue` is pure): nothing is rendered.
"""

from __future__ import annotations

import itertools
import random
import re
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from functools import cache

import pytest

from chfen.config import DemoSiteConfig
from chfen.demo import cues
from chfen.demo.catalogue import CataloguePlan, VideoSpec, plan_catalogue
from chfen.demo.cues import CHANNELS, CUE_RATES, MODALITY_CHANNELS, NEUTRAL, ORACLE
from chfen.demo.generate import plan_ceilings
from chfen.labels import NO_EMOTION, PLUTCHIK
from chfen.modalities import MODALITIES

# Words that name or shout an emotion: none may appear in a title, description or hashtag.
EMOTION_WORDS = frozenset(
    """
    joy joyful happy happiness glad fun funny love lovely smile smiling laugh laughing yay
    trust trusted honest loyal faith faithful reliable
    fear afraid scared scary terrified terrifying creepy horror panic nervous worried anxious
    surprise surprised surprising shock shocked shocking unexpected wow omg unbelievable
    sad sadness cry crying tears lonely miss missing grief heartbroken sorrow upset depressed
    disgust disgusted disgusting gross yuck rotten nasty eww vile
    anger angry mad furious rage hate unfair annoyed annoying rant
    anticipation excited exciting countdown waiting soon eager hype
    best worst awful terrible amazing
    """.split()
)


@cache
def plan(n_videos: int, seed: int = 0) -> CataloguePlan:
    return plan_catalogue(DemoSiteConfig(n_videos=n_videos, seed=seed))


def catalogue(n_videos: int, seed: int = 0) -> list[VideoSpec]:
    return [v for v in plan(n_videos, seed).videos if v.kind == "catalogue"]


@cache
def report(n_videos: int, seed: int = 0) -> dict:
    return plan_ceilings(plan(n_videos, seed))


def loo_lookup_accuracy(videos: Sequence[VideoSpec], key: Callable[[VideoSpec], Hashable]) -> float:
    """A lookup table key -> label, scored leave-one-out: each video gets the most common label
    among the *other* videos with its key (no prediction on a tie or an unseen key)."""
    by_key: dict[Hashable, Counter[str]] = {}
    for v in videos:
        by_key.setdefault(key(v), Counter())[str(v.emotion)] += 1
    hits = 0
    for v in videos:
        counts = by_key[key(v)].copy()
        counts[str(v.emotion)] -= 1
        ranked = [(label, n) for label, n in counts.most_common() if n > 0]
        if ranked and (len(ranked) == 1 or ranked[0][1] > ranked[1][1]):
            hits += ranked[0][0] == v.emotion
    return hits / len(videos)


def title_phrase(video: VideoSpec) -> str:
    return re.sub(r", part \d+$", "", video.title)


def test_a_lookup_from_title_description_or_hashtags_no_longer_finds_the_label() -> None:
    """On main a lookup recovered 240/240 labels from the title phrase and hashtags."""
    videos = catalogue(240)
    title_ceiling = report(240)["ceilings"]["vs_truth"]["title"]
    lookups = {
        "title": lambda v: v.title,
        "title phrase": title_phrase,
        "first word of title": lambda v: v.title.split()[0].lower(),
        "title and description": lambda v: (v.title, v.description),
    }
    for name, key in lookups.items():
        acc = loo_lookup_accuracy(videos, key)
        assert acc <= title_ceiling + 0.06, (name, acc, title_ceiling)
    # Neither description nor hashtags say anything about the emotion.
    chance = 1 / len(PLUTCHIK)
    for name, key in {
        "description": lambda v: v.description,
        "hashtags": lambda v: v.tags,
        "description first line": lambda v: v.description.split(".")[0],
        "uploader": lambda v: v.uploader,
    }.items():
        acc = loo_lookup_accuracy(videos, key)
        assert acc <= chance + 0.1, (name, acc)


def test_the_title_lookup_is_as_good_as_the_title_channel_allows() -> None:
    """The lookup above is a fair cheat: it comes near the title channel's realised ceiling
    (leave-one-out, it loses the phrases seen only once or twice)."""
    acc = loo_lookup_accuracy(catalogue(240), title_phrase)
    assert acc >= report(240)["ceilings"]["realised_vs_truth"]["title"] - 0.12


@pytest.mark.parametrize("n_videos", [24, 240])
def test_no_emotion_words_emoji_or_emotion_hashtags_in_titles_and_descriptions(
    n_videos: int,
) -> None:
    for video in plan(n_videos).videos:
        if video.kind not in ("catalogue", "duplicate"):
            continue  # the hard cases test odd titles, not the emotional signal
        for field in (video.title, video.description, " ".join(video.tags)):
            assert field.isascii(), (video.id, field)  # no emoji
            words = set(re.findall(r"[a-z]+", field.lower()))
            assert not words & EMOTION_WORDS, (video.id, field, words & EMOTION_WORDS)


def test_every_title_phrase_belongs_to_one_shown_emotion_or_neutral() -> None:
    phrase_shows: dict[str, set[str]] = {}
    for video in catalogue(240):
        phrase_shows.setdefault(title_phrase(video), set()).add(video.shows["title"])
    assert all(len(shows) == 1 for shows in phrase_shows.values())


def test_realised_carrier_shares_are_near_the_rates() -> None:
    videos = catalogue(2000)
    for channel in CHANNELS:
        rate = CUE_RATES[channel]
        shows = [(v.emotion, v.shows[channel]) for v in videos]
        carries = sum(s == e for e, s in shows) / len(shows)
        neutral = sum(s == NEUTRAL for _, s in shows) / len(shows)
        assert carries == pytest.approx(rate.carries, abs=0.035), channel
        assert neutral == pytest.approx(rate.neutral, abs=0.035), channel
        assert rate.neutral > rate.misleads  # neutral most of the time when not carrying
    shares = report(240)["carrier_shares"]
    for channel in CHANNELS:
        assert shares[channel] == pytest.approx(CUE_RATES[channel].carries, abs=0.1)


def test_channels_are_drawn_independently() -> None:
    """Carrying one channel says (almost) nothing about carrying another."""
    videos = catalogue(2000)
    for a, b in itertools.combinations(CHANNELS, 2):
        both = sum(a in v.carriers and b in v.carriers for v in videos) / len(videos)
        assert both == pytest.approx(CUE_RATES[a].carries * CUE_RATES[b].carries, abs=0.04)


def test_ceilings_meet_the_issue_targets() -> None:
    """Every single modality <= 0.70, all cues together >= 0.85 (expected, and as realised)."""
    r = report(240)
    expected, realised = r["ceilings"]["vs_truth"], r["ceilings"]["realised_vs_truth"]
    assert set(expected) == {*MODALITIES, ORACLE}
    for modality in MODALITIES:
        assert expected[modality] <= 0.70, modality
        assert realised[modality] <= 0.70, modality
        # 240 draws: a carrier share's standard deviation is about 0.03.
        assert realised[modality] == pytest.approx(expected[modality], abs=0.1), modality
    assert expected[ORACLE] >= 0.85 and realised[ORACLE] >= 0.85
    # Fusion has room to help: the oracle is far above the best single modality.
    assert expected[ORACLE] - max(expected[m] for m in MODALITIES) >= 0.2
    crew = r["ceilings"]["vs_crew"]
    assert all(crew[m] < expected[m] for m in ("title", "text", "audio", "scene", ORACLE))
    assert 0.9 <= r["ceilings"]["crew_noise"] < 1.0


def test_single_channel_ceiling_matches_its_closed_form() -> None:
    for channel, rate in CUE_RATES.items():
        closed = rate.carries + rate.neutral / len(PLUTCHIK)
        assert cues.ceiling((channel,)) == pytest.approx(closed, abs=1e-9)
    assert cues.ceiling(()) == pytest.approx(1 / len(PLUTCHIK))
    # A crew that always gives the truth is the truth.
    identity = [[float(t == c) for c in range(len(PLUTCHIK))] for t in range(len(PLUTCHIK))]
    assert cues.ceiling(("words", "prosody"), identity) == pytest.approx(
        cues.ceiling(("words", "prosody"))
    )


def test_oracle_ceiling_agrees_with_a_monte_carlo_of_the_generator() -> None:
    rng = random.Random(7)
    draws = 20_000
    hits = 0
    for _ in range(draws):
        emotion = rng.choice(PLUTCHIK)
        hits += cues.bayes_predict(cues.draw_cues(rng, emotion), CHANNELS) == emotion
    assert hits / draws == pytest.approx(cues.ceiling(CHANNELS), abs=0.01)


def test_audio_hears_words_and_prosody_and_face_nothing() -> None:
    assert set(MODALITY_CHANNELS) == set(MODALITIES)
    assert (
        set(MODALITY_CHANNELS["audio"])
        == set(MODALITY_CHANNELS["audio_seq"])
        == {
            "words",
            "prosody",
        }
    )
    assert MODALITY_CHANNELS["face"] == ()
    design = report(24)["cue_design"]
    assert design["modality_channels"]["audio"] == ["words", "prosody"]
    assert set(design["rates"]) == set(CHANNELS)


def test_crew_label_rule_matches_the_training_data() -> None:
    """`crew_hard_label` mirrors chfen.train.data.soft_target for every 1-3 vote combination."""
    import numpy as np

    from chfen.config import TrainConfig
    from chfen.train.data import soft_target

    cfg = TrainConfig()
    labels = [*PLUTCHIK, NO_EMOTION]
    for k in (1, 2, 3):
        for votes in itertools.product(labels, repeat=k):
            target = soft_target(votes, min_votes=cfg.min_votes, min_agreement=cfg.min_agreement)
            mine = cues.crew_hard_label(votes, cfg.min_votes, cfg.min_agreement)
            theirs = None if isinstance(target, str) else PLUTCHIK[int(np.argmax(target.soft))]
            assert mine == theirs, votes


@pytest.mark.parametrize("n_videos", [6, 24])
def test_small_catalogues_have_many_uploaders_and_every_emotion(n_videos: int) -> None:
    videos = catalogue(n_videos)
    uploaders = plan(n_videos).uploaders
    assert len(uploaders) >= (6 if n_videos >= 24 else 3)
    assert Counter(v.emotion for v in videos).keys() <= set(PLUTCHIK)
    if n_videos >= len(PLUTCHIK):
        assert {v.emotion for v in videos} == set(PLUTCHIK)


def test_emotions_are_spread_over_uploaders() -> None:
    """No uploader shortcut: each busy uploader has several emotions."""
    by_uploader: dict[str, Counter[str]] = {}
    for video in catalogue(240):
        by_uploader.setdefault(video.uploader, Counter())[str(video.emotion)] += 1
    for counts in by_uploader.values():
        total = sum(counts.values())
        if total >= 4:
            assert counts.most_common(1)[0][1] <= max(3, total // 2), counts


def test_same_seed_same_cues() -> None:
    a, b = catalogue(240), plan_catalogue(DemoSiteConfig(n_videos=240, seed=0)).videos
    assert a == [v for v in b if v.kind == "catalogue"]
    assert [v.cues for v in a] != [v.cues for v in catalogue(240, seed=1)]
    assert plan_ceilings(plan(24)) == plan_ceilings(plan_catalogue(DemoSiteConfig(n_videos=24)))


def test_an_emotion_subset_is_its_own_catalogue() -> None:
    """`demo_site.emotions` limits the labels, the misleading cues and the ceilings' prior."""
    from chfen.demo.generate import cache_key

    four = ["joy", "sadness", "anger", "fear"]
    cfg = DemoSiteConfig(n_videos=48, emotions=four)
    plan = plan_catalogue(cfg)
    catalogue = [v for v in plan.videos if v.kind == "catalogue"]
    assert {v.emotion for v in catalogue} == set(four)
    assert Counter(v.emotion for v in catalogue) == Counter({e: 12 for e in four})
    shown = {s for v in catalogue for s in v.shows.values()} - {cues.NEUTRAL, cues.ABSENT}
    assert shown <= set(four)  # a misleading cue is another of the catalogue's emotions
    report = plan_ceilings(plan)
    assert report["cue_design"]["labels"] == [e for e in PLUTCHIK if e in four]
    assert report["ceilings"]["vs_truth"]["face"] == 0.25  # a blind guess among four
    assert cache_key(cfg) != cache_key(DemoSiteConfig(n_videos=48))
    with pytest.raises(ValueError, match="twice"):
        DemoSiteConfig(emotions=["joy", "joy"])
