"""Typed, layered configuration: the one definition of every setting.

Precedence, lowest to highest (documented in the README):

1. the defaults declared on the models below;
2. YAML files — a file may say ``extends: other.yaml`` (relative to itself, any depth);
   the base is applied first, then each file that extends it;
3. environment variables ``CHFEN_<SECTION>__<KEY>=value`` (double underscore = one level down);
4. ``--set section.key=value`` on the command line (repeatable; later wins).

Values from the environment and ``--set`` are parsed as YAML scalars, so ``8``, ``true``,
``[a, b]`` and ``null`` mean what they look like. Every resolved leaf remembers where it came
from (`Provenance`), which ``chfen config show`` prints.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from chfen.labels import PLUTCHIK
from chfen.modalities import MODALITIES

ENV_PREFIX = "CHFEN_"
# Environment variables with the prefix that are not settings.
ENV_RESERVED = {"CHFEN_CONFIG"}
CONFIG_ENV = "CHFEN_CONFIG"
DEFAULT_CONFIG_NAME = "default.yaml"


class ConfigError(ValueError):
    """A config file, override or environment variable that cannot be used; says which."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# ---------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------


class SourceConfig(_Section):
    """One place to crawl: a channel feed, a page or a direct video URL (`url`); or a local
    folder of media files and its labels (`path`), imported as `chfen import` does, so each
    scheduled crawl adds the folder's new and changed files."""

    name: str = Field(description="Short unique name, used in `chfen crawl --source NAME`.")
    url: str | None = Field(None, description="Feed (RSS), page or video URL understood by yt-dlp.")
    max_videos: int | None = Field(
        None, ge=1, description="Stop after this many new videos (url sources)."
    )
    enabled: bool = True
    # ---- a local folder (`chfen import`), instead of url ----
    path: str | None = Field(
        None, description="A folder of media files (video or audio only) to import."
    )
    labels: str | None = Field(
        None,
        description="Labels CSV of the folder: file,label[,uploader,title,text] or "
        "file,rater,label[,intensity]; none = unlabelled (people label the files).",
    )
    label_map: str | None = Field(
        None, description="CSV (their,ours) or YAML (their: ours) of the dataset's words."
    )
    preset: str | None = Field(
        None, description="Labels from the file names instead of a CSV: ravdess or crema-d."
    )
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="Labels CSV column names where they differ: file, label, rater, "
        "intensity, uploader, title, text -> the CSV's header.",
    )
    link: bool = Field(False, description="Hard-link the files into the data root (no copy).")
    # ---- speech, where this source differs from the asr section ----
    language: str | None = Field(
        None,
        description="The source's spoken language for ASR ('zh', 'en', 'auto' = detect); "
        "None = asr.language.",
    )
    asr_model: str | None = Field(
        None,
        description="ASR model for this source ('tiny.en', 'base', a folder); None = asr.model.",
    )

    @model_validator(mode="after")
    def _url_or_path(self) -> SourceConfig:
        if (self.url is None) == (self.path is None):
            raise ValueError(f"source {self.name!r}: give either url or path (a local folder)")
        folder_only = ("labels", "label_map", "preset", "columns", "link")
        if self.url is not None and any(
            getattr(self, k) not in (None, {}, False) for k in folder_only
        ):
            raise ValueError(
                f"source {self.name!r}: {', '.join(folder_only)} go with a local folder (path)"
            )
        if self.labels is not None and self.preset is not None:
            raise ValueError(f"source {self.name!r}: give either labels or preset, not both")
        return self

    @property
    def is_folder(self) -> bool:
        """A local folder imported like `chfen import` (else a URL for yt-dlp)."""
        return self.path is not None


