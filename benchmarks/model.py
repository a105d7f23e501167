"""Model benchmark: CHFEN, its ablations and the baselines on a demo catalogue, three seeds.

    .venv/bin/python -m benchmarks.model [--videos 24] [--seeds 0 1 2] [--no-ablations]
                                         [--root DIR] [--out FILE]

1. Fill: the whole pipeline (`chfen run`, a subprocess, as a user runs it) on the N-video demo
   catalogue into `--root` (default `data/bench-model-<N>`), unless that warehouse already holds
   labelled, embedded videos of the catalogue (a re-run only trains). The pipeline's own
   training is switched off; the simulated crew labels as in `make demo`.
2. Train: for each seed, one run of every ablation (or only the full CHFEN) on the same split,
   with the baselines (majority, one logistic regression per modality, `logreg:all`). A seed
   sets the split by uploader and the network's initialisation, so the three seeds are three
   different held-out sets.
3. Table: per setting the weighted F1 of each seed, their mean, and a 95 % bootstrap interval
   of that mean (each seed's test videos resampled with replacement, the three F1s averaged);
   macro F1 likewise; the demo's published ceilings; wall time and peak RSS of training. The
   goals of issue 14 are checked at the end.

Prints the table and writes JSON (default benchmarks/results/model-<N>.json).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# This folder holds warehouse.py, which would shadow the `warehouse` package: drop it.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CHFEN = str(Path(sys.executable).parent / "chfen")
N_BOOT = 1000
# Issue 14's goals.
GOAL_LARGE_VS_ALL = 0.0  # CHFEN >= logreg:all on the large catalogue
GOAL_LARGE_VS_SINGLE = 0.05  # CHFEN >= best single modality + 0.05 there
GOAL_SMALL_GAP = 0.10  # on the default catalogue, within 0.10 of logreg:all


LS_VENV = Path(
    os.environ.get("LABELSTUDIO_TEST_VENV", "~/.cache/chfen/labelstudio-venv")
).expanduser()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fill(
    root: Path, videos: int, cache: Path, console: Console, emotions: list[str] | None = None
) -> float:
    """Run the pipeline (no training) unless the warehouse already has the labelled data."""
    from warehouse import Warehouse

    if (root / "warehouse").exists():
        wh = Warehouse(root)
        have = wh.rows(
            "SELECT (SELECT count(DISTINCT video_id) FROM embeddings) AS embedded, "
            "(SELECT count(DISTINCT video_id) FROM annotations_latest) AS labelled"
        )[0]
        if have["embedded"] >= videos and have["labelled"] >= videos * 0.8:
            console.print(f"reusing {root}: {have}")
            return 0.0
    sets = [
        f"data_root={root}",
        f"demo_site.n_videos={videos}",
        f"demo_site.cache_dir={cache}",
        "prefect.train_min_labeled=1000000",  # the benchmark trains, not the pipeline
        f"demo_site.port={free_port()}",
        f"labelstudio.port={free_port()}",
        # One Label Studio install for every benchmark root and the tests (as tests/labkit.py).
        f"labelstudio.venv_dir={LS_VENV}",
        *([f"demo_site.emotions=[{', '.join(emotions)}]"] if emotions else []),
    ]
    args = [a for s in sets for a in ("--set", s)]
    console.print(f"[bold]filling[/bold] {root} with the {videos}-video demo (`chfen run`) …")
    t0 = time.perf_counter()
    try:
        subprocess.run([CHFEN, *args, "run"], check=True, cwd=REPO)
    finally:
        subprocess.run([CHFEN, *args, "labelstudio", "stop"], cwd=REPO, check=False)
    return time.perf_counter() - t0


def rows_over_seeds(
    per_seed: list[tuple[np.ndarray, dict[str, np.ndarray]]], n_classes: int
) -> dict[str, dict[str, Any]]:
    """Per setting: each seed's weighted F1, the mean over seeds, and a 95 % bootstrap interval
    of that mean (each seed's test videos resampled, every setting on the same resamples, so
    the differences to CHFEN are paired)."""
    from chfen.train.evaluation import bootstrap_scores, percentile_interval
    from chfen.train.metrics import classification_metrics

    names = list(per_seed[0][1])
    point: dict[str, dict[str, list[float]]] = {
        n: {"weighted_f1": [], "macro_f1": []} for n in names
    }
    boot: dict[str, dict[str, np.ndarray]] = {}
    for seed, (y, preds) in enumerate(per_seed):
        for name, p in preds.items():
            m = classification_metrics(y, p)
            point[name]["weighted_f1"].append(m["weighted_f1"])
            point[name]["macro_f1"].append(m["macro_f1"])
        scores = bootstrap_scores(y, preds, n_classes, seed=seed)
        for name, by_metric in scores.items():
            for metric, arr in by_metric.items():
                key = boot.setdefault(name, {})
                key[metric] = key.get(metric, 0) + arr / len(per_seed)
    out = {}
    for name in names:
        row: dict[str, Any] = {"weighted_f1_per_seed": point[name]["weighted_f1"]}
        for metric in ("weighted_f1", "macro_f1"):
            row[metric] = float(np.mean(point[name][metric]))
            row[f"{metric}_ci"] = percentile_interval(boot[name][metric])
        if "CHFEN" in boot and name != "CHFEN":
            diff = boot["CHFEN"]["weighted_f1"] - boot[name]["weighted_f1"]
            row["chfen_minus"] = float(
                np.mean(point["CHFEN"]["weighted_f1"]) - np.mean(point[name]["weighted_f1"])
            )
            row["chfen_minus_ci"] = percentile_interval(diff)
        out[name] = row
    return out


def train_all(root: Path, seeds: list[int], ablations: bool, console: Console) -> dict[str, Any]:
    """Every setting's test labels and predictions per seed, plus timings."""
    from chfen.config import load_settings
    from chfen.labels import PLUTCHIK
    from chfen.train.run import load_training_data, run_ablations, train_run
    from warehouse import Warehouse

    settings, _ = load_settings(None, [f"data_root={root}"])
    wh = Warehouse(root)
    t0 = time.perf_counter()
    data = load_training_data(settings, wh)
    load_s = time.perf_counter() - t0
    by_id = data.by_id()
    n_classes = len(PLUTCHIK)
    per_seed: list[tuple[np.ndarray, dict[str, np.ndarray]]] = []
    chfen_seconds: list[float] = []
    splits: list[dict[str, int]] = []

    def chfen_preds(run_id: str, test_ids: list[str]) -> np.ndarray:
        rows = wh.rows(
            "SELECT video_id, label FROM predictions WHERE run_id = ? AND split = 'test'", [run_id]
        )
        got = {r["video_id"]: PLUTCHIK.index(r["label"]) for r in rows}
        return np.array([got[v] for v in test_ids], dtype=int)

    for seed in seeds:
        base = settings.train.model_copy(update={"seed": seed})
        if ablations:
            table = run_ablations(settings, wh, base, say=console.print)
            results = table.results
        else:
            results = {"CHFEN (hybrid)": train_run(settings, wh, base, dataset=data)}
        full = results.get("CHFEN (hybrid)") or next(iter(results.values()))
        test_ids = list(full.split.test)
        y = np.array([by_id[v].label for v in test_ids], dtype=int)
        splits.append({k: len(getattr(full.split, k)) for k in ("train", "val", "test")})
        chfen_seconds.append(full.seconds)
        preds: dict[str, np.ndarray] = {}
        for name, result in results.items():
            if result is None:  # an ablation that does not apply (no caption embeddings)
                continue
            label = "CHFEN" if name == "CHFEN (hybrid)" else f"CHFEN {name}"
            preds[label] = chfen_preds(result.run_id, test_ids)
        for bname, b in full.baselines.items():
            preds[bname] = np.asarray(b["predictions"], dtype=int)
        per_seed.append((y, preds))
    rows = rows_over_seeds(per_seed, n_classes)
    return {
        "rows": rows,
        "splits": splits,
        "load_s": load_s,
        "chfen_train_s": chfen_seconds,
        "n_examples": len(data.examples),
        "modalities": sorted(data.dims),
    }


