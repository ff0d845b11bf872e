"""Naming, reading and writing tables: Delta paths or catalog names, validated, never glued into SQL.

A table reference is either a *path* (it has a ``/`` or a URI scheme: ``/data/t``, ``s3a://b/t``,
``./t``) or a *catalog name* of one to three identifiers (``language_tags``, ``lid.language_tags``,
``main.lid.language_tags``).

Example
-------
>>> ref = parse_table_ref("main.music_lid.language_tags")
>>> ref.sql()
'`main`.`music_lid`.`language_tags`'
>>> parse_table_ref("/tmp/tables/language_tags").sql()
'delta.`/tmp/tables/language_tags`'
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from lid_spark.config import Config
from lid_spark.errors import InputError, ParameterError
from lid_spark.progress import get_logger

# How an input table may be stored (inputs.<name>_format).
INPUT_FORMATS = ("auto", "delta", "parquet", "csv", "json")
# Parquet INT64 TIMESTAMP(NANOS) columns (pandas' default) are read as their integer nanoseconds
# instead of stopping the read; the contract turns them into timestamps (lid_spark.contract).
NANOS_AS_LONG = "spark.sql.legacy.parquet.nanosAsLong"
_NANOS_LOCK = threading.Lock()

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_NAME_RE = re.compile(rf"^{_IDENT}(\.{_IDENT}){{0,2}}$")
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


@dataclass(frozen=True)
class TableRef:
    """A validated table reference: ``kind`` is ``"path"`` or ``"name"``."""

    kind: str
    value: str

    @property
    def is_path(self) -> bool:
        return self.kind == "path"

    def sql(self) -> str:
        """The reference as it may appear in a SQL statement (quoted, never raw user text)."""
        if self.is_path:
            return f"delta.`{self.value}`"
        return ".".join(f"`{part}`" for part in self.value.split("."))

    def __str__(self) -> str:
        return self.value


def parse_table_ref(text: str) -> TableRef:
    """Validate ``text`` as a path or a catalog name; raise ParameterError otherwise."""
    if not isinstance(text, str) or not text.strip():
        raise ParameterError(f"table reference must be a non-empty string, got {text!r}")
    text = text.strip()
    if "/" in text or _SCHEME_RE.match(text):
        if "`" in text or "\n" in text:
            raise ParameterError(f"table path {text!r} may not contain backticks or newlines")
        return TableRef("path", text)
    if not _NAME_RE.match(text):
        raise ParameterError(
            f"{text!r} is neither a table path (use ./{text} for a relative path) nor a catalog "
            "name of the form [catalog.][schema.]table with letters, digits and underscores"
        )
    return TableRef("name", text)


def resolve_table(cfg: Config, logical_name: str) -> TableRef:
    """Where the derived table ``logical_name`` (e.g. ``"language_tags"``) lives under this config."""
    names = cfg.tables.names
    if logical_name not in names:
        raise ParameterError(f"unknown derived table {logical_name!r}; known: {', '.join(names)}")
    name = names[logical_name]
    if cfg.tables.schema:
        return parse_table_ref(f"{cfg.tables.schema}.{name}")
    location = cfg.tables.location
    if not _SCHEME_RE.match(location):
        location = os.path.abspath(location)
    return TableRef("path", f"{location.rstrip('/')}/{name}")


def input_table(cfg: Config, key: str) -> TableRef:
    """The input table configured as ``inputs.<key>``; a clear error when it is not set."""
    value = cfg.inputs[key]
    if not value:
        raise ParameterError(f"inputs.{key} is not set: give a table path or catalog name (inputs.{key}=...)")
    ref = parse_table_ref(value)
    if ref.is_path and not _SCHEME_RE.match(ref.value):
        ref = TableRef("path", os.path.abspath(ref.value))
    return ref


def table_exists(spark: SparkSession, ref: TableRef) -> bool:
    if ref.is_path:
        from delta.tables import DeltaTable

        return DeltaTable.isDeltaTable(spark, ref.value)
    return spark.catalog.tableExists(ref.value)


def read_table(spark: SparkSession, ref: TableRef, version: int | None = None) -> DataFrame:
    """Read a Delta table (optionally an older ``version``), a Parquet path, or a catalog table."""
    if ref.is_path:
        from delta.tables import DeltaTable

        if DeltaTable.isDeltaTable(spark, ref.value):
            reader = spark.read.format("delta")
            if version is not None:
                reader = reader.option("versionAsOf", version)
            return reader.load(ref.value)
        if version is not None:
            raise ParameterError(f"{ref} is not a Delta table: it has no versions to travel to")
        return read_files(spark, ref, "parquet")
    if version is not None:
        return spark.read.option("versionAsOf", version).table(ref.value)
    return spark.table(ref.value)


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def read_files(spark: SparkSession, ref: TableRef, file_format: str) -> DataFrame:
    """A directory (or file) of Parquet, CSV (with a header row; every column as text) or JSON-lines files."""
    if file_format == "parquet":
        # The setting is the session's: threads sharing it (two stages at once in a notebook) must not
        # interleave their set and restore, or the last restore leaves it on for everyone.
        with _NANOS_LOCK:
            previous = spark.conf.get(NANOS_AS_LONG, "false")
            try:
                # Only the schema is decided here: the scan keeps reading the nanoseconds as integers.
                spark.conf.set(NANOS_AS_LONG, "true")
                return spark.read.parquet(ref.value)
            except Exception as e:  # noqa: BLE001 - the Spark error is long; say what we tried
                raise InputError(f"cannot read {ref} as a Delta table or Parquet files: {_first_line(e)}") from e
            finally:
                spark.conf.set(NANOS_AS_LONG, previous)
    try:
        if file_format == "csv":
            return spark.read.option("header", "true").option("inferSchema", "false").csv(ref.value)
        if file_format == "json":
            return spark.read.json(ref.value)
    except Exception as e:  # noqa: BLE001
        raise InputError(f"cannot read {ref} as {file_format} files: {_first_line(e)}") from e
    raise ParameterError(f"unknown file format {file_format!r}; known: {', '.join(INPUT_FORMATS)}")


def read_input(spark: SparkSession, cfg: Config, key: str) -> DataFrame:
    """The input table ``inputs.<key>`` (tracks, plays, labels) read as ``inputs.<key>_format`` says and
    conformed to the data contract (:func:`lid_spark.contract.conform`)."""
    from lid_spark.contract import conform

    ref = input_table(cfg, key)
    file_format = cfg.inputs.get(f"{key}_format", "auto")
    if file_format in ("csv", "json", "parquet") and not ref.is_path:
        raise ParameterError(f"inputs.{key}_format={file_format} needs a path, but inputs.{key} is the "
                             f"catalog table {ref}")
    if file_format == "auto":
        df = read_table(spark, ref)
    elif file_format == "delta":
        df = spark.read.format("delta").load(ref.value) if ref.is_path else spark.table(ref.value)
    else:
        df = read_files(spark, ref, file_format)
    return conform(df, key, text=file_format == "csv", source=f"inputs.{key}={ref}")


def write_table(df: DataFrame, ref: TableRef, mode: str = "overwrite", partition_by: list[str] | None = None,
                change_data_feed: bool = False) -> None:
    """Write ``df`` as a Delta table in one commit (overwrite replaces data and schema atomically).

    An overwrite or append that conflicts with a concurrent writer is retried (:func:`retry_on_conflict`).
    """
    writer = df.write.format("delta").mode(mode)
    if mode == "overwrite":
        writer = writer.option("overwriteSchema", "true")
    if change_data_feed:
        writer = writer.option("delta.enableChangeDataFeed", "true")
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    if mode == "error":  # a create: a lost race is the caller's to handle (see _create_once)
        _save(writer, ref)
        return
    # One commit; an overwrite or append that loses to a concurrent writer committed nothing: redo it.
    retry_on_conflict(lambda: _save(writer, ref), ref, f"{mode} of")


def _save(writer, ref: TableRef) -> None:
    if ref.is_path:
        writer.save(ref.value)
    else:
        writer.saveAsTable(ref.value)


def dedupe_latest(df: DataFrame, keys: list[str], order_by: str | None) -> DataFrame:
    """One row per key: the one with the greatest ``order_by`` (ties broken by all columns)."""
    order = [F.col(order_by).desc_nulls_last()] if order_by else []
    order += [F.col(c).asc_nulls_last() for c in df.columns if c not in keys and c != order_by
              and _orderable(df, c)]
    if not order:
        return df.dropDuplicates(keys)
    window = Window.partitionBy(*keys).orderBy(*order)
    return df.withColumn("_rank", F.row_number().over(window)).filter("_rank = 1").drop("_rank")


def _orderable(df: DataFrame, column: str) -> bool:
    type_name = df.schema[column].dataType.typeName()
    return type_name not in ("map", "array", "struct", "binary")


def _delta_table(spark: SparkSession, ref: TableRef):
    from delta.tables import DeltaTable

    return DeltaTable.forPath(spark, ref.value) if ref.is_path else DeltaTable.forName(spark, ref.value)


def _conflicts() -> tuple[type[BaseException], ...]:
    """Delta's optimistic-concurrency failures: another writer committed first; nothing of ours landed."""
    from delta import exceptions as delta_errors

    # delta-spark's Python classes do not share a base class, so name each conflict kind.
    return (delta_errors.DeltaConcurrentModificationException, delta_errors.ConcurrentAppendException,
            delta_errors.ConcurrentWriteException, delta_errors.ConcurrentDeleteReadException,
            delta_errors.ConcurrentDeleteDeleteException, delta_errors.ConcurrentTransactionException,
            delta_errors.MetadataChangedException, delta_errors.ProtocolChangedException)


