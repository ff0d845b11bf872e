"""SGNS trainer throughput: what each lever gives, and the catalog-scale run against gensim.

Pairs come from a graph generator of the track_neighbors shape (communities of 1,000 tracks,
80% of a track's links inside its community, 20% to popular tracks anywhere; both directions;
scores uniform in (0.1, 1)), so the scale run does not wait for the co-occurrence stage.

    python benchmarks/bench_sgns.py levers                      # 2*10^4 tracks, ~10^6 pairs, 1 epoch each
    python benchmarks/bench_sgns.py scale --tracks 1e6 --pairs-per-track 50 --epochs 1
    python benchmarks/bench_sgns.py stream --tracks 1e6 --pairs-per-track 10   # the Spark pair stream

``levers``: pairs/s of (A) the previous release's step (autograd through sparse nn.Embedding,
torch.optim SGD, K negatives per pair gathered and bmm'd) at batch 4096, (B) the same at a large
batch, (C) the same with negatives shared per chunk (one matrix product per chunk), (D) the
library's step (hand-written gradients, fused scatter_add_ updates, shared negatives) at several
batch sizes, (E) the same with 2 pinned torch threads, and gensim Word2Vec on the same pairs with 1
and 2 threads. ``scale``: our trainer (streaming its pair shards from local disk) and gensim
(``corpus_file`` mode, its fastest) each in a fresh process: seconds, pairs/s and peak resident
memory (``VmHWM``; the process's imports included, reported separately).
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def generate_pairs(n_tracks: int, pairs_per_track: int, seed: int = 0):
    """(src, dst, score, frequency): ~pairs_per_track directed pairs per track, int32 indices."""
    rng = np.random.default_rng(seed)
    links = max(1, pairs_per_track // 2)
    a = np.repeat(np.arange(n_tracks, dtype=np.int64), links)
    community = a // 1000
    inside = community * 1000 + rng.integers(0, 1000, len(a))
    popular = (n_tracks * rng.random(len(a)) ** 3).astype(np.int64)   # skewed to the low (popular) ids
    b = np.where(rng.random(len(a)) < 0.8, inside, popular) % n_tracks
    b = np.where(b == a, (a + 1) % n_tracks, b)
    src = np.concatenate([a, b]).astype(np.int32)
    dst = np.concatenate([b, a]).astype(np.int32)
    score = rng.uniform(0.1, 1.0, len(a)).astype(np.float32)
    score = np.concatenate([score, score])
    frequency = np.bincount(dst, minlength=n_tracks).astype(np.float64) + 1
    return src, dst, score, frequency


def old_step_trainer(src, dst, weight, n_items, dim, negatives, lr, batch_size, chunk=None, pool=None, seed=13):
    """The previous release's training step (autograd + torch.optim over sparse embeddings)."""
    import torch

    from lid_spark.consumption.sgns import noise_cdf

    g = torch.Generator().manual_seed(seed)
    inp = torch.nn.Embedding(n_items, dim, sparse=True)
    out = torch.nn.Embedding(n_items, dim, sparse=True)
    with torch.no_grad():
        inp.weight.uniform_(-0.5 / dim, 0.5 / dim)
        out.weight.zero_()
    opt = torch.optim.SGD(list(inp.parameters()) + list(out.parameters()), lr=lr)
    cdf = torch.from_numpy(noise_cdf(np.bincount(dst, minlength=n_items) + 1e-12))
    s, d, w = torch.from_numpy(src.astype(np.int64)), torch.from_numpy(dst.astype(np.int64)), torch.from_numpy(weight)
    order = torch.randperm(len(src), generator=g)
    start = time.perf_counter()
    for b in range(0, len(src), batch_size):
        idx = order[b:b + batch_size]
        context, target, wt = out(s[idx]), inp(d[idx]), w[idx]
        positive = (context * target).sum(-1)
        if chunk is None:   # K negatives per pair
            negs = torch.searchsorted(cdf, torch.rand(len(idx), negatives, generator=g, dtype=torch.float64))
            negs = negs.clamp_(max=n_items - 1)
            negative = torch.bmm(inp(negs), context.unsqueeze(-1)).squeeze(-1)
            neg_term = torch.nn.functional.logsigmoid(-negative).sum(-1)
        else:               # pool negatives shared by each chunk of pairs
            chunks = len(idx) // chunk
            context, target, positive, wt = (context[:chunks * chunk], target[:chunks * chunk],
                                             positive[:chunks * chunk], wt[:chunks * chunk])
            negs = torch.searchsorted(cdf, torch.rand(chunks * pool, generator=g, dtype=torch.float64))
            noise = inp(negs.clamp_(max=n_items - 1)).view(chunks, pool, dim)
            negative = torch.bmm(context.view(chunks, chunk, dim), noise.transpose(1, 2))
            neg_term = torch.nn.functional.logsigmoid(-negative).sum(-1).view(-1) * (negatives / pool)
        loss = -(wt * (torch.nn.functional.logsigmoid(positive) + neg_term)).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return len(src) / (time.perf_counter() - start)


