"""Planning the demo catalogue: a pure, seeded description of every video, nothing rendered.

`plan_catalogue` turns (seed, n_videos) into uploaders and `VideoSpec`s: the regular catalogue,
two re-uploads of earlier videos (for duplicate detection) and the "hard cases" channel of items
that must fail cleanly or land safely. Rendering (`chfen.demo.render`) follows the specs exactly,
so everything the ground truth says that does not depend on espeak-ng's output is known here.

The emotional signal is built so that no single field gives the label away and a model has to
fuse modalities (`chfen.demo.cues` holds the probabilities and the ceiling arithmetic):

- Each catalogue video has a balanced, seeded true emotion (what the simulated crew labels
  from). Four cue channels are then drawn independently for it, each from its own seeded RNG:
  `words` (spoken sentences), `prosody` (espeak-ng pitch, rate, loudness and the background
  chord), `visuals` (palette, brightness, motion) and `title`. A channel carries the truth with
  its probability p (words 0.40, prosody 0.36, visuals 0.60, title 0.60), else shows another
  emotion's cue (15 % of the rest) or, mostly, something neutral: neutral sentences, a near-
  default voice shifted per uploader over a shared chord, a muted grey palette, an everyday
  title ("Tuesday vlog").
- Titles never hold an emotion word, emoji or emotion hashtag: an emotional title is a situation
  ("Someone keyed my car again"), six phrasings per emotion. Descriptions and hashtags (the
  uploader's topic and generic ones) never depend on the emotion.
- Ceilings: the Bayes-optimal accuracy from each embedding modality's channels (title: title;
  text: words; audio and audio_seq: words and prosody, whisper hears both; scene: visuals;
  face: nothing) is at most 0.643, from all four channels 0.903 (0.852 against the crew's
  label). The ground truth publishes them, each video's cues and carriers, and the realised
  carrier shares.
- Uploaders are independent of emotions: about one per three videos in small catalogues (8 for
  the default 24), one per ten in large ones (30 for 240), never fewer than three.

Randomness comes from `random.Random` seeded with strings, which hashes them with SHA-512: the
plan is the same on every machine and Python run, whatever PYTHONHASHSEED is.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

from chfen.config import DemoSiteConfig
from chfen.demo.cues import ABSENT, CHANNELS, NEUTRAL, draw_cues
from chfen.demo.vocabulary import (
    DESCRIPTION_LINES,
    EN_MIXED_RATE,
    EN_MIXED_VOICE,
    GENERIC_HASHTAGS,
    HANDLE_NAMES,
    HANDLE_SUFFIXES,
    MIXED_TITLES,
    NEUTRAL_AMPLITUDE,
    NEUTRAL_CHORD_HZ,
    NEUTRAL_MOTION,
    NEUTRAL_PALETTE,
    NEUTRAL_PITCH,
    NEUTRAL_RATE,
    NEUTRAL_SENTENCES,
    NEUTRAL_TITLES,
    STYLES,
    TOPIC_HASHTAGS,
    VOICES,
    ZH_DESCRIPTION_LINES,
    ZH_HASHTAGS,
    ZH_RATE,
    ZH_SENTENCES,
    ZH_TITLES,
    ZH_VOICE,
    ZH_VOICE_DETECTABLE,
)
from chfen.labels import PLUTCHIK

# Bump whenever a change alters generated media or ground truth: it is part of the cache key.
GENERATOR_VERSION = 2

HARDCASES_UPLOADER = "hardcases"
# The hidden video whose bytes the truncated, oversized and stalled hard cases serve.
HARD_BASE_ID = "hard-base"

# Cut times sit on a 0.2 s grid: a whole number of frames at 25 and 30 fps and at the 15 fps
# stretches of the variable-frame-rate video, so every cut lands exactly on a frame.
CUT_GRID_S = 0.2
MIN_SHOT_S = 2.0
# PySceneDetect's ContentDetector fires above 27 by default; shot backgrounds differ by at least
# this much (mean of the H, S, V differences in OpenCV's 8-bit HSV) so every cut is found.
MIN_CUT_DELTA = 45.0
# Most frame-to-frame motion stays far below the detector threshold at this speed.
MAX_MOVER_PX_PER_FRAME = 20.0

OVERSIZED_BYTES = 30 * 1024 * 1024
TRUNCATE_FRACTION = 0.45
GARBAGE_BYTES = 400_000
TOO_LONG_S = 200
TAIL_S = 0.3  # no sentence runs into the last 0.3 s of a video (render.py skips those)

# Catalogue videos last MIN_DURATION_S..MAX_DURATION_S whole seconds, skewed short (mean about
# 11 s): long enough for two or three sentences, short enough that 240 videos go through the
# pipeline on two cores.
MIN_DURATION_S = 6
MAX_DURATION_S = 20
WATERMARK_COLORS = ("#FF006E", "#8338EC", "#3A86FF", "#FB5607", "#FFBE0B", "#06D6A0", "#EF476F")

Render = Literal["synth", "transcode", "truncate", "garbage", "none"]
Serve = Literal["file", "missing", "oversized", "stall_body"]


@dataclass(frozen=True)
class Uploader:
    """A channel: `handle` is what pages and yt-dlp show, `slug` is its URL segment.

    `topic` is its hashtag; `pitch_shift` and `rate_shift` make its espeak-ng voice its own.
    None of them depends on the emotions of its videos.
    """

    handle: str
    slug: str
    voice: str
    color: str
    topic: str = "life"
    pitch_shift: int = 0
    rate_shift: int = 0


@dataclass(frozen=True)
class ShotSpec:
    """One shot: a solid or gradient background with one element moving over it."""

    start: float
    end: float
    background: Literal["solid", "gradient"]
    colors: tuple[str, ...]  # one (solid) or two (gradient: bright end, dark end)
    mover: Literal["pattern", "box"]
    mover_color: str
    mover_size: float  # side as a fraction of the frame's shorter side
    amp_x: float  # motion amplitude as a fraction of the frame width
    amp_y: float
    freq_x: float  # Hz
    freq_y: float
    phase: float


@dataclass(frozen=True)
class VideoSpec:
    """Everything needed to render, serve and describe one item."""

    id: str
    kind: Literal["catalogue", "duplicate", "hard", "hidden", "language"]
    channel: str
    uploader: str
    emotion: str | None
    title: str
    description: str
    tags: tuple[str, ...]
    upload_time: str  # ISO 8601, UTC
    view_count: int
    like_count: int
    duration: float
    width: int
    height: int
    fps: int  # nominal; the VFR video drops to half of it in places
    vfr: bool = False
    has_audio: bool = True
    shots: tuple[ShotSpec, ...] = ()
    script: tuple[str, ...] = ()  # candidate sentences in speaking order; as many as fit are used
    pauses: tuple[float, ...] = ()  # lead-in, then the gap before each following sentence
    voice: str = "en-us"
    # For videos of the language channels, per `script` sentence: its language ('en', 'zh') and
    # espeak-ng voice and rate. Empty: every sentence is English, spoken in `voice` at `rate`.
    languages: tuple[str, ...] = ()
    sentence_voices: tuple[tuple[str, int], ...] = ()
    pitch: int = 50
    rate: int = 175
    amplitude: int = 100
    chord_hz: tuple[float, ...] = ()  # the quiet background chord (none: silence under speech)
    tremolo_hz: float = 0.0
    # (channel, what it shows): an emotion, "neutral" or "absent"; empty for failing items.
    cues: tuple[tuple[str, str], ...] = ()
    crf: int = 23
    render: Render = "synth"
    serve: Serve = "file"
    page_stalls: bool = False
    source: str | None = None  # the rendered item this one's bytes come from
    scale: float = 1.0  # for re-encodes of `source`
    duplicate_of: str | None = None
    expect: Literal["ok", "fail"] = "ok"
    fail_kind: str | None = None
    note: str = ""

    @property
    def listed(self) -> bool:
        """Hidden items only supply bytes to other items; they have no page or feed entry."""
        return self.kind != "hidden"

    @property
    def cuts(self) -> list[float]:
        """Cut times in seconds: the start of every shot but the first."""
        return [s.start for s in self.shots[1:]]

    @property
    def shows(self) -> dict[str, str]:
        """Cue channel -> what it shows (an emotion, "neutral" or "absent")."""
        return dict(self.cues)

    @property
    def carriers(self) -> list[str]:
        """The cue channels that show this video's true emotion, in CHANNELS order."""
        shows = self.shows
        return [c for c in CHANNELS if self.emotion is not None and shows.get(c) == self.emotion]


