"""Popularity and hubness corrections of pair scores, top-k neighbours, and their measurements.

Raw LLR grows with the counts, so popular tracks get large scores with everyone and become *hubs*:
they sit in the top-k lists of many tracks (high k-occurrence) while most tracks sit in none.
Two corrections, applied in this order to every directed edge a -> b with positive LLR:

1. popularity: ``s = llr / (n_a * n_b) ** power`` divides out a power of both marginals.
2. hubness, Gaussian *mutual proximity* (Schnitzer et al. 2012): b is a close neighbour of a only
   if the score is high in a's score distribution *and* in b's. With ``F_x`` the normal CDF fitted
   to the log-scores of x's edges, ``mp(a, b) = F_a(log s) * F_b(log s)``, in (0, 1). A hub has
   high scores with many tracks, so a given score is ordinary for it and is discounted.

Both are measured on the resulting top-k graph (:func:`graph_measures`): the skewness of the
k-occurrence distribution (0 for a graph where every track is a neighbour equally often) and the
Spearman correlation between an edge's score and the neighbour's popularity.
"""

from __future__ import annotations

import math

import numpy as np
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from lid_spark.errors import ParameterError

HUBNESS_METHODS = ("none", "mutual_proximity")

# Abramowitz & Stegun 7.1.26: erf to 1.5e-7, from Spark's arithmetic (Spark SQL has no erf).
_AS_P = 0.3275911
_AS_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def normal_cdf_column(z: Column) -> Column:
    """The standard normal CDF of a Spark column (absolute error below 1e-7)."""
    x = F.abs(z) / math.sqrt(2.0)
    t = 1.0 / (1.0 + _AS_P * x)
    poly = t * (_AS_A[0] + t * (_AS_A[1] + t * (_AS_A[2] + t * (_AS_A[3] + t * _AS_A[4]))))
    erf_abs = 1.0 - poly * F.exp(-x * x)
    return F.when(z >= 0, 0.5 * (1.0 + erf_abs)).otherwise(0.5 * (1.0 - erf_abs))


def directed_edges(scored_pairs: DataFrame) -> DataFrame:
    """Both directions of every positively associated pair.

    Returns ``track_id, neighbor_id, llr, n_pair, n_track, n_neighbor`` (n_* are session counts).
    """
    positive = scored_pairs.where(F.col("score") > 0)
    forward = positive.select(F.col("track_a").alias("track_id"), F.col("track_b").alias("neighbor_id"),
                              F.col("score").alias("llr"), F.col("n_sessions").alias("n_pair"),
                              F.col("n_a").alias("n_track"), F.col("n_b").alias("n_neighbor"))
    backward = positive.select(F.col("track_b").alias("track_id"), F.col("track_a").alias("neighbor_id"),
                               F.col("score").alias("llr"), F.col("n_sessions").alias("n_pair"),
                               F.col("n_b").alias("n_track"), F.col("n_a").alias("n_neighbor"))
    return forward.unionByName(backward)


def correct_scores(edges: DataFrame, popularity_power: float = 0.5, hubness: str = "mutual_proximity") -> DataFrame:
    """Add ``score``: the LLR after the popularity and hubness corrections (module docstring).

    Parameters
    ----------
    edges : DataFrame
        from :func:`directed_edges` (symmetric: every a -> b has its b -> a).
    popularity_power : float
        0 leaves the LLR as it is; 1 divides by the product of the marginals.
    hubness : str
        ``"none"`` or ``"mutual_proximity"``.
    """
    if hubness not in HUBNESS_METHODS:
        raise ParameterError(f"cooccurrence.hubness_correction must be one of {HUBNESS_METHODS}, got {hubness!r}")
    if popularity_power < 0:
        raise ParameterError(f"cooccurrence.popularity_power must be >= 0, got {popularity_power}")
    base = F.col("llr") / F.pow(F.col("n_track").cast("double") * F.col("n_neighbor").cast("double"),
                                F.lit(float(popularity_power)))
    edges = edges.withColumn("score", base)
    if hubness == "none":
        return edges
    edges = edges.withColumn("_log_s", F.log(F.col("score")))
    stats = edges.groupBy("track_id").agg(F.avg("_log_s").alias("_mu"), F.stddev_pop("_log_s").alias("_sigma"))
    a = stats.select("track_id", F.col("_mu").alias("_mu_a"), F.col("_sigma").alias("_sd_a"))
    b = stats.select(F.col("track_id").alias("neighbor_id"), F.col("_mu").alias("_mu_b"),
                     F.col("_sigma").alias("_sd_b"))
    edges = edges.join(a, "track_id").join(b, "neighbor_id")

    def cdf(mu: str, sd: str) -> Column:
        # one edge (or all equal): the score is the track's typical score, F = 1/2
        z = F.when(F.col(sd) > 1e-12, (F.col("_log_s") - F.col(mu)) / F.col(sd)).otherwise(F.lit(0.0))
        return normal_cdf_column(z)

    edges = edges.withColumn("score", cdf("_mu_a", "_sd_a") * cdf("_mu_b", "_sd_b"))
    return edges.drop("_log_s", "_mu_a", "_sd_a", "_mu_b", "_sd_b")


