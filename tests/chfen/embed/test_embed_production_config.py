"""The shipped production encoder config: valid, names the original CHFEN models, loads through the
same code path, and (offline, as here) fails with an error that says what to do."""

from __future__ import annotations

import pytest

from chfen.config import EmbedConfig, load_settings, shipped_config_dir
from chfen.embed import EmbedStage, EncoderLoadError, encoder_keys, stage_version
from warehouse import Warehouse

PRODUCTION = shipped_config_dir() / "embed-production.yaml"


def test_production_config_validates_and_names_the_seed_encoders() -> None:
    settings, prov = load_settings(PRODUCTION)
    cfg = settings.embed
    assert (
        prov["embed.text_model"].startswith("file:")
        and "embed-production" in prov["embed.text_model"]
    )
    assert settings.asr.model == "tiny.en"  # the rest comes from default.yaml
    assert "xlm-roberta" in cfg.title_model and "xlm-roberta" in cfg.text_model
    assert "vit" in cfg.image_model and "vit" in cfg.face_model
    assert "wav2vec2" in cfg.audio_model
    keys = encoder_keys(cfg)
    assert {k.source.backend for k in keys.values()} == {"transformers"}
    assert {k.source.location for k in keys.values()} == {
        cfg.title_model,
        cfg.image_model,
        cfg.audio_model,
    }
    default = encoder_keys(EmbedConfig())
    assert all(keys[m].key != default[m].key for m in keys)
    assert stage_version(cfg) != stage_version(EmbedConfig())


def test_production_encoders_fail_offline_with_a_clear_error(tmp_path) -> None:
    settings, _ = load_settings(PRODUCTION, ["embed.device=cpu"])
    stage = EmbedStage(Warehouse(tmp_path / "data", catalog=False), settings.embed)
    with pytest.raises(EncoderLoadError, match=r"embed\.\w+_model=.*(HF_HUB_OFFLINE|cache)"):
        stage.warm_up()