@dataclass(frozen=True)
class CataloguePlan:
    """The whole site: uploaders and every item, in page order."""

    seed: int
    n_videos: int
    uploaders: tuple[Uploader, ...]
    videos: tuple[VideoSpec, ...]
    hard_uploader: Uploader = field(
        default=Uploader(HARDCASES_UPLOADER, HARDCASES_UPLOADER, "en-us", "#FFFFFF")
    )
    labels: tuple[str, ...] = PLUTCHIK  # the emotions the catalogue videos carry
    languages: tuple[str, ...] = ("en",)  # demo_site.languages

    def spec(self, video_id: str) -> VideoSpec:
        """The spec with this id; KeyError names the id when there is none."""
        for video in self.videos:
            if video.id == video_id:
                return video
        raise KeyError(f"no video {video_id!r} in the demo catalogue")

    @property
    def listed(self) -> list[VideoSpec]:
        return [v for v in self.videos if v.listed]


def n_uploaders_for(n_videos: int) -> int:
    """About one uploader per three videos for small catalogues (8 for the default 24), about
    one per ten for large ones (30 for 240), never fewer than three, so that a split by uploader
    has several uploaders on every side."""
    return max(3, min(round(n_videos / 3), 6 + round(n_videos / 10)))


def hsv_cv(color: str) -> tuple[float, float, float]:
    """#RRGGBB -> (H 0..179, S 0..255, V 0..255), as OpenCV converts 8-bit BGR to HSV."""
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    v, m = max(r, g, b), min(r, g, b)
    s = 0.0 if v == 0 else 255.0 * (v - m) / v
    if v == m:
        h = 0.0
    elif v == r:
        h = 60.0 * (g - b) / (v - m)
    elif v == g:
        h = 120.0 + 60.0 * (b - r) / (v - m)
    else:
        h = 240.0 + 60.0 * (r - g) / (v - m)
    if h < 0:
        h += 360.0
    return h / 2.0, s, float(v)


