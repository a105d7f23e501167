"""Import benchmark: `chfen import` of a folder of N generated clips with a ratings CSV (5 votes
per clip), then the clips through process (scenes + ASR) and embed.

    .venv/bin/python -m benchmarks.imports [--n 500] [--audio-only 0.2] [--workers 2]
                                           [--root DIR] [--out FILE]

The folder (`--root`, default `data/bench-imports-<N>/clips`, kept for re-runs) holds N clips
made before the clock starts: spoken English sentences from espeak-ng, a `--audio-only` share
of them as plain WAVs, the rest as 320x240 25 fps H.264/AAC mp4s over an ffmpeg lavfi test
pattern (each clip's pattern hue differs, so every file's content is distinct); `ratings.csv`
has 5 raters' votes per clip (`file,rater,label,intensity`, 70 % the clip's emotion).

Timed, into a fresh warehouse under `--root`:

1. **import**: `chfen.ingest.import_folder` (check every row, decode every file, copy, extract
   16 kHz audio, one commit per table) — files/s;
2. **re-import** of the unchanged folder: a no-op (a hash per file, nothing written) — seconds;
3. **process**: the scenes stage then the ASR stage (packaged whisper tiny.en) per clip, one
   at a time in this process as `chfen process` runs them at concurrency 1 — files/s each;
4. **embed**: the embed stage with the default packaged encoders, loaded once before the
   clock — files/s.

Peak RSS: this process's maximum after each phase (the maximum is monotone, so the import's is
its own) and the largest child (ffmpeg, ffprobe). Prints a table, writes JSON (default
`benchmarks/results/imports-<N>.json`).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

# This folder holds warehouse.py, which would shadow the `warehouse` package: drop it.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from chfen.labels import NO_EMOTION, PLUTCHIK  # noqa: E402

RATERS = 5
AGREE = 0.7  # a rater gives the clip's emotion with this probability
SENTENCES = (
    "What a wonderful surprise this is.",
    "I cannot believe you did that to me.",
    "Please bring seven green apples to the kitchen.",
    "The weather is lovely today in the mountains.",
    "Get out of my house right now.",
    "I am so sorry for your loss.",
    "We are going to win the final tomorrow.",
    "Something is moving in the dark corner.",
    "That smell in the fridge is disgusting.",
    "Thank you for always being there for me.",
    "My brother plays football every Sunday morning.",
    "Scientists discovered water on a distant planet.",
)
GENERATED = ".complete"  # marker: the folder holds every clip and the ratings


def peak_rss_mib() -> tuple[float, float]:
    """(this process, the largest child process) peak RSS in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, kids


