"""Tag the catalog: score every new or changed track and MERGE the tags into language_tags.

A track is (re)scored when it has no tag yet, when its features changed (their fingerprint), or
when the tag came from another model version; ``full`` re-scores everything. A rerun with nothing
changed writes nothing. Every track of ``inputs.tracks`` ends with exactly one row (its status says
why); the counts go to <output.report_dir>/tagging.json and tagging.md.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

from pyspark.sql import functions as F

from lid_spark.config import Config, absolute_local_path
from lid_spark.contract import has_track_id, is_synthetic_catalog
from lid_spark.model.artifact import LanguageClassifier
from lid_spark.model.features import track_feature_frame
from lid_spark.progress import get_logger, step
from lid_spark.reports import write_report
from lid_spark.schemas import EMBEDDED_ON_REAL_CATALOG, TAG_SCHEMA
from lid_spark.tables import merge_upsert, read_input, read_table, resolve_table, table_exists
from lid_spark.tagging import guard_settings, model_directory
from lid_spark.udfs.tagging import tag_batches


@dataclass
class TaggingSummary:
    """What one tag_catalog run did; ``tracks_in == tracks_tagged_or_listed`` always holds."""

    tracks_in: int
    invalid_track_rows: int
    unchanged_skipped: int
    scored: int
    inserted: int
    updated: int
    by_status: dict[str, int]
    by_language: dict[str, int]
    model_version: str
    table: str
    languages: list[str] = field(default_factory=list)   # the classes of the model (its artifact's)
    warnings: list[str] = field(default_factory=list)
    # Wall seconds: "score" (feature frame + UDF inference of the tracks to score), "merge", "total".
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def tracks_tagged_or_listed(self) -> int:
        return sum(self.by_status.values())

    def markdown(self) -> str:
        lines = [f"## Tagging into {self.table} (model {self.model_version})", "",
                 f"Classes: {', '.join(self.languages)}.", "", *[f"**Warning:** {w}" for w in self.warnings],
                 *([""] if self.warnings else []),
                 "| tracks in | invalid rows | unchanged (skipped) | scored now | inserted | updated |",
                 "|---:|---:|---:|---:|---:|---:|",
                 f"| {self.tracks_in} | {self.invalid_track_rows} | {self.unchanged_skipped} | {self.scored} | "
                 f"{self.inserted} | {self.updated} |", "", "| status | tracks |", "|---|---:|"]
        lines += [f"| {k} | {v} |" for k, v in sorted(self.by_status.items())]
        lines += ["", "| language | tracks |", "|---|---:|"]
        lines += [f"| {k} | {v} |" for k, v in sorted(self.by_language.items(), key=lambda kv: -kv[1])]
        return "\n".join(lines)


def run(spark, cfg: Config, full: bool = False) -> TaggingSummary:
    """Score new or changed tracks of ``inputs.tracks`` and MERGE their tags into ``language_tags``."""
    started = time.perf_counter()
    # Absolute: the executors open it from working directories of their own.
    model_dir = absolute_local_path(model_directory(cfg))
    # Load on the driver first: a missing or tampered artifact fails here, before any work.
    classifier = LanguageClassifier.load(model_dir)
    model_version = classifier.model_version
    ref = resolve_table(cfg, "language_tags")

    tracks = read_input(spark, cfg, "tracks")
    rows_in = tracks.count()
    ids = tracks.where(has_track_id()).select("track_id").distinct()  # a blank id names no track
    tracks_in = ids.count()
    # Said once per job, and in the reason of every tag whose vocals it scored.
    note = None
    if (tracks_in and cfg.audio.spoken_lid.source == "embedded" and "vocals" in classifier.layout.modalities
            and not is_synthetic_catalog(tracks)):
        note = EMBEDDED_ON_REAL_CATALOG
        get_logger(__name__).warning("this catalog is not lid-spark's synthetic world: %s", note)

    frame = track_feature_frame(spark, cfg, ids)
    frame = frame.withColumn("feature_fingerprint", F.xxhash64(
        "consumption", "timbral", "seg_embeddings", "seg_durations", F.coalesce("status", F.lit(""))))
    todo = frame
    if table_exists(spark, ref) and not full:
        done = read_table(spark, ref).select("track_id", "feature_fingerprint", "model_version")
        todo = frame.join(done, on=[frame.track_id == done.track_id,
                                    frame.feature_fingerprint == done.feature_fingerprint,
                                    F.lit(model_version) == done.model_version], how="left_anti")
    with step(f"score tracks with {model_dir}"):
        score_start = time.perf_counter()
        tags = todo.mapInPandas(
            tag_batches(model_dir, model_version, cfg.tagging.min_confidence, cfg.tagging.second_language_min,
                        cfg.tagging.device, cfg.tagging.torch_threads, note=note, guard=guard_settings(cfg)),
            TAG_SCHEMA,
        ).persist()
        scored = tags.count()
        score_seconds = time.perf_counter() - score_start
    with step(f"MERGE {scored} tags into {ref}"):
        merge_start = time.perf_counter()
        metrics = merge_upsert(spark, tags, ref, keys=["track_id"]) if scored else {}
        merge_seconds = time.perf_counter() - merge_start
    tags.unpersist()
    by_status, by_language = {}, {}
    if table_exists(spark, ref):  # absent only when the catalog is empty and nothing was ever tagged
        current = read_table(spark, ref).join(ids, "track_id")
        by_status = {r["status"]: r["n"] for r in current.groupBy("status").agg(F.count("*").alias("n")).collect()}
        by_language = {r["language"]: r["n"]
                       for r in current.groupBy("language").agg(F.count("*").alias("n")).collect()}
    summary = TaggingSummary(
        tracks_in=tracks_in, invalid_track_rows=rows_in - tracks_in, unchanged_skipped=tracks_in - scored,
        scored=scored, inserted=metrics.get("numTargetRowsInserted", 0),
        updated=metrics.get("numTargetRowsUpdated", 0), by_status=by_status, by_language=by_language,
        model_version=model_version, table=str(ref), languages=list(classifier.languages),
        warnings=[note] if note else [],
        seconds={"score": score_seconds, "merge": merge_seconds, "total": time.perf_counter() - started})
    if summary.tracks_tagged_or_listed != tracks_in:
        raise RuntimeError(f"tagging lost tracks: {tracks_in} in, {summary.tracks_tagged_or_listed} in {ref}")
    write_report(cfg.output.report_dir, "tagging", "Tagging report",
                 {**asdict(summary), "tracks_tagged_or_listed": summary.tracks_tagged_or_listed},
                 markdown=summary.markdown())
    return summary
