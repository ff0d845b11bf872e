"""The input data contract: what tracks, plays and labels tables must look like.

Missing required columns or uncastable types are *schema* problems: a clear error at start.
Nulls, duplicates and unknown ids are *data* problems: counted by the stages that read them,
reported, never a crash and never silently dropped.
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
# Optional columns that may be absent: filled with nulls.
OPTIONAL = {"tracks": {"duration_s", "artist_id", "market"}, "plays": {"session_id"}, "labels": set()}

# A catalog duration_s longer than this (or not a positive number) is implausible: counted in the
# extract_features report. Extraction never trusts it: audio_status.duration_s is read from the file.
MAX_PLAUSIBLE_DURATION_S = 7 * 24 * 3600.0

_CASTABLE = {
    T.StringType: (T.StringType, T.IntegerType, T.LongType),
    T.DoubleType: (T.DoubleType, T.FloatType, T.IntegerType, T.LongType, T.DecimalType),
    T.TimestampType: (T.TimestampType, T.TimestampNTZType, T.DateType),
}


def conform(df: DataFrame, table: str) -> DataFrame:
    """Check ``df`` against the contract of ``table`` and return it with contract types first.

    Extra columns are kept (after the contract's). Raises InputError naming every problem.
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
        if not isinstance(actual, allowed):
            problems.append(f"column {field.name!r} is {actual.simpleString()}, expected "
                            f"{field.dataType.simpleString()}")
            continue
        columns.append(F.col(field.name).cast(field.dataType).alias(field.name))
    if problems:
        raise InputError(f"the {table} table does not meet the data contract: " + "; ".join(problems)
                         + f". It has columns {df.columns}.")
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
