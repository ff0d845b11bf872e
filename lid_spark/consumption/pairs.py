"""Same-session pair statistics and Dunning's log-likelihood ratio.

For a pair of tracks (a, b) over N sessions, with ``k11`` sessions holding both, ``n_a`` holding a
and ``n_b`` holding b, the 2x2 contingency table is::

                 b in session      b not in session
    a in          k11               n_a - k11
    a not in      n_b - k11         N - n_a - n_b + k11

and G^2 = 2 * sum O * ln(O / E) over its cells (Dunning 1993), computed here in the entropy form
``2 * (xlogx(cells) - xlogx(rows) - xlogx(cols) + xlogx(N))`` that is exact and stable for large
counts. G^2 is large both for pairs that meet more and less often than chance; the ``score`` we
keep is *signed*: +G^2 when ``k11 * N > n_a * n_b`` (attraction), -G^2 otherwise.

Example
-------
>>> round(float(llr(10, 10, 10, 970)), 3)
56.755
"""

from __future__ import annotations

import numpy as np
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lid_spark.errors import ParameterError


def _xlogx(x):
    x = np.asarray(x, dtype=np.float64)
    return np.where(x > 0, x * np.log(np.where(x > 0, x, 1.0)), 0.0)


def llr(k11, k12, k21, k22) -> np.ndarray:
    """Dunning's G^2 for 2x2 tables given cell counts (numpy arrays or scalars).

    Parameters
    ----------
    k11, k12, k21, k22 : array_like
        the cells: both, a only, b only, neither. Non-negative.

    Returns
    -------
    np.ndarray
        G^2 >= 0 (0 when a and b are independent in the sample).
    """
    cells = [np.asarray(k, dtype=np.float64) for k in (k11, k12, k21, k22)]
    if any(np.any(c < 0) for c in cells):
        raise ParameterError("llr: contingency counts must be non-negative")
    k11, k12, k21, k22 = cells
    n = k11 + k12 + k21 + k22
    g2 = 2.0 * (_xlogx(k11) + _xlogx(k12) + _xlogx(k21) + _xlogx(k22)
                - _xlogx(k11 + k12) - _xlogx(k21 + k22) - _xlogx(k11 + k21) - _xlogx(k12 + k22) + _xlogx(n))
    return np.maximum(g2, 0.0)  # rounding can give -1e-12 for independent tables


def signed_llr(k11, n_a, n_b, n) -> np.ndarray:
    """+G^2 for pairs seen together more often than chance, -G^2 otherwise (numpy)."""
    k11, n_a, n_b, n = (np.asarray(v, dtype=np.float64) for v in (k11, n_a, n_b, n))
    g2 = llr(k11, n_a - k11, n_b - k11, n - n_a - n_b + k11)
    return np.where(k11 * n > n_a * n_b, g2, -g2)


def _xlogx_col(c: Column) -> Column:
    return F.when(c > 0, c * F.log(c)).otherwise(F.lit(0.0))


def signed_llr_column(k11: Column, n_a: Column, n_b: Column, n: Column) -> Column:
    """The same signed G^2 as :func:`signed_llr`, as a Spark column expression."""
    k11, n_a, n_b, n = (c.cast("double") for c in (k11, n_a, n_b, n))
    k12, k21 = n_a - k11, n_b - k11
    k22 = n - n_a - n_b + k11
    g2 = 2.0 * (_xlogx_col(k11) + _xlogx_col(k12) + _xlogx_col(k21) + _xlogx_col(k22)
                - _xlogx_col(n_a) - _xlogx_col(n - n_a) - _xlogx_col(n_b) - _xlogx_col(n - n_b) + _xlogx_col(n))
    g2 = F.greatest(g2, F.lit(0.0))
    return F.when(k11 * n > n_a * n_b, g2).otherwise(-g2)


def track_marginals(session_tracks: DataFrame) -> DataFrame:
    """``track_id, n_sessions, n_users``: sessions (and distinct users) that played each track."""
    return session_tracks.groupBy("track_id").agg(
        F.count(F.lit(1)).alias("n_sessions"), F.countDistinct("user_id").alias("n_users"))


def pair_counts(session_tracks: DataFrame) -> DataFrame:
    """``track_a < track_b, n_sessions, n_users``: the self-join of sessions on themselves.

    ``session_tracks`` must hold each (session_key, track_id) once (see
    :func:`~lid_spark.consumption.sessions.session_tracks`); a session's pairs are bounded by the
    per-session cap.
    """
    a = session_tracks.select("session_key", "user_id", F.col("track_id").alias("track_a"))
    b = session_tracks.select(F.col("session_key").alias("_sk"), F.col("track_id").alias("track_b"))
    joined = a.join(b, (a["session_key"] == b["_sk"]) & (a["track_a"] < b["track_b"]))
    return joined.groupBy("track_a", "track_b").agg(
        F.count(F.lit(1)).alias("n_sessions"), F.countDistinct("user_id").alias("n_users"))


def score_pairs(pairs: DataFrame, marginals: DataFrame, n_total: int) -> DataFrame:
    """Add the marginals ``n_a, n_b``, the session total ``n_total`` and the signed LLR ``score``."""
    if n_total <= 0:
        raise ParameterError("score_pairs needs at least one session (n_total > 0)")
    ma = marginals.select(F.col("track_id").alias("track_a"), F.col("n_sessions").alias("n_a"))
    mb = marginals.select(F.col("track_id").alias("track_b"), F.col("n_sessions").alias("n_b"))
    scored = pairs.join(ma, "track_a").join(mb, "track_b").withColumn("n_total", F.lit(int(n_total)).cast("long"))
    scored = scored.withColumn("score", signed_llr_column(
        F.col("n_sessions"), F.col("n_a"), F.col("n_b"), F.col("n_total")))
    return scored.select("track_a", "track_b", "n_sessions", "n_users", "n_a", "n_b", "n_total", "score")


def filter_pairs(pairs: DataFrame, min_sessions: int, min_users: int) -> DataFrame:
    """Pairs seen in at least ``min_sessions`` sessions by at least ``min_users`` distinct users."""
    if min_sessions < 1 or min_users < 1:
        raise ParameterError(f"cooccurrence.min_sessions and min_users must be >= 1, got {min_sessions}, {min_users}")
    return pairs.where((F.col("n_sessions") >= min_sessions) & (F.col("n_users") >= min_users))


def filter_counts(pairs: DataFrame, min_sessions: int, min_users: int) -> dict[str, int]:
    """How many raw pairs each filter removes (first failing filter wins), and how many remain."""
    row = pairs.agg(
        F.count(F.lit(1)).alias("pairs"),
        F.sum((F.col("n_sessions") < min_sessions).cast("long")).alias("below_min_sessions"),
        F.sum(((F.col("n_sessions") >= min_sessions) & (F.col("n_users") < min_users)).cast("long"))
        .alias("below_min_users"),
    ).first()
    counts = {k: int(row[k] or 0) for k in ("pairs", "below_min_sessions", "below_min_users")}
    counts["kept"] = counts["pairs"] - counts["below_min_sessions"] - counts["below_min_users"]
    return counts


def cooccurrence_pairs(session_tracks: DataFrame, min_sessions: int, min_users: int) -> tuple[DataFrame, int]:
    """Filtered, scored pairs of ``session_tracks`` and the session total N (one Spark action)."""
    n_total = session_tracks.select("session_key").distinct().count()
    scored = score_pairs(filter_pairs(pair_counts(session_tracks), min_sessions, min_users),
                         track_marginals(session_tracks), n_total)
    return scored, n_total
