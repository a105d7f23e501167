"""The names of the pipeline's stages, at the bottom of the layers so that every layer may use
them (the warehouse's quality SQL too). Everything else about a stage (version, tables, what it
depends on, the code that runs it) is in the stage registry, `chfen/registry.py`.

A stage name is what the stage ledger (`stage_runs.stage`) and `failures.stage` hold, so a
name never changes: a renamed stage would make every video pending again.
"""

from __future__ import annotations

CRAWL = "crawl"
SCENES = "scenes"
KEYFRAME_HASH = "keyframe_hash"
ASR = "asr"
LABEL_PUSH = "label_push"
LABEL_PULL = "label_pull"
EMBED = "embed"
TRAIN = "train"
QUALITY = "quality"

__all__ = [
    "ASR",
    "CRAWL",
    "EMBED",
    "KEYFRAME_HASH",
    "LABEL_PULL",
    "LABEL_PUSH",
    "QUALITY",
    "SCENES",
    "TRAIN",
]
