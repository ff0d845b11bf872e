"""The pairs of ``track_neighbors`` as compact shards on the driver's local disk, streamed in bounded memory.

SGNS reads every pair once per epoch in a random order. Collecting the table to the driver
(``toPandas``: two Python strings per pair) needs ~100 bytes a pair, 50 GB at 5*10^8 pairs. Here
Spark does the heavy part where the data is:

1. one small aggregation gives the vocabulary (sorted track ids) with each track's sessions (the
   noise counts) and the pair count: O(n_tracks) on the driver;
2. a broadcast join turns ids into int32 indices and scores into weights
   ``s_ij = (score / max_j score_ij) ** weight_power``, and each pair gets a shard: its bucket pair
   (see :mod:`.buckets`) and a hash sub-shard, so every shard is a uniform sample of its bucket pair;
3. ``mapInArrow`` packs the Arrow batches of each task into binary blobs per shard, and the driver
   pulls them with ``toLocalIterator`` one partition at a time, appending each blob to its shard's
   files (int32 src, int32 dst, float32 weight: 12 bytes a pair).

Why this, and not reading the Delta table's Parquet files with pyarrow: the driver reads through
Spark, so it works wherever the table lives (cloud storage, a catalog table, Databricks), and the
string-to-index encoding runs on the executors. The driver holds at most one partition's blobs and
one blob being written; training holds one shard (``shard_pairs`` pairs) at a time.

Example
-------
>>> shard_count(10, buckets=1, shard_pairs=4)
3
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lid_spark.errors import InputError, ParameterError

NEIGHBOR_COLUMNS = ("track_id", "neighbor_id", "score", "n_track", "n_neighbor")
BLOB_ROWS = 1 << 18   # pairs per blob an executor sends: 3 MB, and few enough Python rows on the driver


@dataclass
class Shard:
    """``pairs`` pairs of bucket pair (``source_bucket``, ``target_bucket``) in files ``<path>.{src,dst,w}``."""

    source_bucket: int
    target_bucket: int
    path: str
    pairs: int = 0


@dataclass
class PairShards:
    """Pairs on local disk, indexed over a sorted vocabulary, split into bucket pairs and shards.

    ``bucket[i]`` and ``local[i]``: item i's bucket and its index inside the bucket (items keep
    vocabulary order inside a bucket); the shard files hold local indices. One bucket: local = global.
    """

    directory: Path
    vocabulary: np.ndarray
    frequency: np.ndarray
    buckets: int
    bucket: np.ndarray
    local: np.ndarray
    shards: list[Shard] = field(default_factory=list)
    weight_mean: float = 1.0

    @property
    def pairs(self) -> int:
        return sum(s.pairs for s in self.shards)

    def bucket_items(self, b: int) -> np.ndarray:
        """Global indices of bucket ``b``'s items, in local order."""
        return np.flatnonzero(self.bucket == b)

    def read(self, shard: Shard) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(src, dst, weight normalised to mean 1 over all pairs) of one shard."""
        return (np.fromfile(shard.path + ".src", dtype=np.int32), np.fromfile(shard.path + ".dst", dtype=np.int32),
                np.fromfile(shard.path + ".w", dtype=np.float32) / np.float32(self.weight_mean))

    def epoch(self, epoch: int, seed: int, source_bucket: int | None = None,
              target_bucket: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """The shards (of one bucket pair when given) in a seeded random order, read one at a time."""
        chosen = [s for s in self.shards if (source_bucket is None or s.source_bucket == source_bucket)
                  and (target_bucket is None or s.target_bucket == target_bucket)]
        for k in np.random.default_rng([seed, epoch]).permutation(len(chosen)):
            yield self.read(chosen[k])

    def close(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> PairShards:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def shard_count(pairs: int, *, buckets: int, shard_pairs: int) -> int:
    """Sub-shards per bucket pair so that a shard holds about ``shard_pairs`` pairs at most."""
    return max(1, math.ceil(pairs / (buckets * buckets * shard_pairs)))


def assign_buckets(n_items: int, buckets: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random balanced partition of the items: (bucket of each item, its index in its bucket).

    Example
    -------
    >>> bucket, local = assign_buckets(5, 2, seed=1)
    >>> sorted(np.bincount(bucket).tolist()), bool((local < 3).all())
    ([2, 3], True)
    """
    if buckets < 1:
        raise ParameterError(f"embeddings.buckets must be >= 1, got {buckets}")
    bucket = (np.random.default_rng(seed).permutation(n_items) % buckets).astype(np.int32)
    local = np.zeros(n_items, dtype=np.int32)
    for b in range(buckets):
        members = np.flatnonzero(bucket == b)
        local[members] = np.arange(len(members), dtype=np.int32)
    return bucket, local