def generate(folder: Path, n: int, audio_only: float, workers: int, seed: int = 0) -> None:
    """N clips and ratings.csv in `folder` (kept: a later run with the same N reuses them)."""
    if (folder / GENERATED).is_file() and (folder / GENERATED).read_text() == f"{n} {audio_only}":
        return
    from chfen.media.testmedia import speak, write_wav

    shutil.rmtree(folder, ignore_errors=True)
    speech = folder.parent / "speech"
    speech.mkdir(parents=True, exist_ok=True)
    voices = []
    for i, text in enumerate(SENTENCES):
        path = speech / f"s{i:02d}.wav"
        if not path.is_file():
            write_wav(path, speak(text))
        voices.append(path)
    folder.mkdir(parents=True)
    rng = random.Random(seed)
    n_audio = round(n * audio_only)
    names = []

    def make(i: int) -> str:
        voice = voices[i % len(voices)]
        if i < n_audio:
            # audio only: the sentence with a clip-specific length of silence after it
            name = f"audio/clip{i:04d}.wav"
            out = folder / name
            out.parent.mkdir(exist_ok=True)
            cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(voice),
                   "-af", f"apad=pad_dur={0.3 + (i % 7) * 0.1:.1f}", str(out)]  # fmt: skip
        else:
            name = f"video/clip{i:04d}.mp4"
            out = folder / name
            out.parent.mkdir(exist_ok=True)
            cmd = [
                "ffmpeg", "-nostdin", "-v", "error", "-y",
                "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=4",
                "-i", str(voice), "-filter_complex",
                f"[0:v]hue=h={(i * 37) % 360}[v];[1:a]apad[a]", "-map", "[v]", "-map", "[a]",
                "-t", "4", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                "-c:a", "aac", str(out),
            ]  # fmt: skip
        subprocess.run(cmd, check=True, timeout=120)
        return name

    with ThreadPoolExecutor(workers) as pool:
        names = list(pool.map(make, range(n)))
    with (folder.parent / "ratings.csv").open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["file", "rater", "label", "intensity"])
        for i, name in enumerate(names):
            truth = PLUTCHIK[i % len(PLUTCHIK)]
            for r in range(1, RATERS + 1):
                label = truth if rng.random() < AGREE else rng.choice([*PLUTCHIK, NO_EMOTION])
                out.writerow([name, f"r{r}", label, rng.randint(1, 3)])
    (folder / GENERATED).write_text(f"{n} {audio_only}")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from chfen.asr import AsrStage
    from chfen.config import AsrConfig, CrawlConfig, EmbedConfig, ScenesConfig
    from chfen.embed import STAGE as EMBED_STAGE
    from chfen.embed import EmbedStage
    from chfen.ingest import import_folder
    from chfen.media.scenes import ScenesStage
    from chfen.stages import run_for_video
    from warehouse import Warehouse

    root = args.root or Path(f"data/bench-imports-{args.n}")
    folder = root / "clips"
    t0 = time.perf_counter()
    generate(folder, args.n, args.audio_only, args.workers)
    generate_s = time.perf_counter() - t0
    ratings = root / "ratings.csv"
    data = root / "data"
    shutil.rmtree(data, ignore_errors=True)
    wh = Warehouse(data)
    crawl = CrawlConfig()
    quiet = lambda _line: None  # noqa: E731

    t0 = time.perf_counter()
    report = import_folder(wh, folder, source="bench", labels=ratings, crawl=crawl, say=quiet)
    import_s = time.perf_counter() - t0
    rss_import = peak_rss_mib()[0]
    t0 = time.perf_counter()
    again = import_folder(wh, folder, source="bench", labels=ratings, crawl=crawl, say=quiet)
    reimport_s = time.perf_counter() - t0
    assert not again.written and len(again.unchanged) == args.n, "the re-import wrote something"

    ids = sorted(report.new)
    phases: dict[str, float] = {}
    failed: dict[str, int] = {}
    scenes = ScenesStage(wh, ScenesConfig())
    asr = AsrStage(wh, AsrConfig())
    t0 = time.perf_counter()
    asr.warm_up()
    asr_load_s = time.perf_counter() - t0
    for name, stage, version in (("scenes", scenes, "1"), ("asr", asr, "1")):
        t0 = time.perf_counter()
        outcomes = [run_for_video(wh, name, version, v, stage) for v in ids]
        phases[name] = time.perf_counter() - t0
        failed[name] = sum(not o.ok for o in outcomes)
    wh.refresh_catalog()
    rss_process = peak_rss_mib()[0]

    embed = EmbedStage(wh, EmbedConfig())
    t0 = time.perf_counter()
    embed.warm_up()
    embed_load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    outcomes = [run_for_video(wh, EMBED_STAGE, embed.version, v, embed) for v in ids]
    phases["embed"] = time.perf_counter() - t0
    failed["embed"] = sum(not o.ok for o in outcomes)
    wh.refresh_catalog()
    own, kids = peak_rss_mib()
    words = wh.count("transcript_words")
    absent = wh.rows(
        "SELECT count(DISTINCT video_id) AS n FROM videos_latest v WHERE width IS NULL "
        "AND NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.video_id = v.video_id "
        "AND e.modality IN ('scene', 'face'))"
    )[0]["n"]
    n = args.n
    return {
        "benchmark": "imports",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "files": n,
        "audio_only": report.audio_only,
        "votes": report.votes,
        "generate_s": generate_s,
        "import_s": import_s,
        "import_files_per_s": n / import_s,
        "reimport_noop_s": reimport_s,
        "scenes_s": phases["scenes"],
        "scenes_files_per_s": n / phases["scenes"],
        "asr_load_s": asr_load_s,
        "asr_s": phases["asr"],
        "asr_files_per_s": n / phases["asr"],
        "process_files_per_s": n / (phases["scenes"] + phases["asr"]),
        "embed_load_s": embed_load_s,
        "embed_s": phases["embed"],
        "embed_files_per_s": n / phases["embed"],
        "failed": failed,
        "transcript_words": words,
        "audio_only_without_picture_vectors": absent,
        "peak_rss_mib": {"import": rss_import, "process": rss_process, "all": own, "child": kids},
    }


