"""The end-to-end demo: every stage that exists, in order, on the embedded synthetic catalog."""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import functions as F

from lid_spark.config import Config
from lid_spark.progress import get_logger, step
from lid_spark.spark import get_spark
from lid_spark.tables import merge_upsert, read_table, resolve_table

log = get_logger(__name__)


def run_demo(cfg: Config, out: Path) -> int:
    with step("start local Spark with Delta Lake"):
        spark = get_spark(cfg)
    # Pipeline skeleton: a tiny tags table written and upserted the way tag_catalog will.
    ref = resolve_table(cfg, "language_tags")
    with step(f"MERGE sample tags into {ref}"):
        first = spark.createDataFrame(
            [("t1", "en", 0.91), ("t2", "ta", 0.84), ("t3", "zxx", 1.0)], "track_id string, language string, confidence double")
        merge_upsert(spark, first, ref, keys=["track_id"])
        second = spark.createDataFrame([("t2", "te", 0.88), ("t4", "hi", 0.77)], first.schema)
        merge_upsert(spark, second, ref, keys=["track_id"])
    tags = read_table(spark, ref)
    counts = tags.groupBy("language").agg(F.count("*").alias("tracks")).orderBy("language")
    print("\nTracks per language:")
    counts.show()
    print(f"Delta tables: {Path(cfg.tables.location)}\nReport: {Path(cfg.output.report_dir)}")
    return 0
