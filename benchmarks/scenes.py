"""Scenes benchmark: the scenes stage vs plain decoding vs the PySceneDetect command line.

    .venv/bin/python benchmarks/scenes.py [--clip FILE] [--repeats 3] [--out FILE]

On a 60 s 720x1280 30 fps H.264 clip (12 shots, hard cuts every 5 s; generated unless
--clip is given) it measures, each in its own process so peak RSS is that variant's alone:

- `ffmpeg -i clip -f null -`: the decode limit;
- the scenes stage (`ScenesStage`, default settings: ContentDetector, auto downscale,
  keyframes and 1 still per second written), timed inside the process after imports;
- PySceneDetect's API with its defaults (SceneManager + ContentDetector, OpenCV backend);
- the `scenedetect -i clip` command line with its defaults (process wall time, startup
  included, and the frames/s it reports itself).

Prints a table (median of --repeats runs) and writes JSON (default
benchmarks/results/scenes.json). Goal: the stage at >= 0.8x plain decode speed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import statistics
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

GOAL_VS_DECODE = 0.8
FRAMES = 1800
SIZE = (720, 1280)


def make_clip(path: Path) -> Path:
    from chfen.media.testmedia import Shot, render_shots

    shots = [Shot(5.0, 30, look) for look in range(12)]
    # veryfast keeps CABAC and B-frames, so decoding costs what a typical upload costs.
    render_shots(path, shots, size=SIZE, preset="veryfast")
    return path


def run_process(cmd: list[str]) -> dict[str, Any]:
    """Wall seconds, peak RSS (MiB) and output of one child process."""
    with tempfile.TemporaryFile() as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        out = log.read().decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed ({proc.returncode}): {out[-800:]}")
    return {
        "seconds": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mib": usage.ru_maxrss / 1024,
        "output": out,
    }


def run_child(kind: str, clip: Path) -> dict[str, Any]:
    """One variant in a fresh Python process, timed inside it (imports excluded)."""
    proc = run_process([sys.executable, __file__, "--child", kind, "--clip", str(clip)])
    line = [ln for ln in proc["output"].splitlines() if ln.startswith("{")][-1]
    return {**json.loads(line), "peak_rss_mib": proc["peak_rss_mib"]}


def cpu_now() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(kind: str, clip: Path) -> None:
    """One measurement inside a fresh process: prints {"seconds", "frames", ...} as JSON."""
    result: dict[str, Any]
    if kind == "render":
        t0 = time.perf_counter()
        make_clip(clip)
        result = {"seconds": time.perf_counter() - t0}
    elif kind == "stage":
        from chfen.config import ScenesConfig
        from chfen.media.scenes import ScenesStage
        from chfen.media.testmedia import register_video
        from warehouse import Warehouse

        with tempfile.TemporaryDirectory() as tmp:
            wh = Warehouse(Path(tmp) / "data", catalog=False)
            register_video(wh, "bench", video=clip, duration_s=60.0)
            stage = ScenesStage(wh, ScenesConfig())
            t0, c0 = time.perf_counter(), cpu_now()
            res = stage("bench")
            seconds, cpu = time.perf_counter() - t0, cpu_now() - c0
            scenes = res.rows["scenes"]
            stills = len(list(wh.root.media_dir("bench").joinpath("frames").glob("*.jpg")))
            result = {
                "seconds": seconds,
                "cpu_s": cpu,
                "frames": scenes[-1]["end_frame"],
                "scenes": len(scenes),
                "stills": stills,
                "timings": res.timings,
            }
    elif kind == "api":
        from scenedetect import ContentDetector, SceneManager, open_video

        t0, c0 = time.perf_counter(), cpu_now()
        video = open_video(str(clip))
        manager = SceneManager()
        manager.add_detector(ContentDetector())
        frames = manager.detect_scenes(video)
        scenes = manager.get_scene_list(start_in_scene=True)
        result = {
            "seconds": time.perf_counter() - t0,
            "cpu_s": cpu_now() - c0,
            "frames": frames,
            "scenes": len(scenes),
        }
    else:
        raise SystemExit(f"unknown child kind {kind!r}")
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clip", type=Path, help="a 60 s clip to use instead of generating one")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results/scenes.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.clip)
        return

    console = Console()
    scenedetect_cli = shutil.which("scenedetect") or str(
        Path(sys.executable).parent / "scenedetect"
    )
    with tempfile.TemporaryDirectory() as tmp:
        clip = args.clip
        if clip is None:
            console.print("rendering the 60 s 720x1280 test clip ...")
            # In a child process, so this one stays small (a child's peak RSS counts the
            # parent's memory it was forked from).
            clip = Path(tmp) / "clip60.mp4"
            rendered = run_child("render", clip)
            console.print(f"  done in {rendered['seconds']:.1f} s")
        runs: dict[str, list[dict[str, Any]]] = {
            "ffmpeg": [], "stage": [], "api": [], "cli": []
        }  # fmt: skip
        load_before = os.getloadavg()
        for i in range(args.repeats):
            console.print(f"run {i + 1}/{args.repeats}")
            ff = run_process(
                ["ffmpeg", "-nostdin", "-v", "error", "-i", str(clip), "-f", "null", "-"]
            )
            runs["ffmpeg"].append({**ff, "frames": FRAMES})
            runs["stage"].append(run_child("stage", clip))
            runs["api"].append(run_child("api", clip))
            cli = run_process([scenedetect_cli, "-i", str(clip)])
            reported = re.search(r"average ([\d.]+) FPS", cli["output"])
            cli["reported_fps"] = float(reported.group(1)) if reported else None
            cli["frames"] = FRAMES
            runs["cli"].append(cli)
        load_after = os.getloadavg()

    def median(kind: str, key: str) -> float:
        values = [r[key] for r in runs[kind] if r.get(key) is not None]
        return statistics.median(values) if values else float("nan")

    rows = {}
    for kind in runs:
        seconds = median(kind, "seconds")
        rows[kind] = {
            "seconds": seconds,
            "frames_per_s": FRAMES / seconds,
            "cpu_s": median(kind, "cpu_s"),
            "peak_rss_mib": median(kind, "peak_rss_mib"),
        }
    rows["cli"]["reported_fps"] = median("cli", "reported_fps")
    decode_fps = rows["ffmpeg"]["frames_per_s"]
    for row in rows.values():
        row["vs_decode"] = row["frames_per_s"] / decode_fps

    labels = {
        "ffmpeg": "ffmpeg -i clip -f null - (decode limit)",
        "stage": "scenes stage (detect + keyframes + stills)",
        "api": "PySceneDetect API defaults (ContentDetector)",
        "cli": "scenedetect -i clip (CLI defaults, wall)",
    }
    table = Table(
        title=f"Scenes: 60 s 720x1280 30 fps H.264, {FRAMES} frames (median of {args.repeats})"
    )
    for col in ("variant", "wall s", "frames/s", "x decode", "CPU s", "peak RSS MiB"):
        table.add_column(col, justify="left" if col == "variant" else "right")
    for kind, row in rows.items():
        table.add_row(
            labels[kind], f"{row['seconds']:.2f}", f"{row['frames_per_s']:.0f}",
            f"{row['vs_decode']:.2f}", f"{row['cpu_s']:.2f}", f"{row['peak_rss_mib']:.0f}",
        )  # fmt: skip
    console.print(table)
    cli_fps = rows["cli"]["reported_fps"]
    console.print(f"scenedetect CLI's own reported rate (startup excluded): {cli_fps:.0f} frames/s")
    stage_ratio = rows["stage"]["vs_decode"]
    verdict = "meets" if stage_ratio >= GOAL_VS_DECODE else "MISSES"
    console.print(f"goal: stage >= {GOAL_VS_DECODE}x decode -> {stage_ratio:.2f}x ({verdict})")
    console.print(
        f"load average before/after: {load_before} / {load_after} on {os.cpu_count()} CPUs"
    )

    report = {
        "benchmark": "scenes",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_avg_before": load_before,
            "load_avg_after": load_after,
        },
        "clip": {"frames": FRAMES, "size": list(SIZE), "fps": 30, "duration_s": 60.0},
        "repeats": args.repeats,
        "results": rows,
        "runs": {
            k: [{kk: vv for kk, vv in r.items() if kk != "output"} for r in v]
            for k, v in runs.items()
        },  # fmt: skip
        "goal": {"stage_vs_decode_min": GOAL_VS_DECODE, "met": stage_ratio >= GOAL_VS_DECODE},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
