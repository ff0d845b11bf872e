"""Delta Lake through lid_spark.tables on the real engine: write, MERGE, time travel, SQL."""

import pytest
from pyspark.sql import functions as F

from lid_spark.errors import InputError, ParameterError
from lid_spark.tables import merge_upsert, parse_table_ref, read_table, resolve_table, table_exists, write_table

SCHEMA = "track_id string, language string, confidence double"


@pytest.mark.parametrize("text,kind,sql", [
    ("language_tags", "name", "`language_tags`"),
    ("main.lid.language_tags", "name", "`main`.`lid`.`language_tags`"),
    ("/data/tags", "path", "delta.`/data/tags`"),
    ("s3a://bucket/tags", "path", "delta.`s3a://bucket/tags`"),
    ("./tags", "path", "delta.`./tags`"),
])
def test_table_refs_parse(text, kind, sql):
    ref = parse_table_ref(text)
    assert ref.kind == kind and ref.sql() == sql


@pytest.mark.parametrize("text", ["a.b.c.d", "tags; DROP TABLE x", "1abc", "", "a-b", "/x/`y`"])
def test_bad_table_refs_rejected(text):
    with pytest.raises(ParameterError):
        parse_table_ref(text)


def test_resolve_table_path_or_catalog(table_config):
    ref = resolve_table(table_config, "language_tags")
    assert ref.is_path and ref.value.endswith("/tables/language_tags")
    cfg = table_config.with_overrides(["tables.schema=main.music_lid"])
    assert resolve_table(cfg, "language_tags").value == "main.music_lid.language_tags"
    with pytest.raises(ParameterError, match="unknown derived table"):
        resolve_table(cfg, "nope")


def test_write_merge_time_travel_and_sql(spark, table_config):
    ref = resolve_table(table_config, "language_tags")
    assert not table_exists(spark, ref)
    first = spark.createDataFrame([("t1", "en", 0.9), ("t2", "ta", 0.8)], SCHEMA)
    merge_upsert(spark, first, ref, keys=["track_id"])
    assert table_exists(spark, ref)

    # Duplicate source keys are resolved (latest confidence wins), not a MERGE failure.
    update = spark.createDataFrame([("t2", "te", 0.7), ("t2", "te", 0.95), ("t3", "hi", 0.6)], SCHEMA)
    metrics = merge_upsert(spark, update, ref, keys=["track_id"], order_by="confidence")
    assert metrics["numTargetRowsInserted"] == 1
    assert metrics["numTargetRowsUpdated"] == 1

    now = {r.track_id: (r.language, r.confidence) for r in read_table(spark, ref).collect()}
    assert now == {"t1": ("en", 0.9), "t2": ("te", 0.95), "t3": ("hi", 0.6)}
    before = {r.track_id: r.language for r in read_table(spark, ref, version=0).collect()}
    assert before == {"t1": "en", "t2": "ta"}

    rows = spark.sql(f"SELECT language, count(*) AS n FROM {ref.sql()} GROUP BY language ORDER BY language").collect()
    assert [(r.language, r.n) for r in rows] == [("en", 1), ("hi", 1), ("te", 1)]

    changes = (spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", 1)
               .load(ref.value).filter(F.col("_change_type") == "update_postimage").collect())
    assert [(r.track_id, r.language) for r in changes] == [("t2", "te")]


def test_merge_with_condition_rewrites_nothing_when_unchanged(spark, table_config):
    ref = resolve_table(table_config, "track_neighbors")
    df = spark.createDataFrame([("t1", "en", 0.9)], SCHEMA)
    merge_upsert(spark, df, ref, keys=["track_id"])
    metrics = merge_upsert(spark, df, ref, keys=["track_id"],
                           update_when="NOT (t.language <=> s.language AND t.confidence <=> s.confidence)")
    assert metrics.get("numTargetRowsUpdated", 0) == 0
    assert metrics.get("numTargetRowsInserted", 0) == 0


def test_catalog_table_by_name(spark):
    ref = parse_table_ref("lid_test_tags")
    write_table(spark.createDataFrame([("t9", "ja", 0.5)], SCHEMA), ref)
    assert table_exists(spark, ref)
    assert spark.sql(f"SELECT language FROM {ref.sql()}").first().language == "ja"
    spark.sql(f"DROP TABLE {ref.sql()}")


def test_read_parquet_input_and_unreadable_path(spark, tmp_path):
    path = str(tmp_path / "plays_parquet")
    spark.createDataFrame([("u", "t")], "user_id string, track_id string").write.parquet(path)
    assert read_table(spark, parse_table_ref(path)).count() == 1
    with pytest.raises(InputError, match="cannot read"):
        read_table(spark, parse_table_ref(str(tmp_path / "missing"))).count()


def test_concurrent_merges_both_land(spark, table_config):
    """Two writers MERGE into one table at once: Delta's conflict detection + our retry keep both."""
    import threading

    ref = resolve_table(table_config, "language_tags")
    merge_upsert(spark, spark.createDataFrame([("t0", "en", 0.5)], SCHEMA), ref, keys=["track_id"])
    errors = []

    def writer(prefix):
        try:
            for i in range(3):
                rows = [(f"{prefix}{i}", "fr", 0.1 * i), ("t0", prefix, 0.9)]
                merge_upsert(spark, spark.createDataFrame(rows, SCHEMA), ref, keys=["track_id"])
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(p,)) for p in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    rows = {r.track_id: r.language for r in read_table(spark, ref).collect()}
    assert set(rows) == {"t0", "a0", "a1", "a2", "b0", "b1", "b2"}
    assert rows["t0"] in ("a", "b")


def test_parquet_reads_from_threads_sharing_a_session_leave_its_setting_as_it_was(spark, tmp_path):
    # Each read turns nanosAsLong on for its schema and back: interleaved, the last restore left it on.
    from concurrent.futures import ThreadPoolExecutor

    from lid_spark.tables import NANOS_AS_LONG, parse_table_ref, read_files

    path = tmp_path / "plays"
    spark.range(3).write.parquet(str(path))
    ref = parse_table_ref(str(path))
    before = spark.conf.get(NANOS_AS_LONG, "false")
    with ThreadPoolExecutor(8) as pool:
        counts = list(pool.map(lambda _: read_files(spark, ref, "parquet").count(), range(32)))
    assert counts == [3] * 32
    assert spark.conf.get(NANOS_AS_LONG, "false") == before
