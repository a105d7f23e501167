"""`chfen import`: a folder of media files (video, or audio only) on this machine as a source.

`import_folder` takes a folder (and its labels: a CSV or a file-name preset, `chfen.ingest.labels`)
into the data root in two phases:

1. **check everything, write nothing**: the labels file (unknown label, duplicate row, empty
   column), every path it names (missing, outside the folder, not a media file), and every new
   or changed media file, verified and probed as the crawl verifies a download (every frame or
   every audio sample decoded; `crawl.max_duration_s` and `crawl.max_filesize_mb` apply).
   The first problem is an `DatasetImportError` naming the file and the labels row; nothing of the
   import has been written then.
2. **write**: each file is copied (or, with `link`, hard-linked) into
   `media/<video_id>/media.<ext>` with its 16 kHz audio beside it (the original is never moved
   or modified), then one commit of `videos` rows (source, original path as a `file://` URL in
   `url`/`webpage_url`, the path inside the folder in `platform_id`, the content hash in
   `sha256`), one commit of `crawl` ledger rows, so that `process` and `embed` pick the files
   up like crawled ones, and the labels to submit to Label Studio (`imports/<source>.json`
   under the data root; `labeling.imported` submits them after `label push`).

Video ids are stable: `<source>-<relative path slug>` (a long path keeps a hash suffix). A
re-import adds only new files and files whose content hash changed (their downstream ledger
rows are marked `stale`, so the stages run again); unchanged files cost a hash each and no
write. A file that was imported and is gone from the folder is reported, never deleted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chfen import registry
from chfen.config import CrawlConfig, SourceConfig
from chfen.crawl.crawler import PARTIAL_DIR, sanitize_id
from chfen.domain.origins import import_email
from chfen.ingest.labels import (
    ONE_PER_FILE,
    PRESETS,
    RATINGS,
    Columns,
    LabelRow,
    LabelsError,
    map_label,
    read_label_map,
    read_labels_csv,
)
from chfen.media.probe import (
    MediaError,
    ProbeInfo,
    extract_audio,
    probe,
    sha256_file,
    verify_audio_decodes,
    verify_decodes,
)
from warehouse import Warehouse

log = logging.getLogger("chfen.ingest")

STAGE = registry.CRAWL  # an imported file is "crawled" from the folder
STAGE_VERSION = registry.version(STAGE)
EXTRACTOR = "local"
IMPORTS_DIR = "imports"
STALE = "stale"  # a ledger status: done before, but its input changed (pending again)

VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".flv"}
AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".m4a", ".aac", ".ogg", ".oga", ".opus", ".wma"}
MEDIA_SUFFIXES = VIDEO_SUFFIXES | AUDIO_SUFFIXES
MAX_SLUG = 80


class DatasetImportError(ValueError):
    """The folder or its labels cannot be imported; nothing of the import was written."""


@dataclass
class ImportReport:
    """What one import did (or, on a dry run, would do)."""

    source: str
    folder: str
    shape: str | None  # ONE_PER_FILE, RATINGS, or None without labels
    new: list[str] = field(default_factory=list)  # video ids
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # paths imported before, gone now
    labelled: int = 0  # files with at least one label
    votes: int = 0
    votes_changed: bool = False
    audio_only: int = 0  # of the new and changed files
    seconds: float = 0.0

    @property
    def written(self) -> bool:
        return bool(self.new or self.changed or self.votes_changed)


@dataclass
class _File:
    rel: str
    path: Path
    video_id: str
    sha256: str = ""
    info: ProbeInfo | None = None
    frames: int | None = None
    labels: list[LabelRow] = field(default_factory=list)
    status: str = "new"  # new | changed | unchanged


# ---- ids and paths ---------------------------------------------------------------------------


def source_name(folder: Path, name: str | None = None) -> str:
    """The source's name: `name`, else the folder's name, sanitized."""
    return sanitize_id(name or folder.resolve().name)


def video_id_for_file(source: str, rel: str) -> str:
    """`<source>-<relative path slug>`; stable for the same source and path."""
    slug = sanitize_id(rel)
    if len(slug) > MAX_SLUG:  # keep ids readable and distinct
        slug = f"{slug[: MAX_SLUG - 9]}-{hashlib.sha1(rel.encode()).hexdigest()[:8]}"
    return f"{source}-{slug}"


def votes_path(wh: Warehouse, source: str) -> Path:
    """Where an import keeps the labels Label Studio has yet to receive."""
    return wh.root.local(IMPORTS_DIR, f"{source}.json")


def imported_votes(wh: Warehouse) -> list[dict[str, Any]]:
    """Every imported vote of this data root: {video_id, email, label, intensity, source,
    where}, the sources in name order."""
    folder = wh.root.local(IMPORTS_DIR)
    out: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        out.extend(json.loads(path.read_text(encoding="utf-8"))["votes"])
    return out


def scan(folder: Path) -> dict[str, Path]:
    """Media files under the folder by their posix path inside it (hidden ones left out)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.is_file() and path.suffix.lower() in MEDIA_SUFFIXES:
            found[rel.as_posix()] = path
    return found