def content_delta(a: str, b: str) -> float:
    """ContentDetector's score for a hard cut between two flat colours (hue not wrapped)."""
    ha, hb = hsv_cv(a), hsv_cv(b)
    return sum(abs(x - y) for x, y in zip(ha, hb, strict=True)) / 3.0


def darken(color: str, factor: float) -> str:
    """The same hue with its brightness scaled by `factor`."""
    r, g, b = (round(int(color[i : i + 2], 16) * factor) for i in (1, 3, 5))
    return f"#{r:02X}{g:02X}{b:02X}"


def iso_duration(seconds: float) -> str:
    """Seconds -> ISO 8601 duration as schema.org uses it: 23 -> PT23S, 200 -> PT3M20S."""
    whole = int(seconds)
    frac = seconds - whole
    minutes, secs = divmod(whole, 60)
    sec_text = f"{secs + frac:g}" if frac else str(secs)
    return f"PT{minutes}M{sec_text}S" if minutes else f"PT{sec_text}S"


def _rng(seed: int, *parts: object) -> random.Random:
    return random.Random("/".join(["chfen-demo", str(seed), *map(str, parts)]))


def _plan_uploaders(seed: int, n: int) -> list[Uploader]:
    rng = _rng(seed, "uploaders")
    combos = [f"{a}_{b}" for a in HANDLE_NAMES for b in HANDLE_SUFFIXES]
    rng.shuffle(combos)
    slugs = [
        combos[i % len(combos)] + (f"{i // len(combos)}" if i >= len(combos) else "")
        for i in range(n)
    ]
    voices = list(VOICES)
    rng.shuffle(voices)
    return [
        Uploader(
            handle=f"@{slug}",
            slug=slug,
            voice=voices[i % len(voices)],
            color=WATERMARK_COLORS[rng.randrange(len(WATERMARK_COLORS))],
            topic=rng.choice(TOPIC_HASHTAGS),
            pitch_shift=rng.randint(-6, 6),
            rate_shift=rng.randint(-10, 10),
        )
        for i, slug in enumerate(slugs)
    ]


