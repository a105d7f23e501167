"""The stage registry: every stage of the pipeline, in one list, in the order the pipeline runs
them: its name, version, the tables it reads and writes, the stages it depends on, and the
class or function that runs it.

Read by the pipeline flow (`flows/pipeline.py`) and the served deployments
(`flows/deployments.py`), which run the stages' flows in this order; by the stage modules, which
take their name and version from here; and by the "ready for the next stage" checks
(`ready_for`). The names themselves live in `chfen.domain.stages`, so that the warehouse's
quality SQL can use them too (docs/architecture.md).

This module is plain data: it imports no stage (`Stage.load` imports the runner when asked), so
reading the registry is cheap and no layer's imports go upward.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from chfen.domain.stages import (
    ASR,
    CRAWL,
    EMBED,
    KEYFRAME_HASH,
    LABEL_PULL,
    LABEL_PUSH,
    QUALITY,
    SCENES,
    TRAIN,
)


@dataclass(frozen=True)
class Stage:
    """One stage of the pipeline.

    `version` is what the stage ledger records for a video done at this stage; changing it
    makes every video pending again. It is None for a stage without a fixed version: `embed`
    (its version hashes the encoder settings, `chfen.embed.keys.stage_version`) and the stages
    that write no per-video ledger rows (`ledger=False`: incremental in their own way).
    `runs` names the class or function that does the work, as "module:attribute".
    """

    name: str
    version: str | None
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    after: tuple[str, ...]
    runs: str
    ledger: bool = True
    doc: str = ""

    def load(self) -> Any:
        """The class or function that runs this stage (imported now, not before)."""
        module, _, attribute = self.runs.partition(":")
        return getattr(importlib.import_module(module), attribute)


STAGES: tuple[Stage, ...] = (
    Stage(
        CRAWL,
        "1",
        reads=("configured sources",),
        writes=("sources", "videos", "failures", "media/<video_id>/"),
        after=(),
        runs="chfen.crawl.crawler:Crawler",
        doc="download each video of the configured sources (default: the demo site)",
    ),
    Stage(
        SCENES,
        "1",
        reads=("videos", "media/<video_id>/"),
        writes=("scenes", "keyframes and stills"),
        after=(CRAWL,),
        runs="chfen.media.scenes:ScenesStage",
        doc="scene cuts, one keyframe per scene, stills for the encoders",
    ),
    Stage(
        KEYFRAME_HASH,
        "1",  # bump with chfen.media.keyframe_hash.ALGORITHM
        reads=("scenes", "keyframes"),
        writes=("keyframe_hashes",),
        after=(SCENES,),
        runs="chfen.media.keyframe_hash:KeyframeHashStage",
        doc="a perceptual hash per keyframe, to find re-uploaded videos",
    ),
    Stage(
        ASR,
        "1",
        reads=("videos", "the audio"),
        writes=("transcript_segments", "transcript_words"),
        after=(CRAWL,),
        runs="chfen.asr.stage:AsrStage",
        doc="speech to words with their times",
    ),
    Stage(
        LABEL_PUSH,
        "1",
        reads=("videos", "transcript_words", "predictions"),
        writes=("Label Studio tasks", "label_tasks"),
        after=(ASR,),
        runs="labeling.push:push_tasks",
        doc="one Label Studio task per processed video, with the model's prediction",
    ),
    Stage(
        LABEL_PULL,
        None,
        reads=("Label Studio annotations",),
        writes=("annotations",),
        after=(LABEL_PUSH,),
        runs="labeling.pull:pull_annotations",
        ledger=False,
        doc="annotations into the warehouse, incremental by update time",
    ),
    Stage(
        EMBED,
        None,
        reads=("videos", "scenes", "transcript_words"),
        writes=("embeddings",),
        after=(SCENES, ASR),
        runs="chfen.embed.stage:EmbedStage",
        doc="one vector per modality and encoder setting (ledger keys `embed:<modality>`)",
    ),
    Stage(
        TRAIN,
        None,
        reads=("videos", "annotations", "embeddings", "keyframe_hashes"),
        writes=("training_runs", "predictions", "models/<run_id>/"),
        after=(LABEL_PULL, EMBED, KEYFRAME_HASH),
        runs="chfen.train.run:train_run",
        ledger=False,
        doc="CHFEN trained when enough new agreed labels arrived (each run records the "
        "table versions it read)",
    ),
    Stage(
        QUALITY,
        None,
        reads=("every table",),
        writes=("the quality report",),
        after=(TRAIN,),
        runs="chfen.quality.report:quality_report",
        ledger=False,
        doc="the quality figures, plots and HTML report",
    ),
)

BY_NAME: dict[str, Stage] = {s.name: s for s in STAGES}


def get(name: str) -> Stage:
    """The stage called `name`; KeyError naming the known stages otherwise."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"no stage {name!r} in the registry; known: {list(BY_NAME)}") from None


def names() -> list[str]:
    """Every stage name, in pipeline order."""
    return [s.name for s in STAGES]


def version(name: str) -> str:
    """The ledger version of a stage with a fixed version."""
    v = get(name).version
    if v is None:
        raise ValueError(f"stage {name!r} has no fixed version (see chfen/registry.py)")
    return v


def in_order(selected: Iterable[str]) -> list[str]:
    """The selected stage names in pipeline order (unknown names raise KeyError)."""
    wanted = {get(n).name for n in selected}
    return [n for n in names() if n in wanted]


def upstream(name: str) -> list[str]:
    """Every stage `name` depends on, directly or not, in pipeline order."""
    found: set[str] = set()
    todo = list(get(name).after)
    while todo:
        n = todo.pop()
        if n not in found:
            found.add(n)
            todo.extend(get(n).after)
    return in_order(found)


def ready_sql(name: str, versions: dict[str, str] | None = None) -> tuple[str, dict[str, str]]:
    """SQL (and its parameters) for the videos done at every direct upstream ledger stage of
    `name` at that stage's current version: the "ready for the next stage" check. `versions`
    gives the versions of upstream stages without a fixed one."""
    ups = [s for s in (get(u) for u in get(name).after) if s.ledger]
    if not ups:
        raise ValueError(f"stage {name!r} has no upstream ledger stage")
    params: dict[str, str] = {}
    terms = []
    for i, s in enumerate(ups):
        params[f"s{i}"], params[f"v{i}"] = s.name, (versions or {}).get(s.name) or version(s.name)
        terms.append(f"(stage = $s{i} AND stage_version = $v{i})")
    sql = f"""
        SELECT video_id FROM stage_runs_latest
        WHERE status = 'done' AND ({" OR ".join(terms)})
        GROUP BY video_id HAVING count(DISTINCT stage) = {len(ups)}
    """
    return sql, params


def check() -> None:
    """The registry is well formed: unique names, known dependencies, each stage after the
    stages it depends on. Raises ValueError naming the first problem."""
    seen: set[str] = set()
    for s in STAGES:
        if s.name in seen:
            raise ValueError(f"stage {s.name!r} is listed twice")
        for u in s.after:
            if u not in BY_NAME:
                raise ValueError(f"stage {s.name!r} depends on unknown stage {u!r}")
            if u not in seen:
                raise ValueError(f"stage {s.name!r} is listed before {u!r}, which it needs")
        if s.ledger != (s.version is not None) and s.name != EMBED:
            raise ValueError(f"stage {s.name!r}: a ledger stage needs a version, others none")
        seen.add(s.name)


check()
