"""The input data contract: what tracks, plays and labels tables must look like.

Missing required columns or uncastable types are *schema* problems: a clear error at start, one
line naming the table, the column and the fix. Nulls, duplicates and unknown ids are *data*
problems: counted by the stages that read them, reported, never a crash and never silently dropped.

Tables are taken as people write them: integer ids become strings and blank ids nulls (counted as
missing ids); timestamps may be timestamps, dates, ISO 8601 strings (``2026-01-02 10:00:00``,
``2026-01-02T10:00:00Z``; a value that does not parse is null and counted) or integer epoch times,
whose unit (seconds, milliseconds, microseconds or nanoseconds: pandas' Parquet files) is read
from their magnitude. Text sources (CSV) also have their numbers as text: they are parsed.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import types as T

from lid_spark.errors import InputError

TRACKS = T.StructType([
    T.StructField("track_id", T.StringType(), False),
    T.StructField("artist_id", T.StringType(), True),
    T.StructField("audio_uri", T.StringType(), True),
    T.StructField("duration_s", T.DoubleType(), True),
    # Where the track is released (e.g. an ISO 3166 country): only the languages_per_market query uses it.
    T.StructField("market", T.StringType(), True),
])
PLAYS = T.StructType([
    T.StructField("user_id", T.StringType(), False),
    T.StructField("track_id", T.StringType(), False),
    T.StructField("ts", T.TimestampType(), False),
    T.StructField("session_id", T.StringType(), True),
])
LABELS = T.StructType([
    T.StructField("track_id", T.StringType(), False),
    T.StructField("language", T.StringType(), False),
])
CONTRACTS = {"tracks": TRACKS, "plays": PLAYS, "labels": LABELS}
# The synthetic world marks its tracks (an extra column ``provenance``) so that the pipeline can tell
# its own world from a real catalog: the embedded spoken-LID model knows only synthetic speech.
SYNTHETIC_PROVENANCE = "lid-spark synthetic world"
# Optional columns that may be absent: filled with nulls.
OPTIONAL = {"tracks": {"duration_s", "artist_id", "market"}, "plays": {"session_id"}, "labels": set()}

# A catalog duration_s longer than this (or not a positive number) is implausible: counted in the
# extract_features report. Extraction never trusts it: audio_status.duration_s is read from the file.
MAX_PLAUSIBLE_DURATION_S = 7 * 24 * 3600.0

_INTEGERS = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)
_CASTABLE = {
    T.StringType: (T.StringType, *_INTEGERS),
    T.DoubleType: (T.DoubleType, T.FloatType, *_INTEGERS, T.DecimalType),
    T.TimestampType: (T.TimestampType, T.TimestampNTZType, T.DateType, T.StringType, *_INTEGERS),
}
# Identifier columns: a blank string is a missing id.
ID_COLUMNS = frozenset({"track_id", "artist_id", "user_id", "session_id"})
# How to write each contract type (the fix named in a contract error).
_FIX = {
    T.StringType: "write it as text or integers (pandas: df[col].astype('Int64') keeps integer ids with "
                  "missing values, which float64 would turn into 1.0)",
    T.DoubleType: "write it as a number",
    T.TimestampType: "write it as a timestamp, an ISO 8601 string such as '2026-01-02 10:00:00', or epoch "
                     "seconds, milliseconds, microseconds or nanoseconds as integers",
}
# Epoch integers: at or above each bound the unit is finer (any date from 1973 to 5138 is read right).
_EPOCH_MS, _EPOCH_US, _EPOCH_NS = 10 ** 11, 10 ** 14, 10 ** 17


def epoch_timestamp(column):
    """An integer epoch-time Column as a timestamp, its unit read from its magnitude.

    Example
    -------
    >>> spark.range(1).select(epoch_timestamp(F.lit(1767261600123456789))).first()[0]  # doctest: +SKIP
    datetime.datetime(2026, 1, 1, 10, 0, 0, 123456)
    """
    from pyspark.sql import functions as F

    value = column.cast("long")
    magnitude = F.abs(value)
    return (F.when(magnitude >= _EPOCH_NS, F.timestamp_micros(F.floor(value / 1000).cast("long")))
            .when(magnitude >= _EPOCH_US, F.timestamp_micros(value))
            .when(magnitude >= _EPOCH_MS, F.timestamp_millis(value))
            .otherwise(F.timestamp_seconds(value)))


def _unreadable_timestamps(df: DataFrame, name: str, sample: int = 200) -> str | None:
    """The first of a sample of non-null strings of ``name`` when none of them parses as a timestamp."""
    from pyspark.sql import functions as F

    rows = (df.where(F.col(name).isNotNull() & (F.trim(F.col(name)) != ""))
            .select(F.col(name).alias("text"), F.col(name).try_cast(T.TimestampType()).alias("ts"))
            .limit(sample).collect())
    if rows and all(r["ts"] is None for r in rows):
        return rows[0]["text"]
    return None


def conform(df: DataFrame, table: str, text: bool = False, source: str | None = None) -> DataFrame:
    """Check ``df`` against the contract of ``table`` and return it with contract types first.

    Parameters
    ----------
    df : the table as read
    table : ``tracks``, ``plays`` or ``labels``
    text : the source holds text only (CSV): numbers written as text are parsed too
    source : where it was read from (``inputs.<table>``), named in an error

    Extra columns are kept (after the contract's). Raises InputError naming every problem and its fix.
    """
    from pyspark.sql import functions as F

    contract = CONTRACTS[table]
    problems = []
    columns = []
    for field in contract.fields:
        if field.name not in df.columns:
            if field.name in OPTIONAL[table]:
                columns.append(F.lit(None).cast(field.dataType).alias(field.name))
                continue
            problems.append(f"missing column {field.name!r} ({field.dataType.simpleString()})")
            continue
        actual = df.schema[field.name].dataType
        allowed = _CASTABLE.get(type(field.dataType), (type(field.dataType),))
        if text and isinstance(actual, T.StringType):
            allowed = (*allowed, T.StringType)
        if not isinstance(actual, allowed):
            problems.append(f"column {field.name!r} is {actual.simpleString()}, expected "
                            f"{field.dataType.simpleString()}: {_FIX.get(type(field.dataType), 'cast it')}")
            continue
        column = F.col(field.name)
        if isinstance(field.dataType, T.TimestampType) and isinstance(actual, _INTEGERS):
            column = epoch_timestamp(column)
        elif isinstance(field.dataType, T.TimestampType) and isinstance(actual, T.StringType):
            bad = _unreadable_timestamps(df, field.name)
            if bad is not None:
                problems.append(f"column {field.name!r} is text that does not read as a timestamp (e.g. {bad!r}): "
                                + _FIX[T.TimestampType])
                continue
            column = column.try_cast(T.TimestampType())
        elif isinstance(actual, T.StringType) and not isinstance(field.dataType, T.StringType):
            column = column.try_cast(field.dataType)   # text sources: a value that does not parse is null
        else:
            column = column.cast(field.dataType)
        if field.name in ID_COLUMNS:
            column = F.when(F.trim(column) != "", column)
        columns.append(column.alias(field.name))
    if problems:
        where = f" (read from {source})" if source else ""
        raise InputError(f"the {table} table does not meet the data contract: " + "; ".join(problems)
                         + f". It has columns {df.columns}{where}.")
    extra = [F.col(c) for c in df.columns if c not in contract.fieldNames()]
    return df.select(*columns, *extra)


def implausible_duration(column: str = "duration_s"):
    """A boolean Column: the catalog duration is given but NaN, infinite, not positive or longer than a week.

    Example
    -------
    >>> tracks.where(implausible_duration()).count()  # doctest: +SKIP
    """
    from pyspark.sql import functions as F

    value = F.col(column)
    return value.isNotNull() & (F.isnan(value) | (value <= 0) | (value > F.lit(MAX_PLAUSIBLE_DURATION_S)))


def is_synthetic_catalog(tracks: DataFrame) -> bool:
    """Whether every row of a tracks table comes from lid-spark's synthetic world (its ``provenance``
    column; a real catalog has no such column, or other values in it). An empty table counts as synthetic."""
    from pyspark.sql import functions as F

    if "provenance" not in tracks.columns:
        return False
    other = tracks.where(~F.coalesce(F.col("provenance").cast("string") == SYNTHETIC_PROVENANCE, F.lit(False)))
    return other.limit(1).count() == 0


def has_track_id(column: str = "track_id"):
    """A boolean Column: the row has a track id (not null, not empty, not only whitespace: spaces, tabs, newlines).

    A blank id names no track: extract_features counts such rows under ``tracks_without_id`` and
    tag_catalog under ``invalid_track_rows``, as the plays and labels stages do. Any other id is
    kept exactly as given (ids are opaque: ``" t1"``, ``"T1"`` and ``"t1"`` are three tracks; the
    extract_features report counts ids with surrounding whitespace and ids equal but for case).

    Example
    -------
    >>> tracks.where(has_track_id()).count()  # doctest: +SKIP
    """
    from pyspark.sql import functions as F

    value = F.col(column)
    return value.isNotNull() & ~value.rlike(r"^\s*$")
