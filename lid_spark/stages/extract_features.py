"""Extract audio features of the catalog into vocal_segments, timbral_features and audio_status.

Per track, in a pandas UDF: decode -> vocal separation -> silence removal into vocal segments
(spread over the whole track) -> spoken-LID embedding and language scores per segment; and the
timbral codebook vector of the mixture (run fit_codebook first). Every track tried gets one
audio_status row (ok, truncated, no_vocals, silent, missing_file, unreadable, empty, ...).

Incremental: only tracks whose audio_uri or feature version changed since the last run, or whose
extraction failed (statuses failed, separation_failed), are processed (the version covers the
extraction settings, codebook and spoken-LID model); a rerun with nothing changed writes nothing.
A report goes to <output.report_dir>/extract_features.json.
"""

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lid_spark.audio.pipeline import feature_version, spoken_lid_tag
from lid_spark.audio.timbral import Codebook, codebook_dir
from lid_spark.config import Config
from lid_spark.contract import implausible_duration, is_synthetic_catalog
from lid_spark.progress import get_logger, step
from lid_spark.reports import write_report
from lid_spark.schemas import (
    EMBEDDED_ON_REAL_CATALOG,
    EXTRACT_SCHEMA,
    FEATURE_STATUSES,
    RETRY_STATUSES,
    SEGMENT,
    SEGMENT_COLUMNS,
    STATUS_COLUMNS,
    TRACK,
)
from lid_spark.tables import (
    TableRef,
    dedupe_latest,
    merge_upsert,
    read_input,
    read_table,
    replace_tracks,
    resolve_table,
    table_exists,
)
from lid_spark.udfs.audio_features import arrow_batch_rows, extract_features_udf


def tracks_to_extract(spark: SparkSession, tracks: DataFrame, status_ref: TableRef, version: str) -> DataFrame:
    """Tracks without an audio_status row for the same audio_uri and feature version, or that failed last time."""
    if not table_exists(spark, status_ref):
        return tracks
    done = read_table(spark, status_ref).where(~F.col("status").isin(*RETRY_STATUSES)).select(
        "track_id", F.col("audio_uri").alias("_done_uri"), F.col("feature_version").alias("_done_version"))
    joined = tracks.join(done, "track_id", "left")
    unchanged = F.col("audio_uri").eqNullSafe(F.col("_done_uri")) & (F.col("_done_version") == F.lit(version))
    return joined.where(~F.coalesce(unchanged, F.lit(False))).drop("_done_uri", "_done_version")


def run(spark: SparkSession, cfg: Config) -> dict:
    """Run the stage on ``cfg``'s tables; returns the report (also written to the report directory)."""
    log = get_logger()
    status_ref = resolve_table(cfg, "audio_status")
    segments_ref = resolve_table(cfg, "vocal_segments")
    timbral_ref = resolve_table(cfg, "timbral_features")

    codebook = Codebook.load(codebook_dir(cfg))
    version = feature_version(cfg, codebook, spoken_lid_tag(cfg.audio.spoken_lid.source))
    log.info("feature version %s", version)

    with step("select tracks to extract"):
        catalog = read_input(spark, cfg, "tracks")
        counts = catalog.agg(F.count(F.lit(1)).alias("rows"), F.count("track_id").alias("with_id"),
                             F.countDistinct("track_id").alias("distinct_ids"),
                             F.count(F.when(implausible_duration(), 1)).alias("implausible_durations")).first()
        tracks = catalog.select("track_id", "audio_uri")
        unique = dedupe_latest(tracks.where(F.col("track_id").isNotNull()), ["track_id"], None)
        todo = tracks_to_extract(spark, unique, status_ref, version).persist(StorageLevel.MEMORY_AND_DISK)
        n_todo = todo.count()
    report = {"feature_version": version, "tracks_in": counts["rows"],
              "tracks_without_id": counts["rows"] - counts["with_id"],
              "duplicate_track_rows": counts["with_id"] - counts["distinct_ids"],
              "tracks_distinct": counts["distinct_ids"],
              "tracks_duration_implausible": counts["implausible_durations"],
              "tracks_unchanged": counts["distinct_ids"] - n_todo,
              "tracks_extracted": n_todo, "statuses": {}, "segments_written": 0, "timbral_rows_written": 0,
              "warnings": []}
    if n_todo and cfg.audio.spoken_lid.source == "embedded" and not is_synthetic_catalog(catalog):
        log.warning("this catalog is not lid-spark's synthetic world: %s", EMBEDDED_ON_REAL_CATALOG)
        report["warnings"].append(EMBEDDED_ON_REAL_CATALOG)
    log.info("%d track rows: %d distinct ids (%d duplicate rows, %d without id), %d unchanged, %d to extract",
             report["tracks_in"], report["tracks_distinct"], report["duplicate_track_rows"],
             report["tracks_without_id"], report["tracks_unchanged"], n_todo)

    if n_todo:
        with step(f"extract features of {n_todo} tracks"):
            partitions = min(n_todo, cfg.audio.udf.partitions or spark.sparkContext.defaultParallelism)
            result = (todo.repartition(partitions)
                      .mapInPandas(extract_features_udf(cfg.for_executors(), codebook, version), EXTRACT_SCHEMA)
                      .withColumn("feature_version", F.lit(version))
                      .persist(StorageLevel.MEMORY_AND_DISK))
            track_rows = result.where(F.col("kind") == TRACK)
            # The first action runs the UDF (the result is persisted for the three writes).
            with arrow_batch_rows(spark, cfg.audio.udf.tracks_per_batch):
                statuses = {r["status"]: r["count"] for r in track_rows.groupBy("status").count().collect()}
        n_out = sum(statuses.values())
        if n_out != n_todo:
            raise RuntimeError(f"extraction returned {n_out} status rows for {n_todo} tracks")
        segments = result.where(F.col("kind") == SEGMENT).select(*SEGMENT_COLUMNS, "feature_version")
        timbral = (track_rows.where(F.col("status").isin(*FEATURE_STATUSES) & F.col("timbral").isNotNull())
                   .select("track_id", F.col("timbral").alias("vector"), "feature_version"))
        status_rows = track_rows.select(*STATUS_COLUMNS, "feature_version", F.current_timestamp().alias("extracted_at"))
        report.update(statuses=statuses, segments_written=segments.count(), timbral_rows_written=timbral.count())
        ids = todo.select("track_id")
        with step("write vocal_segments"):
            replace_tracks(spark, segments, segments_ref, ids)
        with step("write timbral_features"):
            replace_tracks(spark, timbral, timbral_ref, ids)
        with step("write audio_status"):
            # Written last: a crash before this point leaves the tracks to be redone by the next run.
            merge_upsert(spark, status_rows, status_ref, keys=["track_id"])
        result.unpersist()
    todo.unpersist()
    log.info("extracted %d tracks %s: %d segments, %d timbral vectors", n_todo, report["statuses"],
             report["segments_written"], report["timbral_rows_written"])
    write_report(cfg.output.report_dir, "extract_features", "Audio feature extraction report", report)
    return report
