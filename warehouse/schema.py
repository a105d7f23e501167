"""The data contract: every warehouse table, its columns, primary key and how rows supersede.

This module is the one place where a table's shape is declared. Stages build rows as plain
dicts (or Arrow tables) and `Warehouse.append` validates them against these schemas.

Rules that keep the tables usable from both Python and the duckdb shell:
- timestamps are UTC microseconds; durations and times inside a video are float64 seconds;
- float16 vectors are stored as raw bytes (`vector`) with `dim` and `dtype`, because the Delta
  format has no half-float type;
- tables whose rows get superseded (a status that changes) name an ordering column in
  `latest_by`; the catalog then also offers a `<table>_latest` view with one row per key.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

SCHEMA_VERSION = 1

TS = pa.timestamp("us", tz="UTC")


def _list(item: pa.DataType) -> pa.DataType:
    # Delta/Parquet name list items "element"; declaring the same name avoids a cast on read.
    return pa.list_(pa.field("element", item))


def _f(name: str, type_: pa.DataType, nullable: bool = True) -> pa.Field:
    return pa.field(name, type_, nullable=nullable)


@dataclass(frozen=True)
class TableSpec:
    name: str
    schema: pa.Schema
    key: tuple[str, ...]
    latest_by: str | None = None
    description: str = ""

    @property
    def latest_view(self) -> str | None:
        return f"{self.name}_latest" if self.latest_by else None


def _spec(
    name: str,
    fields: list[pa.Field],
    key: tuple[str, ...],
    latest_by: str | None = None,
    description: str = "",
) -> TableSpec:
    # Key columns are never null, whatever the field list says.
    fields = [f.with_nullable(False) if f.name in key else f for f in fields]
    schema = pa.schema(fields, metadata={"chfen.schema_version": str(SCHEMA_VERSION)})
    for col in (*key, *([latest_by] if latest_by else [])):
        if col not in schema.names:
            raise ValueError(f"table {name}: key/ordering column {col!r} is not a column")
    return TableSpec(name, schema, key, latest_by, description)


SOURCES = _spec(
    "sources",
    [
        _f("name", pa.string()),
        _f("url", pa.string()),
        _f("kind", pa.string()),  # feed | page | video | folder
        _f("enabled", pa.bool_()),
        _f("updated_at", TS, False),
        _f("status", pa.string()),  # ok | failed: how its last discovery went
        _f("items_seen", pa.int32()),  # entries the source listed (files of a folder)
        _f("error", pa.string()),  # why the last discovery failed
    ],
    key=("name",),
    latest_by="updated_at",
    description="Configured crawl sources, one row per discovery (the latest per name is the "
    "source's state).",
)

VIDEOS = _spec(
    "videos",
    [
        _f("video_id", pa.string()),
        _f("source", pa.string()),
        _f("extractor", pa.string()),
        _f("platform_id", pa.string()),
        _f("url", pa.string()),
        _f("webpage_url", pa.string()),
        _f("title", pa.string()),
        _f("description", pa.string()),
        _f("tags", _list(pa.string())),
        _f("uploader", pa.string()),
        _f("uploader_id", pa.string()),
        _f("upload_date", pa.date32()),
        _f("duration_s", pa.float64()),
        _f("width", pa.int32()),
        _f("height", pa.int32()),
        _f("fps", pa.float64()),
        _f("frame_count", pa.int64()),
        _f("variable_fps", pa.bool_()),
        _f("has_audio", pa.bool_()),
        _f("video_codec", pa.string()),
        _f("audio_codec", pa.string()),
        _f("view_count", pa.int64()),
        _f("like_count", pa.int64()),
        _f("comment_count", pa.int64()),
        _f("file_size", pa.int64()),
        _f("media_path", pa.string()),  # relative to the media root
        _f("audio_path", pa.string()),
        _f("info_path", pa.string()),
        _f("sha256", pa.string()),
        _f("status", pa.string(), False),  # ok | failed | removed
        _f("crawled_at", TS),
        _f("updated_at", TS, False),
    ],
    key=("video_id",),
    latest_by="updated_at",
    description="One row per video version; videos_latest is the current state.",
)

STAGE_RUNS = _spec(
    "stage_runs",
    [
        _f("video_id", pa.string()),
        _f("stage", pa.string()),
        _f("stage_version", pa.string()),
        _f("status", pa.string(), False),  # done | failed
        _f("error_kind", pa.string()),
        _f("error", pa.string()),
        _f("started_at", TS),
        _f("finished_at", TS, False),
        _f("duration_s", pa.float64()),
        _f("timings_json", pa.string()),  # {"step": seconds, ...}
        _f("host", pa.string()),
        _f("pid", pa.int32()),
    ],
    key=("video_id", "stage", "stage_version"),
    latest_by="finished_at",
    description="The stage ledger: pending = no 'done' row at the current stage version.",
)

FAILURES = _spec(
    "failures",
    [
        _f("video_id", pa.string()),
        _f("stage", pa.string()),
        _f("failed_at", TS),
        _f("stage_version", pa.string()),
        _f("source", pa.string()),
        _f("url", pa.string()),
        _f("error_kind", pa.string(), False),  # network | http | corrupt | limit | timeout | ...
        _f("error", pa.string(), False),
        # may succeed when tried again later (timeout, network, HTTP 5xx); null before 2026-12
        _f("transient", pa.bool_()),
        # the crawl limits in force (`CrawlConfig.limits_key`): a limit failure is tried again
        # when they change
        _f("limits", pa.string()),
    ],
    key=("video_id", "stage", "failed_at"),
    description="Every failure with a reason a user understands; append-only.",
)

SCENES = _spec(
    "scenes",
    [
        _f("video_id", pa.string()),
        _f("scene_idx", pa.int32()),
        _f("start_s", pa.float64(), False),
        _f("end_s", pa.float64(), False),
        _f("start_frame", pa.int64()),
        _f("end_frame", pa.int64()),
        _f("keyframe_path", pa.string()),
        _f("detector", pa.string()),
        _f("stage_version", pa.string()),
        _f("created_at", TS, False),
    ],
    key=("video_id", "scene_idx"),
    latest_by="created_at",
)

TRANSCRIPT_SEGMENTS = _spec(
    "transcript_segments",
    [
        _f("video_id", pa.string()),
        _f("segment_idx", pa.int32()),
        _f("start_s", pa.float64(), False),
        _f("end_s", pa.float64(), False),
        _f("text", pa.string()),
        _f("language", pa.string()),
        _f("avg_logprob", pa.float64()),
        _f("no_speech_prob", pa.float64()),
        _f("model", pa.string()),
        _f("stage_version", pa.string()),
        _f("created_at", TS, False),
    ],
    key=("video_id", "segment_idx"),
    latest_by="created_at",
)

TRANSCRIPT_WORDS = _spec(
    "transcript_words",
    [
        _f("video_id", pa.string()),
        _f("word_idx", pa.int32()),
        _f("segment_idx", pa.int32()),
        _f("word", pa.string(), False),
        _f("start_s", pa.float64()),
        _f("end_s", pa.float64()),
        _f("score", pa.float64()),
        _f("speaker", pa.string()),
        _f("aligner", pa.string()),  # whisperx-align | faster-whisper
        _f("interpolated", pa.bool_()),  # timing filled in, not measured
        _f("stage_version", pa.string()),
        _f("created_at", TS, False),
        # Added for multilingual ASR, last so older tables merge (null in older rows): whisper's
        # language code of the chunk the word was heard in; "word", or "character" where
        # Chinese is split per character (asr.chinese_words).
        _f("language", pa.string()),
        _f("unit", pa.string()),
    ],
    key=("video_id", "word_idx"),
    latest_by="created_at",
)

LABEL_TASKS = _spec(
    "label_tasks",
    [
        _f("video_id", pa.string()),
        _f("project_id", pa.int64()),
        _f("task_id", pa.int64()),
        _f("project_title", pa.string()),
        _f("pushed_at", TS, False),
        _f("prediction_model_version", pa.string()),
    ],
    key=("video_id", "project_id"),
    latest_by="pushed_at",
)

ANNOTATIONS = _spec(
    "annotations",
    [
        _f("annotation_id", pa.int64()),
        _f("task_id", pa.int64()),
        _f("project_id", pa.int64()),
        _f("video_id", pa.string()),
        _f("annotator", pa.string()),
        _f("choice", pa.string()),  # one of chfen.labels, or null when skipped
        _f("intensity", pa.int32()),
        _f("segments_json", pa.string()),  # [{"start_s":, "end_s":, "label":}, ...]
        _f("note", pa.string()),
        _f("lead_time_s", pa.float64()),
        _f("was_cancelled", pa.bool_()),
        _f("deleted", pa.bool_()),
        _f("created_at", TS),
        _f("updated_at", TS, False),
        _f("pulled_at", TS),
        # person | simulated | imported (chfen.domain.origins.origin_of the annotator); added
        # later: null on rows pulled before it existed
        _f("origin", pa.string()),
    ],
    key=("annotation_id",),
    latest_by="updated_at",
    description="One row per annotator per task per update; annotations_latest is current.",
)

EMBEDDINGS = _spec(
    "embeddings",
    [
        _f("video_id", pa.string()),
        _f("modality", pa.string()),
        _f("encoder_key", pa.string()),  # hash of the encoder settings
        _f("grid_idx", pa.int32()),  # -1 for global (whole-video) vectors
        _f("encoder", pa.string()),
        _f("start_s", pa.float64()),
        _f("end_s", pa.float64()),
        _f("dim", pa.int32()),
        _f("dtype", pa.string()),
        _f("vector", pa.binary()),
        _f("weight", pa.float32()),  # e.g. face area weight
        _f("created_at", TS, False),
    ],
    key=("video_id", "modality", "encoder_key", "grid_idx"),
)

KEYFRAME_HASHES = _spec(
    "keyframe_hashes",
    [
        _f("video_id", pa.string()),
        _f("scene_idx", pa.int32()),
        # 64-bit perceptual hash of the scene's keyframe, as a signed int64 (Delta has no
        # unsigned type); null when the frame is flat or unreadable (it matches nothing).
        _f("phash", pa.int64()),
        _f("algorithm", pa.string()),  # e.g. "dct-phash-64/1"; a new one means new hashes
        _f("created_at", TS, False),
    ],
    key=("video_id", "scene_idx"),
    latest_by="created_at",
    description="Perceptual hashes of scene keyframes, for near-duplicate videos.",
)

TRAINING_RUNS = _spec(
    "training_runs",
    [
        _f("run_id", pa.string()),
        _f("status", pa.string(), False),
        _f("config_json", pa.string()),
        _f("dataset_versions_json", pa.string()),  # {table: delta version} read by the run
        _f("n_train", pa.int64()),
        _f("n_test", pa.int64()),
        _f("metrics_json", pa.string()),
        _f("checkpoint_path", pa.string()),
        _f("started_at", TS),
        _f("finished_at", TS),
        _f("updated_at", TS, False),
    ],
    key=("run_id",),
    latest_by="updated_at",
)

PREDICTIONS = _spec(
    "predictions",
    [
        _f("run_id", pa.string()),
        _f("video_id", pa.string()),
        _f("split", pa.string()),  # train | test | unlabeled
        _f("label", pa.string()),
        _f("score", pa.float64()),
        _f("probs_json", pa.string()),
        _f("model_version", pa.string()),
        _f("created_at", TS, False),
    ],
    key=("run_id", "video_id"),
)

TABLES: dict[str, TableSpec] = {
    t.name: t
    for t in (
        SOURCES,
        VIDEOS,
        STAGE_RUNS,
        FAILURES,
        SCENES,
        KEYFRAME_HASHES,
        TRANSCRIPT_SEGMENTS,
        TRANSCRIPT_WORDS,
        LABEL_TASKS,
        ANNOTATIONS,
        EMBEDDINGS,
        TRAINING_RUNS,
        PREDICTIONS,
    )
}


def spec(table: str) -> TableSpec:
    """The spec of a table, or a clear error listing the known ones."""
    try:
        return TABLES[table]
    except KeyError:
        raise KeyError(f"unknown table {table!r}; known tables: {', '.join(TABLES)}") from None
