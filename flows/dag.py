"""The pipeline's DAG as flows, read from the stage registry (chfen/registry.py): which flow runs
each registered stage. The pipeline flow (`flows/pipeline.py`) runs every node in registry order;
the served deployments (`flows/deployments.py`) run the nodes of the stages they select, in the
same order. A new stage is added to the registry and given a node here; both follow.

A node runs one or more stages (`process` runs scenes and ASR side by side). A node with no
stage (the demo's simulated annotation crew) is not a stage: it has no ledger rows and no
registry entry, and sits right after the stage named in `follows`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from chfen import registry
from chfen.config import Settings
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
from flows.crawl import crawl_flow
from flows.embed import embed_flow
from flows.label import demo_annotate_flow, label_pull_flow, label_push_flow
from flows.process import keyframe_hash_flow, process_flow
from flows.quality import quality_flow
from flows.train import train_flow
from warehouse import Warehouse


def maybe_train(settings: Settings) -> dict:
    """Train when there is enough new signal (`chfen.train.retrain`: the same rule as the
    served automation); otherwise say why not."""
    from chfen.train.retrain import new_agreed_labels  # imports torch: only when needed

    waiting = new_agreed_labels(settings, Warehouse(settings.data_path)).waiting()
    if waiting is not None:
        return {"skipped": waiting}
    return train_flow(settings=settings)


@dataclass(frozen=True)
class Node:
    """One node of the DAG: the key of its result in a summary, the registry stages it runs,
    and the flow (called with `settings=`, the resolved settings)."""

    key: str
    stages: tuple[str, ...]
    run: Callable[..., dict]
    follows: str | None = None  # only for a node with no stage
    labels: bool = False  # needs Label Studio

    @property
    def position(self) -> float:
        """Where the node sits in registry order."""
        if self.stages:
            return min(registry.names().index(s) for s in self.stages)
        assert self.follows is not None, self.key
        return registry.names().index(self.follows) + 0.5


NODES: tuple[Node, ...] = (
    Node("crawl", (CRAWL,), crawl_flow),
    Node("process", (SCENES, ASR), process_flow),
    Node("keyframe_hash", (KEYFRAME_HASH,), keyframe_hash_flow),
    Node("label_push", (LABEL_PUSH,), label_push_flow, labels=True),
    Node("simulation", (), demo_annotate_flow, follows=LABEL_PUSH, labels=True),
    Node("label_pull", (LABEL_PULL,), label_pull_flow, labels=True),
    Node("embed", (EMBED,), embed_flow),
    Node("train", (TRAIN,), maybe_train),
    Node("quality", (QUALITY,), quality_flow),
)


def nodes(stages: Iterable[str] | None = None) -> list[Node]:
    """The nodes that run any of these registry stages (every node if None), in registry
    order. Stage-less nodes come only with None."""
    wanted = set(registry.names() if stages is None else registry.in_order(stages))
    chosen = [n for n in NODES if (stages is None) or wanted & set(n.stages)]
    return sorted(chosen, key=lambda n: n.position)


def check(order: list[Node]) -> None:
    """Every registry stage has exactly one node, and each node comes after the nodes of the
    stages its stages depend on. Raises ValueError naming the first problem."""
    runs = [s for n in NODES for s in n.stages]
    if sorted(runs) != sorted(registry.names()):
        raise ValueError(f"nodes run {sorted(runs)}, the registry has {registry.names()}")
    done: set[str] = set()
    for node in order:
        for stage in node.stages:
            missing = [u for u in registry.get(stage).after if u not in done | set(node.stages)]
            if missing:
                raise ValueError(f"node {node.key!r} runs {stage!r} before {missing}")
        done |= set(node.stages)


def run_nodes(order: Iterable[Node], settings: Settings) -> dict[str, dict]:
    """Run these nodes one after the other; their results by key."""
    return {node.key: node.run(settings=settings) for node in order}


check(nodes())
