"""Embed benchmark: seconds of video embedded per wall second, per modality, and peak RSS.

    .venv/bin/python -m benchmarks.embed [--videos 3] [--duration 60] [--config FILE]

Builds a warehouse the way the upstream stages leave it: `--videos` copies of a 720x1280
30 fps H.264 clip of `--duration` seconds (shots of a real face photo, one and two faces,
alternating with test patterns; espeak-ng speech throughout), stills from the real scenes
stage, transcript words at their scripted times (ASR is not what is measured here). Then, per
modality (and for all of them together), a fresh process on a fresh copy of that warehouse
runs `EmbedStage` over every video: model load is timed apart (`warm_up`), then the embedding
itself, appends to the warehouse included. Peak RSS is the child's whole life (imports and
models included).

Prints a table and writes JSON (default benchmarks/results/embed.json). The default encoders
are the offline ones of `chfen/configs/default.yaml`; `--config` benchmarks others.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# benchmarks/warehouse.py would shadow the `warehouse` package: drop this script's folder.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

SIZE = (720, 1280)  # width, height: a portrait phone video
SHOT_S = 5.0
VARIANTS: dict[str, list[str]] = {
    "title": ["title"],
    "text": ["text"],
    "scene": ["scene"],
    "face": ["face"],
    "audio + audio_seq": ["audio", "audio_seq"],
    "all": ["title", "audio", "scene", "face", "text", "audio_seq"],
}
SENTENCES = [
    "The weather is lovely today in the mountains.",
    "Please bring seven green apples to the kitchen.",
    "My brother plays football every Sunday morning.",
    "Scientists discovered water on a distant planet.",
]


def face_photo() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


def render_clip(out: Path, duration: float) -> Path:
    """Shots of SHOT_S seconds: one face, a test pattern, two faces, another pattern, ..."""
    w, h = SIZE
    photo = str(face_photo())
    n = max(1, round(duration / SHOT_S))
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y"]
    graph, labels = [], []
    for i in range(n):
        kind = i % 4
        if kind in (0, 2):
            cmd += ["-loop", "1", "-framerate", "30", "-t", str(SHOT_S), "-i", photo]
        else:
            look = "testsrc2" if kind == 1 else "smptebars"
            cmd += ["-f", "lavfi", "-i", f"{look}=s={w}x{h}:r=30:d={SHOT_S}"]
        if kind == 0:
            graph.append(
                f"[{i}:v]scale={w}:-2,pad={w}:{h}:0:(oh-ih)/3:color=gray,setsar=1,fps=30[s{i}]"
            )
        elif kind == 2:
            graph.append(
                f"[{i}:v]split[a{i}][b{i}];[a{i}]scale={w // 2}:-2[l{i}];"
                f"[b{i}]scale={w // 3}:-2,pad={w // 2}:ih*3/2:0:60:color=gray[r{i}];"
                f"[l{i}][r{i}]hstack=shortest=0,pad={w}:{h}:0:200:color=gray,setsar=1,fps=30[s{i}]"
            )
        else:
            graph.append(f"[{i}:v]setsar=1[s{i}]")
        labels.append(f"[s{i}]")
    graph.append(f"{''.join(labels)}concat=n={n}:v=1:a=0,format=yuv420p[v]")
    cmd += ["-filter_complex", ";".join(graph), "-map", "[v]", "-c:v", "libx264"]
    cmd += ["-preset", "veryfast", str(out)]
    subprocess.run(cmd, check=True, capture_output=True)
    return out


def prepare(root: Path, videos: int, duration: float) -> dict[str, Any]:
    """A warehouse as crawl + scenes + ASR leave it, for `videos` copies of one clip."""
    from chfen.media.scenes import STAGE, STAGE_VERSION, ScenesStage
    from chfen.media.testmedia import register_video, synthesize_speech
    from chfen.stages import run_for_video
    from warehouse import Warehouse

    clip = render_clip(root / "clip.mp4", duration)
    script, t = [], 0.5
    while t + 4.5 < duration:
        script.append((t, SENTENCES[len(script) % len(SENTENCES)]))
        t += 6.0
    words = synthesize_speech(root / "speech.wav", script, duration)
    wh = Warehouse(root / "data", catalog=False)
    for i in range(videos):
        vid = f"bench{i}"
        row = register_video(wh, vid, video=clip, audio=root / "speech.wav", duration_s=duration)
        wh.append(
            "videos",
            [{**row, "title": "A lovely day out", "description": "Apples, football, planets."}],
        )
        outcome = run_for_video(wh, STAGE, STAGE_VERSION, vid, ScenesStage(wh))
        if not outcome.ok:
            raise RuntimeError(f"scenes stage failed on the benchmark clip: {outcome.message}")
        wh.append(
            "transcript_words",
            [
                {"video_id": vid, "word_idx": j, "segment_idx": w.sentence, "word": w.word,
                 "start_s": w.start_s, "end_s": w.end_s}
                for j, w in enumerate(words)
            ],
        )  # fmt: skip
        wh.mark_done(vid, "asr", "1")
    return {"words": len(words), "duration_s": duration, "videos": videos}


def child(data: Path, modalities: list[str], config: str | None) -> None:
    """Inside a fresh process: load, then embed every video; prints one JSON line."""
    t_import = time.perf_counter()
    from chfen.config import load_settings
    from chfen.embed import EmbedStage
    from warehouse import Warehouse

    settings, _ = load_settings(config, [f"embed.modalities={json.dumps(modalities)}"])
    wh = Warehouse(data, catalog=False)
    stage = EmbedStage(wh, settings.embed)
    import_s = time.perf_counter() - t_import
    t0 = time.perf_counter()
    stage.warm_up()
    load_s = time.perf_counter() - t0
    vids = [r["video_id"] for r in wh.rows("SELECT video_id FROM videos_latest ORDER BY 1")]
    vectors: dict[str, int] = {}
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    for vid in vids:
        result = stage(vid)
        for m, n in result.vectors.items():
            vectors[m] = vectors.get(m, 0) + n
        for k, v in result.timings.items():
            timings[k] = timings.get(k, 0.0) + v
    embed_s = time.perf_counter() - t0
    labels = sorted({k.source.label for k in stage.keys.values()})
    print(json.dumps({"import_s": import_s, "load_s": load_s, "embed_s": embed_s,
                      "vectors": vectors, "timings": timings, "encoders": labels}))  # fmt: skip


def run_child(data: Path, modalities: list[str], config: str | None) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.embed", "--child", str(data),
           "--modalities", ",".join(modalities)]  # fmt: skip
    if config:
        cmd += ["--config", config]
    with tempfile.TemporaryFile() as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        log.seek(0)
        out = log.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"embed child for {modalities} failed: {out[-1500:]}")
    line = [ln for ln in out.splitlines() if ln.startswith("{")][-1]
    return {
        **json.loads(line),
        "process_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mib": usage.ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=3)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per video")
    parser.add_argument("--config", help="a config file naming other encoders")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results/embed.json")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--modalities", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.child:
        child(args.child, args.modalities.split(","), args.config)
        return

    console = Console(width=150)
    results: dict[str, dict[str, Any]] = {}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        console.print(
            f"preparing {args.videos} x {args.duration:.0f} s 720x1280 videos "
            "(render, scenes stage, scripted words) ..."
        )
        t0 = time.perf_counter()
        clip = prepare(root, args.videos, args.duration)
        console.print(f"  done in {time.perf_counter() - t0:.1f} s")
        for name, modalities in VARIANTS.items():
            data = root / f"data-{name.replace(' ', '')}"
            shutil.copytree(root / "data", data)
            console.print(f"embedding: {name} ...")
            results[name] = run_child(data, modalities, args.config)
            shutil.rmtree(data)
    load_after = os.getloadavg()

    video_s = args.videos * args.duration
    table = Table(
        title=f"Embed: {args.videos} videos x {args.duration:.0f} s, 720x1280, "
        f"{os.cpu_count()} CPUs (machine shared: load {load_before[0]:.1f} -> {load_after[0]:.1f})"
    )
    cols = ("modalities", "encoder", "vectors", "load s", "embed s", "video s / s", "CPU s",
            "peak RSS MiB")  # fmt: skip
    for col in cols:
        table.add_column(col, justify="left" if col in ("modalities", "encoder") else "right")
    for name, r in results.items():
        r["video_s_per_s"] = video_s / r["embed_s"] if r["embed_s"] else float("inf")
        table.add_row(
            name, "\n".join(r["encoders"]),
            ", ".join(f"{m} {n}" for m, n in r["vectors"].items()),
            f"{r['load_s']:.1f}", f"{r['embed_s']:.2f}", f"{r['video_s_per_s']:.1f}",
            f"{r['cpu_s']:.1f}", f"{r['peak_rss_mib']:.0f}",
        )  # fmt: skip
    console.print(table)
    console.print(
        "load s: warm_up (the model library's first import + weights); embed s: every "
        "video, warehouse queries and appends included; video s / s: seconds of video "
        "embedded per wall second."
    )
    report = {
        "benchmark": "embed",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_avg_before": load_before,
            "load_avg_after": load_after,
            "note": "shared machine: other engineers' jobs ran at the same time",
        },
        "config": args.config or "default",
        "clip": {**clip, "size": list(SIZE), "fps": 30},
        "video_s": video_s,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