class DemoSiteConfig(_Section):
    """The local short-video site used by the demo and the tests (`chfen demo-site`)."""

    host: str = "127.0.0.1"
    port: int = Field(8765, ge=0, le=65535, description="0 picks a free port.")
    n_videos: int = Field(24, ge=1, description="Catalogue size (training needs a few hundred).")
    seed: int = 0
    emotions: list[Literal[PLUTCHIK]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: list(PLUTCHIK),
        min_length=2,
        description="The emotions the catalogue's videos carry (balanced); a subset makes a "
        "small catalogue learnable, e.g. for quick experiments and tests.",
    )
    cache_dir: str | None = Field(
        None, description="Where generated media is cached; default <data_root>/demo_site."
    )
    languages: list[Literal["en", "zh"]] = Field(
        default_factory=lambda: ["en"],
        description="Spoken languages: 'en' (the catalogue) and optionally 'zh', which adds a "
        "Mandarin channel and a code-switched one (5 short videos, ground truth of each "
        "sentence's language); the catalogue itself stays the same.",
    )

    @field_validator("languages")
    @classmethod
    def _english_first(cls, value: list[str]) -> list[str]:
        if "en" not in value:
            raise ValueError("demo_site.languages must include 'en' (the catalogue is English)")
        return [x for x in ("en", "zh") if x in value]

    @field_validator("emotions")
    @classmethod
    def _distinct_emotions(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"demo_site.emotions lists an emotion twice: {value}")
        return [e for e in PLUTCHIK if e in value]  # PLUTCHIK order: one cache key per set


class CrawlConfig(_Section):
    max_duration_s: float = Field(180.0, gt=0, description="Longer videos are rejected.")
    max_filesize_mb: float = Field(200.0, gt=0, description="Also enforced without Content-Length.")
    socket_timeout_s: float = Field(15.0, gt=0)
    retries: int = Field(3, ge=0, description="Retries for transient (network) errors only.")
    retry_backoff_s: float = Field(1.0, ge=0, description="First back-off; doubles per retry.")
    politeness_delay_s: float = Field(0.0, ge=0, description="Pause between downloads per source.")
    max_videos_per_source: int | None = Field(None, ge=1)
    retry_transient_after_s: float = Field(
        3600.0,
        ge=0,
        description="A page that failed for a passing reason (timeout, network, HTTP 5xx) is "
        "tried again at the first crawl this long after; the wait doubles with each failure.",
    )
    max_transient_retries: int = Field(
        5, ge=0, description="Runs that try a transiently failed page again, at most."
    )
    concurrency: int = Field(2, ge=1, description="Videos downloaded at once.")
    audio_sample_rate: int = Field(16000, description="Extracted WAV sample rate (mono).")

    def limits_key(self) -> str:
        """The limits a video can fail on, as recorded with each crawl failure: a page that
        failed on a limit is tried again when this changes."""
        return f"max_duration_s={self.max_duration_s:g};max_filesize_mb={self.max_filesize_mb:g}"


class ScenesConfig(_Section):
    detector: Literal["content", "adaptive", "threshold", "hash", "histogram"] = "content"
    threshold: float = Field(
        27.0,
        gt=0,
        description="In the chosen detector's own units. Left unset, each detector uses its "
        "PySceneDetect default (content 27, adaptive 3, threshold 12, hash 0.35, "
        "histogram 0.2).",
    )
    min_scene_len_s: float = Field(0.5, ge=0)
    downscale: int | None = Field(None, ge=1, description="None = PySceneDetect's auto downscale.")
    stills_per_second: float = Field(1.0, gt=0, description="Stills kept for the embed stage.")
    jpeg_quality: int = Field(90, ge=1, le=100, description="JPEG quality of keyframes and stills.")
    concurrency: int = Field(
        1, ge=1, description="Videos decoded at once (one decode pass fills a core)."
    )
    min_decoded_fraction: float = Field(
        0.9,
        ge=0,
        le=1,
        description="Fail as corrupt when the decoded frames cover less than this share of the "
        "duration recorded in `videos` (a truncated download probes with its full length).",
    )


