"""A whole training run on the synthetic warehouse: it learns, it is honest about the split,
and it leaves its rows, checkpoint, config and report behind."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from chfen.config import Settings, TrainConfig
from chfen.labels import PLUTCHIK
from chfen.train import (
    ABLATIONS,
    DatasetError,
    RunResult,
    load_run,
    predict_unlabeled,
    predict_videos,
    run_ablations,
    train_run,
)
from chfen.train.run import CONDITIONAL_ABLATIONS, applicable_ablations
from warehouse import Warehouse

REPORT_FILES = ("index.html", "loss.png", "confusion.png", "per_class_f1.png")


@pytest.fixture(scope="module")
def run(synthetic: Any) -> RunResult:
    """One full run (baselines included), shared by the tests of this module."""
    assert synthetic.settings is not None
    return train_run(synthetic.settings, Warehouse(synthetic.root))


def test_chfen_beats_the_majority_baseline_on_held_out_uploaders(run: RunResult) -> None:
    chfen = run.metrics["weighted_f1"]
    majority = run.baselines["majority"]["weighted_f1"]
    assert chfen >= majority + 0.15, (chfen, majority)
    assert run.metrics["n"] == len(run.split.test) > 0
    # every per-modality baseline was scored on the same test videos
    for name in ("title", "audio", "scene", "face", "text", "audio_seq"):
        assert run.baselines[f"logreg:{name}"]["n"] == len(run.split.test)


def test_no_uploader_is_in_two_splits(run: RunResult, synthetic: Any) -> None:
    seen = {
        name: {synthetic.uploader[v] for v in getattr(run.split, name)}
        for name in ("train", "val", "test")
    }
    assert seen["train"] and seen["test"]
    assert not seen["train"] & seen["test"]
    # one uploader's 8 validation videos are too few to stop on: they train, CV picks epochs
    assert not seen["val"] and run.history.selection["method"] == "grouped_cv"
    assert not seen["val"] & (seen["train"] | seen["test"])
    assert {k: set(v) for k, v in run.split.uploaders.items()} == seen


def test_the_run_is_recorded_in_the_warehouse(run: RunResult, wh: Warehouse) -> None:
    rows = wh.rows("SELECT * FROM training_runs_latest WHERE run_id = ?", [run.run_id])
    assert len(rows) == 1
    row = rows[0]
    assert row["status"] == "done"
    assert json.loads(row["dataset_versions_json"]) == run.versions
    assert set(run.versions) == {"videos", "annotations", "embeddings"}
    assert row["n_train"] == len(run.split.train) and row["n_test"] == len(run.split.test)
    assert wh.root.local(row["checkpoint_path"]) == run.checkpoint_path
    summary = json.loads(row["metrics_json"])
    assert summary["test"]["weighted_f1"] == pytest.approx(run.metrics["weighted_f1"])
    assert "majority" in summary["baselines"]
    assert TrainConfig.model_validate_json(row["config_json"]) == run.config
    history = wh.rows("SELECT status FROM training_runs WHERE run_id = ?", [run.run_id])
    assert sorted(r["status"] for r in history) == ["done", "running"]

    preds = wh.rows("SELECT * FROM predictions WHERE run_id = ?", [run.run_id])
    splits = ("train", "val", "test")
    by_split = {s: {r["video_id"] for r in preds if r["split"] == s} for s in splits}
    assert by_split == {s: set(getattr(run.split, s)) for s in by_split}
    for r in preds:
        probs = json.loads(r["probs_json"])
        assert list(probs) == list(PLUTCHIK) and sum(probs.values()) == pytest.approx(1, abs=1e-4)
        assert r["label"] == max(probs, key=probs.get) and r["model_version"] == run.model_version


def test_the_run_leaves_checkpoint_config_and_report(run: RunResult, settings: Settings) -> None:
    assert run.run_dir == settings.data_path / "models" / run.run_id
    for name in ("model.pt", "config.json", "metrics.json", "split.json"):
        assert (run.run_dir / name).stat().st_size > 0, name
    for name in REPORT_FILES:
        assert (run.report_path.parent / name).stat().st_size > 0, name
    page = run.report_path.read_text()
    assert all(png in page for png in REPORT_FILES[1:])
    assert "majority" in page and "logreg:scene" in page and run.run_id in page
    # the synthetic validation split is too small: the page says how the epochs were chosen
    selection = run.history.selection
    assert selection["method"] == "grouped_cv"
    assert f"{selection['folds']}-fold cross-validation" in page
    assert f"<b>{selection['epochs']}</b> epochs" in page
    assert "Weight of each expert" in page
    # every modality head's L2 came from the grid, and the page names it
    assert set(selection["head_l2"]) == set(run.modalities)
    assert set(selection["head_l2"].values()) <= set(run.config.head_l2_grid)
    assert "L2 strength of each modality head" in page
    config = json.loads((run.run_dir / "config.json").read_text())
    assert config["train"] == run.config.model_dump(mode="json")
    assert config["settings"]["train"] == config["train"]  # the resolved config of the run
    assert config["dataset"]["versions"] == run.versions
    metrics = json.loads((run.run_dir / "metrics.json").read_text())
    assert set(metrics["test"]["per_class_f1"]) == set(PLUTCHIK)
    assert np.array(metrics["test"]["confusion"]).sum() == len(run.split.test)


def test_same_seed_same_metrics(run: RunResult, settings: Settings, wh: Warehouse) -> None:
    again = train_run(settings, wh, run.config.model_copy(update={"baselines": False}))
    assert again.run_id != run.run_id
    assert again.split == run.split
    assert again.metrics == run.metrics
    assert [e["train_loss"] for e in again.history.epochs] == [
        e["train_loss"] for e in run.history.epochs
    ]


def test_the_checkpoint_predicts_what_the_run_reported(run: RunResult, wh: Warehouse) -> None:
    model, ckpt = load_run(wh, run.run_id)
    assert ckpt["encoder_keys"] == {m: "synthetic-v2" for m in model.modalities}
    preds = predict_videos(wh, run.run_id, list(run.split.test))
    stored = {
        r["video_id"]: json.loads(r["probs_json"])
        for r in wh.rows(
            "SELECT video_id, probs_json FROM predictions WHERE run_id = ? AND split = 'test'",
            [run.run_id],
        )
    }
    assert len(preds) == len(stored)
    for p in preds:
        assert p.probs == pytest.approx(stored[p.video_id], abs=1e-5)


def test_predict_unlabeled(run: RunResult, synthetic: Any, settings: Settings) -> None:
    wh = Warehouse(synthetic.root)
    out = predict_unlabeled(settings, wh, run.run_id)
    assert set(out) == set(synthetic.unlabeled)
    for label, score, version in out.values():
        assert label in PLUTCHIK and 0 < score <= 1 and version == run.model_version
    count = "SELECT count(*) AS n FROM predictions WHERE run_id = ? AND split = 'unlabeled'"
    assert wh.rows(count, [run.run_id])[0]["n"] == len(synthetic.unlabeled)
    assert predict_unlabeled(settings, wh, run.run_id) == out
    assert wh.rows(count, [run.run_id])[0]["n"] == len(synthetic.unlabeled)  # no duplicates


def test_a_failed_run_is_recorded_and_says_what_to_do(
    settings: Settings, wh: Warehouse, train_config: Callable[..., TrainConfig]
) -> None:
    impossible = train_config(min_votes=5)
    with pytest.raises(DatasetError, match="min_votes"):
        train_run(settings, wh, impossible, run_id="doomed-run")
    row = wh.rows("SELECT * FROM training_runs_latest WHERE run_id = 'doomed-run'")[0]
    assert row["status"] == "failed" and "DatasetError" in row["metrics_json"]


def test_ablations_write_one_table(
    settings: Settings, wh: Warehouse, train_config: Callable[..., TrainConfig]
) -> None:
    names = [
        "CHFEN (hybrid)",
        "decision-level fusion only",
        "vision only (scene + face)",
        "without caption",
    ]
    table = run_ablations(settings, wh, train_config(epochs=3), names=names)
    settings_rows = [r for r in table.rows if not r["setting"].startswith("baseline:")]
    assert [r["setting"] for r in settings_rows] == names
    assert any(r["setting"] == "baseline: majority" for r in table.rows)
    assert settings_rows[2]["modalities"] == ["scene", "face"]
    # no stage writes caption embeddings: the row is marked, nothing is trained for it
    caption = settings_rows[3]
    assert caption["run_id"] is None and caption["weighted_f1"] is None
    assert caption["note"].startswith("not applicable: no caption embeddings")
    assert "without caption" not in table.results
    for name in ("ablations.json", "ablations.csv", "ablations.md"):
        assert (table.path / name).stat().st_size > 0
    md = (table.path / "ablations.md").read_text()
    assert "decision-level fusion only" in md and "not applicable" in md
    # every trained row and every baseline carries its 95 % intervals, in every file
    for r in table.rows:
        if r["run_id"] or r["setting"].startswith("baseline:"):
            for m in ("weighted_f1", "macro_f1"):
                low, high = r[f"{m}_ci"]
                assert 0 <= low <= high <= 1, (r["setting"], m)
                assert f"{r[m]:.3f} [{low:.2f}, {high:.2f}]" in md
    with (table.path / "ablations.csv").open() as fh:
        lines = list(csv.DictReader(fh))
    assert float(lines[0]["weighted_f1_ci_low"]) == pytest.approx(
        table.rows[0]["weighted_f1_ci"][0]
    )
    first, *rest = table.results.values()
    assert all(r.split == first.split for r in rest)  # every ablation on the same split
    assert set(ABLATIONS) | set(CONDITIONAL_ABLATIONS) >= set(names)


def test_the_caption_ablation_is_listed_only_with_caption_embeddings() -> None:
    assert "without caption" not in ABLATIONS
    assert "without caption" not in applicable_ablations({"title": 4, "text": 4})
    with_captions = applicable_ablations({"title": 4, "text": 4, "caption": 4})
    assert with_captions["without caption"] == {"use_caption": False}


# ---- honest evaluation: intervals, the best baseline, the verdict -------------------------------


def test_the_run_reports_intervals_and_its_best_baseline(run: RunResult, wh: Warehouse) -> None:
    for scores in (run.metrics, *run.baselines.values()):
        for m in ("weighted_f1", "macro_f1"):
            low, high = scores[f"{m}_ci"]
            assert 0 <= low <= high <= 1
            assert low - 1e-9 <= scores[m] <= high + 1e-9
    cmp = run.comparison
    assert cmp is not None
    best = max(
        (k for k in run.baselines),
        key=lambda k: (run.baselines[k]["weighted_f1"], run.baselines[k]["macro_f1"]),
    )
    assert cmp["best_baseline"] == best
    assert cmp["difference"] == pytest.approx(
        run.metrics["weighted_f1"] - run.baselines[best]["weighted_f1"]
    )
    low, high = cmp["difference_ci"]
    assert cmp["outcome"] == ("below" if high < 0 else "above" if low > 0 else "tie")
    assert best in cmp["verdict"] and "95 % CI" in cmp["verdict"]
    assert cmp["n_test"] == len(run.split.test)
    assert set(cmp["versus"]) == set(run.baselines)

    # the same figures in metrics.json, training_runs.metrics_json and the summary
    metrics = json.loads((run.run_dir / "metrics.json").read_text())
    assert metrics["comparison"] == json.loads(json.dumps(cmp))
    assert metrics["test"]["weighted_f1_ci"] == pytest.approx(run.metrics["weighted_f1_ci"])
    row = wh.rows("SELECT metrics_json FROM training_runs_latest WHERE run_id = ?", [run.run_id])
    stored = json.loads(row[0]["metrics_json"])
    assert stored["comparison"]["verdict"] == cmp["verdict"]
    assert stored["test"]["macro_f1_ci"] == pytest.approx(run.metrics["macro_f1_ci"])
    assert stored["baselines"][best]["weighted_f1_ci"] == pytest.approx(
        run.baselines[best]["weighted_f1_ci"]
    )
    summary = run.summary()
    assert list(summary["scores"])[0] == "CHFEN"
    assert set(summary["scores"]) == {"CHFEN", *run.baselines}
    assert summary["weighted_f1_ci"] == run.metrics["weighted_f1_ci"]
    assert summary["comparison"]["best_baseline"] == best
    json.dumps(summary, allow_nan=False)  # a flow result: JSON as it is


def test_the_report_and_the_cli_show_the_verdict(run: RunResult) -> None:
    import html

    from rich.console import Console

    from flows.cli.show import print_train_summary

    assert run.comparison is not None
    page = run.report_path.read_text()
    assert html.escape(run.comparison["verdict"]) in page
    assert "(best baseline)" in page and "95 % CI" in page
    low, high = run.metrics["weighted_f1_ci"]
    assert f"{run.metrics['weighted_f1']:.3f} [{low:.2f}, {high:.2f}]" in page

    console = Console(record=True, width=80)  # a plain terminal
    print_train_summary(run.summary() | {"report": str(run.report_path)}, console)
    text = console.export_text()
    assert run.comparison["verdict"] in " ".join(text.split())
    assert f"{run.comparison['best_baseline']} *" in text
    assert "majority" in text and f"{run.metrics['weighted_f1']:.2f} [{low:.2f}–{high:.2f}]" in text
