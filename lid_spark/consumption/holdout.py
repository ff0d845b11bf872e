"""The held-out ranking evaluation on Spark: split sessions, rebuild the graph, rank, compare peers.

See :mod:`lid_spark.consumption.ranking` for the protocol. :func:`evaluate_embeddings` runs it:
SGNS for every grid point (the best by MAP is the one to use), and the peers at the same
dimension and epochs on the same training sessions and held-out pairs.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lid_spark.consumption.debias import neighbor_graph
from lid_spark.consumption.pairs import cooccurrence_pairs, pair_counts
from lid_spark.consumption.ranking import (
    align_vectors,
    als_vectors,
    gensim_vectors,
    rank_metrics,
    spark_word2vec_vectors,
)
from lid_spark.consumption.sessions import USED, session_tracks
from lid_spark.consumption.training import fit_embeddings, graph_from_neighbors, grid_points, neighbors_to_pandas
from lid_spark.errors import ParameterError

PEERS = ("implicit_als", "spark_word2vec", "gensim_word2vec")


def split_sessions(labelled: DataFrame, holdout_fraction: float, seed: int) -> tuple[DataFrame, DataFrame]:
    """Used plays of the training and of the held-out sessions (a hash of the session key decides)."""
    if not 0 < holdout_fraction < 1:
        raise ParameterError(f"embeddings.holdout_fraction must be in (0, 1), got {holdout_fraction}")
    used = labelled.where(F.col("reason") == USED)
    bucket = F.abs(F.xxhash64("session_key", F.lit(seed))) % 10_000
    held = bucket < int(round(holdout_fraction * 10_000))
    return used.where(~held), used.where(held)


def session_sequences(used_plays: DataFrame) -> DataFrame:
    """``session_key, tracks``: each session's distinct tracks in play order (ties by track id)."""
    ordered = F.sort_array(F.collect_list(F.struct("ts", "track_id")))
    return used_plays.groupBy("session_key").agg(ordered.getField("track_id").alias("tracks"))


def relevant_pairs(heldout_plays: DataFrame, vocabulary: Sequence[str]) -> dict[int, list[int]]:
    """Query index -> indices of tracks co-listened with it in held-out sessions (both in vocabulary)."""
    spark = heldout_plays.sparkSession
    vocab = spark.createDataFrame([(t, i) for i, t in enumerate(vocabulary)], "track_id string, idx long")
    pairs = pair_counts(session_tracks(heldout_plays)).select("track_a", "track_b")
    a = vocab.select(F.col("track_id").alias("track_a"), F.col("idx").alias("ia"))
    b = vocab.select(F.col("track_id").alias("track_b"), F.col("idx").alias("ib"))
    indexed = pairs.join(a, "track_a").join(b, "track_b").select("ia", "ib").toPandas()
    relevant: dict[int, list[int]] = {}
    for ia, ib in zip(indexed["ia"].tolist(), indexed["ib"].tolist()):
        relevant.setdefault(ia, []).append(ib)
        relevant.setdefault(ib, []).append(ia)
    return {q: sorted(r) for q, r in sorted(relevant.items())}


def evaluate_embeddings(labelled: DataFrame, co: Mapping, emb: Mapping, *, grid: Mapping | None = None,
                        peers: Sequence[str] = PEERS, k: int = 10) -> dict:
    """Held-out ranking of SGNS (every grid point) and the peers.

    Parameters
    ----------
    labelled : DataFrame
        from :func:`~lid_spark.consumption.sessions.label_plays`.
    co, emb : mapping
        the ``cooccurrence`` and ``embeddings`` settings (the graph is rebuilt from the training
        sessions with the same settings as the cooccurrence job).
    grid : mapping, optional
        tunable key -> list of values for SGNS.

    Returns
    -------
    dict
        ``methods`` (name -> recall_at_k, map, queries, seconds; ``sgns`` is the best grid point),
        ``grid`` (every point with its metrics), ``best_params``, ``train_pairs``, ``vocabulary``.
    """
    unknown = [p for p in peers if p not in PEERS]
    if unknown:
        raise ParameterError(f"embeddings.peers: unknown {unknown}; known: {PEERS}")
    seed = int(emb["seed"])
    train, held = split_sessions(labelled, float(emb["holdout_fraction"]), seed)
    scored, _ = cooccurrence_pairs(session_tracks(train), int(co["min_sessions"]), int(co["min_users"]))
    neighbors = neighbor_graph(scored, int(co["top_k"]), float(co["popularity_power"]), co["hubness_correction"])
    graph = graph_from_neighbors(neighbors_to_pandas(neighbors))
    vocabulary = list(graph.vocabulary)
    relevant = relevant_pairs(held, vocabulary)
    dim, epochs = int(emb["dim"]), int(emb["epochs"])

    points = []
    for params in grid_points(emb, grid or {}):
        start = time.perf_counter()
        result = fit_embeddings(graph, params)
        metrics = rank_metrics(result.vectors, relevant, k=k)
        points.append({"params": params, **metrics, "seconds": time.perf_counter() - start,
                       "pairs_per_s": result.pairs_per_s})
    best = max(points, key=lambda p: (p["map"], p[f"recall_at_{k}"]))
    methods = {"sgns": {key: best[key] for key in (f"recall_at_{k}", "map", "queries", "seconds")}}

    sequences = session_sequences(train)
    if "implicit_als" in peers or "gensim_word2vec" in peers:
        collected = [list(t) for t in sequences.orderBy("session_key").select("tracks").toPandas()["tracks"]]
    for peer in peers:
        start = time.perf_counter()
        if peer == "implicit_als":
            index = {t: i for i, t in enumerate(vocabulary)}
            extra = sorted({t for s in collected for t in s} - set(index))
            index.update({t: len(vocabulary) + i for i, t in enumerate(extra)})
            factors = als_vectors([[index[t] for t in s] for s in collected], len(index), dim=dim,
                                  iterations=max(epochs, 15), seed=seed)
            vectors = factors[: len(vocabulary)]
        elif peer == "spark_word2vec":
            vectors = align_vectors(vocabulary, spark_word2vec_vectors(sequences, dim=dim, epochs=epochs, seed=seed),
                                    dim)
        else:
            vectors = align_vectors(vocabulary, gensim_vectors(collected, dim=dim, epochs=epochs,
                                                               negatives=int(emb["negatives"]), seed=seed), dim)
        metrics = rank_metrics(vectors, relevant, k=k)
        methods[peer] = {**{key: metrics[key] for key in (f"recall_at_{k}", "map", "queries")},
                         "seconds": time.perf_counter() - start}
    return {"methods": methods, "grid": points, "best_params": best["params"],
            "train_pairs": int(len(graph.src)), "vocabulary": len(vocabulary),
            "heldout_queries": len(relevant), "mean_relevant_per_query": float(np.mean(
                [len(r) for r in relevant.values()])) if relevant else 0.0}