# Conflicts retried by the writes of this module, since the process started (the tests read it).
CONFLICT_RETRIES = {"count": 0}


def retry_on_conflict(action, ref: TableRef, what: str, max_attempts: int = 5, base_delay_s: float = 0.5):
    """Run ``action()`` (one Delta commit) until it does not lose to a concurrent writer.

    A conflicting commit wrote nothing, so running the (idempotent) action again against the new
    snapshot is correct. The wait doubles each time, with jitter so that two losers do not collide
    again; after ``max_attempts`` the error says to rerun the job.
    """
    conflicts = _conflicts()
    for attempt in range(1, max_attempts + 1):
        try:
            return action()
        except conflicts as e:
            if attempt == max_attempts:
                raise RuntimeError(f"{what} {ref} lost to concurrent writers {max_attempts} times; "
                                   "rerun the job (it is idempotent)") from e
            CONFLICT_RETRIES["count"] += 1
            delay = base_delay_s * 2 ** (attempt - 1) * (1 + random.random())
            get_logger(__name__).info("%s %s lost to a concurrent writer (%s); retry %d in %.1f s", what, ref,
                        type(e).__name__, attempt, delay)
            time.sleep(delay)


def _create_once(spark: SparkSession, rows: DataFrame, ref: TableRef, change_data_feed: bool = False) -> bool:
    """Create the table from ``rows`` if it does not exist; False when it exists (or another run created it).

    Mode "error", not "overwrite": when two first runs race, the loser must not replace the winner's
    rows; it fails to create and MERGEs into the table like any later run.
    """
    if table_exists(spark, ref):
        return False
    try:
        write_table(rows, ref, mode="error", change_data_feed=change_data_feed)
        return True
    except Exception:
        if not table_exists(spark, ref):  # not a lost race: a real failure
            raise
        return False


