"""Model resolution and cache keys: one encoder's change touches only its modalities."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from chfen.config import EmbedConfig
from chfen.embed import EncoderLoadError, encoder_keys, resolve_model, stage_version
from chfen.embed.sources import folder_fingerprint
from chfen.modalities import MODALITIES


def keys(**settings) -> dict[str, str]:
    return {m: k.key for m, k in encoder_keys(EmbedConfig(**settings)).items()}


def changed(**settings) -> set[str]:
    base, new = keys(), keys(**settings)
    return {m for m in base if base[m] != new[m]}


def test_packaged_defaults_resolve_without_loading() -> None:
    text = resolve_model("minilm", "text")
    assert text.backend == "sentence-transformers" and Path(text.location, "modules.json").is_file()
    audio = resolve_model("whisper-tiny.en", "audio")
    assert audio.backend == "ctranslate2-whisper" and Path(audio.location, "model.bin").is_file()
    assert resolve_model("hsv-hog", "image").backend == "classical"
    assert text.identity["version"]  # the package version is part of the key
    with pytest.raises(EncoderLoadError, match="not a image model|packaged text model"):
        resolve_model("minilm", "image")
    with pytest.raises(EncoderLoadError, match="does not exist"):
        resolve_model("/no/such/folder", "text")


def test_hub_ids_and_folders(tmp_path, tiny_models) -> None:
    hub = resolve_model("FacebookAI/xlm-roberta-base", "text")
    assert (hub.backend, hub.location) == ("transformers", "FacebookAI/xlm-roberta-base")
    folder = resolve_model(str(tiny_models.text), "text")
    assert folder.backend == "transformers"
    # a copy of a model folder keeps its identity; a changed config does not
    copy = tmp_path / "copy"
    shutil.copytree(tiny_models.text, copy)
    assert folder_fingerprint(copy) == folder_fingerprint(tiny_models.text)
    assert (
        resolve_model(str(copy), "text").identity["fingerprint"] == folder.identity["fingerprint"]
    )
    (copy / "config.json").write_text((copy / "config.json").read_text().replace("2", "3", 1))
    assert folder_fingerprint(copy) != folder_fingerprint(tiny_models.text)


def test_one_key_per_modality_and_only_the_changed_encoder_moves(tiny_models) -> None:
    assert set(keys()) == set(MODALITIES)
    assert changed(text_model=str(tiny_models.text)) == {"text"}
    assert changed(title_model=str(tiny_models.text)) == {"title"}
    assert changed(face_model=str(tiny_models.image)) == {"face"}
    assert changed(image_model=str(tiny_models.image)) == {"scene"}
    assert changed(face_min_neighbors=3) == {"face"}
    assert changed(audio_pooling="mean") == {"audio"}
    assert changed(audio_model=str(tiny_models.audio)) == {"audio", "audio_seq"}
    assert changed(text_max_tokens=64) == {"title", "text"}
    assert changed(grid_hz=2.0) == {"scene", "face", "text", "audio_seq"}
    # speed-only settings leave every key alone
    assert changed(device="cuda", batch_size=4, cpu_threads=2) == set()


def test_stage_version_follows_every_key(tiny_models) -> None:
    base = stage_version(EmbedConfig())
    assert base.startswith("1-") and base == stage_version(EmbedConfig(batch_size=3))
    assert stage_version(EmbedConfig(face_min_neighbors=3)) != base
    assert stage_version(EmbedConfig(text_model=str(tiny_models.text))) != base
    assert stage_version(EmbedConfig(modalities=["title", "scene"])) != base
    assert set(encoder_keys(EmbedConfig(modalities=["scene", "title"]))) == {"title", "scene"}