def _inside(folder: Path, file: str, where: str) -> tuple[str, Path]:
    """(posix path inside the folder, absolute path) of a path a labels row names."""
    given = Path(file.replace("\\", "/"))
    if given.is_absolute():
        raise DatasetImportError(
            f"{where}: {file!r} is an absolute path; give it relative to {folder}"
        )
    full = (folder / given).resolve()
    try:
        rel = full.relative_to(folder)
    except ValueError:
        raise DatasetImportError(
            f"{where}: {file!r} points outside the imported folder {folder}; "
            "only files inside it can be imported"
        ) from None
    if not full.is_file():
        raise DatasetImportError(f"{where}: {file!r} does not exist in {folder}")
    return rel.as_posix(), full


# ---- the import ------------------------------------------------------------------------------


def import_folder(
    wh: Warehouse,
    folder: str | Path,
    *,
    source: str | None = None,
    labels: str | Path | None = None,
    preset: str | None = None,
    label_map: str | Path | Mapping[str, str] | None = None,
    columns: Columns | None = None,
    crawl: CrawlConfig | None = None,
    link: bool = False,
    dry_run: bool = False,
    say: Callable[[str], None] | None = None,
) -> ImportReport:
    """Import a folder of media files and their labels (module docstring). Raises
    `DatasetImportError` (or `LabelsError`) before writing anything when any file or row is bad."""
    t0 = time.perf_counter()
    say = say or log.info
    crawl = crawl or CrawlConfig()
    columns = columns or Columns()
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise DatasetImportError(f"{folder} is not a folder")
    root = root.resolve()
    name = source_name(root, source)
    if labels is not None and preset is not None:
        raise DatasetImportError("give either a labels file or a preset, not both")
    if preset is not None and preset not in PRESETS:
        raise DatasetImportError(f"unknown preset {preset!r}; presets: {', '.join(PRESETS)}")
    mapping = (
        read_label_map(Path(label_map))
        if isinstance(label_map, str | Path)
        else dict(label_map or {})
    )

    files = {
        rel: _File(rel, path, video_id_for_file(name, rel)) for rel, path in scan(root).items()
    }
    shape: str | None = None
    rows: list[LabelRow] = []
    if labels is not None:
        shape, rows = read_labels_csv(Path(labels), mapping, columns)
    elif preset is not None:
        shape = ONE_PER_FILE
        rows = [_remapped(PRESETS[preset](rel), mapping) for rel in files]
    for row in rows:
        rel, full = _inside(root, row.file, row.where)
        if rel not in files:  # named by the labels file, e.g. an unusual suffix: probe says
            files[rel] = _File(rel, full, video_id_for_file(name, rel))
        files[rel].labels.append(row)
    if shape == ONE_PER_FILE:
        # a file named twice under different spellings (./a.wav and a.wav)
        for f in files.values():
            if len(f.labels) > 1:
                raise DatasetImportError(
                    f"{f.labels[1].where}: duplicate row: {f.rel} is already labelled in "
                    f"{f.labels[0].where}"
                )
    _check_ids(files.values())

    report = ImportReport(name, str(root), shape)
    before = {
        r["platform_id"]: r
        for r in wh.rows(
            "SELECT video_id, platform_id, sha256, status FROM videos_latest "
            "WHERE source = ? AND extractor = ?",
            [name, EXTRACTOR],
        )
    }
    for f in files.values():
        f.sha256 = sha256_file(f.path)
        old = before.get(f.rel)
        if old is not None and old["status"] == "ok" and old["sha256"] == f.sha256:
            f.status = "unchanged"
        elif old is not None:
            f.status = "changed"
    report.removed = sorted(rel for rel, r in before.items() if rel not in files)
    todo = [f for f in files.values() if f.status != "unchanged"]
    # ffprobe/ffmpeg runs are subprocesses: a few at once; the first bad file (in path order)
    # is the error
    with ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 1))) as pool:
        list(pool.map(lambda f: _verify(f, crawl), todo))
    report.new = [f.video_id for f in todo if f.status == "new"]
    report.changed = [f.video_id for f in todo if f.status == "changed"]
    report.unchanged = [f.video_id for f in files.values() if f.status == "unchanged"]
    report.audio_only = sum(1 for f in todo if f.info is not None and not f.info.has_video)
    report.labelled = sum(1 for f in files.values() if f.labels)
    votes = _votes(name, files.values())
    report.votes = len(votes)
    store = votes_path(wh, name)
    payload = {"source": name, "folder": str(root), "shape": shape, "votes": votes}
    old_votes = json.loads(store.read_text(encoding="utf-8")) if store.is_file() else None
    report.votes_changed = bool(votes or old_votes) and old_votes != payload

    if not dry_run:
        if todo:
            _write(wh, name, todo, crawl, link)
        if report.votes_changed:
            store.parent.mkdir(parents=True, exist_ok=True)
            tmp = store.with_name(f".{store.name}.{uuid.uuid4().hex[:8]}.tmp")
            tmp.write_text(json.dumps(payload, indent=1), encoding="utf-8")
            os.replace(tmp, store)
    report.seconds = time.perf_counter() - t0
    say(
        f"[import] {name}: {len(report.new)} new, {len(report.changed)} changed, "
        f"{len(report.unchanged)} unchanged, {len(report.removed)} removed from the folder; "
        f"{report.votes} label(s) on {report.labelled} file(s) in {report.seconds:.1f} s"
    )
    for rel in report.removed:
        say(f"[import] {name}: {rel} was imported before and is gone from the folder (kept)")
    return report