def _cuts_cleanly(prev: tuple[str, ...], cand: tuple[str, ...]) -> bool:
    return not prev or min(content_delta(a, b) for a in prev for b in cand) >= MIN_CUT_DELTA


def _pick_colors(palette: list[str], prev: tuple[str, ...], gradient: bool) -> tuple[str, ...]:
    """The first palette colour (as a gradient when asked and possible) that cuts cleanly from
    the previous shot and still leaves a clean cut to some flat colour after it."""
    for color in palette:
        options = [(color, darken(color, 0.55)), (color,)] if gradient else [(color,)]
        for cand in options:
            # Look one shot ahead: a gradient's dark end can rule out every next colour.
            if _cuts_cleanly(prev, cand) and any(_cuts_cleanly(cand, (c,)) for c in palette):
                return cand
    # Every palette colour has a far enough partner (a test checks the palettes), so this is
    # only reached if someone edits a palette badly.
    raise ValueError(f"palette {palette} has no colour that cuts cleanly from {prev}")


def _look(shows: str) -> tuple[tuple[str, ...], float]:
    """Palette and motion speed of what the visuals channel shows."""
    if shows in STYLES:
        return STYLES[shows].palette, STYLES[shows].motion
    return NEUTRAL_PALETTE, NEUTRAL_MOTION