def gensim_file(path: str, src, dst) -> None:
    import pandas as pd

    with open(path, "w") as f:
        for lo in range(0, len(src), 5_000_000):
            pd.DataFrame({"a": src[lo:lo + 5_000_000], "b": dst[lo:lo + 5_000_000]}).to_csv(
                f, sep=" ", header=False, index=False)


def gensim_pairs_per_s(corpus: str, lines: int, dim: int, negatives: int, epochs: int, threads: int) -> dict:
    """gensim on a corpus file: the vocabulary scan and the training timed apart; pairs/s of the training."""
    from gensim.models import Word2Vec

    start = time.perf_counter()
    model = Word2Vec(vector_size=dim, window=1, min_count=1, sg=1, negative=negatives, hs=0, sample=0, seed=13,
                     workers=threads)
    model.build_vocab(corpus_file=corpus)
    vocab_s = time.perf_counter() - start
    start = time.perf_counter()
    model.train(corpus_file=corpus, total_examples=model.corpus_count, total_words=model.corpus_total_words,
                epochs=epochs)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "vocabulary_seconds": vocab_s,
            "pairs_per_s": 2 * lines * epochs / seconds}   # a line trains a->b and b->a


def levers(args) -> dict:
    import torch

    from lid_spark.consumption.sgns import pair_weights, train_sgns

    src, dst, score, frequency = generate_pairs(int(args.tracks), args.pairs_per_track)
    n = int(args.tracks)
    weight = pair_weights(src, score, 0.75).astype(np.float32)
    weight /= weight.mean()
    common = dict(dim=args.dim, negatives=5)
    torch.set_num_threads(1)
    out = {"pairs": int(len(src)), "tracks": n, "dim": args.dim, "epochs": 1, "results": {}}
    r = out["results"]
    r["A_autograd_optim_batch4096"] = old_step_trainer(src, dst, weight, n, lr=0.05, batch_size=4096, **common)
    r["B_autograd_optim_batch32768"] = old_step_trainer(src, dst, weight, n, lr=0.05, batch_size=32768, **common)
    r["C_autograd_shared_negatives_batch4096"] = old_step_trainer(src, dst, weight, n, lr=0.05, batch_size=4096,
                                                                  chunk=64, pool=16, **common)
    for batch in (2048, 8192, 32768):
        res = train_sgns(src, dst, weight, n, epochs=1, learning_rate=0.05, batch_size=batch, frequency=frequency,
                         torch_threads=1, **common)
        r[f"D_fused_shared_batch{batch}_1thread"] = res.pairs_per_s
    res = train_sgns(src, dst, weight, n, epochs=1, learning_rate=0.05, batch_size=8192, frequency=frequency,
                     torch_threads=2, **common)
    r["E_fused_shared_batch8192_2threads"] = res.pairs_per_s
    with tempfile.TemporaryDirectory() as tmp:
        corpus = os.path.join(tmp, "pairs.txt")
        gensim_file(corpus, src[: len(src) // 2], dst[: len(src) // 2])   # one line per undirected link
        for threads in (1, 2):
            r[f"gensim_{threads}thread"] = gensim_pairs_per_s(corpus, len(src) // 2, args.dim, 5, 1,
                                                              threads)["pairs_per_s"]
    r["D_best_1thread_over_gensim_1thread"] = max(v for k, v in r.items() if k.startswith("D_")) / r["gensim_1thread"]
    r["D_batch8192_over_A"] = r["D_fused_shared_batch8192_1thread"] / r["A_autograd_optim_batch4096"]
    return out


def _maxrss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss it does not carry the parent's over exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scale_worker(args) -> dict:
    """One trainer in this (fresh) process: sgns from shards, or gensim from a corpus file."""
    data = np.load(os.path.join(args.data, "meta.npz"))
    if args.worker == "gensim":
        import gensim  # noqa: F401  (imports counted separately from the training)

        base = _maxrss_mb()
        res = gensim_pairs_per_s(os.path.join(args.data, "pairs.txt"), int(data["lines"]), args.dim, 5,
                                 args.epochs, args.threads)
        return {**res, "peak_rss_mb": _maxrss_mb(), "rss_after_imports_mb": base}
    from lid_spark.consumption.pair_shards import PairShards, Shard
    from lid_spark.consumption.training import fit_shards

    base = _maxrss_mb()
    n = int(data["tracks"])
    shards = PairShards(Path(args.data), np.arange(n).astype(str).astype(object), data["frequency"], 1,
                        np.zeros(n, np.int32), np.arange(n, dtype=np.int32),
                        [Shard(0, 0, os.path.join(args.data, f"shard-{k:06d}"), int(c))
                         for k, c in enumerate(data["counts"])], float(data["weight_mean"]))
    params = dict(dim=args.dim, epochs=args.epochs, negatives=5, learning_rate=0.05, optimizer="sgd",
                  batch_size=args.batch_size, seed=13, torch_threads=args.threads, device=args.device)
    start = time.perf_counter()
    result = fit_shards(None, shards, params)
    return {"seconds": time.perf_counter() - start, "pairs_per_s": result.pairs_per_s, "device": result.device,
            "shards": len(shards.shards), "peak_rss_mb": _maxrss_mb(), "rss_after_imports_mb": base}


def scale(args) -> dict:
    n, ppt = int(args.tracks), args.pairs_per_track
    tmp = tempfile.mkdtemp(prefix="bench-sgns-scale-")
    start = time.perf_counter()
    src, dst, score, frequency = generate_pairs(n, ppt)
    from lid_spark.consumption.sgns import pair_weights

    weight = pair_weights(src, score, 0.75).astype(np.float32)
    rng = np.random.default_rng(1)
    shard_of = rng.integers(0, max(1, -(-len(src) // args.shard_pairs)), len(src))
    counts = []
    for k in range(int(shard_of.max()) + 1):   # random shards, as stream_pair_shards' hash sub-shards
        rows = np.flatnonzero(shard_of == k)
        for suffix, arr in ((".src", src), (".dst", dst), (".w", weight)):
            arr[rows].tofile(os.path.join(tmp, f"shard-{k:06d}{suffix}"))
        counts.append(len(rows))
    gensim_file(os.path.join(tmp, "pairs.txt"), src[: len(src) // 2], dst[: len(src) // 2])
    np.savez(os.path.join(tmp, "meta.npz"), tracks=n, frequency=frequency, counts=np.array(counts),
             weight_mean=float(weight.mean(dtype=np.float64)), lines=len(src) // 2)
    prepare_s = time.perf_counter() - start
    del src, dst, score, weight, shard_of
    out = {"tracks": n, "pairs": int(sum(counts)), "epochs": args.epochs, "dim": args.dim, "threads": args.threads,
           "shard_pairs": args.shard_pairs, "prepare_seconds": prepare_s}
    for worker in ("sgns", "gensim"):
        cmd = [sys.executable, __file__, "scale-worker", "--worker", worker, "--data", tmp, "--dim", str(args.dim),
               "--epochs", str(args.epochs), "--threads", str(args.threads), "--batch-size", str(args.batch_size),
               "--device", args.device]
        out[worker] = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    out["sgns_over_gensim_pairs_per_s"] = out["sgns"]["pairs_per_s"] / out["gensim"]["pairs_per_s"]
    out["sgns_over_gensim_peak_rss"] = out["sgns"]["peak_rss_mb"] / out["gensim"]["peak_rss_mb"]
    # the stated bound on what training adds: 2 tables + noise CDF and ids (~108 B a track) + the shard being
    # trained (numpy, int64 device copies, permutation: ~40 B a pair) + the next shard read (12 B a pair)
    out["sgns_memory_bound_mb"] = (2 * n * args.dim * 4 + 108 * n + 52 * args.shard_pairs) / 2**20
    out["sgns_training_added_mb"] = out["sgns"]["peak_rss_mb"] - out["sgns"]["rss_after_imports_mb"]
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    return out


def stream(args) -> dict:
    """stream_pair_shards on a generated track_neighbors table: seconds and the driver Python's peak memory."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lid_spark.config import load_config
    from lid_spark.consumption.pair_shards import stream_pair_shards
    from lid_spark.spark import get_spark

    n = int(args.tracks)
    tmp = tempfile.mkdtemp(prefix="bench-sgns-stream-")
    src, dst, score, frequency = generate_pairs(n, args.pairs_per_track)
    ids = np.char.add("t", np.char.zfill(np.arange(n).astype(str), 7))
    table_dir = os.path.join(tmp, "track_neighbors")
    os.makedirs(table_dir)
    step = 5_000_000
    for k, lo in enumerate(range(0, len(src), step)):
        s_, d_ = src[lo:lo + step], dst[lo:lo + step]
        pq.write_table(pa.table({"track_id": ids[s_], "neighbor_id": ids[d_], "score": score[lo:lo + step],
                                 "n_track": frequency[s_].astype(np.int64),
                                 "n_neighbor": frequency[d_].astype(np.int64)}),
                       os.path.join(table_dir, f"part-{k:04d}.parquet"))
    pairs = len(src)
    del src, dst, score, ids
    cfg = load_config(overrides=["spark.master=local[2]", "spark.log_level=ERROR", "spark.driver_memory=3g"])
    spark = get_spark(cfg)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from peak_memory import PeakRSS

    start = time.perf_counter()
    with PeakRSS() as memory, stream_pair_shards(spark.read.parquet(table_dir), weight_power=0.75,
                                                 shard_pairs=args.shard_pairs,
                                                 directory=os.path.join(tmp, "shards")) as shards:
        seconds = time.perf_counter() - start
        out = {"tracks": n, "pairs": pairs, "encoded_pairs": shards.pairs, "shards": len(shards.shards),
               "largest_shard": max(s.pairs for s in shards.shards), "seconds": seconds,
               "driver_python_grown_mb": memory.grown_mb, "driver_python_rss_before_mb": memory.start_mb,
               "collect_to_pandas_estimate_mb": pairs * 100 / 2**20}
    spark.stop()
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["levers", "scale", "scale-worker", "stream"])
    parser.add_argument("--tracks", type=float, default=None)
    parser.add_argument("--pairs-per-track", type=int, default=50)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=8192)
    parser.add_argument("--shard-pairs", type=int, default=1 << 22)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--worker", choices=["sgns", "gensim"])
    parser.add_argument("--data")
    args = parser.parse_args()
    if args.mode == "levers":
        args.tracks = args.tracks or 2e4
        report = {"benchmark": "sgns_levers", **levers(args)}
    elif args.mode == "scale":
        args.tracks = args.tracks or 1e6
        report = {"benchmark": "sgns_scale", **scale(args)}
    elif args.mode == "stream":
        args.tracks = args.tracks or 1e6
        report = {"benchmark": "sgns_stream", **stream(args)}
    else:
        report = scale_worker(args)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