def import_source(
    wh: Warehouse,
    source: SourceConfig,
    *,
    crawl: CrawlConfig | None = None,
    dry_run: bool = False,
    say: Callable[[str], None] | None = None,
) -> ImportReport:
    """Import a configured local-folder source (`sources:` with a `path`), as `chfen import`
    does with the same settings; each scheduled crawl runs it, so new and changed files come
    in and a second run of an unchanged folder writes nothing."""
    if source.path is None:
        raise DatasetImportError(f"source {source.name!r} has no path: it is not a local folder")
    try:
        columns = Columns(**source.columns)
    except TypeError:
        known = ", ".join(Columns.__dataclass_fields__)
        raise DatasetImportError(
            f"source {source.name!r}: columns names {sorted(source.columns)}; the columns that "
            f"can be renamed are {known}"
        ) from None
    return import_folder(
        wh,
        source.path,
        source=source.name,
        labels=source.labels,
        preset=source.preset,
        label_map=source.label_map,
        columns=columns,
        crawl=crawl,
        link=source.link,
        dry_run=dry_run,
        say=say,
    )


def _remapped(row: LabelRow, mapping: Mapping[str, str]) -> LabelRow:
    """A preset's row with the user's label map applied to the dataset's word."""
    if not mapping:
        return row
    from dataclasses import replace

    label = mapping.get(" ".join(row.original.lower().split()))
    return replace(row, label=label) if label else row


def _check_ids(files: Sequence[_File] | Any) -> None:
    seen: dict[str, str] = {}
    for f in files:
        if f.video_id in seen:
            raise DatasetImportError(
                f"{f.rel} and {seen[f.video_id]} get the same video id {f.video_id!r}; "
                "rename one of them"
            )
        seen[f.video_id] = f.rel


def _where(f: _File) -> str:
    return f.labels[0].where if f.labels else f.rel


def _verify(f: _File, crawl: CrawlConfig) -> None:
    """Probe and decode one file as the crawl does a download; DatasetImportError naming it."""
    size = f.path.stat().st_size
    if size > crawl.max_filesize_mb * 1024 * 1024:
        raise DatasetImportError(
            f"{_where(f)}: {f.rel} is {size / 1024 / 1024:.1f} MB; the limit is "
            f"crawl.max_filesize_mb = {crawl.max_filesize_mb:g} MB"
        )
    try:
        info = probe(f.path, allow_audio_only=True)
        if info.has_video:
            f.frames = verify_decodes(f.path, info).frames
        else:
            verify_audio_decodes(f.path, info)
    except MediaError as exc:
        raise DatasetImportError(
            f"{_where(f)}: {f.rel} is not a usable media file: {exc}"
        ) from None
    if info.duration_s > crawl.max_duration_s:
        raise DatasetImportError(
            f"{_where(f)}: {f.rel} is {info.duration_s:.0f} s long; the limit is "
            f"crawl.max_duration_s = {crawl.max_duration_s:.0f} s"
        )
    f.info = info


def _votes(source: str, files: Any) -> list[dict[str, Any]]:
    out = []
    for f in sorted(files, key=lambda f: f.video_id):
        for row in f.labels:
            out.append(
                {
                    "video_id": f.video_id,
                    "email": import_email(source, row.rater),
                    "rater": row.rater,
                    "label": row.label,
                    "intensity": row.intensity,
                    "original": row.original,
                    "where": row.where,
                }
            )
    return out


def _meta(f: _File) -> dict[str, Any]:
    """uploader, title, text of a file: from its one-per-file row (or preset), if any."""
    first = next((r for r in f.labels if r.rater is None), None)
    if first is None:
        return {}
    return {"uploader": first.uploader, "title": first.title, "text": first.text}