def _plan_shots(
    rng: random.Random, visuals: str, duration: float, fps: int, width: int, height: int
) -> tuple[ShotSpec, ...]:
    base_palette, motion = _look(visuals)
    ticks = round(duration / CUT_GRID_S)
    min_ticks = round(MIN_SHOT_S / CUT_GRID_S)
    n_shots = rng.randint(2, max(2, min(6, int(duration // 2.5))))
    spare = ticks - n_shots * min_ticks
    points = sorted(rng.randint(0, spare) for _ in range(n_shots - 1))
    lengths = [b - a + min_ticks for a, b in zip([0, *points], [*points, spare], strict=True)]
    palette = list(base_palette)
    shots: list[ShotSpec] = []
    prev: tuple[str, ...] = ()
    start_ticks = 0
    for length in lengths:
        rng.shuffle(palette)
        gradient = rng.random() < 0.35
        colors = _pick_colors(palette, prev, gradient)
        size = rng.uniform(0.25, 0.4)
        amp_x, amp_y = rng.uniform(0.12, 0.3), rng.uniform(0.12, 0.3)
        # Cap the speed so that even at half the frame rate a frame moves the element only a
        # little: a fast mover must never look like a cut.
        max_freq = MAX_MOVER_PX_PER_FRAME * fps / (2 * math.pi * max(amp_x * width, amp_y * height))
        freq_x = min(motion * rng.uniform(0.12, 0.3), max_freq)
        freq_y = min(motion * rng.uniform(0.12, 0.3), max_freq)
        bright = hsv_cv(colors[0])[2] >= 128
        shots.append(
            ShotSpec(
                start=round(start_ticks * CUT_GRID_S, 3),
                end=round((start_ticks + length) * CUT_GRID_S, 3),
                background="gradient" if len(colors) == 2 else "solid",
                colors=colors,
                mover="pattern" if rng.random() < 0.5 else "box",
                mover_color="#111111" if bright else "#F5F5F5",
                mover_size=round(size, 3),
                amp_x=round(amp_x, 3),
                amp_y=round(amp_y, 3),
                freq_x=round(freq_x, 3),
                freq_y=round(freq_y, 3),
                phase=round(rng.uniform(0, 2 * math.pi), 3),
            )
        )
        prev = colors
        start_ticks += length
    return tuple(shots)


def _plan_script(rng: random.Random, words: str) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """Candidate sentences for what the words channel shows (an emotion or neutral), in order."""
    if words in STYLES:
        sentences = list(STYLES[words].sentences)
        rng.shuffle(sentences)
        if rng.random() < 0.5:
            sentences.insert(rng.randrange(1, len(sentences)), rng.choice(NEUTRAL_SENTENCES))
    else:
        sentences = rng.sample(NEUTRAL_SENTENCES, 8)
    pauses = [round(rng.uniform(0.3, 1.0), 2)] + [
        round(rng.uniform(0.35, 1.1), 2) for _ in sentences[1:]
    ]
    return tuple(sentences), tuple(pauses)


def _upload_time(rng: random.Random, after: datetime | None = None) -> datetime:
    if after is None:
        base = datetime(2024, 1, 1, tzinfo=UTC)
        return base + timedelta(days=rng.randrange(365), seconds=rng.randrange(86400))
    return after + timedelta(days=rng.randint(2, 40), seconds=rng.randrange(86400))


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _counts(rng: random.Random, scale: float = 1.0) -> tuple[int, int]:
    views = int(math.exp(rng.uniform(math.log(200), math.log(2_000_000))) * scale)
    return views, int(views * rng.uniform(0.01, 0.12))


def _voice(shows: str, uploader: Uploader, rng: random.Random) -> dict[str, object]:
    """espeak-ng settings and background chord for what the prosody channel shows."""
    if shows in STYLES:
        style = STYLES[shows]
        pitch, rate, amplitude = style.pitch, style.rate, style.amplitude
        chord, tremolo = style.chord_hz, style.tremolo_hz
        shift_pitch, shift_rate = uploader.pitch_shift // 2, uploader.rate_shift // 2
    else:
        pitch, rate, amplitude = NEUTRAL_PITCH, NEUTRAL_RATE, NEUTRAL_AMPLITUDE
        chord, tremolo = NEUTRAL_CHORD_HZ, 0.0
        shift_pitch, shift_rate = uploader.pitch_shift, uploader.rate_shift
    return {
        "pitch": max(0, min(99, pitch + shift_pitch + rng.randint(-3, 3))),
        "rate": rate + shift_rate + rng.randint(-6, 6),
        "amplitude": amplitude,
        "chord_hz": chord,
        "tremolo_hz": tremolo,
    }


def _title(rng: random.Random, shows: str) -> str:
    """A situation for an emotion, an everyday phrase for neutral; sometimes part of a series."""
    title = rng.choice(STYLES[shows].titles if shows in STYLES else NEUTRAL_TITLES)
    if rng.random() < 0.25:
        title = f"{title}, part {rng.randint(2, 5)}"
    return title


def _catalogue_video(
    seed: int,
    index: int,
    emotion: str,
    uploader: Uploader,
    portrait: bool,
    fps: int,
    vfr: bool,
    labels: tuple[str, ...] = PLUTCHIK,
) -> VideoSpec:
    rng = _rng(seed, "video", index)
    # Its own stream, so the cue draws do not depend on how many draws the content takes.
    shows = draw_cues(_rng(seed, "cues", index), emotion, labels)
    width, height = (720, 1280) if portrait else (1280, 720)
    # Skewed towards the short end as on real short-video platforms (mean about 11 s); it also
    # keeps generation and the pipeline quick, which scale with the total number of frames.
    span = MAX_DURATION_S - MIN_DURATION_S
    duration = float(MIN_DURATION_S + round(span * rng.random() ** 1.7))
    script, pauses = _plan_script(rng, shows["words"])
    title = _title(rng, shows["title"])
    tags = (uploader.topic, *rng.sample(GENERIC_HASHTAGS, 2))
    lines = rng.sample(DESCRIPTION_LINES, rng.randint(1, 2))
    description = " ".join([*lines, *(f"#{t}" for t in tags)])
    voice = _voice(shows["prosody"], uploader, rng)
    views, likes = _counts(rng)
    return VideoSpec(
        id=f"v{index:04d}",
        kind="catalogue",
        channel=uploader.slug,
        uploader=uploader.handle,
        emotion=emotion,
        title=title,
        description=description,
        tags=tags,
        upload_time=_iso(_upload_time(rng)),
        view_count=views,
        like_count=likes,
        duration=duration,
        width=width,
        height=height,
        fps=fps,
        vfr=vfr,
        shots=_plan_shots(rng, shows["visuals"], duration, fps, width, height),
        script=script,
        pauses=pauses,
        voice=uploader.voice,
        cues=tuple((c, shows[c]) for c in CHANNELS),
        **voice,  # type: ignore[arg-type]
    )


def _duplicates(
    seed: int, videos: list[VideoSpec], uploaders: list[Uploader], first_index: int
) -> list[VideoSpec]:
    """Two earlier videos re-uploaded by someone else, re-encoded smaller and blurrier."""
    rng = _rng(seed, "duplicates")
    candidates = [v for v in videos if not v.vfr] or videos
    originals = rng.sample(candidates, min(2, len(candidates)))
    variants = ((0.75, 30, ""), (0.5, 34, " (full video)"))
    dupes = []
    for k, (orig, (scale, crf, suffix)) in enumerate(zip(originals, variants, strict=False)):
        others = [u for u in uploaders if u.handle != orig.uploader]
        uploader = rng.choice(others)
        views, likes = _counts(rng, scale=0.2)
        posted = datetime.strptime(orig.upload_time, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        dupes.append(
            replace(
                orig,
                id=f"v{first_index + k:04d}",
                kind="duplicate",
                channel=uploader.slug,
                uploader=uploader.handle,
                title=orig.title + suffix,
                upload_time=_iso(_upload_time(rng, after=posted)),
                view_count=views,
                like_count=likes,
                width=round(orig.width * scale / 2) * 2,
                height=round(orig.height * scale / 2) * 2,
                voice=orig.voice,
                crf=crf,
                render="transcode",
                source=orig.id,
                scale=scale,
                duplicate_of=orig.id,
                note=f"re-upload of {orig.id}: scaled x{scale}, CRF {crf}",
            )
        )
    return dupes


def _hard_cases(seed: int) -> list[VideoSpec]:
    """Items that must fail cleanly, and odd items that must still land as good videos."""
    rng = _rng(seed, "hardcases")

    # Hard cases test names, tracks and failure handling, not picture size: small is quicker.
    def synth(
        video_id: str,
        mood: str,
        duration: float,
        *,
        width: int = 360,
        height: int = 640,
        fps: int = 30,
        **overrides: object,
    ) -> VideoSpec:
        # `mood` shapes the content; an override may still set the ground-truth emotion to None.
        script, pauses = _plan_script(rng, mood)
        style = STYLES[mood]
        views, likes = _counts(rng)
        spec = VideoSpec(
            id=video_id,
            kind="hard",
            channel=HARDCASES_UPLOADER,
            uploader=HARDCASES_UPLOADER,
            emotion=mood,
            title=video_id,
            description=script[0],
            tags=(),
            upload_time=_iso(_upload_time(rng)),
            view_count=views,
            like_count=likes,
            duration=duration,
            width=width,
            height=height,
            fps=fps,
            shots=_plan_shots(rng, mood, duration, fps, width, height),
            script=script,
            pauses=pauses,
            pitch=style.pitch,
            rate=style.rate,
            amplitude=style.amplitude,
            chord_hz=style.chord_hz,
            tremolo_hz=style.tremolo_hz,
            # Written for their mood, titles included; without audio, words and prosody are absent.
            cues=tuple((c, mood) for c in CHANNELS),
        )
        spec = replace(spec, **overrides)  # type: ignore[arg-type]
        if not spec.has_audio:
            silent = {"words", "prosody"}
            cues = tuple((c, ABSENT if c in silent else s) for c, s in spec.cues)
            spec = replace(spec, cues=cues)
        return spec

    base = synth(HARD_BASE_ID, "joy", 10.0, kind="hidden", title="base for derived hard cases")

    def fails(
        video_id: str, fail_kind: str, title: str, note: str, **overrides: object
    ) -> VideoSpec:
        # Failing items borrow the hidden base's bytes or metadata; they carry no emotion so
        # that nothing downstream can train on them by mistake.
        spec = replace(
            base,
            id=video_id,
            kind="hard",
            emotion=None,
            title=title,
            description=note,
            expect="fail",
            fail_kind=fail_kind,
            note=note,
            cues=(),
        )
        return replace(spec, **overrides)  # type: ignore[arg-type]

    return [
        base,
        fails(
            "hard-404",
            "http_404",
            "This video was removed",
            "the page is fine but its video URL answers 404",
            render="none",
            serve="missing",
        ),
        fails(
            "hard-truncated",
            "corrupt",
            "Upload interrupted",
            f"the mp4 is cut after {TRUNCATE_FRACTION:.0%} of its bytes and served as if complete",
            render="truncate",
            source=HARD_BASE_ID,
        ),
        fails(
            "hard-garbage",
            "corrupt",
            "Totally a real video",
            "random bytes served as video/mp4",
            render="garbage",
        ),
        synth(
            "hard-too-long",
            "anticipation",
            float(TOO_LONG_S),
            width=180,
            height=320,
            fps=10,
            title="Full livestream replay",
            emotion=None,
            cues=(),
            expect="fail",
            fail_kind="too_long",
            note=f"{TOO_LONG_S} s, longer than the crawl's max duration (default 180 s)",
        ),
        fails(
            "hard-oversized",
            "too_large",
            "Raw 4K footage",
            f"a valid mp4 padded to {OVERSIZED_BYTES} bytes, sent without Content-Length; "
            "fails when crawl.max_filesize_mb is below that size",
            render="none",
            serve="oversized",
            source=HARD_BASE_ID,
        ),
        fails(
            "hard-stall",
            "timeout",
            "Slow server",
            "the page itself answers only after the server's stall time",
            render="none",
            source=HARD_BASE_ID,
            page_stalls=True,
        ),
        fails(
            "hard-stall-body",
            "timeout",
            "Stalled download",
            "the video sends a quarter of its bytes, then stalls for the stall time",
            render="none",
            serve="stall_body",
            source=HARD_BASE_ID,
        ),
        synth(
            "hard-no-audio",
            "sadness",
            9.0,
            has_audio=False,
            title="Quiet rainy window",
            note="a good video without an audio track",
        ),
        synth(
            "hard-traversal",
            "surprise",
            8.0,
            title='../../etc/passwd <b>"wow"</b> & 🎉🔥 did not see that coming',
            description="Title has ../../, HTML, quotes, an ampersand and emoji 🎉",
            note="a good video whose title must never become a path",
        ),
        synth(
            "hard-chinese",
            "joy",
            8.0,
            title="今天真开心 🎉 和朋友去海边",
            description="我们在海边玩了一整天，太开心了！#快乐 #海边",
            tags=("快乐", "海边"),
            note="a good video with a Chinese title and description",
        ),
    ]


# The language channels' videos: what each says, sentence by sentence, in which language.
# Mandarin sentences are ZH_SENTENCES; the English ones come from NEUTRAL_SENTENCES.
ZH_UPLOADER = Uploader("@xiaolin_richang", "xiaolin_richang", ZH_VOICE, "#EF476F", "生活")
MIXED_UPLOADER = Uploader("@bilingual_bites", "bilingual_bites", EN_MIXED_VOICE, "#06D6A0", "双语")
_LANGUAGE_SCRIPTS: tuple[tuple[str, Uploader, str, tuple[tuple[str, str], ...]], ...] = (
    ("zh-001", ZH_UPLOADER, ZH_TITLES[0], (("zh", ZH_SENTENCES[0]), ("zh", ZH_SENTENCES[1]))),
    ("zh-002", ZH_UPLOADER, ZH_TITLES[1], (("zh", ZH_SENTENCES[2]), ("zh", ZH_SENTENCES[3]))),
    ("zh-003", ZH_UPLOADER, ZH_TITLES[2], (("zh", ZH_SENTENCES[4]), ("zh", ZH_SENTENCES[5]))),
    # Mandarin, then English.
    ("mix-001", MIXED_UPLOADER, MIXED_TITLES[0],
     (("zh", ZH_SENTENCES[6]), ("en", "Let me show you around."),
      ("en", "We walked to the park and back."))),
    # English, then Mandarin.
    ("mix-002", MIXED_UPLOADER, MIXED_TITLES[1],
     (("en", "This is my video for today."), ("en", "The bus comes at nine every morning."),
      ("zh", ZH_SENTENCES[7]))),
)  # fmt: skip
# Generous estimates of espeak-ng's speaking time (measured: Mandarin at ZH_RATE 0.32-0.38 s per
# character, English at EN_MIXED_RATE about 0.05 s per character), so every sentence fits.
_EST_S_PER_CHAR = {"zh": 0.42, "en": 0.07}
# Pauses before a sentence: the first, one in the same language, one where the language changes
# (speakers switch at a pause; whisper detects the language of each stretch between pauses).
_LEAD_S, _SAME_S, _SWITCH_S = 0.4, 0.5, 0.8


def _language_videos(seed: int, labels: tuple[str, ...]) -> list[VideoSpec]:
    """The Mandarin and the code-switched channel's videos (demo_site.languages has 'zh')."""
    rng = _rng(seed, "languages")
    videos = []
    for video_id, uploader, title, lines in _LANGUAGE_SCRIPTS:
        languages = tuple(lang for lang, _ in lines)
        pauses = tuple(
            _LEAD_S if i == 0 else _SAME_S if languages[i - 1] == lang else _SWITCH_S
            for i, lang in enumerate(languages)
        )
        speech = sum(len(text) * _EST_S_PER_CHAR[lang] for lang, text in lines)
        duration = float(math.ceil(sum(pauses) + speech + TAIL_S))
        emotion = rng.choice(labels)
        zh_voice = ZH_VOICE if uploader is ZH_UPLOADER else ZH_VOICE_DETECTABLE
        fps, width, height = 25, 360, 640  # small and quick: these test languages, not pictures
        tags = (uploader.topic, *ZH_HASHTAGS)
        line = rng.choice(ZH_DESCRIPTION_LINES)
        views, likes = _counts(rng)
        videos.append(
            VideoSpec(
                id=video_id,
                kind="language",
                channel=uploader.slug,
                uploader=uploader.handle,
                emotion=emotion,
                title=title,
                description=" ".join([line, *(f"#{t}" for t in tags)]),
                tags=tags,
                upload_time=_iso(_upload_time(rng)),
                view_count=views,
                like_count=likes,
                duration=duration,
                width=width,
                height=height,
                fps=fps,
                shots=_plan_shots(rng, emotion, duration, fps, width, height),
                script=tuple(text for _, text in lines),
                pauses=pauses,
                voice=uploader.voice,
                languages=languages,
                pitch=NEUTRAL_PITCH,
                sentence_voices=tuple(
                    (zh_voice, ZH_RATE) if lang == "zh" else (EN_MIXED_VOICE, EN_MIXED_RATE)
                    for lang in languages
                ),
                rate=EN_MIXED_RATE,
                amplitude=NEUTRAL_AMPLITUDE,
                chord_hz=NEUTRAL_CHORD_HZ,
                # The emotion is in the pictures; words, voice and title are everyday.
                cues=tuple((c, emotion if c == "visuals" else NEUTRAL) for c in CHANNELS),
                note="code-switched: " + " then ".join(dict.fromkeys(languages))
                if len(set(languages)) > 1
                else "Mandarin",
            )
        )
    return videos


def plan_catalogue(cfg: DemoSiteConfig) -> CataloguePlan:
    """The full, deterministic plan for `cfg.seed` and `cfg.n_videos` (no media touched)."""
    seed, n = cfg.seed, cfg.n_videos
    rng = _rng(seed, "catalogue")
    uploaders = _plan_uploaders(seed, n_uploaders_for(n))

    # Balanced labels: each emotion within one video of every other.
    labels = tuple(cfg.emotions)
    emotions = [labels[i % len(labels)] for i in range(n)]
    rng.shuffle(emotions)
    # Every uploader gets a video before any gets a second; after that, some channels are
    # busier than others, as on real platforms.
    weights = [rng.uniform(0.7, 1.3) for _ in uploaders]
    owners = list(range(len(uploaders)))[:n]
    owners += rng.choices(range(len(uploaders)), weights=weights, k=max(0, n - len(owners)))
    rng.shuffle(owners)
    vfr_index = rng.randrange(n)

    videos = []
    for i in range(n):
        vfr = i == vfr_index
        fps = 30 if vfr or rng.random() >= 0.25 else 25
        portrait = rng.random() < 0.75
        videos.append(
            _catalogue_video(
                seed, i + 1, emotions[i], uploaders[owners[i]], portrait, fps, vfr, labels
            )
        )
    dupes = _duplicates(seed, videos, uploaders, first_index=n + 1)
    extra: list[VideoSpec] = []
    extra_uploaders: list[Uploader] = []
    if "zh" in cfg.languages:  # after everything else: the rest of the plan stays the same
        extra = _language_videos(seed, labels)
        extra_uploaders = [ZH_UPLOADER, MIXED_UPLOADER]
    return CataloguePlan(
        seed=seed,
        n_videos=n,
        uploaders=tuple(uploaders + extra_uploaders),
        videos=tuple(videos + dupes + _hard_cases(seed) + extra),
        labels=labels,
        languages=tuple(cfg.languages),
    )
