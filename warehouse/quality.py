"""Dataset quality as SQL: views and macros over the warehouse tables, in DuckDB.

`create_quality_views(con)` adds them to a connection that already has every table and
`<table>_latest` view; the catalog file `warehouse.duckdb` and `Warehouse.connect()` both call
it, so the plain duckdb shell and Python see the same figures. Every view answers on empty
tables. `SELECT view_name, comment FROM duckdb_views() WHERE view_name LIKE 'quality_%'` lists
them with a line each.

Annotations
- a *vote* is an annotator's current choice on an item: the newest non-deleted, non-skipped
  annotation with a choice per (project, video, annotator) — the same rule as
  `chfen.domain.votes.votes_from_rows`; annotations without a project count as project 0;
- `quality_soft_labels`, `quality_item_agreement` (its majority and majority share are the
  domain layer's SQL, `chfen.domain.votes.majority_sql` / `majority_share_sql`),
  `quality_label_distribution`;
- `quality_alpha`: Krippendorff's alpha (nominal) per project, from the coincidence matrix in
  closed form; `quality_annotator_agreement`: per annotator, agreement with the others'
  majority, pairwise agreement, and alpha without them (leave-one-out) — the figures
  `chfen.domain.agreement` computes in Python, defined the same way (the tests compare them);
- `quality_annotator_confusion`, `quality_annotator_pairs`, `quality_lead_times`.

Media, ASR, scenes, crawl
- `quality_media_summary`, `quality_duration_histogram` (macro `..._by(bucket_s)`),
  `quality_resolution_counts`, `quality_fps_counts`, `quality_audio_presence`;
- `quality_asr_per_video`, `quality_asr_summary`, `quality_asr_languages` (spoken languages
  per source); `quality_scenes_per_video`,
  `quality_scene_count_distribution`;
- `quality_source_yield` (discovered → downloaded / failed → scenes → ASR → labelled, per
  source) and `quality_failures_by_reason` (videos whose newest run of a stage failed).

Duplicates, leakage, what to annotate next
- `quality_near_duplicates` (macro `..._at(max_bits, min_share)`): pairs of videos whose
  keyframes' 64-bit perceptual hashes (`keyframe_hashes`) lie within `max_bits` of each other
  (Hamming distance, `bit_count(xor(a, b))`) for at least `min_share` of each video's
  keyframes. Candidate keyframe pairs come from splitting the hash into `max_bits + 1` bands
  (`max_bits + 2` above 2 bits): two hashes within `max_bits` agree exactly on at least one
  band (two bands), pigeonhole, so the search is exact, without comparing every pair;
- `quality_split_leakage` (per training run) with `quality_split_leakage_uploaders` and
  `quality_split_leakage_duplicates`: an uploader, or a near-duplicate pair, in more than one
  of train / val / test;
- `quality_annotation_queue` (macro `..._with(min_votes, min_agreement, max_confidence)`):
  items with too few votes (one is enough for an item carrying an imported dataset's own
  label, `chfen.domain.origins`), low agreement (`chfen.domain.votes.queue_reasons_sql`, the queue
  rule of the domain layer), or an uncertain prediction of the newest finished training run,
  most urgent first.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

import duckdb

from chfen.domain import stages
from chfen.domain.origins import dataset_label_sql
from chfen.domain.votes import (
    DEFAULT_MIN_AGREEMENT,
    DEFAULT_MIN_VOTES,
    LOW_AGREEMENT,
    majority_share_sql,
    majority_sql,
    queue_reasons_sql,
)

# Defaults of the macros' parameters (the report passes the configured values).
# Re-encoded re-uploads of the demo site measure 0-2 bits (rarely 4), unrelated keyframes 4+
# (mostly 10+); the search costs more the wider the threshold (4 bits: about 2-3x 3 bits).
DEFAULT_MAX_BITS = 3
# Of *each* video's keyframes: one chance match between two-shot videos (1 of 2) stays out.
DEFAULT_MIN_SHARE = 0.6
DEFAULT_MAX_CONFIDENCE = 0.5  # a prediction whose top probability is below this is uncertain
DEFAULT_DURATION_BUCKET_S = 5
LOW_WORD_SCORE = 0.5  # aligner word scores below this count as unreliable words

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class QualityObject:
    """One view or macro of the quality layer."""

    name: str
    kind: str  # view | macro | table macro
    sql: str  # the query (views, table macros) or the expression (macros)
    comment: str
    params: str = ""  # macros: "a, b := 1"


def _view(name: str, comment: str, sql: str) -> QualityObject:
    return QualityObject(name, "view", sql, comment)


def _macro(name: str, params: str, comment: str, sql: str, table: bool = True) -> QualityObject:
    return QualityObject(name, "table macro" if table else "macro", sql, comment, params)


# Stage names in the SQL, from the domain (docs/architecture.md: the warehouse sits below chfen).
_CRAWL, _SCENES, _ASR = (f"'{s}'" for s in (stages.CRAWL, stages.SCENES, stages.ASR))
_SPLITS = ", ".join(f"'{s}'" for s in SPLITS)
# The annotation queue's vote reasons: the domain's rule on the item's figures and the macro's
# parameters.
_QUEUE_VOTE_REASONS = ",\n                       ".join(
    queue_reasons_sql(
        "i.n_votes",
        "i.majority",
        "i.majority_share",
        "min_votes",
        "min_agreement",
        "i.has_dataset_label",
    )
)
# A vote that is an imported dataset's own label (the per-source vote policy).
_DATASET_LABEL = dataset_label_sql("annotator")

# In dependency order: each object only uses tables and objects above it.
OBJECTS: tuple[QualityObject, ...] = (
    # ---- scalar helpers ------------------------------------------------------------------
    _macro(
        "quality_nominal_alpha",
        "n, disagreement, sum_sq",
        "Krippendorff's alpha (nominal) from n pairable values, the summed disagreement "
        "sum_u (m_u^2 - sum_c n_uc^2) / (m_u - 1) and sum_c n_c^2; NULL when undefined.",
        "CASE WHEN n >= 2 AND n * n - sum_sq > 0 "
        "THEN 1 - (n - 1) * disagreement / (n * n - sum_sq) END",
        table=False,
    ),
    _macro(
        "hamming64",
        "a, b",
        "Hamming distance of two 64-bit hashes (BIGINT).",
        "bit_count(xor(a, b))",
        table=False,
    ),
    # ---- annotations -----------------------------------------------------------------------
    _view(
        "quality_annotations",
        "Per annotation: its newest row (as annotations_latest, with the columns quality "
        "needs; project 0 = annotations without a project).",
        # `count(*) = 1 OR` changes nothing (a lone row is its own newest) but lets DuckDB
        # skip the sort for the many annotations never updated: 2-3x faster on 1M rows.
        """
        SELECT annotation_id, coalesce(project_id, 0) AS project_id, video_id, annotator,
               choice, lead_time_s, coalesce(was_cancelled, false) AS was_cancelled,
               coalesce(deleted, false) AS deleted, updated_at
        FROM annotations
        QUALIFY count(*) OVER (PARTITION BY annotation_id) = 1
             OR row_number() OVER (PARTITION BY annotation_id ORDER BY updated_at DESC) = 1
        """,
    ),
    _view(
        "quality_votes",
        "One vote per project, video and annotator: the newest non-deleted, non-skipped "
        "annotation with a choice.",
        """
        SELECT project_id, video_id, annotator,
               arg_max(choice, updated_at) AS label,
               max(updated_at) AS updated_at
        FROM quality_annotations
        WHERE choice IS NOT NULL AND video_id IS NOT NULL AND annotator IS NOT NULL
          AND NOT deleted AND NOT was_cancelled
        GROUP BY project_id, video_id, annotator
        """,
    ),
    _view(
        "quality_soft_labels",
        "Soft labels: per item (project, video) and label, its votes and share of the votes "
        "(and how many of them are an imported dataset's own label).",
        # MATERIALIZED: else DuckDB turns the window into a join that counts the votes twice
        f"""
        WITH c AS MATERIALIZED (
            SELECT project_id, video_id, label, count(*) AS n_votes,
                   count(*) FILTER (WHERE {_DATASET_LABEL}) AS n_dataset_votes
            FROM quality_votes GROUP BY project_id, video_id, label)
        SELECT project_id, video_id, label, n_votes,
               n_votes / sum(n_votes) OVER (PARTITION BY project_id, video_id) AS share,
               n_dataset_votes
        FROM c
        """,
    ),
    _view(
        "quality_item_stats",
        "Per item: vote counts behind the agreement figures (top label(s), runner-up, "
        "sum of squared label counts).",
        """
        WITH c AS (
            SELECT *, max(n_votes) OVER (PARTITION BY project_id, video_id) AS top
            FROM quality_soft_labels)
        SELECT project_id, video_id,
               sum(n_votes)::BIGINT AS n_votes,
               sum(n_votes * n_votes)::BIGINT AS sum_sq_votes,
               count(*) AS n_labels,
               any_value(top) AS top_votes,
               count(*) FILTER (WHERE n_votes = top) AS n_top_labels,
               min(label) FILTER (WHERE n_votes = top) AS top_label,
               max(label) FILTER (WHERE n_votes = top) AS top_label_last,
               coalesce(max(n_votes) FILTER (WHERE n_votes < top), 0) AS second_votes,
               sum(n_dataset_votes)::BIGINT AS n_dataset_votes
        FROM c
        GROUP BY project_id, video_id
        """,
    ),
    _view(
        "quality_item_agreement",
        "Per item: votes, distinct labels, majority label (NULL on a tie), the top label's "
        "share of the votes, the share of annotator pairs that agree, and whether one vote is "
        "an imported dataset's own label (then one vote is enough).",
        f"""
        SELECT project_id, video_id, n_votes, n_labels,
               {majority_sql("n_top_labels", "top_label")} AS majority,
               {majority_share_sql("top_votes", "n_votes")} AS majority_share,
               CASE WHEN n_votes >= 2
                    THEN (sum_sq_votes - n_votes) / (n_votes * (n_votes - 1)) END
                 AS pairwise_agreement,
               n_dataset_votes > 0 AS has_dataset_label
        FROM quality_item_stats
        """,
    ),
    _view(
        "quality_label_distribution",
        "Per project and label: votes and their share, items with that majority and share.",
        """
        WITH v AS (
            SELECT project_id, label, count(*) AS n_votes FROM quality_votes GROUP BY ALL),
        m AS (
            SELECT project_id, majority AS label, count(*) AS n_items
            FROM quality_item_agreement WHERE majority IS NOT NULL GROUP BY ALL)
        SELECT v.project_id, v.label, v.n_votes,
               v.n_votes / sum(v.n_votes) OVER (PARTITION BY v.project_id) AS vote_share,
               coalesce(m.n_items, 0) AS n_majority_items,
               coalesce(m.n_items, 0)
                 / nullif(sum(coalesce(m.n_items, 0)) OVER (PARTITION BY v.project_id), 0)
                 AS majority_item_share
        FROM v LEFT JOIN m ON m.project_id = v.project_id AND m.label = v.label
        """,
    ),
    _view(
        "quality_vote_context",
        "Per vote: the item's votes, votes for the same label, and the majority label of "
        "the *other* annotators (NULL on a tie or with no other vote).",
        """
        SELECT v.project_id, v.video_id, v.annotator, v.label,
               s.n_votes AS item_votes, c.n_votes AS label_votes, s.sum_sq_votes,
               CASE
                 WHEN s.n_votes < 2 THEN NULL
                 -- the voter's label is the unique top: still the others' majority only if
                 -- it keeps the lead without this vote
                 WHEN s.n_top_labels = 1 AND v.label = s.top_label
                   THEN CASE WHEN s.top_votes - 1 > s.second_votes THEN v.label END
                 WHEN s.n_top_labels = 1 THEN s.top_label
                 -- two labels tied for the top: without this vote the other one leads
                 WHEN s.n_top_labels = 2 AND v.label = s.top_label THEN s.top_label_last
                 WHEN s.n_top_labels = 2 AND v.label = s.top_label_last THEN s.top_label
               END AS others_majority
        FROM quality_votes v
        JOIN quality_item_stats s ON s.project_id = v.project_id AND s.video_id = v.video_id
        JOIN quality_soft_labels c
          ON c.project_id = v.project_id AND c.video_id = v.video_id AND c.label = v.label
        """,
    ),
    _view(
        "quality_label_totals",
        "Per project and label: votes on pairable items (two or more votes), for alpha.",
        """
        SELECT c.project_id, c.label, sum(c.n_votes)::BIGINT AS n_pairable
        FROM quality_soft_labels c
        JOIN quality_item_stats s ON s.project_id = c.project_id AND s.video_id = c.video_id
        WHERE s.n_votes >= 2
        GROUP BY c.project_id, c.label
        """,
    ),
    _view(
        "quality_alpha_parts",
        "Per project: the sums Krippendorff's alpha is made of.",
        """
        WITH p AS (
            SELECT project_id, count(*) AS n_items,
                   count(*) FILTER (WHERE n_votes >= 2) AS n_pairable_items,
                   sum(n_votes)::BIGINT AS n_votes,
                   coalesce(sum(n_votes) FILTER (WHERE n_votes >= 2), 0)::BIGINT AS n_pairable,
                   coalesce(sum((n_votes * n_votes - sum_sq_votes) / (n_votes - 1))
                            FILTER (WHERE n_votes >= 2), 0) AS disagreement
            FROM quality_item_stats GROUP BY project_id),
        t AS (
            SELECT project_id, sum(n_pairable * n_pairable)::BIGINT AS sum_sq
            FROM quality_label_totals GROUP BY project_id),
        a AS (
            SELECT project_id, count(DISTINCT annotator) AS n_annotators
            FROM quality_votes GROUP BY project_id)
        SELECT p.*, coalesce(t.sum_sq, 0) AS sum_sq, a.n_annotators
        FROM p JOIN a ON a.project_id = p.project_id
        LEFT JOIN t ON t.project_id = p.project_id
        """,
    ),
    _view(
        "quality_alpha",
        "Per project: Krippendorff's alpha (nominal; NULL when undefined), observed and "
        "chance agreement, items, votes, annotators.",
        """
        SELECT project_id, n_items, n_pairable_items, n_votes, n_annotators,
               quality_nominal_alpha(n_pairable, disagreement, sum_sq) AS alpha,
               CASE WHEN n_pairable > 0 THEN 1 - disagreement / n_pairable END
                 AS observed_agreement,
               CASE WHEN n_pairable >= 2
                    THEN 1 - (n_pairable * n_pairable - sum_sq)
                             / (n_pairable * (n_pairable - 1)) END AS expected_agreement
        FROM quality_alpha_parts
        """,
    ),
    _view(
        "quality_annotator_agreement",
        "Per project and annotator: items, agreement with the others' majority, pairwise "
        "agreement, and Krippendorff's alpha without them (alpha_delta < 0: the data agree "
        "better without this annotator).",
        """
        WITH x AS (SELECT * FROM quality_vote_context),
        per AS (
            SELECT project_id, annotator, count(*) AS n_items,
                   count(others_majority) AS n_compared,
                   count(*) FILTER (WHERE others_majority = label) AS n_agree,
                   coalesce(sum(label_votes - 1) FILTER (WHERE item_votes >= 2), 0)
                     AS agreeing_pairs,
                   coalesce(sum(item_votes - 1) FILTER (WHERE item_votes >= 2), 0) AS pairs,
                   -- leaving the annotator out: an item of 2 votes stops being pairable,
                   -- a larger one loses one vote
                   sum(CASE WHEN item_votes = 2 THEN 2 WHEN item_votes >= 3 THEN 1 ELSE 0 END)
                     ::BIGINT AS n_drop,
                   coalesce(sum((item_votes * item_votes - sum_sq_votes) / (item_votes - 1))
                            FILTER (WHERE item_votes >= 2), 0)
                   - coalesce(sum(((item_votes - 1) * (item_votes - 1)
                                   - (sum_sq_votes - 2 * label_votes + 1)) / (item_votes - 2))
                              FILTER (WHERE item_votes >= 3), 0) AS disagreement_drop
            FROM x GROUP BY project_id, annotator),
        d AS (
            SELECT project_id, annotator, label, count(*) AS n_drop
            FROM x WHERE item_votes >= 3 GROUP BY ALL
            UNION ALL
            SELECT x.project_id, x.annotator, c.label, c.n_votes
            FROM x JOIN quality_soft_labels c
              ON c.project_id = x.project_id AND c.video_id = x.video_id
            WHERE x.item_votes = 2),
        sq AS (
            SELECT d.project_id, d.annotator,
                   sum(t.n_pairable * t.n_pairable
                       - (t.n_pairable - d.n_drop) * (t.n_pairable - d.n_drop))::BIGINT
                     AS sum_sq_drop
            FROM (SELECT project_id, annotator, label, sum(n_drop)::BIGINT AS n_drop
                  FROM d GROUP BY ALL) d
            JOIN quality_label_totals t ON t.project_id = d.project_id AND t.label = d.label
            GROUP BY d.project_id, d.annotator),
        loo AS (
            SELECT per.*,
                   quality_nominal_alpha(p.n_pairable, p.disagreement, p.sum_sq) AS alpha,
                   quality_nominal_alpha(
                       p.n_pairable - per.n_drop,
                       p.disagreement - per.disagreement_drop,
                       p.sum_sq - coalesce(sq.sum_sq_drop, 0)) AS alpha_without
            FROM per
            JOIN quality_alpha_parts p ON p.project_id = per.project_id
            LEFT JOIN sq ON sq.project_id = per.project_id AND sq.annotator = per.annotator)
        SELECT project_id, annotator, n_items, n_compared,
               n_agree / nullif(n_compared, 0) AS agreement_with_others,
               agreeing_pairs / nullif(pairs, 0) AS pairwise_agreement,
               alpha_without, alpha - alpha_without AS alpha_delta
        FROM loo
        """,
    ),
    _view(
        "quality_annotator_confusion",
        "Per project and annotator: their label against the others' majority label, counted "
        "over items where the others have a unique majority.",
        """
        SELECT project_id, annotator, label, others_majority AS majority_of_others,
               count(*) AS n_items
        FROM quality_vote_context WHERE others_majority IS NOT NULL
        GROUP BY ALL
        """,
    ),
    _view(
        "quality_annotator_pairs",
        "Per project and pair of annotators: shared items and how often they chose the same.",
        """
        SELECT a.project_id, a.annotator AS annotator_a, b.annotator AS annotator_b,
               count(*) AS n_items, count(*) FILTER (WHERE a.label = b.label) AS n_agree,
               count(*) FILTER (WHERE a.label = b.label) / count(*) AS agreement
        FROM quality_votes a
        JOIN quality_votes b
          ON b.project_id = a.project_id AND b.video_id = a.video_id
         AND a.annotator < b.annotator
        GROUP BY ALL
        """,
    ),
    _view(
        "quality_annotation_times",
        "Every current, non-deleted annotation (skips included) with its lead time.",
        """
        SELECT project_id, annotator, video_id, choice AS label, lead_time_s,
               was_cancelled AS skipped
        FROM quality_annotations WHERE NOT deleted
        """,
    ),
    _view(
        "quality_lead_times",
        "Per project and annotator: annotations, skips, and lead time (seconds per task) "
        "mean / median / 10th and 90th percentile.",
        # one quantile_cont with a list of quantiles sorts each group's lead times once
        """
        WITH t AS (
            SELECT project_id, annotator, count(*) AS n_annotations,
                   count(*) FILTER (WHERE skipped) AS n_skipped, count(lead_time_s) AS n_timed,
                   avg(lead_time_s) AS mean_s,
                   quantile_cont(lead_time_s, [0.5, 0.1, 0.9]) AS q,
                   min(lead_time_s) AS min_s, max(lead_time_s) AS max_s
            FROM quality_annotation_times GROUP BY ALL)
        SELECT project_id, annotator, n_annotations, n_skipped, n_timed, mean_s,
               q[1] AS median_s, q[2] AS p10_s, q[3] AS p90_s, min_s, max_s
        FROM t
        """,
    ),
    # ---- media -----------------------------------------------------------------------------
    _view(
        "quality_videos",
        "The current good videos (status ok) with orientation and uploader group.",
        """
        SELECT video_id, source, coalesce(uploader, uploader_id) AS uploader, duration_s,
               width, height,
               CASE WHEN width IS NULL OR height IS NULL THEN NULL
                    WHEN height > width THEN 'portrait'
                    WHEN width > height THEN 'landscape' ELSE 'square' END AS orientation,
               least(width, height) AS short_side, fps, variable_fps, has_audio, upload_date
        FROM videos_latest WHERE status = 'ok'
        """,
    ),
    _view(
        "quality_media_summary",
        "One row: good videos, duration (hours, min/median/mean/max), orientation, audio "
        "presence, frame rate.",
        """
        SELECT count(*) AS n_videos, count(duration_s) AS n_with_duration,
               sum(duration_s) / 3600 AS total_hours, min(duration_s) AS min_duration_s,
               median(duration_s) AS median_duration_s, avg(duration_s) AS mean_duration_s,
               max(duration_s) AS max_duration_s,
               count(*) FILTER (WHERE orientation = 'portrait') AS n_portrait,
               count(*) FILTER (WHERE orientation = 'landscape') AS n_landscape,
               count(*) FILTER (WHERE orientation = 'square') AS n_square,
               median(short_side) AS median_short_side,
               count(*) FILTER (WHERE has_audio) AS n_with_audio,
               count(*) FILTER (WHERE NOT has_audio) AS n_without_audio,
               count(*) FILTER (WHERE has_audio) / nullif(count(has_audio), 0) AS audio_share,
               median(fps) AS median_fps,
               count(*) FILTER (WHERE variable_fps) AS n_variable_fps
        FROM quality_videos
        """,
    ),
    _macro(
        "quality_duration_histogram_by",
        f"bucket_s := {DEFAULT_DURATION_BUCKET_S}",
        "Good videos per duration bucket of bucket_s seconds.",
        """
        SELECT floor(duration_s / bucket_s) * bucket_s AS from_s,
               floor(duration_s / bucket_s) * bucket_s + bucket_s AS to_s,
               count(*) AS n_videos
        FROM quality_videos WHERE duration_s IS NOT NULL
        GROUP BY ALL ORDER BY from_s
        """,
    ),
    _view(
        "quality_duration_histogram",
        f"Good videos per {DEFAULT_DURATION_BUCKET_S} s of duration "
        "(quality_duration_histogram_by(bucket_s := n) for other buckets).",
        "SELECT * FROM quality_duration_histogram_by()",
    ),
    _view(
        "quality_resolution_counts",
        "Good videos per resolution (width x height) and orientation, with their share.",
        """
        SELECT width, height, orientation, count(*) AS n_videos,
               count(*) / sum(count(*)) OVER () AS share
        FROM quality_videos GROUP BY ALL ORDER BY n_videos DESC, width, height
        """,
    ),
    _view(
        "quality_fps_counts",
        "Good videos per frame rate (rounded to 0.01) and variable-frame-rate flag.",
        """
        SELECT round(fps, 2) AS fps, coalesce(variable_fps, false) AS variable_fps,
               count(*) AS n_videos, count(*) / sum(count(*)) OVER () AS share
        FROM quality_videos GROUP BY ALL ORDER BY n_videos DESC, fps
        """,
    ),
    _view(
        "quality_audio_presence",
        "Good videos with and without an audio track (NULL: not probed).",
        """
        SELECT has_audio, count(*) AS n_videos, count(*) / sum(count(*)) OVER () AS share
        FROM quality_videos GROUP BY ALL ORDER BY has_audio
        """,
    ),
    # ---- the stage ledger, crawl yield ---------------------------------------------------
    _view(
        "quality_stage_status",
        "Per video and stage: the newest ledger row, whatever its stage version.",
        """
        SELECT video_id, stage, stage_version, status, error_kind, error, finished_at
        FROM stage_runs
        QUALIFY row_number() OVER (
            PARTITION BY video_id, stage ORDER BY finished_at DESC, stage_version DESC) = 1
        """,
    ),
    _view(
        "quality_source_yield",
        "Per source: videos discovered (crawled or failed), downloaded (ok), failing the "
        "crawl, with scenes, with ASR, and labelled (at least one vote).",
        f"""
        WITH crawl_failed AS (
            SELECT video_id, arg_max(source, failed_at) AS source
            FROM failures WHERE stage = {_CRAWL} GROUP BY video_id),
        seen AS (
            SELECT video_id, source FROM videos_latest
            UNION SELECT video_id, source FROM crawl_failed),
        labelled AS (SELECT DISTINCT video_id FROM quality_item_stats)
        SELECT s.source,
               count(*) AS discovered,
               count(*) FILTER (WHERE v.status = 'ok') AS downloaded,
               count(*) FILTER (WHERE v.status IS DISTINCT FROM 'ok' AND c.status = 'failed')
                 AS failed,
               count(*) FILTER (WHERE v.status = 'ok') / count(*) AS downloaded_share,
               count(*) FILTER (WHERE v.status = 'ok' AND sc.status = 'done') AS with_scenes,
               count(*) FILTER (WHERE v.status = 'ok' AND a.status = 'done') AS with_asr,
               count(*) FILTER (WHERE v.status = 'ok' AND l.video_id IS NOT NULL) AS labelled
        FROM seen s
        LEFT JOIN videos_latest v ON v.video_id = s.video_id
        LEFT JOIN quality_stage_status c ON c.video_id = s.video_id AND c.stage = {_CRAWL}
        LEFT JOIN quality_stage_status sc ON sc.video_id = s.video_id AND sc.stage = {_SCENES}
        LEFT JOIN quality_stage_status a ON a.video_id = s.video_id AND a.stage = {_ASR}
        LEFT JOIN labelled l ON l.video_id = s.video_id
        GROUP BY s.source ORDER BY discovered DESC, s.source
        """,
    ),
    _view(
        "quality_failures_by_reason",
        "Per source, stage and failure kind: videos whose newest run of the stage failed, "
        "with the latest error message as an example.",
        """
        WITH f AS (
            SELECT video_id, arg_max(source, failed_at) AS source
            FROM failures GROUP BY video_id)
        SELECT coalesce(v.source, f.source) AS source, st.stage,
               coalesce(st.error_kind, 'unknown') AS error_kind, count(*) AS n_videos,
               arg_max(st.error, st.finished_at) AS example_error,
               max(st.finished_at) AS last_failed_at
        FROM quality_stage_status st
        LEFT JOIN videos_latest v ON v.video_id = st.video_id
        LEFT JOIN f ON f.video_id = st.video_id
        WHERE st.status = 'failed'
        GROUP BY ALL ORDER BY n_videos DESC, source, stage, error_kind
        """,
    ),
    # ---- ASR and scenes --------------------------------------------------------------------
    _view(
        "quality_transcript_segments",
        "Per video, the transcript segments of its newest ASR run.",
        """
        WITH newest AS (
            SELECT video_id, max(created_at) AS created_at
            FROM transcript_segments GROUP BY video_id)
        SELECT t.* FROM transcript_segments t
        JOIN newest n ON n.video_id = t.video_id AND n.created_at = t.created_at
        """,
    ),
    _view(
        "quality_transcript_words",
        "Per video, the transcript words of its newest ASR run.",
        """
        WITH newest AS (
            SELECT video_id, max(created_at) AS created_at
            FROM transcript_words GROUP BY video_id)
        SELECT t.* FROM transcript_words t
        JOIN newest n ON n.video_id = t.video_id AND n.created_at = t.created_at
        """,
    ),
    _view(
        "quality_asr_coverage",
        "Per good video: ASR done, segments, speech seconds and their share of the duration "
        "(coverage), mean segment avg_logprob and no_speech_prob, language.",
        f"""
        WITH seg AS (
            SELECT video_id, count(*) AS n_segments,
                   sum(greatest(end_s - start_s, 0)) AS speech_s,
                   avg(avg_logprob) AS mean_avg_logprob,
                   avg(no_speech_prob) AS mean_no_speech_prob, mode(language) AS language
            FROM quality_transcript_segments GROUP BY video_id)
        SELECT v.video_id, v.duration_s, v.has_audio,
               coalesce(st.status = 'done', false) AS asr_done,
               coalesce(seg.n_segments, 0) AS n_segments,
               coalesce(seg.speech_s, 0) AS speech_s,
               least(coalesce(seg.speech_s, 0) / nullif(v.duration_s, 0), 1) AS coverage,
               seg.mean_avg_logprob, seg.mean_no_speech_prob, seg.language
        FROM quality_videos v
        LEFT JOIN seg ON seg.video_id = v.video_id
        LEFT JOIN quality_stage_status st ON st.video_id = v.video_id AND st.stage = {_ASR}
        """,
    ),
    _view(
        "quality_asr_languages",
        "Per source and spoken language (of the newest ASR run's segments; NULL: not "
        "recorded): good videos, segments, speech seconds and their share of the source's "
        "speech, words.",
        """
        WITH seg AS (
            SELECT v.source, t.language, count(DISTINCT t.video_id) AS n_videos,
                   count(*) AS n_segments, sum(greatest(t.end_s - t.start_s, 0)) AS speech_s
            FROM quality_transcript_segments t JOIN quality_videos v USING (video_id)
            GROUP BY ALL),
        w AS (
            SELECT v.source, t.language, count(*) AS n_words
            FROM quality_transcript_words t JOIN quality_videos v USING (video_id)
            GROUP BY ALL)
        SELECT seg.source, seg.language, seg.n_videos, seg.n_segments, seg.speech_s,
               seg.speech_s / nullif(sum(seg.speech_s) OVER (PARTITION BY seg.source), 0)
                 AS speech_share,
               coalesce(w.n_words, 0) AS n_words
        FROM seg LEFT JOIN w
          ON w.source IS NOT DISTINCT FROM seg.source
         AND w.language IS NOT DISTINCT FROM seg.language
        ORDER BY seg.source, seg.speech_s DESC, seg.language
        """,
    ),
    _view(
        "quality_asr_per_video",
        "Per good video: the coverage figures plus words, mean word score, share of words "
        f"scored below {LOW_WORD_SCORE} and of interpolated word timings.",
        f"""
        WITH w AS (
            SELECT video_id, count(*) AS n_words, count(score) AS n_scored_words,
                   avg(score) AS mean_word_score,
                   count(*) FILTER (WHERE score < {LOW_WORD_SCORE}) / nullif(count(score), 0)
                     AS low_score_share,
                   count(*) FILTER (WHERE interpolated) / count(*) AS interpolated_share
            FROM quality_transcript_words GROUP BY video_id)
        SELECT c.*, coalesce(w.n_words, 0) AS n_words,
               coalesce(w.n_scored_words, 0) AS n_scored_words, w.mean_word_score,
               w.low_score_share, w.interpolated_share
        FROM quality_asr_coverage c LEFT JOIN w ON w.video_id = c.video_id
        """,
    ),
    _view(
        "quality_asr_summary",
        "One row: good videos, transcribed, with speech segments; mean and median coverage, "
        "mean segment avg_logprob; words, mean word score and share of low-score words.",
        f"""
        WITH w AS (
            SELECT count(*) AS n_words, avg(score) AS mean_word_score,
                   count(*) FILTER (WHERE score < {LOW_WORD_SCORE}) / nullif(count(score), 0)
                     AS low_score_share
            FROM quality_transcript_words
            WHERE video_id IN (SELECT video_id FROM quality_videos))
        SELECT count(*) AS n_videos,
               count(*) FILTER (WHERE asr_done) AS n_transcribed,
               count(*) FILTER (WHERE n_segments > 0) AS n_with_speech,
               count(*) FILTER (WHERE asr_done AND n_segments = 0 AND has_audio)
                 AS n_audio_without_speech,
               avg(coverage) FILTER (WHERE asr_done) AS mean_coverage,
               median(coverage) FILTER (WHERE asr_done) AS median_coverage,
               avg(mean_avg_logprob) AS mean_avg_logprob,
               (SELECT n_words FROM w) AS n_words,
               (SELECT mean_word_score FROM w) AS mean_word_score,
               (SELECT low_score_share FROM w) AS low_score_share
        FROM quality_asr_coverage
        """,
    ),
    _view(
        "quality_scenes",
        "Per video, the scenes of its newest scenes run (older runs' leftovers dropped).",
        # a run's rows share one created_at (one commit)
        """
        WITH newest AS (
            SELECT video_id, max(created_at) AS created_at FROM scenes GROUP BY video_id)
        SELECT s.* FROM scenes s
        JOIN newest n ON n.video_id = s.video_id AND n.created_at = s.created_at
        """,
    ),
    _view(
        "quality_scenes_per_video",
        "Per good video: scenes stage done, scenes, scenes per minute, mean and shortest "
        "scene, keyframes.",
        f"""
        WITH s AS (
            SELECT video_id, count(*) AS n_scenes, avg(end_s - start_s) AS mean_scene_s,
                   min(end_s - start_s) AS min_scene_s, count(keyframe_path) AS n_keyframes
            FROM quality_scenes GROUP BY video_id)
        SELECT v.video_id, v.duration_s, coalesce(st.status = 'done', false) AS scenes_done,
               coalesce(s.n_scenes, 0) AS n_scenes,
               s.n_scenes / nullif(v.duration_s / 60, 0) AS scenes_per_minute,
               s.mean_scene_s, s.min_scene_s, coalesce(s.n_keyframes, 0) AS n_keyframes
        FROM quality_videos v
        LEFT JOIN s ON s.video_id = v.video_id
        LEFT JOIN quality_stage_status st ON st.video_id = v.video_id AND st.stage = {_SCENES}
        """,
    ),
    _view(
        "quality_scene_count_distribution",
        "Videos per number of scenes (videos whose scenes stage is done).",
        """
        SELECT n_scenes, count(*) AS n_videos FROM quality_scenes_per_video
        WHERE scenes_done GROUP BY n_scenes ORDER BY n_scenes
        """,
    ),
    # ---- near-duplicates ---------------------------------------------------------------------
    _view(
        "quality_keyframe_hashes",
        "Current perceptual hashes: of the newest scenes of good videos, not older than "
        "their scene row.",
        """
        WITH h AS (  -- the newest hash per keyframe (count(*) = 1: see quality_annotations)
            SELECT video_id, scene_idx, phash, algorithm, created_at FROM keyframe_hashes
            QUALIFY count(*) OVER (PARTITION BY video_id, scene_idx) = 1
                 OR row_number() OVER (
                        PARTITION BY video_id, scene_idx ORDER BY created_at DESC) = 1)
        SELECT h.video_id, h.scene_idx, h.phash, h.algorithm
        FROM h
        JOIN quality_scenes s ON s.video_id = h.video_id AND s.scene_idx = h.scene_idx
        JOIN quality_videos v ON v.video_id = h.video_id
        WHERE h.created_at >= s.created_at
        """,
    ),
    _macro(
        "quality_keyframe_matches",
        f"max_bits := {DEFAULT_MAX_BITS}",
        "Pairs of keyframes of two different videos whose hashes differ in at most max_bits "
        "bits (exact: candidates share one of max_bits + 1 bands of the hash, or above 2 "
        "bits two of max_bits + 2 bands).",
        # Pigeonhole: max_bits differing bits leave at least one of max_bits + 1 bands, and two
        # of max_bits + 2, equal. Above 2 bits one band would be 16 bits or narrower and chance
        # candidates (n^2 / 2^width per band) swamp the join; two bands are 24 bits at 3 bits.
        """
        WITH h AS (
            SELECT row_number() OVER () AS rid, video_id, scene_idx, phash
            FROM quality_keyframe_hashes WHERE phash IS NOT NULL),
        spec AS (
            SELECT bits + per_key AS n_bands, per_key
            FROM (SELECT bits, CASE WHEN bits BETWEEN 3 AND 62 THEN 2 ELSE 1 END AS per_key
                  FROM (SELECT least(greatest(max_bits, 0), 63) AS bits))),
        bands AS (
            SELECT band, band * (64 // n_bands) AS lo,
                   CASE WHEN band = n_bands - 1 THEN 64 ELSE (band + 1) * (64 // n_bands) END
                     AS hi
            FROM (SELECT unnest(range(n_bands)) AS band, n_bands FROM spec)),
        -- what a key is made of: one band, or two (the second empty when per_key = 1)
        combos AS (
            SELECT row_number() OVER (ORDER BY lo_1, lo_2) AS combo, *
            FROM (
                SELECT a.lo AS lo_1, a.hi - a.lo AS width_1, 0 AS lo_2, 0 AS width_2
                FROM bands a CROSS JOIN spec WHERE spec.per_key = 1
                UNION ALL
                SELECT a.lo, a.hi - a.lo, b.lo, b.hi - b.lo
                FROM bands a JOIN bands b ON b.band > a.band CROSS JOIN spec
                WHERE spec.per_key = 2)),
        -- one BIGINT per (hash, combo): the combo number in the high bits, its bits below
        keys AS (
            SELECT h.rid, h.phash,
                   CASE WHEN c.width_1 = 64 THEN h.phash
                        ELSE (c.combo << 44)
                             | (((h.phash >> c.lo_1) & ((1::BIGINT << c.width_1) - 1))
                                << c.width_2)
                             | ((h.phash >> c.lo_2) & ((1::BIGINT << c.width_2) - 1)) END
                     AS key
            FROM h CROSS JOIN combos c),
        pairs AS (
            SELECT DISTINCT ka.rid AS rid_a, kb.rid AS rid_b,
                   hamming64(ka.phash, kb.phash) AS distance
            FROM keys ka JOIN keys kb ON kb.key = ka.key AND ka.rid < kb.rid
            WHERE hamming64(ka.phash, kb.phash) <= max_bits),
        -- one side first: joining both at once, a poor row estimate can make DuckDB pair
        -- every keyframe with every other (video_a <> video_b) before it reads the pairs
        a AS MATERIALIZED (
            SELECT p.rid_b, p.distance, h.video_id, h.scene_idx
            FROM pairs p JOIN h ON h.rid = p.rid_a)
        SELECT least(a.video_id, b.video_id) AS video_a,
               CASE WHEN a.video_id < b.video_id THEN a.scene_idx ELSE b.scene_idx END
                 AS scene_a,
               greatest(a.video_id, b.video_id) AS video_b,
               CASE WHEN a.video_id < b.video_id THEN b.scene_idx ELSE a.scene_idx END
                 AS scene_b,
               a.distance
        FROM a JOIN h b ON b.rid = a.rid_b
        WHERE a.video_id <> b.video_id
        """,
    ),
    _macro(
        "quality_near_duplicates_at",
        f"max_bits := {DEFAULT_MAX_BITS}, min_share := {DEFAULT_MIN_SHARE}",
        "Pairs of good videos where at least min_share of each video's hashed keyframes "
        "match a keyframe of the other within max_bits bits (share: the smaller of the two "
        "shares).",
        """
        WITH m AS (SELECT * FROM quality_keyframe_matches(max_bits := max_bits)),
        n AS (
            SELECT video_id, count(*) AS n_keyframes FROM quality_keyframe_hashes
            WHERE phash IS NOT NULL GROUP BY video_id),
        p AS (
            SELECT video_a, video_b, count(DISTINCT scene_a) AS matched_a,
                   count(DISTINCT scene_b) AS matched_b, min(distance) AS min_distance,
                   avg(distance) AS mean_distance
            FROM m GROUP BY video_a, video_b)
        SELECT p.video_a, p.video_b, va.uploader AS uploader_a, vb.uploader AS uploader_b,
               p.matched_a, na.n_keyframes AS keyframes_a,
               p.matched_b, nb.n_keyframes AS keyframes_b,
               least(p.matched_a / na.n_keyframes, p.matched_b / nb.n_keyframes) AS share,
               p.min_distance, p.mean_distance,
               abs(va.duration_s - vb.duration_s) AS duration_diff_s
        FROM p
        JOIN n na ON na.video_id = p.video_a
        JOIN n nb ON nb.video_id = p.video_b
        JOIN quality_videos va ON va.video_id = p.video_a
        JOIN quality_videos vb ON vb.video_id = p.video_b
        WHERE least(p.matched_a / na.n_keyframes, p.matched_b / nb.n_keyframes) >= min_share
        ORDER BY share DESC, p.mean_distance, p.video_a, p.video_b
        """,
    ),
    _view(
        "quality_near_duplicates",
        f"Near-duplicate video pairs at the defaults ({DEFAULT_MAX_BITS} bits, share "
        f"{DEFAULT_MIN_SHARE}); quality_near_duplicates_at(max_bits := n, min_share := s) "
        "for others.",
        "SELECT * FROM quality_near_duplicates_at()",
    ),
    # ---- training splits and the annotation queue ---------------------------------------
    _view(
        "quality_latest_run",
        "The newest finished training run (status done), or no row.",
        """
        SELECT run_id, finished_at FROM training_runs_latest WHERE status = 'done'
        ORDER BY finished_at DESC, run_id DESC LIMIT 1
        """,
    ),
    _view(
        "quality_split_members",
        "Per run: the videos in train / val / test with their uploader group.",
        f"""
        SELECT p.run_id, p.video_id, p.split, coalesce(v.uploader, v.uploader_id) AS uploader
        FROM predictions p LEFT JOIN videos_latest v ON v.video_id = p.video_id
        WHERE p.split IN ({_SPLITS})
        """,
    ),
    _view(
        "quality_split_leakage_uploaders",
        "Per run: uploaders with videos in more than one of train / val / test.",
        """
        SELECT run_id, uploader,
               count(*) FILTER (WHERE split = 'train') AS n_train,
               count(*) FILTER (WHERE split = 'val') AS n_val,
               count(*) FILTER (WHERE split = 'test') AS n_test
        FROM quality_split_members WHERE uploader IS NOT NULL
        GROUP BY run_id, uploader HAVING count(DISTINCT split) > 1
        ORDER BY run_id, uploader
        """,
    ),
    _view(
        "quality_split_leakage_duplicates",
        "Per run: near-duplicate pairs whose two videos sit in different splits.",
        """
        SELECT a.run_id, d.video_a, a.split AS split_a, d.video_b, b.split AS split_b,
               d.share, d.mean_distance
        FROM quality_near_duplicates d
        JOIN quality_split_members a ON a.video_id = d.video_a
        JOIN quality_split_members b ON b.video_id = d.video_b AND b.run_id = a.run_id
        WHERE a.split <> b.split
        ORDER BY a.run_id, d.video_a, d.video_b
        """,
    ),
    _view(
        "quality_split_leakage",
        "Per run: videos per split, uploaders in several splits and the held-out (val/test) "
        "videos they bring, near-duplicate pairs across splits; is_latest marks the newest "
        "finished run.",
        """
        WITH r AS (
            SELECT run_id, count(*) FILTER (WHERE split = 'train') AS n_train,
                   count(*) FILTER (WHERE split = 'val') AS n_val,
                   count(*) FILTER (WHERE split = 'test') AS n_test
            FROM quality_split_members GROUP BY run_id),
        u AS (
            SELECT run_id, count(*) AS leaking_uploaders,
                   sum(n_val + n_test)::BIGINT AS held_out_with_train_uploader
            FROM quality_split_leakage_uploaders GROUP BY run_id),
        d AS (
            SELECT run_id, count(*) AS duplicate_pairs_across
            FROM quality_split_leakage_duplicates GROUP BY run_id)
        SELECT r.*, coalesce(u.leaking_uploaders, 0) AS leaking_uploaders,
               coalesce(u.held_out_with_train_uploader, 0) AS held_out_with_train_uploader,
               coalesce(d.duplicate_pairs_across, 0) AS duplicate_pairs_across,
               r.run_id IN (SELECT run_id FROM quality_latest_run) AS is_latest
        FROM r LEFT JOIN u ON u.run_id = r.run_id LEFT JOIN d ON d.run_id = r.run_id
        ORDER BY is_latest DESC, r.run_id
        """,
    ),
    _macro(
        "quality_annotation_queue_with",
        f"min_votes := {DEFAULT_MIN_VOTES}, min_agreement := {DEFAULT_MIN_AGREEMENT}, "
        f"max_confidence := {DEFAULT_MAX_CONFIDENCE}",
        "Good videos that need more annotation, most urgent first: too_few_votes "
        "(< min_votes; 1 with an imported dataset's own label), low_agreement (majority "
        "share < min_agreement, or a tie), "
        "model_uncertain (the newest finished run's top probability < max_confidence).",
        f"""
        WITH tasks AS (
            SELECT video_id, project_id, any_value(task_id) AS task_id
            FROM label_tasks_latest GROUP BY ALL),
        -- every item (project, video) with a task or votes, once: the tasks and the votes
        -- side by side (a task without a project names no item's task)
        items AS (
            SELECT coalesce(t.video_id, a.video_id) AS video_id,
                   coalesce(t.project_id, a.project_id) AS project_id,
                   CASE WHEN t.project_id IS NOT NULL THEN t.task_id END AS task_id,
                   a.n_votes, a.majority, a.majority_share, a.has_dataset_label
            FROM tasks t FULL JOIN quality_item_agreement a
              ON a.video_id = t.video_id AND a.project_id = t.project_id),
        pred AS (
            SELECT p.video_id, p.label AS predicted, p.score AS confidence,
                   map_values(json_transform(p.probs_json, '"MAP(VARCHAR, DOUBLE)"')) AS probs
            FROM predictions p JOIN quality_latest_run r ON r.run_id = p.run_id),
        q AS (
            SELECT v.video_id, i.project_id, i.task_id, v.source, v.uploader,
                   coalesce(i.n_votes, 0) AS n_votes, i.majority, i.majority_share,
                   pred.predicted, pred.confidence,
                   CASE WHEN len(pred.probs) > 1
                        THEN list_sum(list_transform(
                                 pred.probs, x -> CASE WHEN x > 0 THEN -x * ln(x) ELSE 0 END))
                             / ln(len(pred.probs)) END AS entropy,
                   list_filter([
                       {_QUEUE_VOTE_REASONS},
                       CASE WHEN pred.confidence < max_confidence THEN 'model_uncertain' END
                   ], x -> x IS NOT NULL) AS reasons
            FROM quality_videos v
            LEFT JOIN items i ON i.video_id = v.video_id
            LEFT JOIN pred ON pred.video_id = v.video_id)
        SELECT * FROM q WHERE len(reasons) > 0
        ORDER BY len(reasons) DESC, list_contains(reasons, '{LOW_AGREEMENT}') DESC,
                 coalesce(majority_share, 1), coalesce(confidence, 1), n_votes DESC, video_id
        """,
    ),
    _view(
        "quality_annotation_queue",
        "Items that need more annotation at the defaults (quality_annotation_queue_with("
        "min_votes := n, min_agreement := a, max_confidence := c) for others).",
        "SELECT * FROM quality_annotation_queue_with()",
    ),
)

# Changes whenever a definition changes: `catalog_is_current` compares it with the catalog's.
VERSION = hashlib.sha256(
    "\n".join(f"{o.name}|{o.kind}|{o.params}|{o.sql}" for o in OBJECTS).encode()
).hexdigest()[:16]
OBJECTS += (
    _view(
        "quality_version",
        "The version (a digest) of these definitions.",
        f"SELECT '{VERSION}' AS version, {len(OBJECTS)} AS n_objects",
    ),
)

QUALITY_VIEWS: tuple[str, ...] = tuple(o.name for o in OBJECTS if o.kind == "view")
QUALITY_MACROS: tuple[str, ...] = tuple(o.name for o in OBJECTS if o.kind != "view")

# Views that several others read: worth materializing once when a session reads many views.
# Two chains that read nothing of each other, so a session can compute them at the same time.
SHARED_ANNOTATION_VIEWS: tuple[str, ...] = (
    "quality_annotations",
    "quality_votes",
    "quality_soft_labels",
    "quality_item_stats",
    "quality_vote_context",
    "quality_label_totals",
    "quality_alpha_parts",
)
SHARED_MEDIA_VIEWS: tuple[str, ...] = (
    "quality_videos",
    "quality_stage_status",
    "quality_scenes",
    "quality_keyframe_hashes",
    "quality_asr_coverage",
    "quality_scenes_per_video",
    "quality_split_members",
)
SHARED_VIEWS: tuple[str, ...] = SHARED_ANNOTATION_VIEWS + SHARED_MEDIA_VIEWS
# Where materialize_shared_views keeps the rows on a private in-memory database.
STORED_SCHEMA = "quality_stored"

_VIEW_SQL = {o.name: o.sql for o in OBJECTS if o.kind == "view"}
_SCHEMA_LOCK = threading.Lock()


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def create_quality_views(con: duckdb.DuckDBPyConnection) -> None:
    """Create (or replace) every quality view and macro; every table must already be there."""
    # One transaction: statement by statement, a catalog file would commit (and sync) 90 times.
    con.execute("BEGIN TRANSACTION")
    try:
        _create_all(con)
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def _create_all(con: duckdb.DuckDBPyConnection) -> None:
    for obj in OBJECTS:
        if obj.kind == "view":
            con.execute(f"CREATE OR REPLACE VIEW {obj.name} AS {obj.sql}")
            con.execute(f"COMMENT ON VIEW {obj.name} IS {_quote(obj.comment)}")
        else:
            table = " TABLE" if obj.kind == "table macro" else ""
            con.execute(f"CREATE OR REPLACE MACRO {obj.name}({obj.params}) AS{table} {obj.sql}")
            con.execute(f"COMMENT ON MACRO{table} {obj.name} IS {_quote(obj.comment)}")


def is_in_memory(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the connection's database is in memory (as `Warehouse.connect()` makes it),
    not a file such as the catalog."""
    row = con.execute(
        "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchone()
    return row is not None and row[0] is None


def materialize_shared_views(
    con: duckdb.DuckDBPyConnection, names: tuple[str, ...] = SHARED_VIEWS
) -> None:
    """Compute the shared views once and keep their rows for this session.

    Every view that reads them then reads the stored rows instead of recomputing them: a
    session that queries many quality views (the report) does the window functions over
    `annotations` once. On a private in-memory database (`Warehouse.connect()`) the rows go
    to tables of schema `quality_stored` and the views are pointed at them, so every cursor of
    the connection sees them too (`con.cursor()`, e.g. to compute the two chains of shared
    views in two threads). On a database file (the catalog) the file is left alone: the rows
    go to temporary tables of the same names, first in DuckDB's search path but seen by this
    connection only. Either way the connection then shows a snapshot; use a fresh connection
    for current data.
    """
    if not is_in_memory(con):
        for name in names:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM main.{name}")
        return
    with _SCHEMA_LOCK:  # cursors of one connection may get here at the same time
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {STORED_SCHEMA}")
    for name in names:
        # the definition itself, not main.<name>: that may already read an older stored copy
        con.execute(f"CREATE OR REPLACE TABLE {STORED_SCHEMA}.{name} AS {_VIEW_SQL[name]}")
        con.execute(f"CREATE OR REPLACE VIEW main.{name} AS FROM {STORED_SCHEMA}.{name}")


def describe() -> list[dict[str, str]]:
    """Name, kind and one-line description of every quality view and macro."""
    return [{"name": o.name, "kind": o.kind, "description": o.comment} for o in OBJECTS]


def catalog_is_current(path: Path) -> bool:
    """Whether a catalog file holds this version of the quality views."""
    if not path.exists():
        return False
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error:
        return False
    try:
        row = con.execute("SELECT version FROM quality_version").fetchone()
    except duckdb.Error:
        return False
    finally:
        con.close()
    return bool(row) and row[0] == VERSION