class AsrConfig(_Section):
    model: str = Field(
        "tiny.en",
        description="'tiny.en' (packaged, English only, fastest), 'base' (packaged, "
        "multilingual), another name, or a local faster-whisper folder.",
    )
    language: str | None = Field(
        "en",
        description="Spoken language ('en', 'zh', ...); 'auto' (or None) = detect "
        "(multilingual models only).",
    )
    detect: Literal["segment", "file"] = Field(
        "segment",
        description="With language 'auto': detect the language of each speech chunk (clips "
        "that switch language) or once per file.",
    )
    languages: list[str] | None = Field(
        None,
        description="With language 'auto': the languages detection may choose from (e.g. "
        "[zh, en] for a channel that mixes them); None = any the model knows.",
    )
    chinese_script: Literal["simplified", "traditional", "as_is"] = Field(
        "simplified",
        description="Script of Chinese transcripts (converted with OpenCC); as_is = whatever "
        "whisper wrote (often traditional).",
    )
    chinese_words: Literal["word", "character"] = Field(
        "word",
        description="Unit of Chinese timed words: jieba words or single characters (the "
        "`unit` column of transcript_words says which).",
    )
    compute_type: Literal["int8", "int8_float32", "float16", "float32"] = "int8"
    batch_size: int = Field(8, ge=1)
    beam_size: int | None = Field(
        None,
        ge=1,
        description="Whisper's beam width (1 = greedy); None = 5 on English-only models "
        "(tiny.en: greedy doubles its word errors) and 1 on multilingual ones (base: about "
        "twice as fast on Mandarin, fewer repeated phrases, English as accurate).",
    )
    no_repeat_ngram_size: int = Field(
        0,
        ge=0,
        description="Whisper may not write any run of this many tokens twice in one speech "
        "chunk; 0 = no limit.",
    )
    repetition_penalty: float = Field(
        1.0,
        ge=1.0,
        description="Divides the score of every token whisper already wrote in the chunk; "
        "1 = none.",
    )
    vad: Literal["pyannote", "silero"] = "pyannote"
    align_model: str | None = Field(
        None, description="Local folder of a wav2vec2 CTC model; None = faster-whisper word times."
    )
    concurrency: int = Field(1, ge=1)
    device: Literal["cpu", "cuda"] = Field("cpu", description="Where whisper and the aligner run.")
    cpu_threads: int = Field(0, ge=0, description="Threads per ASR worker; 0 = one per core.")
    vad_step_s: float | None = Field(
        2.5,
        gt=0,
        description="Step of pyannote's 5 s VAD window; None = pyannote's default (0.5 s, "
        "about 5x slower for the same speech chunks).",
    )

    @field_validator("language")
    @classmethod
    def _auto_language(cls, value: str | None) -> str | None:
        # 'auto' is how users write "detect"; None is what whisper takes for it.
        if value is None or value.strip().lower() in ("auto", ""):
            return None
        return value.strip().lower()

    @field_validator("languages")
    @classmethod
    def _candidate_languages(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        out = list(dict.fromkeys(v.strip().lower() for v in value if v.strip()))
        if not out:
            raise ValueError("asr.languages is empty; list languages or leave it unset (any)")
        return out

    def for_source(self, source: SourceConfig | None) -> AsrConfig:
        """These settings with a source's own `language` and `asr_model` applied."""
        if source is None or (source.language is None and source.asr_model is None):
            return self
        update: dict[str, Any] = {}
        if source.asr_model is not None:
            update["model"] = source.asr_model
        if source.language is not None:
            update["language"] = source.language
        return self.model_validate({**self.model_dump(), **update})


class LabelStudioConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    username: str = "admin@chfen.local"
    password: SecretStr = SecretStr("chfen-admin")
    token: SecretStr = Field(
        SecretStr("chfen-dev-token-change-me"),
        description="API token; set CHFEN_LABELSTUDIO__TOKEN in real use. Never printed.",
    )
    project_title: str = Field(
        "CHFEN viewer emotion",
        min_length=1,
        max_length=50,
        description="The project is found by this title (Label Studio allows 50 characters).",
    )
    version: str = Field("1.23.2", description="label-studio installed into its own venv.")
    batch_size: int = Field(50, ge=1, description="Tasks imported per request by the push.")
    annotations_per_task: int = Field(
        3, ge=1, description="Annotators per task (overlap), so agreement can be measured."
    )
    venv_dir: str | None = Field(
        None,
        description="The server's own venv; None = <data_root>/labelstudio/venv. Point several "
        "data roots (or test runs) at one folder to install once.",
    )
    start_timeout_s: float = Field(
        240.0,
        gt=0,
        description="Seconds `start` waits for /health (a first start migrates: 1-2 minutes).",
    )
    request_timeout_s: float = Field(60.0, gt=0, description="Timeout of one API request.")
    export_timeout_s: float = Field(
        300.0, gt=0, description="Seconds the pull waits for a snapshot export to finish."
    )


class PrefectConfig(_Section):
    api_url: str | None = Field(None, description="None = ephemeral (embedded) Prefect.")
    server_host: str = "127.0.0.1"
    server_port: int = Field(4200, ge=1, le=65535)
    task_runner: Literal["thread", "dask"] = "thread"
    dask_address: str | None = Field(None, description="Scheduler address; None = local cluster.")
    dask_workers: int = Field(2, ge=1)
    stage_lock_wait_s: float = Field(
        1800.0,
        ge=0,
        description="How long a run waits while another run of the same stage works on this "
        "data root (one writer per stage); then it fails naming the holder. 0 = fail at once.",
    )
    crawl_cron: str = "0 * * * *"
    label_sync_minutes: int = Field(10, ge=1)
    retrain_min_new_labels: int = Field(
        50,
        ge=1,
        description="Retrain when this many videos got their first vote since the last run.",
    )
    train_min_labeled: int = Field(
        10, ge=2, description="The first training run waits for this many labeled videos."
    )


class WarehouseConfig(_Section):
    """How the stages commit: in batches, and compacting tables that gather many files."""

    commit_videos: int = Field(
        20, ge=1, description="Commit a stage's rows once this many videos are done; 1 = each."
    )
    commit_seconds: float = Field(
        30.0, gt=0, description="...or once the oldest waiting row is this old."
    )
    compact_files: int = Field(
        64,
        ge=0,
        description="After a stage run, compact each table it wrote that holds more Parquet "
        "files than this; 0 = never (run `chfen warehouse compact`).",
    )


class EmbedConfig(_Section):
    """Frozen encoders per modality (chfen/embed); vectors cached in `embeddings` by a hash of
    these settings, so changing one model recomputes only the modalities that use it.

    A model is a packaged name ('minilm', 'whisper-tiny.en', 'hsv-hog'), a Hugging Face id
    (loaded with `from_pretrained` from the local cache only: this machine cannot download) or
    a local folder (saved with `save_pretrained`, a sentence-transformers folder, or a
    CTranslate2 whisper folder for audio).
    """

    grid_hz: float = Field(1.0, gt=0, description="Steps per second of the shared time grid.")
    device: str = Field("cpu", description="'cpu', 'cuda' or 'cuda:N' for every encoder.")
    batch_size: int = Field(32, ge=1, description="Texts, images or audio windows per forward.")
    modalities: list[Literal[MODALITIES]] | None = Field(  # type: ignore[valid-type]
        None,
        description="Modalities to compute; None = all of chfen.modalities.MODALITIES. "
        "The others are left alone (neither computed nor deleted).",
    )
    title_model: str = Field(
        "minilm",
        description="Title + description encoder: 'minilm' (packaged all-MiniLM-L6-v2), a "
        "sentence-transformers or transformers text model id or folder.",
    )
    text_model: str = Field(
        "minilm", description="Per-step transcript text encoder; same choices as title_model."
    )
    text_max_tokens: int = Field(
        256, ge=8, description="Token limit for title and transcript text (longer is cut)."
    )
    image_model: str = Field(
        "hsv-hog",
        description="Per-step still encoder: 'hsv-hog' (colour histogram + layout + gradient "
        "descriptor, no weights) or a transformers vision model id or folder (e.g. ViT).",
    )
    face_model: str = Field(
        "hsv-hog", description="Encoder of face crops; same choices as image_model."
    )
    face_scale_factor: float = Field(
        1.1, gt=1.0, description="Haar cascade scale step (smaller finds more, slower)."
    )
    face_min_neighbors: int = Field(
        5, ge=1, description="Haar cascade neighbours a detection needs (higher = fewer)."
    )
    face_min_size: float = Field(
        0.08,
        gt=0,
        lt=1,
        description="Smallest face, as a share of the still's shorter side.",
    )
    face_max_per_step: int = Field(8, ge=1, description="Largest faces kept per grid step.")
    face_detect_max_side: int = Field(
        640, ge=64, description="Stills are downscaled to this longer side for detection."
    )
    audio_model: str = Field(
        "whisper-tiny.en",
        description="Audio encoder: 'whisper-tiny.en' (packaged, CTranslate2), a local "
        "CTranslate2 whisper folder, or a transformers audio model id or folder (wav2vec2).",
    )
    audio_window_s: float = Field(
        30.0, gt=0, le=30.0, description="Audio is encoded in windows of at most this length."
    )
    audio_compute_type: Literal["default", "int8", "int8_float32", "float16", "float32"] = Field(
        "float32", description="CTranslate2 compute type of a whisper audio encoder."
    )
    audio_pooling: Literal["max", "mean"] = Field(
        "max", description="Pooling of audio frames into the global vector (original code: max)."
    )
    cpu_threads: int = Field(
        0, ge=0, description="Threads for the encoders on CPU; 0 = leave the library default."
    )


class TrainConfig(_Section):
    """Everything a training run needs; also the form of the `train` deployment in Prefect."""

    # Defaults sized for hundreds of labelled videos, not millions (the original code's): a small
    # network, strong regularisation, small batches so an epoch is several optimizer steps.
    seed: int = 0
    epochs: int = Field(
        40,
        ge=1,
        description="At most this many epochs (early stopping or cross-validation picks fewer).",
    )
    batch_size: int = Field(16, ge=1)
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(0.05, ge=0)
    early_stopping_patience: int = Field(8, ge=1)
    min_agreement: float = Field(0.5, ge=0, le=1, description="Drop items below this agreement.")
    test_fraction: float = Field(0.25, gt=0, lt=1, description="Share of uploaders held out.")
    hidden_dim: int = Field(64, ge=8)
    dropout: float = Field(0.3, ge=0, lt=1)
    # ---- the model (CHFEN) and the original code's ablation switches (docs/chfen-paper.md)
    heads: int = Field(4, ge=1, description="Attention heads; must divide hidden_dim.")
    decision_layers: int = Field(
        1, ge=1, description="Self-attention + FFN blocks of the decision level (original code: 2)."
    )
    standardize: bool = Field(
        True,
        description="Standardize each modality's inputs with the training split's mean and "
        "std (stored in the checkpoint, applied at prediction).",
    )
    modality_dropout: float = Field(
        0.2,
        ge=0,
        lt=1,
        description="While training, mask a whole modality of a video with this probability "
        "(never all of a video's modalities).",
    )
    modality_heads: bool = Field(
        True,
        description="Per-modality heads with an auxiliary loss, mixed into the final logits "
        "with learned weights, so a modality that carries nothing can be weighed down; "
        "False = the fused network alone.",
    )
    aux_loss_weight: float = Field(
        0.5, ge=0, description="Weight of the modality heads' auxiliary loss."
    )
    head_l2: float = Field(
        1.0,
        gt=0,
        description="L2 strength of the modality heads (logistic regressions): penalty "
        "0.5·head_l2·‖W‖² against the summed loss, as scikit-learn's C = 1/head_l2. Used when "
        "nothing is held out to choose it (see head_l2_grid).",
    )
    head_l2_grid: list[float] = Field(
        default_factory=lambda: [1.0, 10.0, 100.0, 1000.0, 1e4, 1e5],
        description="Candidate L2 strengths per modality head; each head takes the one with "
        "the lowest held-out loss (cross-validation folds or the validation split). Empty = "
        "head_l2 for all. Up to 1e5, so that a head on a modality that carries nothing "
        "(high-dimensional noise, few videos) can be silenced (a synthetic set of two "
        "speakers with one informative modality, four seeds: 0.44 -> 0.47 mean weighted F1 "
        "with the grid up to 1e5 instead of 1e3; the 240-video demo unchanged).",
    )
    head_targets: Literal["majority", "soft"] = Field(
        "majority",
        description="What the modality heads learn: the majority label (as the evaluation and "
        "the baselines read it) or the annotators' soft label.",
    )
    fusion: Literal["hybrid", "feature", "decision"] = Field(
        "hybrid",
        description="hybrid = feature level then decision level (the original CHFEN); feature = "
        "feature level, pooled, no decision level; decision = every modality straight into the "
        "decision level, no conditional feature level.",
    )
    modalities: list[Literal[MODALITIES]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: list(MODALITIES),
        min_length=1,
        description="Modalities the model sees; the others are left out (masked, never "
        "zero-filled). Modalities with no cached embeddings are left out too.",
    )
    use_audio: bool = Field(True, description="False = without audio (global and per step).")
    use_caption: bool = Field(
        True,
        description="Frame captions join the transcript stream (gated) when the warehouse has "
        "`caption` embeddings; False = without caption.",
    )
    use_cross_attention: bool = Field(
        True, description="False = without the conditioned cross-attention (no condition)."
    )
    use_face_scene_fusion: bool = Field(
        True,
        description="False = scene and face stay two separate streams (no fusion keyed on "
        "face density).",
    )
    # ---- the dataset ----
    min_votes: int = Field(2, ge=1, description="Drop items with fewer annotators' votes.")
    no_emotion: Literal["drop_votes", "uniform"] = Field(
        "drop_votes",
        description="How 'no clear emotion' votes enter the soft label (they always count in "
        "the agreement; items whose majority is 'no clear emotion' are dropped): drop_votes = "
        "the soft label is over the emotion votes only; uniform = each such vote spreads "
        "evenly over the eight emotions.",
    )
    split_by: Literal["uploader", "video"] = Field(
        "uploader",
        description="The unit the train/validation/test split keeps together: uploader (the "
        "test asks how the model does on new people or channels) or video (for a dataset of "
        "one speaker or actor: the test then shares its uploaders with training, so its figures "
        "are speaker-dependent). Near-duplicates stay together either way.",
    )
    val_fraction: float = Field(
        0.15,
        gt=0,
        lt=1,
        description="Share of the training uploaders held out for early stopping.",
    )
    min_val_videos: int = Field(
        30,
        ge=0,
        description="A validation split with fewer videos (or fewer than min_val_uploaders "
        "uploaders) is too small to stop on: it joins training and the number of epochs is "
        "chosen by grouped cross-validation over the training uploaders.",
    )
    min_val_uploaders: int = Field(2, ge=1, description="See min_val_videos.")
    cv_folds: int = Field(
        4, ge=2, description="Folds (by uploader) of the cross-validation that picks epochs."
    )
    tune_trials: int = Field(
        0,
        ge=0,
        description="When cross-validating: optuna trials over lr, dropout, weight decay and "
        "hidden size, scored by the same grouped cross-validation (0 = no search).",
    )
    max_steps: int = Field(
        180, ge=1, description="Grid steps kept per video (longer videos are cut)."
    )
    encoder_keys: dict[str, str] = Field(
        default_factory=dict,
        description="modality -> embeddings.encoder_key to train on; unset modalities use "
        "the encoder_key with the newest vectors.",
    )
    # ---- the optimisation ----
    class_weighting: Literal["inverse", "sqrt_inverse", "none"] = Field(
        "inverse",
        description="Class weights of the loss from the training label mass: 1/n, 1/sqrt(n), "
        "or none.",
    )
    grad_clip: float = Field(1.0, ge=0, description="Max gradient norm; 0 = no clipping.")
    device: str = Field("cpu", description="Torch device, e.g. cpu or cuda.")
    threads: int = Field(
        1,
        ge=0,
        description="Torch CPU threads while training; 0 = torch's default (one per core). "
        "CHFEN's small matrices train faster on 1 (measured 4.5x on a busy 2-core machine).",
    )
    baselines: bool = Field(
        True,
        description="Also fit the majority-class and per-modality logistic-regression "
        "baselines for the report.",
    )

    @model_validator(mode="after")
    def _heads_divide_hidden(self) -> TrainConfig:
        if self.hidden_dim % self.heads:
            raise ValueError(f"heads ({self.heads}) must divide hidden_dim ({self.hidden_dim})")
        return self


class QualityConfig(_Section):
    """Thresholds of the dataset quality report (chfen/quality). The views in
    `warehouse.duckdb` that the duckdb shell shows use the same values as their defaults
    (warehouse/quality.py); the report passes these. The annotation queue's vote and agreement
    thresholds are the training set's (`train.min_votes`, `train.min_agreement`)."""

    duplicate_max_bits: int = Field(
        3,
        ge=0,
        le=16,
        description="Keyframe hashes within this many bits (of 64) match. Re-encoded "
        "re-uploads measure 0-2 bits (rarely 4), unrelated keyframes 4+ (mostly 10+); a wider "
        "threshold costs more (4 bits: about 2-3x 3 bits).",
    )
    duplicate_min_share: float = Field(
        0.6,
        gt=0,
        le=1,
        description="Two videos are near-duplicates when this share of *each* video's "
        "keyframes match (one chance match between two-shot videos, 1 of 2, stays out).",
    )
    queue_max_confidence: float = Field(
        0.5,
        ge=0,
        le=1,
        description="A prediction whose top probability is below this puts its video in the "
        "annotation queue.",
    )
    min_alpha: float = Field(
        0.667,
        ge=-1,
        le=1,
        description="A project's Krippendorff's alpha below this is reported as a problem "
        "(Krippendorff: >= 0.8 reliable, >= 0.667 for tentative conclusions only).",
    )
    max_label_imbalance: float = Field(
        3.0,
        gt=1,
        description="Reported when the commonest emotion has more than this many times the "
        "votes of the rarest.",
    )
    reference_max_votes: int = Field(
        50_000,
        ge=0,
        description="Projects with at most this many votes also get alpha from "
        "chfen.domain.agreement (pure Python) as a check of the SQL; above, SQL only.",
    )


class Settings(_Section):
    """The whole resolved configuration."""

    data_root: str = Field("data", description="Media, warehouse, models, service state.")
    sources: list[SourceConfig] = Field(
        default_factory=list, description="Empty = the local demo site."
    )

    @field_validator("sources")
    @classmethod
    def _unique_source_names(cls, sources: list[SourceConfig]) -> list[SourceConfig]:
        names = [s.name for s in sources]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"source names must be unique; given more than once: {twice}")
        return sources

    demo_site: DemoSiteConfig = DemoSiteConfig()
    crawl: CrawlConfig = CrawlConfig()
    scenes: ScenesConfig = ScenesConfig()
    asr: AsrConfig = AsrConfig()
    labelstudio: LabelStudioConfig = LabelStudioConfig()
    prefect: PrefectConfig = PrefectConfig()
    warehouse: WarehouseConfig = WarehouseConfig()
    embed: EmbedConfig = EmbedConfig()
    train: TrainConfig = TrainConfig()
    quality: QualityConfig = QualityConfig()

    @property
    def data_path(self) -> Path:
        return Path(self.data_root).expanduser().resolve()


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