REPLACE_FLAG = "_lid_replace_delete"


def replace_tracks(spark: SparkSession, rows: DataFrame, ref: TableRef, track_ids: DataFrame,
                   keys: list[str], max_attempts: int = 5) -> None:
    """Make the rows of ``track_ids`` in the table at ``ref`` exactly ``rows``, in one Delta commit.

    One MERGE by ``keys`` (``track_id`` first, e.g. ``["track_id", "seg_idx"]``): a new row updates
    the row with its key or is inserted, and a row of a replaced track whose key is not among the new
    rows (a segment that no longer exists, a timbral vector of a track that now has none) is deleted.
    The rows to delete are read from the table inside each attempt, so a retry after a concurrent
    writer sees that writer's rows. A reader sees every track either all old or all new, and two runs
    replacing the same track at once leave exactly one copy of its rows (the loser retries; see
    docs/reliability.md). The table is created from ``rows`` when missing.
    """
    if keys[0] != "track_id":
        raise ParameterError(f"replace_tracks keys must start with track_id, got {keys}")
    if _create_once(spark, rows, ref):
        return
    columns = rows.columns
    new = rows.withColumn(REPLACE_FLAG, F.lit(False))
    condition = " AND ".join(f"t.`{k}` = s.`{k}`" for k in keys)
    values = {f"`{c}`": f"s.`{c}`" for c in columns}

    def merge_once():
        replaced = track_ids.select("track_id").distinct()
        stale = (read_table(spark, ref).join(replaced, "track_id", "left_semi").select(*keys).distinct()
                 .join(rows.select(*keys), keys, "left_anti").withColumn(REPLACE_FLAG, F.lit(True)))
        source = new.unionByName(stale, allowMissingColumns=True)
        (_delta_table(spark, ref).alias("t").merge(source.alias("s"), condition)
         .whenMatchedDelete(condition=f"s.{REPLACE_FLAG}")
         .whenMatchedUpdate(set=values)
         .whenNotMatchedInsert(condition=f"NOT s.{REPLACE_FLAG}", values=values)
         .execute())

    retry_on_conflict(merge_once, ref, "MERGE (replace tracks) into", max_attempts)