def _pack(batches, blob_rows: int = BLOB_ROWS):
    """mapInArrow: (shard, src, dst, weight) rows to one row of binary blobs per shard and ~``blob_rows`` pairs."""
    import pyarrow as pa

    schema = pa.schema([("shard", pa.int32()), ("pairs", pa.int64()), ("src", pa.binary()), ("dst", pa.binary()),
                        ("weight", pa.binary())])
    buffers: dict[int, list] = {}
    sizes: dict[int, int] = {}

    def emit(shard):
        parts = buffers.pop(shard)
        sizes.pop(shard)
        src = np.concatenate([p[0] for p in parts]).astype(np.int32)
        dst = np.concatenate([p[1] for p in parts]).astype(np.int32)
        weight = np.concatenate([p[2] for p in parts]).astype(np.float32)
        return pa.RecordBatch.from_pydict({"shard": [shard], "pairs": [len(src)], "src": [src.tobytes()],
                                           "dst": [dst.tobytes()], "weight": [weight.tobytes()]}, schema=schema)

    for batch in batches:
        shard = batch.column("shard").to_numpy()
        src, dst = batch.column("src").to_numpy(), batch.column("dst").to_numpy()
        weight = batch.column("weight").to_numpy()
        order = np.argsort(shard, kind="stable")
        keys, starts = np.unique(shard[order], return_index=True)
        for key, lo, hi in zip(keys.tolist(), starts, [*starts[1:], len(order)]):
            rows = order[lo:hi]
            buffers.setdefault(key, []).append((src[rows], dst[rows], weight[rows]))
            sizes[key] = sizes.get(key, 0) + len(rows)
            if sizes[key] >= blob_rows:
                yield emit(key)
    for key in sorted(buffers):
        yield emit(key)


BLOB_SCHEMA = "shard int, pairs long, src binary, dst binary, weight binary"