class Provenance(dict):
    """Dotted key -> where its value came from ('default', 'file:…', 'env:…', '--set')."""


def shipped_config_dir() -> Path:
    return Path(str(resources.files("chfen") / "configs"))


def shipped_configs() -> list[Path]:
    return sorted(shipped_config_dir().glob("*.yaml"))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    return data


def config_chain(path: str | Path) -> list[tuple[Path, dict[str, Any]]]:
    """The file and everything it extends, base first. `extends` is relative to the file."""
    chain: list[tuple[Path, dict[str, Any]]] = []
    seen: list[Path] = []
    current: Path | None = Path(path).expanduser().resolve()
    while current is not None:
        if current in seen:
            cycle = " -> ".join(str(p) for p in [*seen, current])
            raise ConfigError(f"config files extend each other in a cycle: {cycle}")
        seen.append(current)
        data = _read_yaml(current)
        parent = data.pop("extends", None)
        chain.append((current, data))
        if parent is None:
            current = None
        elif isinstance(parent, str):
            current = (current.parent / parent).resolve()
        else:
            raise ConfigError(f"{current}: 'extends' must be one file name, got {parent!r}")
    chain.reverse()
    return chain


def _merge(
    base: dict[str, Any], over: Mapping[str, Any], origin: str, prov: Provenance, prefix: str = ""
) -> None:
    """Deep-merge `over` into `base` in place; mappings merge, everything else replaces."""
    for key, value in over.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value, origin, prov, dotted + ".")
        else:
            base[key] = _plain(value)
            for old in [k for k in prov if k.startswith(dotted + ".")]:
                del prov[old]
            _record(value, origin, prov, dotted)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _record(value: Any, origin: str, prov: Provenance, dotted: str) -> None:
    if isinstance(value, Mapping) and value:
        for k, v in value.items():
            _record(v, origin, prov, f"{dotted}.{k}")
    else:
        prov[dotted] = origin


