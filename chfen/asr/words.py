"""Word timings after recognition: fill the gaps, keep them in order, group into sentences.

Aligners sometimes return a word without a start or end (whisperx does for words whose
characters the alignment model does not know, or when a segment fails to align). Such words
are never dropped: their times are interpolated between their timed neighbours and they are
flagged `interpolated`.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# A sentence ends after a word ending in one of these.
SENTENCE_END = (".", "?", "!", "。", "？", "！")
# How far ahead to look for a word when the aligner's word list and the text disagree.
MATCH_LOOKAHEAD = 3


@dataclass
class Word:
    """One recognized word; times in seconds from the start of the audio."""

    text: str
    start: float | None
    end: float | None
    score: float | None = None
    interpolated: bool = False
    language: str | None = None  # whisper's language code of the chunk it was heard in
    unit: str = "word"  # "word", or "character" for Chinese split per character

    @property
    def timed(self) -> bool:
        return _finite(self.start) and _finite(self.end)


@dataclass
class Segment:
    """A run of words (a sentence, or what the recognizer returned as one piece)."""

    start: float
    end: float
    words: list[Word] = field(default_factory=list)
    avg_logprob: float | None = None
    no_speech_prob: float | None = None
    language: str | None = None

    @property
    def text(self) -> str:
        return join_words(w.text for w in self.words)


def join_words(words: Iterable[str]) -> str:
    """Words as text: spaces between them, except between Chinese or Japanese characters
    (written without spaces)."""
    out = ""
    for word in words:
        if out and not (_unspaced(out[-1]) and _unspaced(word[:1])):
            out += " "
        out += word
    return out


def _unspaced(char: str) -> bool:
    """A CJK character or CJK punctuation: no space is written next to it."""
    if not char:
        return False
    code = ord(char)
    return (
        0x2E80 <= code <= 0x9FFF  # CJK radicals, punctuation, kana, unified ideographs
        or 0xF900 <= code <= 0xFAFF  # compatibility ideographs
        or 0xFF00 <= code <= 0xFFEF  # full-width forms (，！？)
        or 0x20000 <= code <= 0x2FFFF  # extension ideographs
    )


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def fill_missing_times(words: Sequence[Word], lo: float, hi: float) -> int:
    """Give every untimed word a time inside the gap between its timed neighbours.

    The gap (or [lo, hi] at the edges) is shared in proportion to the words' lengths. Words
    that get times are flagged `interpolated`. Returns how many were filled in.
    """
    filled = 0
    i = 0
    while i < len(words):
        if words[i].timed:
            i += 1
            continue
        j = i
        while j < len(words) and not words[j].timed:
            j += 1
        left = words[i - 1].end if i > 0 else lo
        right = words[j].start if j < len(words) else hi
        assert left is not None and right is not None
        right = max(right, left)
        run = words[i:j]
        weights = [max(len(w.text), 1) for w in run]
        total = float(sum(weights))
        t = left
        for word, weight in zip(run, weights, strict=True):
            step = (right - left) * weight / total
            word.start, word.end = t, t + step
            word.interpolated = True
            t += step
        filled += len(run)
        i = j
    return filled


def snap_to_speech(words: Sequence[Word], speech: Sequence[tuple[float, float]]) -> int:
    """Trim word edges that stick out of the detected speech into a pause.

    Whisper's word timestamps tend to stretch a word over an adjacent pause (the first word
    after a pause starts early, the last one before it ends late). A word's start is moved up
    to the start of the first speech region it overlaps and its end back to the end of the
    last one; words are only ever shortened, and a word overlapping no region is left as is.
    `speech` is sorted and non-overlapping. Returns how many words changed.
    """
    starts = [s for s, _ in speech]
    changed = 0
    for word in words:
        if not word.timed:
            continue
        assert word.start is not None and word.end is not None
        # Regions overlapping [start, end]: from the last one starting before `end` backwards.
        k = bisect.bisect_right(starts, word.end) - 1
        first = last = None
        while k >= 0 and speech[k][1] > word.start:
            last = speech[k] if last is None else last
            first = speech[k]
            k -= 1
        if first is None or last is None:
            continue
        start, end = max(word.start, first[0]), min(word.end, last[1])
        if end > start and (start, end) != (word.start, word.end):
            word.start, word.end = start, end
            changed += 1
    return changed


def order_times(words: Sequence[Word], duration: float) -> None:
    """Clamp times into [0, duration], make starts non-decreasing and end >= start."""
    previous = 0.0
    for word in words:
        start = min(max(word.start or 0.0, 0.0), duration)
        end = min(max(word.end if word.end is not None else start, 0.0), duration)
        start = max(start, previous)
        word.start, word.end = start, max(end, start)
        previous = start


def match_aligned(text_words: Sequence[str], aligned: Iterable[Mapping[str, Any]]) -> list[Word]:
    """The words of the transcript text, with the aligner's times where it gave them.

    `aligned` is whisperx's word list (`word`, optional `start`, `end`, `score`). A word
    whisperx returned with times but no score had its times interpolated by whisperx itself,
    so it is flagged too. Words of the text that the aligner dropped come back untimed.
    """
    pending = [dict(a) for a in aligned]
    out: list[Word] = []
    j = 0
    for text in text_words:
        k = next(
            (
                k
                for k in range(j, min(j + MATCH_LOOKAHEAD, len(pending)))
                if str(pending[k].get("word", "")).strip() == text
            ),
            None,
        )
        if k is None:
            out.append(Word(text, None, None))
            continue
        item = pending[k]
        j = k + 1
        start, end, score = item.get("start"), item.get("end"), item.get("score")
        word = Word(
            text,
            float(start) if _finite(start) else None,
            float(end) if _finite(end) else None,
            float(score) if _finite(score) else None,
        )
        word.interpolated = word.timed and word.score is None
        out.append(word)
    return out


def split_sentences(segment: Segment) -> list[Segment]:
    """Split a recognizer segment into sentences at sentence-ending punctuation."""
    if not segment.words:
        return []
    pieces: list[list[Word]] = [[]]
    for word in segment.words:
        pieces[-1].append(word)
        if word.text.endswith(SENTENCE_END):
            pieces.append([])
    out = []
    for words in pieces:
        if not words:
            continue
        out.append(
            Segment(
                start=float(words[0].start or 0.0),
                end=float(max(w.end or 0.0 for w in words)),
                words=words,
                avg_logprob=segment.avg_logprob,
                no_speech_prob=segment.no_speech_prob,
                language=segment.language,
            )
        )
    return out
