"""Chinese transcripts: one script (OpenCC), and timed words per jieba word or per character.

Whisper writes Chinese without spaces and, for languages written so, faster-whisper's word
timestamps are per token: a token is one character or a few (a common word can be a single
token), with punctuation as tokens of its own. `regroup` turns those into the configured unit:

- "character": every character a word; a multi-character token's time is shared evenly
  among its characters (flagged `interpolated`, since the split is not measured);
- "word": jieba's segmentation of the segment's text; a word runs from its first character's
  start to its last one's end.

Punctuation is never a word of its own: it is attached to the word before it, as whisper does
for English, so sentence splitting on 。？！ keeps working.
"""

from __future__ import annotations

import logging
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chfen.asr.words import Word

# Whisper language codes whose text is Chinese characters.
CHINESE = ("zh", "yue")
UNIT_WORD = "word"
UNIT_CHARACTER = "character"
# asr.chinese_script -> OpenCC configuration (None: leave the text as whisper wrote it).
OPENCC_CONFIG: dict[str, str | None] = {"simplified": "t2s", "traditional": "s2t", "as_is": None}

_lock = threading.Lock()
_converters: dict[str, Any] = {}
_jieba: Any = None


def is_chinese(language: str | None) -> bool:
    return language in CHINESE


def _converter(script: str) -> Any:
    config = OPENCC_CONFIG[script]
    if config is None:
        return None
    with _lock:
        if config not in _converters:
            import opencc

            _converters[config] = opencc.OpenCC(config)
        return _converters[config]


def convert_script(text: str, script: str) -> str:
    """`text` in the configured Chinese script ('simplified', 'traditional' or 'as_is')."""
    converter = _converter(script)
    return converter.convert(text) if converter is not None and text else text


def convert_words(words: Sequence[Word], script: str) -> None:
    """Convert the words' text in place, with the context of the whole run of words.

    OpenCC converts phrase by phrase (some characters map differently inside a phrase), so the
    words are converted together; when that keeps every character in place (it almost always
    does between simplified and traditional) the result is cut back into the same words,
    otherwise each word is converted on its own.
    """
    if _converter(script) is None or not words:
        return
    joined = "".join(w.text for w in words)
    converted = convert_script(joined, script)
    if len(converted) == len(joined):
        i = 0
        for word in words:
            n = len(word.text)
            word.text, i = converted[i : i + n], i + n
        return
    for word in words:
        word.text = convert_script(word.text, script)


def _tokenizer() -> Any:
    global _jieba
    with _lock:
        if _jieba is None:
            import jieba

            # jieba logs its dictionary loading at INFO on the root of its own logger.
            jieba.setLogLevel(logging.WARNING)
            tokenizer = jieba.Tokenizer()
            tokenizer.initialize()
            _jieba = tokenizer
        return _jieba


def _punctuation(text: str) -> bool:
    return bool(text) and all(unicodedata.category(c)[0] in "PSZ" for c in text)


@dataclass
class _Char:
    char: str
    start: float | None
    end: float | None
    score: float | None
    interpolated: bool  # the token's own time was filled in
    split: bool  # one of several characters sharing a token's time


def _characters(words: Sequence[Word]) -> list[_Char]:
    chars: list[_Char] = []
    for word in words:
        text = word.text.strip()
        n = len(text)
        for i, char in enumerate(text):
            if word.timed and n > 1:
                assert word.start is not None and word.end is not None
                step = (word.end - word.start) / n
                start, end = word.start + i * step, word.start + (i + 1) * step
            else:
                start, end = word.start, word.end
            chars.append(_Char(char, start, end, word.score, word.interpolated, n > 1))
    return chars


def _word(chars: Sequence[_Char], language: str | None, unit: str, whole: bool) -> Word:
    """One word of these characters; `whole`: it starts and ends on token boundaries, so
    its times are the tokens' own (else a shared token's time was split by guess)."""
    timed = [c for c in chars if c.start is not None and c.end is not None]
    scores = [c.score for c in chars if c.score is not None]
    return Word(
        "".join(c.char for c in chars),
        timed[0].start if timed else None,
        max(c.end for c in timed if c.end is not None) if timed else None,
        min(scores) if scores else None,
        interpolated=any(c.interpolated or (c.split and not whole) for c in chars),
        language=language,
        unit=unit,
    )


def regroup(words: Sequence[Word], unit: str, language: str | None) -> list[Word]:
    """Whisper's per-token Chinese words as timed jieba words or characters (see module)."""
    chars = [c for c in _characters(words) if not c.char.isspace()]
    if not chars:
        return []
    groups: list[list[_Char]] = []
    if unit == UNIT_CHARACTER:
        for c in chars:
            if _punctuation(c.char) and groups:
                groups[-1].append(c)
            else:
                groups.append([c])
        return [_word(g, language, unit, whole=False) for g in groups]
    if unit != UNIT_WORD:
        raise ValueError(f"asr.chinese_words must be 'word' or 'character', not {unit!r}")
    text = "".join(c.char for c in chars)
    i = 0
    for token in _tokenizer().cut(text, HMM=True):
        piece = chars[i : i + len(token)]
        i += len(token)
        if _punctuation(token) and groups:
            groups[-1].extend(piece)
        else:
            groups.append(list(piece))
    # A jieba word holding whole tokens keeps their measured times; only a word that cuts
    # through a token is flagged.
    out = []
    bounds = _token_bounds(words)
    pos = 0
    for group in groups:
        end = pos + len(group)
        out.append(_word(group, language, unit, whole=pos in bounds and end in bounds))
        pos = end
    return out


def _token_bounds(words: Sequence[Word]) -> set[int]:
    """Character offsets (spaces dropped) where whisper's tokens begin and end."""
    bounds = {0}
    pos = 0
    for word in words:
        pos += sum(1 for c in word.text.strip() if not c.isspace())
        bounds.add(pos)
    return bounds


def _comparable(text: str) -> str:
    """Characters that count for the error rate: no spaces or punctuation, one script."""
    return "".join(c for c in convert_script(text, "simplified") if not _punctuation(c))


def character_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference characters, ignoring spaces,
    punctuation and the simplified/traditional difference (the usual measure for Chinese,
    where words are not delimited)."""
    ref, hyp = _comparable(reference), _comparable(hypothesis)
    if not ref:
        return float(bool(hyp))
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i]
        for j, h in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1] / len(ref)