def _nest(dotted: str, value: Any) -> dict[str, Any]:
    parts = [p for p in dotted.split(".") if p]
    if not parts:
        raise ConfigError(f"empty setting name in {dotted!r}")
    out: dict[str, Any] = {parts[-1]: value}
    for part in reversed(parts[:-1]):
        out = {part: out}
    return out


def _scalar(text: str) -> Any:
    try:
        return yaml.safe_load(text) if text != "" else ""
    except yaml.YAMLError:
        return text


def parse_set(item: str) -> tuple[str, Any]:
    """`a.b=c` -> ('a.b', parsed c)."""
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects section.key=value, got {item!r}")
    return key.strip(), _scalar(value)


def env_overrides(environ: Mapping[str, str]) -> list[tuple[str, str, Any]]:
    """(env var name, dotted key, value) for every CHFEN_* setting variable."""
    found = []
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name in ENV_RESERVED:
            continue
        dotted = name[len(ENV_PREFIX) :].lower().replace("__", ".")
        found.append((name, dotted, _scalar(environ[name])))
    return found


def default_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """CHFEN_CONFIG, else ./chfen.yaml when present, else the shipped default."""
    environ = os.environ if environ is None else environ
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV])
    local = Path("chfen.yaml")
    if local.exists():
        return local
    return shipped_config_dir() / DEFAULT_CONFIG_NAME