def print_table(result: dict[str, Any], console: Console) -> None:
    n = result["files"]
    table = Table(title=f"Import benchmark: {n} generated clips ({result['audio_only']} audio "
                  f"only), {result['votes']} votes")  # fmt: skip
    table.add_column("phase")
    table.add_column("seconds", justify="right")
    table.add_column("files/s", justify="right")
    table.add_column("peak RSS (MiB)", justify="right")
    rss = result["peak_rss_mib"]
    table.add_row("import (verify, copy, audio, rows)", f"{result['import_s']:.1f}",
                  f"{result['import_files_per_s']:.1f}", f"{rss['import']:.0f}")  # fmt: skip
    table.add_row("re-import, unchanged (no-op)", f"{result['reimport_noop_s']:.2f}",
                  f"{n / result['reimport_noop_s']:.0f}", "")  # fmt: skip
    table.add_row("scenes", f"{result['scenes_s']:.1f}", f"{result['scenes_files_per_s']:.2f}", "")
    table.add_row(f"ASR (tiny.en; load {result['asr_load_s']:.1f} s apart)",
                  f"{result['asr_s']:.1f}", f"{result['asr_files_per_s']:.2f}",
                  f"{rss['process']:.0f}")  # fmt: skip
    table.add_row("process = scenes + ASR", f"{result['scenes_s'] + result['asr_s']:.1f}",
                  f"{result['process_files_per_s']:.2f}", "")  # fmt: skip
    table.add_row(f"embed (load {result['embed_load_s']:.1f} s apart)", f"{result['embed_s']:.1f}",
                  f"{result['embed_files_per_s']:.2f}", f"{rss['all']:.0f}")  # fmt: skip
    console.print(table)
    console.print(
        f"largest child (ffmpeg/ffprobe) {rss['child']:.0f} MiB; failed {result['failed']}; "
        f"{result['transcript_words']} transcript words; "
        f"{result['audio_only_without_picture_vectors']} audio-only files with no picture "
        f"vectors; clips generated in {result['generate_s']:.1f} s (not timed above)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500, help="clips in the folder")
    ap.add_argument("--audio-only", type=float, default=0.2, help="share of audio-only WAVs")
    ap.add_argument("--workers", type=int, default=2, help="ffmpeg processes while generating")
    ap.add_argument("--root", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if args.n < 1 or not 0 <= args.audio_only <= 1:
        ap.error("--n must be >= 1 and --audio-only within 0..1")
    for tool in ("ffmpeg", "espeak-ng"):
        if shutil.which(tool) is None:
            ap.error(f"{tool} is not installed")
    console = Console()
    result = run(args)
    print_table(result, console)
    out = args.out or Path(f"benchmarks/results/imports-{args.n}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    console.print(f"wrote {out}")


if __name__ == "__main__":
    main()
