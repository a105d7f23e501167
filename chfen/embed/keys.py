"""Cache keys: one `encoder_key` per modality, a hash of everything that shapes its vectors.

A modality's key covers its model (package version, folder fingerprint or hub id), the
settings that change its vectors (token limit, window, pooling, face detection, grid rate),
the version of the code that computes it, and the version of the upstream stage it reads
(ASR for text, scenes for stills). Settings that only change speed (device, batch size,
threads) are left out. So switching one encoder changes only the keys of the modalities that
use it, and only those are recomputed.

The stage version ("1-<hash of the enabled modalities' keys>") changes whenever any key
does, so `Warehouse.pending("embed", version)` selects every video again; the per-modality
keys then decide what is actually recomputed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chfen import registry
from chfen.asr.stage import STAGE_VERSION as ASR_VERSION
from chfen.config import EmbedConfig
from chfen.embed.faces import CASCADE, CROP_MARGIN
from chfen.embed.image import DESCRIPTOR_VERSION
from chfen.embed.sources import ModelSource, Role, identity_hash, resolve_model
from chfen.media.scenes import STAGE_VERSION as SCENES_VERSION
from chfen.modalities import MODALITIES

STAGE = registry.EMBED
STAGE_CODE_VERSION = "1"

# Bump one when the code computing that modality changes its vectors.
CODE_VERSIONS: dict[str, int] = {
    "title": 1,
    "text": 1,
    "scene": 1,
    "face": 1,
    "audio": 1,
    "audio_seq": 1,
}

# Which model setting each modality uses, and in which role.
MODEL_SETTING: dict[str, tuple[str, Role]] = {
    "title": ("title_model", "text"),
    "text": ("text_model", "text"),
    "scene": ("image_model", "image"),
    "face": ("face_model", "image"),
    "audio": ("audio_model", "audio"),
    "audio_seq": ("audio_model", "audio"),
}


@dataclass(frozen=True)
class EncoderKey:
    """One modality's cache key and the settings it was computed from."""

    modality: str
    key: str
    setting: str  # the EmbedConfig field naming the model
    source: ModelSource
    settings: dict[str, Any]

    @property
    def ledger_stage(self) -> str:
        """The `stage_runs.stage` recording that this modality was computed at this key."""
        return ledger_stage(self.modality)


def ledger_stage(modality: str) -> str:
    """'embed:<modality>': the ledger stage name of one modality's completion."""
    return f"{STAGE}:{modality}"


def enabled_modalities(cfg: EmbedConfig) -> list[str]:
    """The configured modalities, in chfen.modalities order."""
    chosen = set(cfg.modalities) if cfg.modalities is not None else set(MODALITIES)
    return [m for m in MODALITIES if m in chosen]


def _model_settings(modality: str, cfg: EmbedConfig, source: ModelSource) -> dict[str, Any]:
    settings: dict[str, Any] = {"model": source.identity, "backend": source.backend}
    if source.backend == "classical":
        settings["descriptor"] = DESCRIPTOR_VERSION
    if modality in ("title", "text"):
        settings["max_tokens"] = cfg.text_max_tokens
    if modality == "title":
        settings["input"] = "title + description"
    if modality == "text":
        settings["placement"] = "word midpoint"
        settings["asr"] = ASR_VERSION
    if modality in ("scene", "face"):
        settings["still"] = "on screen at the step's middle"
        settings["scenes"] = SCENES_VERSION
    if modality == "face":
        settings["detector"] = {
            "cascade": CASCADE,
            "scale_factor": cfg.face_scale_factor,
            "min_neighbors": cfg.face_min_neighbors,
            "min_size": cfg.face_min_size,
            "max_faces": cfg.face_max_per_step,
            "max_side": cfg.face_detect_max_side,
            "margin": CROP_MARGIN,
        }
        settings["pool"] = "area-weighted mean"
    if modality in ("audio", "audio_seq"):
        settings["window_s"] = cfg.audio_window_s
        if source.backend == "ctranslate2-whisper":
            settings["compute_type"] = cfg.audio_compute_type
    if modality == "audio":
        settings["pool"] = cfg.audio_pooling
    if modality == "audio_seq":
        settings["pool"] = "mean per step"
    if modality != "title" and modality != "audio":
        settings["grid_hz"] = cfg.grid_hz
    return settings


def encoder_keys(cfg: EmbedConfig) -> dict[str, EncoderKey]:
    """modality -> its EncoderKey, for the enabled modalities (loads no model)."""
    keys: dict[str, EncoderKey] = {}
    resolved: dict[tuple[str, str], ModelSource] = {}
    for modality in enabled_modalities(cfg):
        setting, role = MODEL_SETTING[modality]
        name = getattr(cfg, setting)
        if (name, role) not in resolved:
            resolved[(name, role)] = resolve_model(name, role)
        source = resolved[(name, role)]
        settings = _model_settings(modality, cfg, source)
        payload = {"modality": modality, "code": CODE_VERSIONS[modality], **settings}
        keys[modality] = EncoderKey(modality, identity_hash(payload), setting, source, settings)
    return keys


def stage_version(cfg: EmbedConfig, keys: dict[str, EncoderKey] | None = None) -> str:
    """'1-<8 hex>': changes when any enabled modality's key (or the set of them) changes."""
    keys = keys if keys is not None else encoder_keys(cfg)
    digest = identity_hash({m: k.key for m, k in keys.items()}, length=8)
    return f"{STAGE_CODE_VERSION}-{digest}"