def load_settings(
    config: str | Path | None = None,
    overrides: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
) -> tuple[Settings, Provenance]:
    """Resolve defaults < YAML chain < CHFEN_* env < --set; return settings and provenance."""
    environ = os.environ if environ is None else environ
    path = Path(config) if config is not None else default_config_path(environ)
    prov = Provenance()
    merged: dict[str, Any] = {}
    for file, data in config_chain(path):
        _merge(merged, data, f"file:{file}", prov)
    for name, dotted, value in env_overrides(environ):
        _merge(merged, _nest(dotted, value), f"env:{name}", prov)
    for item in overrides:
        dotted, value = parse_set(item)
        _merge(merged, _nest(dotted, value), f"--set {item.split('=', 1)[0]}", prov)
    try:
        settings = Settings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, prov)) from exc
    return settings, prov


def _explain(exc: ValidationError, prov: Provenance) -> str:
    lines = ["invalid configuration:"]
    for err in exc.errors():
        dotted = ".".join(str(p) for p in err["loc"])
        origin = prov.get(dotted) or next(
            (v for k, v in prov.items() if k.startswith(dotted + ".") or dotted.startswith(k)),
            "default",
        )
        lines.append(f"  {dotted}: {err['msg']} (from {origin})")
    return "\n".join(lines)


def flatten(settings: BaseModel, prefix: str = "") -> dict[str, Any]:
    """Dotted key -> value for every leaf; secrets stay masked."""
    out: dict[str, Any] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        dotted = f"{prefix}{name}"
        if isinstance(value, BaseModel):
            out.update(flatten(value, dotted + "."))
        elif isinstance(value, list) and value and isinstance(value[0], BaseModel):
            for i, item in enumerate(value):
                out.update(flatten(item, f"{dotted}.{i}."))
        else:
            out[dotted] = value
    return out


def origin_of(dotted: str, prov: Provenance) -> str:
    """Where a flattened leaf came from; list items inherit their list's origin."""
    if dotted in prov:
        return prov[dotted]
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        head = ".".join(parts[:cut])
        if head in prov:
            return prov[head]
    return "default"


def resolved_dict(settings: Settings) -> dict[str, Any]:
    """The resolved config as plain data (secrets masked), e.g. to save beside a run."""
    return settings.model_dump(mode="json")