def stream_pair_shards(neighbors: DataFrame, *, weight_power: float, buckets: int = 1, shard_pairs: int = 1 << 22,
                       seed: int = 13, directory: str | None = None) -> PairShards:
    """Encode ``track_neighbors`` into :class:`PairShards` under ``directory`` (a new temporary one by default).

    Parameters
    ----------
    neighbors : DataFrame
        with ``track_id, neighbor_id, score, n_track, n_neighbor`` (the cooccurrence job's table).
    weight_power : float
        s_ij = (score_ij / max_j score_ij) ** weight_power.
    buckets : int
        item buckets (1: one process; P >= 2: :mod:`.buckets` trains the P x P bucket pairs).
    shard_pairs : int
        at most about this many pairs per shard (the memory a training process holds for pairs).
    """
    missing = [c for c in NEIGHBOR_COLUMNS if c not in neighbors.columns]
    if missing:
        raise InputError(f"track_neighbors lacks {missing}: run the cooccurrence job first")
    if weight_power < 0:
        raise ParameterError(f"embeddings.weight_power must be >= 0, got {weight_power}")
    if shard_pairs < 1:
        raise ParameterError(f"embeddings.shard_pairs must be >= 1, got {shard_pairs}")
    spark = neighbors.sparkSession
    neighbors = neighbors.select(*NEIGHBOR_COLUMNS)
    bad_score = ~(F.col("score") > 0) | F.isnan("score") | F.col("score").isNull() | (F.col("score") == float("inf"))
    bad_id = F.col("track_id").isNull() | F.col("neighbor_id").isNull()
    stats = neighbors.agg(F.count(F.lit(1)).alias("pairs"), F.sum(bad_score.cast("long")).alias("bad_score"),
                          F.sum(bad_id.cast("long")).alias("bad_id")).first()
    if not stats["pairs"]:
        raise InputError("track_neighbors is empty: no pair passed the co-occurrence filters")
    if stats["bad_score"] or stats["bad_id"]:
        raise InputError(f"track_neighbors has {stats['bad_score'] or 0} rows with a score that is not finite and "
                         f"> 0 and {stats['bad_id'] or 0} with a null id: rerun the cooccurrence job")

    # the vocabulary with each track's sessions (the noise counts): O(n_tracks) on the driver
    counts = (neighbors.select(F.col("track_id").alias("id"), F.col("n_track").alias("n"))
              .unionByName(neighbors.select(F.col("neighbor_id").alias("id"), F.col("n_neighbor").alias("n")))
              .groupBy("id").agg(F.max("n").cast("double").alias("n")).orderBy("id").toPandas())
    vocabulary = counts["id"].to_numpy(dtype=object)
    bucket, local = assign_buckets(len(vocabulary), buckets, seed)
    subshards = shard_count(int(stats["pairs"]), buckets=buckets, shard_pairs=shard_pairs)
    index = spark.createDataFrame(pd.DataFrame({"id": vocabulary.astype(str), "bucket": bucket, "local": local}),
                                  "id string, bucket int, local int")
    src_index = index.select(F.col("id").alias("track_id"), F.col("bucket").alias("sb"), F.col("local").alias("src"))
    dst_index = index.select(F.col("id").alias("neighbor_id"), F.col("bucket").alias("db"),
                             F.col("local").alias("dst"))
    best = neighbors.groupBy("track_id").agg(F.max("score").alias("best"))
    sub = F.abs(F.xxhash64("track_id", "neighbor_id", F.lit(seed))) % subshards
    encoded = (neighbors.join(best, "track_id").join(F.broadcast(src_index), "track_id")
               .join(F.broadcast(dst_index), "neighbor_id")
               .select(((F.col("sb") * buckets + F.col("db")) * subshards + sub).cast("int").alias("shard"),
                       "src", "dst", F.pow(F.col("score") / F.col("best"), F.lit(float(weight_power)))
                       .cast("float").alias("weight")))

    root = Path(directory or tempfile.mkdtemp(prefix="lid-spark-pairs-"))
    root.mkdir(parents=True, exist_ok=True)
    shards = {k: Shard(k // subshards // buckets, k // subshards % buckets, str(root / f"shard-{k:06d}"))
              for k in range(buckets * buckets * subshards)}
    weight_sum = 0.0
    for row in encoded.mapInArrow(_pack, BLOB_SCHEMA).toLocalIterator(prefetchPartitions=False):
        shard = shards[row["shard"]]
        for suffix, column in ((".src", "src"), (".dst", "dst"), (".w", "weight")):
            with open(shard.path + suffix, "ab") as f:
                f.write(row[column])
        shard.pairs += row["pairs"]
        weight_sum += float(np.frombuffer(row["weight"], dtype=np.float32).sum(dtype=np.float64))
    written = [s for s in shards.values() if s.pairs]
    result = PairShards(root, vocabulary, counts["n"].to_numpy(dtype=np.float64), buckets, bucket, local, written,
                        weight_sum / max(1, sum(s.pairs for s in written)))
    if result.pairs != stats["pairs"]:  # count in equals count out
        result.close()
        raise InputError(f"track_neighbors: {stats['pairs']} pairs read but {result.pairs} encoded: a track id "
                         "did not join its vocabulary entry")
    return result
