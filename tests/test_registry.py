"""The stage registry (chfen/registry.py) is the one list of stages: well formed, read by the
stage modules, and the DAG of the pipeline flow and of the served deployments both follow it."""

from __future__ import annotations

import pytest

from chfen import registry
from chfen.domain import stages as names


def test_the_registry_lists_every_stage_once_after_its_dependencies() -> None:
    registry.check()
    assert registry.names()[0] == names.CRAWL
    assert len(set(registry.names())) == len(registry.STAGES)
    for i, stage in enumerate(registry.STAGES):
        assert all(registry.names().index(u) < i for u in stage.after), stage.name
    assert registry.upstream(names.EMBED) == [names.CRAWL, names.SCENES, names.ASR]
    assert registry.get(names.KEYFRAME_HASH).after == (names.SCENES,)
    with pytest.raises(KeyError, match="no stage 'nope'"):
        registry.get("nope")


def test_the_stage_modules_take_name_and_version_from_the_registry() -> None:
    from chfen.asr import stage as asr
    from chfen.crawl import crawler
    from chfen.embed import keys
    from chfen.media import keyframe_hash, scenes
    from labeling import pull, push

    for module in (crawler, scenes, keyframe_hash, asr, push):
        assert registry.version(module.STAGE) == module.STAGE_VERSION, module.__name__
    assert keys.STAGE == names.EMBED and pull.STAGE == names.LABEL_PULL
    assert push.ASR_STAGE == names.ASR
    # every runner named in the registry exists (imports labeling's and torch's modules)
    for stage in registry.STAGES:
        assert callable(stage.load()), stage.name


def test_pipeline_and_deployments_run_the_registry_in_order() -> None:
    from flows import dag, deployments

    order = dag.nodes()
    dag.check(order)  # every registry stage has a node, after its dependencies' nodes
    ran = [s for node in order for s in node.stages]
    assert sorted(ran) == sorted(registry.names())
    keys = [n.key for n in order]
    assert keys.index("process") < keys.index("keyframe_hash") < keys.index("label_push")
    assert keys.index("label_push") < keys.index("simulation") < keys.index("label_pull")

    ingest = dag.nodes(deployments.INGEST)
    assert [n.key for n in ingest] == ["crawl", "process", "keyframe_hash", "embed"]
    sync = dag.nodes(deployments.LABEL_SYNC)
    assert [n.key for n in sync] == ["label_push", "label_pull", "quality"]
    for chosen in (ingest, sync):  # the same nodes, in the pipeline's order
        assert [n.key for n in chosen] == [n.key for n in order if n in chosen]
    served = {s for n in ingest + sync for s in n.stages}
    assert served | {names.TRAIN} == set(registry.names())  # train: its own deployment


def test_the_check_catches_a_node_before_its_dependencies() -> None:
    from flows import dag

    order = dag.nodes()
    with pytest.raises(ValueError, match="before"):
        dag.check(list(reversed(order)))
