"""Which cue channels carry each demo video's emotion, and what any model could reach from them.

A demo video's emotion (its ground truth, the label the simulated crew starts from) reaches the
media through four independent cue channels, each decided per video with its own seeded draw:

- `words`: the spoken sentences;
- `prosody`: espeak-ng pitch, rate and loudness, and the quiet background chord (and tremolo);
- `visuals`: the shots' palette, brightness and motion speed;
- `title`: the title (a situation such as "Our old dog didn't wake up this morning", never an
  emotion word, emoji or emotion hashtag); the description and hashtags never carry it.

Each channel *carries* the true emotion with probability `carries`; otherwise it *misleads*
(shows one of the seven other emotions, uniformly) with probability `misleads`, and else shows
something *neutral* (neutral sentences; default-ish voice and a shared chord; a muted grey
palette; an everyday title). `CUE_RATES` below is the one place these probabilities live:

    channel   carries  misleads  neutral
    words      0.40     0.09     0.51
    prosody    0.36     0.096    0.544
    visuals    0.60     0.06     0.34
    title      0.60     0.06     0.34

(misleading is 15 % of the non-carrying share everywhere: neutral most of the time).

Which embedding modality sees which channel (`MODALITY_CHANNELS`): `title` reads the title and
description; `text` the transcript (words); `audio` and `audio_seq` the whisper encoder on the
soundtrack, which hears the words *and* the prosody; `scene` the stills (visuals); `face` nothing
(the synthetic video has no faces).

The *ceiling* of a set of channels is the expected accuracy of the Bayes-optimal predictor that
sees, without noise, what each of those channels shows (emotion or neutral), with the labels
uniform over the catalogue's emotions (the eight by default, `demo_site.emotions`). It is
computed exactly by enumerating all 9^k observations.
With the rates above:

    modality          vs truth  vs crew
    title, scene      0.643     0.612    (p + (1 - p - m) / 8 for one channel)
    text              0.464     0.446
    audio, audio_seq  0.618     0.588    (words and prosody together)
    face              0.125     0.134
    oracle (all four) 0.903     0.852

so no single modality can reach 0.70 while all cues together reach about 0.90 (the aim of
issue 14 for the 240-video catalogue: every single modality <= 0.70, the oracle >= 0.85). On a
given catalogue the ceilings fall around these values (seed 0, 240 videos: audio 0.696, title
0.621, scene 0.558, text 0.521, oracle 0.867; `ceilings_report` publishes them).
"vs crew" scores against the simulated crew's training label (`chfen.domain.crew`'s default crew
of three, votes aggregated by the training rule with `TrainConfig`'s defaults, about 14 %
of videos dropped for low agreement): a perfect reader of the truth scores 0.943 there.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chfen.domain.crew import default_crew, simulated_label
from chfen.domain.votes import training_target
from chfen.labels import PLUTCHIK
from chfen.modalities import MODALITIES

CHANNELS: tuple[str, ...] = ("words", "prosody", "visuals", "title")
NEUTRAL = "neutral"
# Shown by a channel the video does not have (the prosody and words of a video without audio).
ABSENT = "absent"


@dataclass(frozen=True)
class CueRate:
    """How often one channel carries the true emotion, shows another one, or is neutral."""

    carries: float
    misleads: float

    @property
    def neutral(self) -> float:
        return 1.0 - self.carries - self.misleads


def _rate(carries: float, mislead_share: float = 0.15) -> CueRate:
    """A channel that carries with `carries`, else misleads in `mislead_share` of the rest."""
    return CueRate(carries, round((1.0 - carries) * mislead_share, 6))


# THE probabilities of the demo's emotional signal (see the module docstring for the ceilings
# they give). Changing them changes generated media: bump catalogue.GENERATOR_VERSION.
CUE_RATES: dict[str, CueRate] = {
    "words": _rate(0.40),
    "prosody": _rate(0.36),
    "visuals": _rate(0.60),
    "title": _rate(0.60),
}

# Which cue channels each embedding modality can perceive (whisper hears the words too).
MODALITY_CHANNELS: dict[str, tuple[str, ...]] = {
    "title": ("title",),
    "text": ("words",),
    "audio": ("words", "prosody"),
    "audio_seq": ("words", "prosody"),
    "scene": ("visuals",),
    "face": (),
}
assert set(MODALITY_CHANNELS) == set(MODALITIES), "every embedding modality needs its channels"

ORACLE = "oracle"


def draw_cues(rng: random.Random, emotion: str, labels: Sequence[str] = PLUTCHIK) -> dict[str, str]:
    """What each channel shows for a video whose true emotion is `emotion` (one draw each);
    a misleading channel shows another of the catalogue's `labels`."""
    shows = {}
    for channel in CHANNELS:
        rate = CUE_RATES[channel]
        u = rng.random()
        if u < rate.carries:
            shows[channel] = emotion
        elif u < rate.carries + rate.misleads:
            shows[channel] = rng.choice([e for e in labels if e != emotion])
        else:
            shows[channel] = NEUTRAL
    return shows


