"""Generating (or loading from cache) the demo catalogue's media and ground truth.

The cache lives in `<cache_dir>/seed<seed>-n<n_videos>-g<GENERATOR_VERSION>/`:

    media/<id>.mp4      the served video bytes (re-uploads and the truncated file included)
    thumbs/<id>.jpg     thumbnails
    items/<id>.json     what rendering measured (sentence times, size, sha256); written last,
                        so its presence means the item is complete
    ground_truth.json   everything, assembled from the plan and the item records: per video its
                        emotion, which cue channels show what (`cues`) and which carry the
                        emotion (`carriers`); at the top the cue design, the ceilings it sets
                        per embedding modality and for all cues together, and the share of
                        carriers per channel in this catalogue (`chfen.demo.cues`)

A second start with nothing missing only reads ground_truth.json and checks that the files are
there. An exclusive lock on the folder keeps two processes (a CLI and a test run, say) from
rendering the same item twice.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from chfen.config import DemoSiteConfig
from chfen.demo import render
from chfen.demo.catalogue import (
    GENERATOR_VERSION,
    HARD_BASE_ID,
    HARDCASES_UPLOADER,
    OVERSIZED_BYTES,
    CataloguePlan,
    VideoSpec,
    iso_duration,
    plan_catalogue,
)
from chfen.demo.cues import ceilings_report
from chfen.labels import NO_EMOTION, PLUTCHIK

log = logging.getLogger(__name__)

DEFAULT_WORKERS = 2
# Temporary files older than this are leftovers of a killed generation, never work in flight.
STALE_TMP_S = 3600


def resolve_cache_dir(cfg: DemoSiteConfig, data_root: str | Path) -> Path:
    """`cfg.cache_dir` when set, else `<data_root>/demo_site`."""
    if cfg.cache_dir:
        return Path(cfg.cache_dir).expanduser().resolve()
    return Path(data_root).expanduser().resolve() / "demo_site"


def cache_key(cfg: DemoSiteConfig) -> str:
    """The cache sub-folder name for this configuration and generator version."""
    key = f"seed{cfg.seed}-n{cfg.n_videos}-g{GENERATOR_VERSION}"
    if tuple(cfg.emotions) != PLUTCHIK:  # a subset of the emotions is another catalogue
        key += "-" + "_".join(cfg.emotions)
    return key


def ground_truth_name(languages: tuple[str, ...] | list[str]) -> str:
    """ground_truth.json for the English catalogue alone, else ground_truth-<langs>.json."""
    langs = tuple(languages)
    return "ground_truth.json" if langs == ("en",) else f"ground_truth-{'_'.join(langs)}.json"


@dataclass(frozen=True)
class Catalogue:
    """A generated catalogue: its plan, where its files are, and its ground truth."""

    plan: CataloguePlan
    root: Path
    ground_truth: dict[str, Any]

    def media_file(self, video_id: str) -> Path | None:
        """The bytes served for this item's video, or None when it has none (the 404 case)."""
        spec = self.plan.spec(video_id)
        owner = video_id if spec.render != "none" else spec.source
        return None if owner is None else self.root / "media" / f"{owner}.mp4"

    def thumbnail_file(self, video_id: str) -> Path:
        """The JPEG served as this item's thumbnail (failing items borrow their source's)."""
        spec = self.plan.spec(video_id)
        own = spec.render in ("synth", "transcode")
        return self.root / "thumbs" / f"{video_id if own else HARD_BASE_ID}.jpg"

    def entry(self, video_id: str) -> dict[str, Any]:
        """This item's ground-truth record."""
        for item in self.ground_truth["videos"]:
            if item["id"] == video_id:
                return item
        raise KeyError(f"no video {video_id!r} in the demo ground truth")


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX: no cross-process lock, atomic writes still hold
        yield
        return
    with (root / ".lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _clean_stale_tmp(root: Path) -> None:
    now = time.time()
    for tmp in [*root.glob(".*.tmp.*"), *root.glob("*/.*.tmp.*")]:
        with contextlib.suppress(OSError):
            if now - tmp.stat().st_mtime > STALE_TMP_S:
                tmp.unlink()


def _outputs(root: Path, spec: VideoSpec) -> list[Path]:
    """The files that must exist for `spec` to count as generated."""
    if spec.render == "none":
        return []
    files = [root / "media" / f"{spec.id}.mp4", root / "items" / f"{spec.id}.json"]
    if spec.render in ("synth", "transcode"):
        files.append(root / "thumbs" / f"{spec.id}.jpg")
    return files


def _render_item(plan: CataloguePlan, root: Path, spec: VideoSpec) -> dict[str, Any]:
    """Render one item's files; returns its item record (also written to items/<id>.json)."""
    media = root / "media" / f"{spec.id}.mp4"
    record: dict[str, Any] = {"id": spec.id, "generator_version": GENERATOR_VERSION}
    started = time.perf_counter()
    if spec.render == "synth":
        sentences = render.render_synth(spec, media)
        record["sentences"] = [s.record() for s in sentences]
        render.render_thumbnail(spec, media, root / "thumbs" / f"{spec.id}.jpg")
    elif spec.render == "transcode":
        render.render_transcode(spec, root / "media" / f"{spec.source}.mp4", media)
        record["sentences"] = _load_record(root, str(spec.source))["sentences"]
        render.render_thumbnail(spec, media, root / "thumbs" / f"{spec.id}.jpg")
    elif spec.render == "truncate":
        render.render_truncated(root / "media" / f"{spec.source}.mp4", media)
    elif spec.render == "garbage":
        render.render_garbage(spec, plan.seed, media)
    record.update(render.file_facts(media))
    record["render_s"] = round(time.perf_counter() - started, 3)
    render.write_json_atomic(root / "items" / f"{spec.id}.json", record)
    return record


def _load_record(root: Path, video_id: str) -> dict[str, Any]:
    return json.loads((root / "items" / f"{video_id}.json").read_text(encoding="utf-8"))


def _entry(plan: CataloguePlan, root: Path, spec: VideoSpec) -> dict[str, Any]:
    """The ground-truth record of one listed item."""
    ok = spec.expect == "ok"
    source_record = None
    if spec.render != "none":
        source_record = _load_record(root, spec.id)
    elif spec.source is not None:
        source_record = _load_record(root, spec.source)
    size = sha = None
    if spec.serve == "oversized":
        size = OVERSIZED_BYTES
    elif spec.serve != "missing" and source_record is not None:
        size, sha = source_record["size_bytes"], source_record["sha256"]
    thumb_id = spec.id if spec.render in ("synth", "transcode") else HARD_BASE_ID
    frames = _frame_count(spec)
    entry = {
        "id": spec.id,
        "kind": spec.kind,
        "uploader": spec.uploader,
        "channel": spec.channel,
        "title": spec.title,
        "description": spec.description,
        "tags": list(spec.tags),
        "emotion": spec.emotion,
        # What each cue channel shows ("neutral", "absent" or an emotion) and whether it is
        # the true one; None for items without an emotion.
        "cues": {c: {"shows": s, "carries": s == spec.emotion} for c, s in spec.cues}
        if spec.emotion is not None and spec.cues
        else None,
        "carriers": spec.carriers,
        "upload_time": spec.upload_time,
        "upload_date": spec.upload_time[:10],
        "view_count": spec.view_count,
        "like_count": spec.like_count,
        "duration": spec.duration,
        "duration_iso": iso_duration(spec.duration),
        "width": spec.width,
        "height": spec.height,
        # For the VFR video: the average rate over the whole clip (frames / duration).
        "fps": round(frames / spec.duration, 3) if spec.vfr else float(spec.fps),
        "nominal_fps": spec.fps,
        "vfr": spec.vfr,
        "n_frames": frames,
        "has_audio": spec.has_audio,
        "video_codec": "h264",
        "audio_codec": "aac" if spec.has_audio else None,
        "cuts": spec.cuts if ok else [],
        "shots": [
            {"start": s.start, "end": s.end, "background": s.background, "colors": list(s.colors)}
            for s in spec.shots
        ]
        if ok
        else [],
        "sentences": (source_record or {}).get("sentences", []) if ok and spec.has_audio else [],
        "duplicate_of": spec.duplicate_of,
        "expect": spec.expect,
        "fail_kind": spec.fail_kind,
        "note": spec.note,
        "size_bytes": size,
        "sha256": sha,
        "content_length_sent": spec.serve in ("file", "stall_body") and size is not None,
        "page_path": f"/v/{spec.id}",
        # Always the item's own URL, even where the bytes are borrowed: the server decides per
        # item how to send them (normally, stalled, padded without a length, or not at all).
        "media_path": f"/media/{spec.id}.mp4",
        "thumbnail_path": f"/thumbs/{thumb_id}.jpg",
        "feed_path": f"/u/{spec.channel}/feed.xml",
    }
    if spec.languages:
        # What the language channels' tests check ASR against: the languages in speaking
        # order and where each change of language begins (the start of its first sentence).
        said = entry["sentences"]
        entry["languages"] = list(dict.fromkeys(s["language"] for s in said))
        entry["language_switches"] = [
            {"at_s": b["start"], "from": a["language"], "to": b["language"]}
            for a, b in zip(said, said[1:], strict=False)
            if a["language"] != b["language"]
        ]
    return entry


def _frame_count(spec: VideoSpec) -> int:
    """Frames in the rendered video (mirrors the VFR select expression in render.py)."""
    total = round(spec.duration * spec.fps)
    if not spec.vfr:
        return total
    return sum(1 for n in range(total) if (n / spec.fps) % 4 < 2 or n % 2 == 0)


def _assemble(plan: CataloguePlan, root: Path) -> dict[str, Any]:
    listed = plan.listed
    uploaders = [
        {
            "uploader": u.handle,
            "channel": u.slug,
            "feed_path": f"/u/{u.slug}/feed.xml",
            "n_videos": sum(1 for v in listed if v.channel == u.slug),
        }
        for u in [*plan.uploaders, plan.hard_uploader]
    ]
    gt: dict[str, Any] = {
        "generator_version": GENERATOR_VERSION,
        "seed": plan.seed,
        "n_videos": plan.n_videos,
        "labels": list(PLUTCHIK),
        "no_emotion": NO_EMOTION,
        "hardcases_uploader": HARDCASES_UPLOADER,
        "uploaders": uploaders,
        # cue_design, ceilings, carrier_shares: over the catalogue videos (no re-uploads).
        **plan_ceilings(plan),
        "videos": [_entry(plan, root, v) for v in listed],
    }
    if plan.languages != ("en",):
        gt["languages"] = list(plan.languages)
    return gt


def plan_ceilings(plan: CataloguePlan) -> dict[str, Any]:
    """The cue design, ceilings and carrier shares of a plan's catalogue videos."""
    pairs = [(v.emotion, v.shows) for v in plan.videos if v.kind == "catalogue" and v.emotion]
    return ceilings_report(pairs, plan.labels)


def _complete(root: Path, plan: CataloguePlan) -> bool:
    return all(p.exists() for v in plan.videos for p in _outputs(root, v))


def generate_catalogue(
    cfg: DemoSiteConfig,
    cache_dir: Path,
    *,
    workers: int = DEFAULT_WORKERS,
    show_progress: bool = True,
    on_item: Callable[[str], None] | None = None,
) -> Catalogue:
    """Render whatever of the catalogue is missing under `cache_dir`, and return it.

    Deterministic in (cfg.seed, cfg.n_videos): the same settings give the same ground truth.
    `workers` ffmpeg/espeak jobs run at once. `on_item` is called with each rendered id.
    """
    started = time.perf_counter()
    plan = plan_catalogue(cfg)
    root = Path(cache_dir).expanduser().resolve() / cache_key(cfg)
    gt_path = root / ground_truth_name(plan.languages)
    if gt_path.exists() and _complete(root, plan):
        gt = json.loads(gt_path.read_text(encoding="utf-8"))
        log.info("demo catalogue %s: cache hit (%.2f s)", root, time.perf_counter() - started)
        return Catalogue(plan=plan, root=root, ground_truth=gt)

    with _locked(root):
        _clean_stale_tmp(root)
        todo = [v for v in plan.videos if not all(p.exists() for p in _outputs(root, v))]
        # Derived items read their source's finished file, so they wait for the first wave.
        # Longest first, so the pool does not end with one long video rendering alone.
        todo.sort(key=lambda v: v.duration * v.width * v.height * v.fps, reverse=True)
        first = [v for v in todo if v.render in ("synth", "garbage")]
        second = [v for v in todo if v.render in ("transcode", "truncate")]
        log.info("demo catalogue %s: rendering %d of %d items", root, len(todo), len(plan.videos))
        progress = Progress(
            TextColumn("[bold]demo site[/] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            disable=not show_progress,
        )
        with progress, ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            task = progress.add_task("rendering videos", total=len(todo))
            for wave in (first, second):
                futures = {pool.submit(_render_item, plan, root, v): v.id for v in wave}
                for future in as_completed(futures):
                    future.result()  # re-raises RenderError naming the item
                    progress.advance(task)
                    if on_item is not None:
                        on_item(futures[future])
        gt = _assemble(plan, root)
        render.write_json_atomic(gt_path, gt)
    elapsed = time.perf_counter() - started
    log.info("demo catalogue %s: %d items rendered in %.1f s", root, len(todo), elapsed)
    return Catalogue(plan=plan, root=root, ground_truth=gt)