def ceilings(cache: Path, videos: int, emotions: list[str] | None) -> dict[str, Any] | None:
    """The demo's published ceilings (its ground_truth.json)."""
    from chfen.config import DemoSiteConfig
    from chfen.demo.generate import cache_key

    cfg = DemoSiteConfig(n_videos=videos, **({"emotions": emotions} if emotions else {}))
    gt = cache / cache_key(cfg) / "ground_truth.json"
    if not gt.is_file():
        return None
    return json.loads(gt.read_text(encoding="utf-8")).get("ceilings")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=24)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--no-ablations", dest="ablations", action="store_false")
    ap.add_argument("--emotions", nargs="+", default=None, help="a subset of the eight")
    ap.add_argument("--root", type=Path, default=None)
    ap.add_argument("--cache", type=Path, default=Path("data/demo_site"))
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    console = Console(width=max(Console().width, 150))
    name = f"{args.videos}" + (f"-{len(args.emotions)}emotions" if args.emotions else "")
    root = (args.root or Path(f"data/bench-model-{name}")).resolve()
    out = args.out or Path(f"benchmarks/results/model-{name}.json")

    fill_s = fill(root, args.videos, args.cache.resolve(), console, args.emotions)
    t0 = time.perf_counter()
    result = train_all(root, args.seeds, args.ablations, console)
    train_wall = time.perf_counter() - t0
    rows: dict[str, dict[str, Any]] = result["rows"]

    def order(name: str) -> tuple[int, str]:
        rank = 0 if name == "majority" else 1 if name.startswith("logreg:") else 2
        return (rank, "" if name == "CHFEN" else name)

    table = Table(
        title=f"CHFEN vs baselines, {args.videos}-video demo, seeds {args.seeds} "
        f"(test videos per seed: {[s['test'] for s in result['splits']]})"
    )
    cols = ("setting", "wF1 per seed", "wF1 mean", "95 % CI", "macro F1", "95 % CI", "CHFEN −")
    for col in cols:
        table.add_column(col, justify="left" if col == "setting" else "right")

    def span(ci: list[float] | None, fmt: str = "{:.2f}") -> str:
        return "—" if ci is None else f"[{fmt.format(ci[0])}, {fmt.format(ci[1])}]"

    for name in sorted(rows, key=order):
        r = rows[name]
        diff = (
            f"{r['chfen_minus']:+.3f} {span(r['chfen_minus_ci'], '{:+.2f}')}"
            if "chfen_minus" in r
            else ""
        )
        table.add_row(
            name,
            " ".join(f"{v:.2f}" for v in r["weighted_f1_per_seed"]),
            f"{r['weighted_f1']:.3f}",
            span(r["weighted_f1_ci"]),
            f"{r['macro_f1']:.3f}",
            span(r["macro_f1_ci"]),
            diff,
        )
    console.print(table)

    chfen = rows["CHFEN"]["weighted_f1"]
    singles = {
        k: v["weighted_f1"]
        for k, v in rows.items()
        if k.startswith("logreg:") and k != "logreg:all"
    }
    best_single = max(singles, key=singles.get) if singles else None
    all_ = rows.get("logreg:all", {}).get("weighted_f1")
    goals: dict[str, Any] = {}
    if all_ is not None and best_single is not None:
        if args.videos >= 200:
            goals["chfen_minus_logreg_all"] = chfen - all_
            goals["chfen_minus_best_single"] = chfen - singles[best_single]
            goals["met"] = (chfen - all_ >= GOAL_LARGE_VS_ALL) and (
                chfen - singles[best_single] >= GOAL_LARGE_VS_SINGLE
            )
            console.print(
                f"goal (large): CHFEN − logreg:all = {chfen - all_:+.3f} (≥ 0), CHFEN − best "
                f"single ({best_single}) = {chfen - singles[best_single]:+.3f} (≥ +0.05): "
                f"{'met' if goals['met'] else 'NOT met'}"
            )
        else:
            goals["chfen_minus_logreg_all"] = chfen - all_
            goals["met"] = chfen >= all_ - GOAL_SMALL_GAP
            console.print(
                f"goal (small): CHFEN within 0.10 of logreg:all: {chfen:.3f} vs {all_:.3f} "
                f"({chfen - all_:+.3f}): {'met' if goals['met'] else 'NOT met'}"
            )
    ceil = ceilings(args.cache.resolve(), args.videos, args.emotions)
    if ceil is not None:
        console.print(f"published ceilings of this catalogue: {json.dumps(ceil)}")
    rss = peak_rss_mib()
    console.print(
        f"training: {np.mean(result['chfen_train_s']):.1f} s per full CHFEN run (mean of "
        f"{len(args.seeds)}), {train_wall:.1f} s for everything; peak RSS {rss:.0f} MiB; "
        f"fill {fill_s:.0f} s"
    )
    doc = {
        "benchmark": "model",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "load_avg_after": os.getloadavg(),
        },
        "videos": args.videos,
        "emotions": args.emotions,
        "seeds": args.seeds,
        "root": str(root),
        "fill_s": fill_s,
        "train_wall_s": train_wall,
        "peak_rss_mib": rss,
        "ceilings": ceil,
        "goals": goals,
        **result,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2, default=str))
    console.print(f"wrote {out}")


if __name__ == "__main__":
    main()
