"""Extract audio features of the catalog into vocal_segments, timbral_features and audio_status.

Per track, in a pandas UDF: decode -> vocal separation -> silence removal into vocal segments
(spread over the whole track) -> spoken-LID embedding and language scores per segment; and the
timbral codebook vector of the mixture (run fit_codebook first). Every track tried gets one
audio_status row (ok, truncated, no_vocals, silent, missing_file, unreadable, empty, ...).

Incremental: only tracks whose audio_uri, audio file (its size and modification stamp) or feature
version changed since the last run, or whose extraction failed (statuses failed, separation_failed),
are processed (the version covers the extraction settings, codebook and spoken-LID model); a rerun
with nothing changed writes nothing. A report goes to <output.report_dir>/extract_features.json.

Writes: one Delta commit per table, in this order: vocal_segments, timbral_features (each one MERGE
that replaces the extracted tracks' rows: no reader sees a track half-replaced), then audio_status
(one MERGE). audio_status is the record of what is done: a track is "done" only once its features
are committed, so a run killed anywhere leaves the next run to redo exactly the tracks not recorded.
Two runs at once on the same tables end with one copy of each track's rows (docs/reliability.md).
"""

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lid_spark.audio.pipeline import feature_version, spoken_lid_tag
from lid_spark.audio.timbral import Codebook, codebook_dir
from lid_spark.config import Config
from lid_spark.contract import has_track_id, implausible_duration, is_synthetic_catalog
from lid_spark.faults import fault_point
from lid_spark.progress import get_logger, step
from lid_spark.reports import write_report
from lid_spark.schemas import (
    EMBEDDED_ON_REAL_CATALOG,
    EXTRACT_SCHEMA,
    FEATURE_STATUSES,
    RETRY_STATUSES,
    SEGMENT,
    SEGMENT_COLUMNS,
    STAT_SCHEMA,
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
from lid_spark.udfs.audio_features import arrow_batch_rows, audio_stat_udf, extract_features_udf


def tracks_to_extract(spark: SparkSession, tracks: DataFrame, status_ref: TableRef, version: str) -> DataFrame:
    """Tracks without an audio_status row for the same audio_uri, audio file and feature version, or that failed.

    ``tracks`` has track_id, audio_uri and audio_stat (the file's size and modification stamp, or
    null): a file rewritten under the same URI has a new stamp and is extracted again, and so is a
    file that appeared where there was none.
    """
    if not table_exists(spark, status_ref):
        return tracks
    done = read_table(spark, status_ref).where(~F.col("status").isin(*RETRY_STATUSES))
    if "audio_stat" not in done.columns:  # a table written before the column existed: every file is new
        done = done.withColumn("audio_stat", F.lit(None).cast("string"))
    done = done.select("track_id", F.col("audio_uri").alias("_done_uri"),
                       F.col("feature_version").alias("_done_version"), F.col("audio_stat").alias("_done_stat"))
    joined = tracks.join(done, "track_id", "left")
    unchanged = (F.col("audio_uri").eqNullSafe(F.col("_done_uri")) & (F.col("_done_version") == F.lit(version))
                 & F.col("audio_stat").eqNullSafe(F.col("_done_stat")))
    return joined.where(~F.coalesce(unchanged, F.lit(False))).drop("_done_uri", "_done_version", "_done_stat")


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
        with_id = catalog.where(has_track_id())
        counts = catalog.agg(F.count(F.lit(1)).alias("rows"),
                             F.count(F.when(implausible_duration(), 1)).alias("implausible_durations")).first()
        id_counts = with_id.agg(
            F.count(F.lit(1)).alias("with_id"), F.countDistinct("track_id").alias("distinct_ids"),
            F.countDistinct(F.when(F.col("track_id") != F.trim("track_id"), F.col("track_id"))).alias("spaced"),
            F.countDistinct(F.lower("track_id")).alias("distinct_folded")).first()
        tracks = with_id.select("track_id", "audio_uri")
        unique = dedupe_latest(tracks, ["track_id"], None)
        # The file's size and modification stamp (one stat per track, no model): a rewritten file is redone.
        stats = unique.mapInPandas(audio_stat_udf(cfg.inputs.audio_root), STAT_SCHEMA)
        todo = tracks_to_extract(spark, unique.join(stats, "track_id", "left"), status_ref, version)
        todo = todo.persist(StorageLevel.MEMORY_AND_DISK)
        n_todo = todo.count()
    report = {"feature_version": version, "tracks_in": counts["rows"],
              "tracks_without_id": counts["rows"] - id_counts["with_id"],
              "duplicate_track_rows": id_counts["with_id"] - id_counts["distinct_ids"],
              "tracks_distinct": id_counts["distinct_ids"],
              # Kept as given (ids are opaque), counted: likely mistakes of the catalog's producer.
              "track_ids_with_surrounding_whitespace": id_counts["spaced"],
              "track_ids_equal_but_for_case": id_counts["distinct_ids"] - id_counts["distinct_folded"],
              "tracks_duration_implausible": counts["implausible_durations"],
              "tracks_unchanged": id_counts["distinct_ids"] - n_todo,
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
        status_rows = (track_rows.join(todo.select("track_id", "audio_stat"), "track_id", "left")
                       .select(*STATUS_COLUMNS, "feature_version", F.current_timestamp().alias("extracted_at"),
                               "audio_stat"))
        report.update(statuses=statuses, segments_written=segments.count(), timbral_rows_written=timbral.count())
        ids = todo.select("track_id")
        # One commit per table; each fault_point is a boundary the reliability tests kill the driver at.
        fault_point("extract_features:before:vocal_segments")
        with step("write vocal_segments"):
            replace_tracks(spark, segments, segments_ref, ids, keys=["track_id", "seg_idx"])
        fault_point("extract_features:after:vocal_segments")
        with step("write timbral_features"):
            replace_tracks(spark, timbral, timbral_ref, ids, keys=["track_id"])
        fault_point("extract_features:after:timbral_features")
        with step("write audio_status"):
            # Written last: a crash before this point leaves the tracks to be redone by the next run.
            merge_upsert(spark, status_rows, status_ref, keys=["track_id"], schema_evolution=True)
        fault_point("extract_features:after:audio_status")
        result.unpersist()
    todo.unpersist()
    log.info("extracted %d tracks %s: %d segments, %d timbral vectors", n_todo, report["statuses"],
             report["segments_written"], report["timbral_rows_written"])
    write_report(cfg.output.report_dir, "extract_features", "Audio feature extraction report", report)
    return report