def _likelihood(channel: str, shown: str, truth: str, n_labels: int = len(PLUTCHIK)) -> float:
    """P(channel shows `shown` | true emotion `truth`)."""
    rate = CUE_RATES[channel]
    if shown == NEUTRAL:
        return rate.neutral
    if shown == ABSENT:
        return 1.0  # says nothing about the emotion
    if shown == truth:
        return rate.carries
    return rate.misleads / (n_labels - 1)


def posterior(
    shows: Mapping[str, str], channels: Iterable[str], labels: Sequence[str] = PLUTCHIK
) -> list[float]:
    """Unnormalised P(truth, observation) for each emotion of `labels` (uniform prior)."""
    channels = tuple(channels)
    out = []
    for truth in labels:
        p = 1.0 / len(labels)
        for channel in channels:
            p *= _likelihood(channel, shows[channel], truth, len(labels))
        out.append(p)
    return out


def bayes_predict(
    shows: Mapping[str, str], channels: Iterable[str], labels: Sequence[str] = PLUTCHIK
) -> str:
    """The emotion a perfect reader of `channels` would guess (ties: first in `labels`)."""
    post = posterior(shows, tuple(channels), labels)
    return labels[max(range(len(post)), key=post.__getitem__)]


def ceiling(
    channels: Sequence[str],
    crew: Sequence[Sequence[float]] | None = None,
    labels: Sequence[str] = PLUTCHIK,
) -> float:
    """Expected accuracy of the Bayes-optimal predictor that sees `channels` (exact).

    Against the truth when `crew` is None. Otherwise `crew[t][c]` is the chance that the crew's
    hard label is emotion c when the truth is t (rows may sum to less than one: the rest are
    videos the training data drops); the accuracy is then over the videos kept, against the
    crew's label, and the predictor picks argmax_c sum_t P(t | cues) crew[t][c].
    """
    n = len(labels)
    values = [*labels, NEUTRAL]
    total = 0.0
    for combo in itertools.product(values, repeat=len(channels)):
        shows = dict(zip(channels, combo, strict=True))
        joint = posterior(shows, channels, labels)
        if crew is None:
            total += max(joint)
        else:  # the crew may answer any of PLUTCHIK's eight
            total += max(sum(joint[t] * crew[t][c] for t in range(n)) for c in range(len(PLUTCHIK)))
    if crew is not None:
        total /= sum(sum(row) for row in crew) / n  # P(kept)
    return total


def crew_hard_label(
    votes: Sequence[str], min_votes: int = 1, min_agreement: float = 0.0
) -> str | None:
    """The crew's training label for one video's votes, or None when training drops it: the
    hard label of the domain's training rule (`chfen.domain.votes.training_target`, votes
    counted as `no_emotion="drop_votes"`)."""
    target = training_target(votes, min_votes=min_votes, min_agreement=min_agreement)
    return None if isinstance(target, str) else target.hard_label


