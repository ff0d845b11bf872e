"""From the track_neighbors table to SGNS vectors: in memory (evaluation-sized graphs) or streamed shards.

:func:`fit_shards` trains on :class:`~.pair_shards.PairShards` (the job's path: bounded memory, one
process or P buckets on Spark tasks); :func:`fit_embeddings` on an in-memory :class:`TrainingGraph`
(the held-out evaluation, whose graphs are evaluation-sized).

Example
-------
>>> pdf = pd.DataFrame({"track_id": ["a", "b"], "neighbor_id": ["b", "a"], "score": [0.9, 0.9],
...                     "n_track": [3, 5], "n_neighbor": [5, 3]})
>>> graph = graph_from_neighbors(pdf)
>>> list(graph.vocabulary), graph.src.tolist(), graph.dst.tolist(), graph.frequency.tolist()
(['a', 'b'], [0, 1], [1, 0], [3.0, 5.0])
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lid_spark.consumption.pair_shards import NEIGHBOR_COLUMNS, PairShards
from lid_spark.consumption.sgns import (
    SGNSModel,
    SGNSResult,
    check_params,
    pair_weights,
    pinned_threads,
    resolve_device,
    train_epochs,
    train_sgns,
)
from lid_spark.errors import InputError, ParameterError

SGNS_KEYS = ("dim", "epochs", "negatives", "learning_rate", "optimizer", "batch_size", "seed", "torch_threads",
             "device")
TUNABLE_KEYS = ("dim", "epochs", "negatives", "learning_rate", "optimizer", "batch_size", "weight_power")


@dataclass
class TrainingGraph:
    """Directed weighted pairs over a sorted vocabulary; ``frequency``: sessions per track (noise)."""

    vocabulary: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    score: np.ndarray
    frequency: np.ndarray


def neighbors_to_pandas(neighbors) -> pd.DataFrame:
    """The columns SGNS needs from a track_neighbors DataFrame, to the driver through Arrow."""
    missing = [c for c in NEIGHBOR_COLUMNS if c not in neighbors.columns]
    if missing:
        raise InputError(f"track_neighbors lacks {missing}: run the cooccurrence job first")
    return neighbors.select(*NEIGHBOR_COLUMNS).toPandas()


def graph_from_neighbors(pdf: pd.DataFrame) -> TrainingGraph:
    """Index the pairs over the sorted union of track and neighbour ids (deterministic order)."""
    if len(pdf) == 0:
        raise InputError("track_neighbors is empty: no pair passed the co-occurrence filters")
    vocabulary = np.array(sorted(set(pdf["track_id"]).union(pdf["neighbor_id"])), dtype=object)
    index = pd.Index(vocabulary)
    src = index.get_indexer(pdf["track_id"]).astype(np.int64)
    dst = index.get_indexer(pdf["neighbor_id"]).astype(np.int64)
    frequency = np.zeros(len(vocabulary))
    np.maximum.at(frequency, src, pdf["n_track"].to_numpy(dtype=np.float64))
    np.maximum.at(frequency, dst, pdf["n_neighbor"].to_numpy(dtype=np.float64))
    return TrainingGraph(vocabulary, src, dst, pdf["score"].to_numpy(dtype=np.float64), frequency)


def fit_embeddings(graph: TrainingGraph, params: Mapping) -> SGNSResult:
    """Weights s_ij from the scores, then SGNS in this process on the in-memory graph."""
    weight = pair_weights(graph.src, graph.score, float(params["weight_power"]))
    kwargs = {k: params[k] for k in SGNS_KEYS if k in params}
    return train_sgns(graph.src, graph.dst, weight, len(graph.vocabulary), frequency=graph.frequency, **kwargs)


def fit_shards(spark, shards: PairShards, params: Mapping) -> SGNSResult:
    """SGNS over streamed pair shards: in this process (one bucket) or bucket pairs on Spark tasks (P >= 2)."""
    check_params(**{k: params[k] for k in ("dim", "epochs", "negatives", "learning_rate", "optimizer", "batch_size",
                                           "torch_threads")})
    if shards.buckets > 1:
        from lid_spark.consumption.buckets import train_buckets

        return train_buckets(spark, shards, dict(params))
    seed = int(params["seed"])
    with pinned_threads(int(params["torch_threads"])):
        model = SGNSModel.initial(len(shards.vocabulary), int(params["dim"]), shards.frequency, seed=seed,
                                  device=resolve_device(params.get("device", "cpu")),
                                  negatives=int(params["negatives"]), optimizer=params["optimizer"])
        losses, pairs_per_s = train_epochs(model, lambda epoch: shards.epoch(epoch, seed), shards.pairs,
                                           epochs=int(params["epochs"]), learning_rate=float(params["learning_rate"]),
                                           batch_size=int(params["batch_size"]))
    return model.result(losses, pairs_per_s)


def grid_points(base: Mapping, grid: Mapping) -> list[dict]:
    """Every combination of the ``grid`` values over the ``base`` parameters (base alone when empty).

    Example
    -------
    >>> base = dict(dim=8, epochs=1, negatives=5, learning_rate=0.1, optimizer="sgd", batch_size=64, seed=1,
    ...             weight_power=1.0)
    >>> [(p["dim"], p["epochs"]) for p in grid_points(base, {"dim": [4, 16]})]
    [(4, 1), (16, 1)]
    """
    unknown = [k for k in grid if k not in TUNABLE_KEYS]
    if unknown:
        raise ParameterError(f"embeddings.grid has keys {unknown} that are not tunable; tunable: {TUNABLE_KEYS}")
    missing = [k for k in (*TUNABLE_KEYS, "seed") if k not in base]
    if missing:
        raise ParameterError(f"SGNS parameters lack {missing}")
    base = {k: base[k] for k in (*SGNS_KEYS, "weight_power") if k in base}
    if not grid:
        return [base]
    keys = sorted(grid)
    values = [list(grid[k]) if isinstance(grid[k], (list, tuple)) else [grid[k]] for k in keys]
    return [{**base, **dict(zip(keys, combo))} for combo in itertools.product(*values)]