def _write(wh: Warehouse, source: str, todo: list[_File], crawl: CrawlConfig, link: bool) -> None:
    media_root = wh.root.media_dir()
    partial = media_root / PARTIAL_DIR / f"import-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    partial.mkdir(parents=True)
    now = dt.datetime.now(dt.UTC)
    rows, runs = [], []

    def prepare(f: _File) -> tuple[dict[str, Any], tuple[str, dict[str, float], dt.datetime]]:
        started = dt.datetime.now(dt.UTC)
        t0 = time.perf_counter()
        tmp = partial / f.video_id
        tmp.mkdir()
        media = tmp / f"media{f.path.suffix.lower()}"
        _copy(f.path, media, link)
        if sha256_file(media) != f.sha256:
            raise DatasetImportError(f"{f.rel} changed while it was being imported; import again")
        info = f.info
        assert info is not None
        audio = None
        if info.has_audio:
            try:
                audio = extract_audio(media, tmp / "audio.wav", crawl.audio_sample_rate)
            except MediaError as exc:
                raise DatasetImportError(f"{_where(f)}: {f.rel}: {exc}") from None
        row = _video_row(source, f, info, media, audio, now)
        return row, (f.video_id, {"import": time.perf_counter() - t0}, started)

    try:
        with ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 1))) as pool:
            for row, run in pool.map(prepare, todo):
                rows.append(row)
                runs.append(run)
        for f in todo:  # all files prepared: move them into place
            dest = media_root / f.video_id
            if dest.exists():
                shutil.rmtree(dest)
            os.replace(partial / f.video_id, dest)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    wh.append("videos", rows, refresh_catalog=False)
    wh.mark_done_many(STAGE, STAGE_VERSION, runs, refresh_catalog=False)
    changed = [f.video_id for f in todo if f.status == "changed"]
    if changed:
        _mark_stale(wh, changed)
    wh.refresh_catalog()


def _copy(src: Path, dst: Path, link: bool) -> None:
    if link:
        try:
            os.link(src, dst)
            return
        except OSError as exc:  # another file system, or not allowed: copy instead
            log.info("[import] cannot hard-link %s (%s); copying", src.name, exc)
    shutil.copy2(src, dst)
    dst.chmod(0o644)  # a read-only original gives a read-only copy otherwise


def _video_row(
    source: str, f: _File, info: ProbeInfo, media: Path, audio: Path | None, now: dt.datetime
) -> dict[str, Any]:
    meta = _meta(f)
    video = info.has_video
    return {
        "video_id": f.video_id,
        "source": source,
        "extractor": EXTRACTOR,
        "platform_id": f.rel,
        "url": f.path.as_uri(),
        "webpage_url": f.path.as_uri(),
        "title": meta.get("title") or f.path.stem,
        "description": meta.get("text"),
        "tags": [],
        "uploader": meta.get("uploader"),
        "uploader_id": meta.get("uploader"),
        "duration_s": info.duration_s,
        # an audio-only file has no picture: stored absent, never 0x0
        "width": info.width if video else None,
        "height": info.height if video else None,
        "fps": info.fps if video else None,
        "frame_count": f.frames if video else None,
        "variable_fps": info.variable_fps if video else None,
        "has_audio": info.has_audio,
        "video_codec": info.video_codec if video else None,
        "audio_codec": info.audio_codec,
        "file_size": info.file_size,
        "media_path": f"{f.video_id}/{media.name}",
        "audio_path": f"{f.video_id}/{audio.name}" if audio else None,
        "sha256": f.sha256,
        "status": "ok",
        "crawled_at": now,
        "updated_at": now,
    }


def _mark_stale(wh: Warehouse, video_ids: list[str]) -> None:
    """The stages done on the old content of these videos run again (their rows: `stale`)."""
    done = wh.rows(
        "SELECT video_id, stage, stage_version FROM stage_runs_latest "
        "WHERE status = 'done' AND stage <> $crawl AND video_id IN (SELECT unnest($ids))",
        {"crawl": STAGE, "ids": video_ids},
    )
    now = dt.datetime.now(dt.UTC)
    rows = [
        {
            "video_id": r["video_id"],
            "stage": r["stage"],
            "stage_version": r["stage_version"],
            "status": STALE,
            "error": "the imported file changed; the stage runs again",
            "finished_at": now,
        }
        for r in done
    ]
    if rows:
        wh.append("stage_runs", rows, refresh_catalog=False)


__all__ = [
    "AUDIO_SUFFIXES",
    "MEDIA_SUFFIXES",
    "RATINGS",
    "VIDEO_SUFFIXES",
    "DatasetImportError",
    "ImportReport",
    "LabelsError",
    "import_folder",
    "import_source",
    "imported_votes",
    "map_label",
    "scan",
    "source_name",
    "video_id_for_file",
    "votes_path",
]