def crew_label_distribution(
    draws: int = 4000, seed: int = 0, labels: Sequence[str] = PLUTCHIK
) -> list[list[float]]:
    """`q[t][c]`: chance the simulated default crew's hard label is PLUTCHIK[c] for the truth
    labels[t].

    A seeded Monte Carlo through the crew model itself (`chfen.domain.crew`'s default crew,
    skips included), `draws` videos per emotion, the votes kept or dropped with `TrainConfig`'s
    default `min_votes` and `min_agreement`; rows sum to the share of videos training keeps.
    """
    from chfen.config import TrainConfig

    train = TrainConfig()
    crew = default_crew()
    q = []
    for truth in labels:
        rng = random.Random(f"chfen-demo/crew/{seed}/{truth}")
        counts: Counter[str] = Counter()
        for _ in range(draws):
            votes = [
                simulated_label(truth, annotator, rng)
                for annotator in crew
                if rng.random() >= annotator.skip_rate
            ]
            label = crew_hard_label(votes, train.min_votes, train.min_agreement)
            if label is not None:
                counts[label] += 1
        q.append([counts[e] / draws for e in PLUTCHIK])
    return q


def realised_accuracy(
    videos: Sequence[tuple[str, Mapping[str, str]]],
    channels: Sequence[str],
    labels: Sequence[str] = PLUTCHIK,
) -> float:
    """Accuracy of `bayes_predict` on these (emotion, shows) pairs: the ceiling as it fell."""
    if not videos:
        return float("nan")
    hits = sum(bayes_predict(shows, channels, labels) == emotion for emotion, shows in videos)
    return hits / len(videos)


def _targets() -> dict[str, tuple[str, ...]]:
    return {**MODALITY_CHANNELS, ORACLE: CHANNELS}


def expected_ceilings(
    crew: Sequence[Sequence[float]] | None = None, labels: Sequence[str] = PLUTCHIK
) -> dict[str, float]:
    """Ceiling per embedding modality and for all channels together ("oracle")."""
    cache: dict[tuple[str, ...], float] = {}
    out = {}
    for name, channels in _targets().items():
        if channels not in cache:
            cache[channels] = ceiling(channels, crew, labels)
        out[name] = round(cache[channels], 4)
    return out


def ceilings_report(
    videos: Sequence[tuple[str, Mapping[str, str]]], labels: Sequence[str] = PLUTCHIK
) -> dict[str, Any]:
    """The cue design and its ceilings, as the ground truth publishes them.

    `videos` are the catalogue's (emotion, shows) pairs (re-uploads and hard cases left out).
    """
    labels = tuple(labels)
    crew = crew_label_distribution(labels=labels)
    kept = sum(sum(row) for row in crew) / len(labels)
    crew_acc = sum(crew[t][PLUTCHIK.index(e)] for t, e in enumerate(labels)) / len(labels) / kept
    n = len(videos)
    return {
        "cue_design": {
            "labels": list(labels),
            "channels": list(CHANNELS),
            "rates": {
                c: {"carries": r.carries, "misleads": r.misleads, "neutral": round(r.neutral, 6)}
                for c, r in CUE_RATES.items()
            },
            "modality_channels": {m: list(c) for m, c in MODALITY_CHANNELS.items()},
            "ceiling_definition": (
                "expected accuracy of the Bayes-optimal predictor that sees, without noise, "
                "what the modality's channels show (emotion or neutral), labels uniform over "
                "the catalogue's emotions; exact enumeration. 'oracle' sees all four channels."
            ),
        },
        "ceilings": {
            "vs_truth": expected_ceilings(labels=labels),
            "vs_crew": expected_ceilings(crew, labels),
            "realised_vs_truth": {
                name: round(realised_accuracy(videos, channels, labels), 4)
                for name, channels in _targets().items()
            },
            # A perfect predictor of the truth, scored against the crew's label.
            "crew_noise": round(crew_acc, 4),
            "crew_kept_share": round(kept, 4),
        },
        "carrier_shares": {
            c: round(sum(shows[c] == emotion for emotion, shows in videos) / n, 4) if n else None
            for c in CHANNELS
        },
    }
