"""The whole pipeline flow in real Prefect: demo site → yt-dlp → scenes/ASR → a real Label
Studio → the simulated crew → annotations in the warehouse; then a re-run does nothing new."""

from __future__ import annotations

from pathlib import Path

import pytest
from labkit import demo_overrides, pipeline_labelstudio

from chfen.demo import Catalogue
from warehouse import Warehouse


@pytest.mark.slow
def test_pipeline_end_to_end_and_incremental(
    tmp_path: Path, demo_catalogue: Catalogue, prefect_harness: None
) -> None:
    from flows.pipeline import pipeline_flow

    root = tmp_path / "data"
    good = [v for v in demo_catalogue.ground_truth["videos"] if v["channel"] != "hardcases"]
    with pipeline_labelstudio(root) as overrides:
        overrides += demo_overrides(demo_catalogue)
        first = pipeline_flow(overrides=overrides)
        second = pipeline_flow(overrides=overrides)

    n = len(good)
    assert first["crawl"]["downloaded"] == n and first["crawl"]["failed"] == 0
    assert first["process"]["scenes"]["done"] == n and first["process"]["asr"]["done"] == n
    assert first["keyframe_hash"]["videos"] == n and first["keyframe_hash"]["hashed"] > 0
    assert first["label_push"]["pushed"] == n
    sim = first["simulation"]
    assert sim["simulation"] is True and len(sim["annotators"]) == 3
    made = sum(sim["created"].values())
    assert made >= 2 * n  # three annotators, a few skips at most
    assert first["label_pull"]["new"] == made + sum(sim["skipped"].values())
    assert first["dataset"]["videos"] == n and first["dataset"]["tasks"] == n
    assert first["dataset"]["annotations"] == made
    assert first["dataset"]["scenes"] >= sum(len(v["cuts"]) + 1 for v in good)
    assert first["embed"]["done"] == n and first["embed"]["failed"] == 0
    for modality in ("title", "scene", "text", "audio", "audio_seq"):
        assert first["embed"]["vectors"].get(modality, 0) > 0, modality

    # every node is incremental: nothing new the second time
    # port 0 gives the site a new address each run: pages are new URLs, yet the same videos
    assert second["crawl"]["downloaded"] == 0 and second["crawl"]["already_known"] == n
    assert second["process"]["scenes"]["done"] == 0 and second["process"]["asr"]["done"] == 0
    assert second["keyframe_hash"] == {"videos": 0, "hashed": 0}  # done in the ledger
    assert second["label_push"]["pushed"] == 0
    assert sum(second["simulation"]["created"].values()) == 0
    assert second["label_pull"]["new"] == 0 and second["label_pull"]["updated"] == 0
    assert second["embed"]["done"] == 0 and second["embed"]["vectors"] == {}
    assert "skipped" in first["train"]  # 8 labeled videos: fewer than train_min_labeled
    assert Path(first["quality"]["report_html"]).is_file()
    assert second["dataset"] == first["dataset"]

    wh = Warehouse(root)
    # annotations point at crawled videos, and the majority agrees with the ground truth
    # for most items (the crew is noisy, one annotator deliberately poor)
    truth = {f"generic-{v['id']}": v["emotion"] for v in good}
    votes = wh.rows(
        "SELECT video_id, mode(choice) AS majority FROM annotations_latest "
        "WHERE choice IS NOT NULL GROUP BY 1"
    )
    assert {r["video_id"] for r in votes} <= set(truth)
    hits = sum(truth[r["video_id"]] == r["majority"] for r in votes)
    assert hits >= 0.6 * len(votes)