def top_k(edges: DataFrame, k: int, score: str = "score") -> DataFrame:
    """The ``k`` best neighbours of each track by ``score`` (ties: smaller neighbor_id), with ``rank`` 1..k."""
    if k < 1:
        raise ParameterError(f"cooccurrence.top_k must be >= 1, got {k}")
    order = Window.partitionBy("track_id").orderBy(F.col(score).desc(), F.col("neighbor_id"))
    return edges.withColumn("rank", F.row_number().over(order)).where(F.col("rank") <= k)


def neighbor_graph(cooccurrence: DataFrame, k: int, popularity_power: float = 0.5,
                   hubness: str = "mutual_proximity") -> DataFrame:
    """track_neighbors from scored pairs: corrected scores, top-k per track (see module docstring)."""
    corrected = correct_scores(directed_edges(cooccurrence), popularity_power, hubness)
    return top_k(corrected, k).select("track_id", "neighbor_id", "rank", "score", "llr", "n_pair",
                                      "n_track", "n_neighbor")


def graph_measures(neighbors: DataFrame, tracks: DataFrame, score: str = "score") -> dict[str, float]:
    """Hubness and popularity bias of a top-k graph.

    Parameters
    ----------
    neighbors : DataFrame
        ``track_id, neighbor_id, <score>, n_neighbor`` (one row per kept edge).
    tracks : DataFrame
        ``track_id``: every track that could be a neighbour (k-occurrence 0 counts too).

    Returns
    -------
    dict
        ``k_occurrence_skewness``, ``k_occurrence_max``, ``tracks_never_neighbor`` (share),
        ``score_popularity_spearman``, ``score_popularity_pearson`` (score vs log popularity of the
        neighbour, over edges) and ``edges``.
    """
    occurrence = neighbors.groupBy("neighbor_id").agg(F.count(F.lit(1)).alias("k_occ"))
    occ = (tracks.select("track_id").distinct()
           .join(occurrence.withColumnRenamed("neighbor_id", "track_id"), "track_id", "left")
           .fillna(0, ["k_occ"]))
    row = occ.agg(F.skewness("k_occ").alias("skew"), F.max("k_occ").alias("max"),
                  F.avg((F.col("k_occ") == 0).cast("double")).alias("never")).first()
    # corr() divides by zero (an error under ANSI SQL) when a side is constant, as on a tiny catalog.
    x, y = F.col(score).cast("double"), F.log1p(F.col("n_neighbor"))
    pearson_row = neighbors.agg(F.try_divide(F.covar_pop(x, y), F.stddev_pop(x) * F.stddev_pop(y)).alias("r"),
                                F.count(F.lit(1)).alias("n")).first()
    return {
        "k_occurrence_skewness": _num(row["skew"]),
        "k_occurrence_max": int(row["max"] or 0),
        "tracks_never_neighbor": _num(row["never"]),
        "score_popularity_spearman": spearman(neighbors, score, "n_neighbor"),
        "score_popularity_pearson": _num(pearson_row["r"]),
        "edges": int(pearson_row["n"]),
    }


def spearman(df: DataFrame, x: str, y: str) -> float:
    """Spearman rank correlation of two numeric columns, computed by Spark ML (distributed ranks)."""
    from pyspark.ml.feature import VectorAssembler
    from pyspark.ml.stat import Correlation

    vec = VectorAssembler(inputCols=[x, y], outputCol="_xy").transform(
        df.select(F.col(x).cast("double").alias(x), F.col(y).cast("double").alias(y)).dropna())
    if vec.limit(2).count() < 2:
        return float("nan")
    matrix = Correlation.corr(vec, "_xy", method="spearman").first()[0]
    return _num(matrix[0, 1])


def _num(value) -> float:
    return float("nan") if value is None else float(value)


def k_occurrence_skewness(neighbor_lists: np.ndarray, n_items: int) -> float:
    """Skewness of the k-occurrence distribution of a top-k graph given as index lists (numpy).

    Parameters
    ----------
    neighbor_lists : np.ndarray
        int array (n_queries, k) of neighbour indices in ``[0, n_items)``.
    n_items : int
        how many items could appear as neighbours.

    Example
    -------
    >>> round(k_occurrence_skewness(np.array([[0], [0], [0], [1]]), 4), 3)
    0.816
    """
    counts = np.bincount(np.asarray(neighbor_lists).ravel(), minlength=n_items).astype(np.float64)
    sd = counts.std()
    if sd == 0:
        return 0.0
    return float(((counts - counts.mean()) ** 3).mean() / sd ** 3)
