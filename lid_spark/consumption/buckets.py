"""SGNS across Spark tasks without a dense all-reduce: PyTorch-BigGraph's bucket scheme.

The items are split into P random buckets (:func:`~.pair_shards.assign_buckets`), so the pairs
split into P x P bucket pairs: pair (i -> j) trains the *output* row of i (bucket a = bucket(i))
and the *input* row of j (bucket b = bucket(j)), and its negatives are input rows of bucket b
(drawn from b's share of the noise distribution, as PyTorch-BigGraph draws negatives from the
partition of the side it corrupts). Two bucket pairs (a, b) and (a', b') touch disjoint rows
whenever a != a' and b != b', so each *round* r trains the P bucket pairs (a, (a + r) mod P) at
once, one Spark task each, with no lock and no gradient exchange; P rounds make a pass, and an
epoch is ``bucket_passes`` passes, each over a random 1/passes of every bucket pair's pairs (one
long round per bucket pair lets a block drift towards one target bucket: at the quick benchmark's
rate 0.2 one pass diverged, four matched one process). Tasks run batches of batch_size/P pairs, so
a row gets as many updates per batch as in one process.

A task gets its bucket pair's pairs and the two blocks it updates (output block a, input block b:
2 n/P rows), trains them with the single-process code (:class:`~.sgns.SGNSModel`, on the task's
GPU when it has one) and sends the two blocks back. Per pass that moves 4 x P blocks of n/P rows,
i.e. each table twice per round, against DDP's 2 dense tables *per step*; the pairs travel once per
epoch, 12 bytes each. Why this scheme rather than sparse gradient exchange (a parameter server):
no synchronisation inside a round, the communication does not grow with the batch count, and it is
what PyTorch-BigGraph runs on graphs of billions of edges.

The trajectory differs from one process (negatives come from the target's bucket, rounds apply
updates in blocks), so equality is measured on the held-out ranking, not on the vectors
(``benchmarks/bench_embeddings.py`` reports both; the tests bound the difference).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from lid_spark.consumption.pair_shards import PairShards
from lid_spark.consumption.sgns import SGNSResult, rate_at
from lid_spark.errors import ParameterError


@dataclass
class BucketTask:
    """What one Spark task needs: bucket pair (a, b), its pairs, the blocks, the rate range, the seed."""

    source_bucket: int
    target_bucket: int
    output_block: np.ndarray
    input_block: np.ndarray
    frequency: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    weight: np.ndarray
    rate_from: float
    rate_to: float
    seed: int
    params: dict


def round_schedule(buckets: int, round_: int) -> list[tuple[int, int]]:
    """The bucket pairs of one round: (a, (a + round) mod P), disjoint in both tables.

    Example
    -------
    >>> round_schedule(3, 1)
    [(0, 1), (1, 2), (2, 0)]
    """
    return [(a, (a + round_) % buckets) for a in range(buckets)]


def train_bucket(task: BucketTask) -> tuple[int, int, np.ndarray, np.ndarray, float, int]:
    """Train one bucket pair (in a Spark task): returns (a, b, output block, input block, loss sum, pairs)."""
    import torch

    from lid_spark.consumption.sgns import SGNSModel, pinned_threads, resolve_device

    p = task.params
    if len(task.src) == 0:
        return task.source_bucket, task.target_bucket, task.output_block, task.input_block, 0.0, 0
    with pinned_threads(int(p["torch_threads"])):
        device = resolve_device(p.get("device", "cpu"))
        model = SGNSModel(torch.from_numpy(task.input_block).to(device), torch.from_numpy(task.output_block).to(device),
                          task.frequency, negatives=int(p["negatives"]), optimizer="sgd",
                          generator=torch.Generator(device=device).manual_seed(task.seed))
        loss = model.train_pairs(task.src, task.dst, task.weight, batch_size=int(p["batch_size"]),
                                 rate_from=task.rate_from, rate_to=task.rate_to)
        return (task.source_bucket, task.target_bucket, model.output.cpu().numpy(), model.input.cpu().numpy(), loss,
                len(task.src))


def _bucket_pairs(shards: PairShards, a: int, b: int, epoch: int, seed: int):
    parts = list(shards.epoch(epoch, seed, source_bucket=a, target_bucket=b))
    if not parts:
        return np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.float32)
    return tuple(np.concatenate([p[k] for p in parts]) for k in range(3))


def train_buckets(spark, shards: PairShards, params: dict) -> SGNSResult:
    """Train SGNS over ``shards`` (made with ``buckets`` = P >= 2) with one Spark task per bucket pair of a round.

    The driver holds the tables (as P blocks each) and the pair shards; each round is one Spark job
    of P tasks. Deterministic under ``seed`` on CPUs: every task's generator is seeded from
    (seed, epoch, a, b), and the blocks come back to fixed places.
    """
    P = shards.buckets
    if P < 2:
        raise ParameterError(f"bucketed training needs embeddings.buckets >= 2, got {P}")
    if params["optimizer"] != "sgd":
        raise ParameterError("embeddings.buckets >= 2 trains with sgd only (Adam's moments would travel too): "
                             "set embeddings.optimizer=sgd or embeddings.buckets=1")
    dim, epochs, seed = int(params["dim"]), int(params["epochs"]), int(params["seed"])
    learning_rate = float(params["learning_rate"])
    members = [shards.bucket_items(b) for b in range(P)]
    rng = np.random.default_rng(seed)
    # word2vec's initialisation, block by block: small random inputs, zero outputs
    inputs = [((rng.random((len(m), dim), dtype=np.float32) - 0.5) / dim) for m in members]
    outputs = [np.zeros((len(m), dim), dtype=np.float32) for m in members]
    frequency = [shards.frequency[m] for m in members]
    worker_params = {k: params[k] for k in ("negatives", "torch_threads", "device")}
    # a bucket pair's rows are 1/P of each table: batches of batch_size/P pairs give every row as many
    # updates per batch as one process gives it (summed stale gradients on denser rows diverge at high rates)
    worker_params["batch_size"] = max(1, int(params["batch_size"]) // P)
    n_pairs, done, losses = shards.pairs, 0, []
    total = float(epochs * n_pairs)
    sc = spark.sparkContext
    start = time.perf_counter()
    passes = int(params.get("bucket_passes", 1))
    for epoch in range(epochs):
        epoch_loss = 0.0
        # each pass trains every bucket pair on its next 1/passes of the epoch's pairs: an output row meets
        # all target buckets several times an epoch instead of once (one long round per bucket overfits it)
        for pass_ in range(passes):
            for round_ in np.random.default_rng([seed, epoch, pass_]).permutation(P).tolist():
                tasks = []
                for a, b in round_schedule(P, round_):
                    pairs = _bucket_pairs(shards, a, b, epoch, seed)
                    # a random slice: shard files keep the table's order (pairs grouped by source track)
                    rows = np.array_split(np.random.default_rng([seed, epoch, a, b]).permutation(len(pairs[0])),
                                          passes)[pass_]
                    src, dst, weight = (x[rows] for x in pairs)
                    tasks.append((a, b, src, dst, weight))
                round_pairs = sum(len(t[2]) for t in tasks)
                rate_from = rate_at(learning_rate, done, total)
                rate_to = rate_at(learning_rate, done + round_pairs, total)
                payload = [BucketTask(a, b, outputs[a], inputs[b], frequency[b], src, dst, weight, rate_from, rate_to,
                                      int(np.random.default_rng([seed, epoch, pass_, a, b]).integers(2**62)),
                                      worker_params)
                           for a, b, src, dst, weight in tasks]
                for a, b, output_block, input_block, loss, _ in (
                        sc.parallelize(payload, len(payload)).map(train_bucket).collect()):
                    outputs[a], inputs[b] = output_block, input_block
                    epoch_loss += loss
                done += round_pairs
        losses.append(epoch_loss / n_pairs)
    elapsed = time.perf_counter() - start
    vectors = np.zeros((len(shards.vocabulary), dim), dtype=np.float32)
    context = np.zeros_like(vectors)
    for b, m in enumerate(members):
        vectors[m], context[m] = inputs[b], outputs[b]
    return SGNSResult(vectors, context, losses, done / elapsed if elapsed > 0 else float("inf"),
                      device=f"{P} buckets on Spark tasks")
