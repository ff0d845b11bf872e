"""Plays -> sessions -> distinct tracks per session, with every play accounted for.

:func:`label_plays` gives each input play exactly one ``reason``: ``used`` or the reason it was
left out. The reasons, in the order they are checked:

``null_user_id``, ``null_track_id``, ``null_ts``
    a required field is null or empty.
``future_ts``, ``ancient_ts``
    clock skew: later than the run's start plus a tolerance, or before ``min_valid_ts``.
``unknown_track``
    the track is not in the tracks table.
``duplicate_play``
    the same (user, track, ts, session_id) was seen before: one copy is kept.
``bot_session``
    the session has more distinct tracks than ``bot_session_tracks``: a bot or a player left on,
    not a listener's taste. Its plays are reported and make no pairs.
``repeat_in_session``
    the track was already played in this session: a session counts a track once.
``session_cap``
    the session has more distinct tracks than ``max_tracks_per_session``; those with the smallest
    ``xxhash64(session_key, track_id, seed)`` are kept. The hash makes this a uniform sample
    without replacement that is the same on every run and every cluster, whatever the
    partitioning, and bounds the pairs of one session to ``cap * (cap - 1) / 2``.

Sessions: a play with a ``session_id`` belongs to the session ``(user_id, session_id)``. Plays
without one are split per user at every inactivity gap longer than ``gap_minutes`` (plays are
ordered by timestamp, so plays that arrive out of order are placed where their clock says).

Example (``plays`` and ``tracks`` are DataFrames conformed to the data contract)::

    labelled = label_plays(plays, tracks, now=datetime(2026, 1, 1))
    reason_counts(labelled).show()
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from lid_spark.errors import ParameterError

USED = "used"
REASONS = ("null_user_id", "null_track_id", "null_ts", "future_ts", "ancient_ts", "unknown_track",
           "duplicate_play", "bot_session", "repeat_in_session", "session_cap", USED)
_SEP = "\u001f"  # unit separator: cannot clash with ids joined into a session key


def _blank(col: str) -> Column:
    return F.col(col).isNull() | (F.trim(F.col(col)) == "")


def label_plays(plays: DataFrame, tracks: DataFrame, *, now: datetime, gap_minutes: float = 30.0,
                max_tracks_per_session: int = 50, bot_session_tracks: int = 1000, seed: int = 11,
                future_tolerance_minutes: float = 60.0,
                min_valid_ts: datetime = datetime(2000, 1, 1)) -> DataFrame:
    """Label every play with a ``session_key`` (for used plays) and a ``reason``.

    Parameters
    ----------
    plays : DataFrame
        ``user_id, track_id, ts, session_id`` (the plays contract; conform it first).
    tracks : DataFrame
        the catalog; only ``track_id`` is read.
    now : datetime
        the run's start (UTC): plays after ``now + future_tolerance_minutes`` are clock skew.
    gap_minutes, max_tracks_per_session, bot_session_tracks, seed
        see the module docstring.

    Returns
    -------
    DataFrame
        one row per input play: the play's columns plus ``session_key`` (null unless the play
        reached sessionization) and ``reason`` (one of :data:`REASONS`).
    """
    if gap_minutes <= 0:
        raise ParameterError(f"cooccurrence.session_gap_minutes must be > 0, got {gap_minutes}")
    if max_tracks_per_session < 2:
        raise ParameterError(f"cooccurrence.max_tracks_per_session must be >= 2, got {max_tracks_per_session}")
    if bot_session_tracks < max_tracks_per_session:
        raise ParameterError(f"cooccurrence.bot_session_tracks ({bot_session_tracks}) must be >= "
                             f"cooccurrence.max_tracks_per_session ({max_tracks_per_session})")
    latest = now + timedelta(minutes=future_tolerance_minutes)
    known = tracks.select(F.col("track_id").alias("_known_id")).where(F.col("_known_id").isNotNull()).distinct()
    plays = plays.select("user_id", "track_id", "ts", "session_id")
    plays = plays.join(known, plays["track_id"] == known["_known_id"], "left")
    early = (
        F.when(_blank("user_id"), "null_user_id")
        .when(_blank("track_id"), "null_track_id")
        .when(F.col("ts").isNull(), "null_ts")
        .when(F.col("ts") > F.lit(latest), "future_ts")
        .when(F.col("ts") < F.lit(min_valid_ts), "ancient_ts")
        .when(F.col("_known_id").isNull(), "unknown_track")
    )
    plays = plays.withColumn("reason", early).drop("_known_id")
    rejected = plays.where(F.col("reason").isNotNull()).withColumn("session_key", F.lit(None).cast("string"))
    valid = plays.where(F.col("reason").isNull())

    same_play = Window.partitionBy("user_id", "track_id", "ts", "session_id").orderBy("ts")
    valid = valid.withColumn("_copy", F.row_number().over(same_play))
    duplicates = (valid.where(F.col("_copy") > 1).drop("_copy")
                  .withColumn("reason", F.lit("duplicate_play"))
                  .withColumn("session_key", F.lit(None).cast("string")))
    valid = valid.where(F.col("_copy") == 1).drop("_copy")

    sessions = with_session_key(valid, gap_minutes)
    labelled = _label_within_sessions(sessions, max_tracks_per_session, bot_session_tracks, seed)
    columns = ["user_id", "track_id", "ts", "session_id", "session_key", "reason"]
    return labelled.select(columns).unionByName(rejected.select(columns)).unionByName(duplicates.select(columns))


def with_session_key(plays: DataFrame, gap_minutes: float) -> DataFrame:
    """Add ``session_key``: ``(user, session_id)`` when given, else a per-user inactivity-gap session."""
    has_id = F.col("session_id").isNotNull() & (F.trim(F.col("session_id")) != "")
    by_user = Window.partitionBy("user_id", "_has_id").orderBy("ts", "track_id")
    gap_s = F.col("ts").cast("double") - F.lag(F.col("ts").cast("double")).over(by_user)
    starts = F.when(gap_s.isNull() | (gap_s > gap_minutes * 60.0), 1).otherwise(0)
    plays = plays.withColumn("_has_id", has_id).withColumn("_start", starts)
    plays = plays.withColumn("_gap_session", F.sum("_start").over(
        by_user.rowsBetween(Window.unboundedPreceding, Window.currentRow)))
    key = F.when(F.col("_has_id"), F.concat_ws(_SEP, "user_id", F.lit("s"), "session_id")).otherwise(
        F.concat_ws(_SEP, "user_id", F.lit("g"), F.col("_gap_session").cast("string")))
    return plays.withColumn("session_key", key).drop("_has_id", "_start", "_gap_session")


def _label_within_sessions(plays: DataFrame, cap: int, bot_tracks: int, seed: int) -> DataFrame:
    same_track = Window.partitionBy("session_key", "track_id").orderBy("ts")
    session = Window.partitionBy("session_key")
    plays = plays.withColumn("_first", F.row_number().over(same_track) == 1)
    plays = plays.withColumn("_distinct", F.sum(F.col("_first").cast("int")).over(session))
    sample_order = Window.partitionBy("session_key").orderBy(
        F.col("_first").desc(), F.xxhash64("session_key", "track_id", F.lit(seed)), "track_id")
    plays = plays.withColumn("_sample_rank", F.row_number().over(sample_order))
    reason = (
        F.when(F.col("_distinct") > bot_tracks, "bot_session")
        .when(~F.col("_first"), "repeat_in_session")
        .when(F.col("_sample_rank") > cap, "session_cap")
        .otherwise(USED)
    )
    return plays.withColumn("reason", reason)


def session_tracks(labelled: DataFrame) -> DataFrame:
    """The distinct ``(session_key, user_id, track_id)`` of used plays: the input of pair counting."""
    return labelled.where(F.col("reason") == USED).select("session_key", "user_id", "track_id")


def reason_counts(labelled: DataFrame) -> DataFrame:
    """``reason, plays, sessions, users``: how many plays went where (the rows add up to the input)."""
    return (labelled.groupBy("reason")
            .agg(F.count(F.lit(1)).alias("plays"),
                 F.countDistinct("session_key").alias("sessions"),
                 F.countDistinct("user_id").alias("users"))
            .orderBy("reason"))


def label_configured_plays(spark, cfg, now: datetime) -> tuple[DataFrame, DataFrame]:
    """Read ``inputs.plays`` and ``inputs.tracks`` (conformed to the contract) and label the plays
    with the ``cooccurrence`` settings. Returns ``(plays, labelled)``."""
    from lid_spark.tables import read_input

    co = cfg.cooccurrence
    plays = read_input(spark, cfg, "plays")
    tracks = read_input(spark, cfg, "tracks")
    labelled = label_plays(
        plays, tracks, now=now, gap_minutes=co.session_gap_minutes,
        max_tracks_per_session=co.max_tracks_per_session, bot_session_tracks=co.bot_session_tracks,
        seed=co.sample_seed, future_tolerance_minutes=co.future_tolerance_minutes,
        min_valid_ts=datetime.fromisoformat(co.min_valid_ts))
    return plays, labelled
