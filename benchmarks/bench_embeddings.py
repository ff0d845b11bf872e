"""Consumption embeddings: held-out ranking against the peers, and SGNS throughput against gensim.

On synthetic sessions (benchmarks/listening.py: taste communities, Zipf popularity, hubs, bots):

1. Ranking (lid_spark.consumption.holdout.evaluate_embeddings): sessions split by hash, the
   co-occurrence graph rebuilt from the training sessions, SGNS at every grid point, and the
   peers at the same dimension and epochs on the same training sessions: implicit ALS, Spark ML
   Word2Vec, gensim Word2Vec (skip-gram, negative sampling). Recall@10 and MAP of the held-out
   co-listened pairs, by method; ``sgns`` is the best grid point by MAP.
2. Bucketed SGNS (``embeddings.buckets=2``: PyTorch-BigGraph's bucket pairs on two Spark tasks per
   round) on the same training graph, streamed through pair shards, ranked the same way: its
   Recall@10 and MAP against one process (``buckets_vs_one_process``).
3. Throughput: SGNS and gensim Word2Vec on the *same* pairs (the directed top-k graph of all
   sessions; gensim reads each pair as a two-track sentence with window 1, downsampling off),
   same dimension, negatives and epochs, same number of threads, after Spark has stopped, three
   interleaved runs each (the best is reported, every run too). pairs/s = pairs x epochs / s;
   peak memory = the resident memory each training adds to the process (sampled).

Prints one JSON object:

    python benchmarks/bench_embeddings.py             # 10^6 plays
    python benchmarks/bench_embeddings.py --quick     # 5*10^4 plays, about a minute on an idle machine
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

QUICK_GRID = {"learning_rate": [0.05, 0.1, 0.2]}
REPEATS = 3
FULL_GRID = {"learning_rate": [0.05, 0.1, 0.2], "weight_power": [0.5, 1.0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--plays", type=float, default=None, help="plays to generate (default 1e6; quick 5e4)")
    parser.add_argument("--grid", default=None, help="JSON grid of SGNS values, e.g. '{\"dim\": [32, 64]}'")
    parser.add_argument("--set", action="append", default=[], metavar="key=value",
                        help="configuration overrides (e.g. embeddings.epochs=20)")
    args = parser.parse_args()

    from listening import generate
    from peak_memory import PeakRSS

    from lid_spark.config import load_config
    from lid_spark.consumption.debias import neighbor_graph
    from lid_spark.consumption.holdout import PEERS, evaluate_embeddings, relevant_pairs, split_sessions
    from lid_spark.consumption.pair_shards import stream_pair_shards
    from lid_spark.consumption.pairs import cooccurrence_pairs
    from lid_spark.consumption.ranking import rank_metrics
    from lid_spark.consumption.sessions import label_plays, session_tracks
    from lid_spark.consumption.training import (
        fit_embeddings,
        fit_shards,
        graph_from_neighbors,
        neighbors_to_pandas,
    )
    from lid_spark.contract import conform
    from lid_spark.spark import get_spark

    n_plays = int(args.plays or (5e4 if args.quick else 1e6))
    grid = json.loads(args.grid) if args.grid else (QUICK_GRID if args.quick else FULL_GRID)
    cores = os.cpu_count() or 2
    cfg = load_config(overrides=[f"spark.master=local[{cores}]", f"spark.shuffle_partitions={max(4, 2 * cores)}",
                                 "spark.log_level=ERROR", *args.set])
    co, emb = cfg.cooccurrence.to_dict(), cfg.embeddings.to_dict()
    data = generate(tempfile.mkdtemp(prefix="bench-embeddings-"), n_plays, seed=3)
    spark = get_spark(cfg)
    plays = conform(spark.read.parquet(data["plays"]), "plays")
    tracks = conform(spark.read.parquet(data["tracks"]), "tracks")
    labelled = label_plays(plays, tracks, now=datetime(2026, 6, 1), gap_minutes=co["session_gap_minutes"],
                           max_tracks_per_session=co["max_tracks_per_session"],
                           bot_session_tracks=co["bot_session_tracks"], seed=co["sample_seed"]).cache()

    start = time.perf_counter()
    evaluation = evaluate_embeddings(labelled, co, emb, grid=grid, peers=list(PEERS))
    evaluation_s = time.perf_counter() - start
    methods = evaluation["methods"]
    peers = {m: v for m, v in methods.items() if m != "sgns"}
    best_peer = max(peers, key=lambda m: peers[m]["map"])

    # the bucketed path on the same training graph and held-out pairs (the vocabulary is the same sorted one)
    params = {**emb, **evaluation["best_params"]}
    train, held = split_sessions(labelled, float(emb["holdout_fraction"]), int(emb["seed"]))
    train_scored, _ = cooccurrence_pairs(session_tracks(train), co["min_sessions"], co["min_users"])
    train_neighbors = neighbor_graph(train_scored, co["top_k"], co["popularity_power"], co["hubness_correction"])
    with stream_pair_shards(train_neighbors, weight_power=float(params["weight_power"]), buckets=2,
                            seed=int(params["seed"])) as shards:
        start = time.perf_counter()
        bucketed = fit_shards(spark, shards, params)
        bucketed_s = time.perf_counter() - start
        bucketed_metrics = rank_metrics(bucketed.vectors, relevant_pairs(held, list(shards.vocabulary)))

    # throughput on the full graph, the same pairs for both
    scored, _ = cooccurrence_pairs(session_tracks(labelled), co["min_sessions"], co["min_users"])
    graph = graph_from_neighbors(neighbors_to_pandas(
        neighbor_graph(scored, co["top_k"], co["popularity_power"], co["hubness_correction"])))
    threads = int(params["torch_threads"])  # gensim gets as many worker threads as SGNS has
    spark.stop()   # neither trainer shares the cores with Spark's JVM

    from gensim.models import Word2Vec

    sentences = [[a, b] for a, b in zip(graph.vocabulary[graph.src].tolist(), graph.vocabulary[graph.dst].tolist())]
    sgns_pairs = len(graph.src) * params["epochs"]
    gensim_pairs = 2 * len(sentences) * params["epochs"]  # a two-track sentence trains a -> b and b -> a
    # interleaved repeats, best of each: on a shared machine the load changes between runs
    sgns_runs, gensim_runs = [], []
    for _ in range(REPEATS):
        start = time.perf_counter()
        with PeakRSS() as sgns_memory:
            sgns = fit_embeddings(graph, params)
        sgns_runs.append(sgns_pairs / (time.perf_counter() - start))
        start = time.perf_counter()
        with PeakRSS() as gensim_memory:
            Word2Vec(sentences=sentences, vector_size=params["dim"], window=1, min_count=1, sg=1,
                     negative=params["negatives"], hs=0, sample=0, epochs=params["epochs"], seed=params["seed"],
                     workers=threads)
        gensim_runs.append(gensim_pairs / (time.perf_counter() - start))

    report = {
        "benchmark": "embeddings",
        "data": {**{k: data[k] for k in ("n_plays", "n_tracks", "n_sessions", "n_users")},
                 "train_pairs": evaluation["train_pairs"], "vocabulary": evaluation["vocabulary"],
                 "heldout_queries": evaluation["heldout_queries"],
                 "mean_relevant_per_query": evaluation["mean_relevant_per_query"]},
        "recall_at_10": {m: v["recall_at_10"] for m, v in methods.items()},
        "map": {m: v["map"] for m, v in methods.items()},
        "best_peer": best_peer,
        "best_peer_recall_at_10": max(v["recall_at_10"] for v in peers.values()),
        "sgns_recall_at_10_over_best_peer_recall": methods["sgns"]["recall_at_10"] / max(
            v["recall_at_10"] for v in peers.values()),
        "sgns_over_best_peer": {"recall_at_10": methods["sgns"]["recall_at_10"] / peers[best_peer]["recall_at_10"],
                                "map": methods["sgns"]["map"] / peers[best_peer]["map"]},
        "seconds": {m: v["seconds"] for m, v in methods.items()} | {"evaluation_total": evaluation_s},
        "buckets_vs_one_process": {
            "buckets": 2, "recall_at_10": bucketed_metrics["recall_at_10"], "map": bucketed_metrics["map"],
            "one_process_recall_at_10": methods["sgns"]["recall_at_10"], "one_process_map": methods["sgns"]["map"],
            "map_difference": bucketed_metrics["map"] - methods["sgns"]["map"],
            "recall_at_10_difference": bucketed_metrics["recall_at_10"] - methods["sgns"]["recall_at_10"],
            "seconds": bucketed_s},
        "best_params": evaluation["best_params"],
        "grid": [{"params": {k: p["params"][k] for k in grid}, "recall_at_10": p["recall_at_10"], "map": p["map"]}
                 for p in evaluation["grid"]],
        "pairs_per_s": {"sgns": max(sgns_runs), "gensim_word2vec": max(gensim_runs),
                        "sgns_over_gensim": max(sgns_runs) / max(gensim_runs),
                        "sgns_runs": sgns_runs, "gensim_runs": gensim_runs,
                        "sgns_device": sgns.device, "gpu": "none measured" if sgns.device == "cpu" else sgns.device,
                        "pairs": int(len(graph.src)), "epochs": params["epochs"], "threads": threads,
                        "sgns_final_loss": sgns.losses[-1]},
        # resident memory each training added to the process (sampled; the inputs already in memory)
        "peak_memory_mb": {"sgns": sgns_memory.grown_mb, "gensim_word2vec": gensim_memory.grown_mb,
                           "sgns_over_gensim": sgns_memory.grown_mb / max(gensim_memory.grown_mb, 1e-9)},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