def merge_upsert(spark: SparkSession, source: DataFrame, ref: TableRef, keys: list[str],
                 order_by: str | None = None, update_when: str | None = None,
                 change_data_feed: bool = True, max_attempts: int = 5,
                 schema_evolution: bool = False) -> dict[str, int]:
    """MERGE ``source`` into the Delta table at ``ref`` by ``keys``; create the table if missing.

    The source is deduplicated on ``keys`` first (Delta refuses several source rows per target row),
    keeping the row with the greatest ``order_by``. ``update_when`` is an optional SQL condition over
    ``t`` (target) and ``s`` (source) that limits which matched rows are rewritten, so an unchanged
    rerun rewrites nothing. A MERGE that conflicts with a concurrent writer is retried up to
    ``max_attempts`` times. With ``schema_evolution`` a source column the table lacks is added to it
    (a table written by an older version). Returns Delta's operation metrics (rows inserted, updated, ...).
    """
    if not keys:
        raise ParameterError("merge_upsert needs at least one key column")
    missing = [k for k in keys if k not in source.columns]
    if missing:
        raise InputError(f"MERGE source lacks key column(s) {missing}; it has {source.columns}")
    source = dedupe_latest(source, keys, order_by)
    if _create_once(spark, source, ref, change_data_feed=change_data_feed):
        return {"numTargetRowsInserted": read_table(spark, ref).count(), "numTargetRowsUpdated": 0,
                "numTargetRowsDeleted": 0}
    condition = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)

    def merge_once():
        builder = _delta_table(spark, ref).alias("t").merge(source.alias("s"), condition)
        if schema_evolution:
            builder = builder.withSchemaEvolution()
        (builder.whenMatchedUpdateAll(condition=update_when)
         .whenNotMatchedInsertAll()
         .execute())

    retry_on_conflict(merge_once, ref, "MERGE into", max_attempts)
    target = _delta_table(spark, ref)
    last = target.history(1).select("operation", "operationMetrics").first()
    metrics = dict(last["operationMetrics"] or {}) if last["operation"] == "MERGE" else {}
    return {k: int(v) for k, v in metrics.items() if v is not None and str(v).lstrip("-").isdigit()}
