"""Consumption embeddings: weighted skip-gram with negative sampling over track_neighbors.

Reads track_neighbors (from the cooccurrence job) as pair shards streamed to the driver's local disk
(bounded memory), and trains in the driver (embeddings.buckets=1, on embeddings.device) or bucket
pair by bucket pair on Spark tasks (buckets >= 2); with embeddings.evaluate, also inputs.plays and
inputs.tracks to rank held-out co-listened pairs (Recall@10, MAP) for every point of
embeddings.grid and for the peers, and trains the final model with the best point. Writes the
Delta table consumption_embeddings (track_id, vector, model_version) and the report
train_embeddings.json / .md under output.report_dir. The same seed gives the same table.
"""

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
from pyspark.sql import SparkSession

from lid_spark.config import Config
from lid_spark.consumption.holdout import evaluate_embeddings
from lid_spark.consumption.pair_shards import stream_pair_shards
from lid_spark.consumption.sessions import label_configured_plays
from lid_spark.consumption.training import fit_shards
from lid_spark.progress import get_logger, step
from lid_spark.reports import write_report
from lid_spark.schemas import EMBEDDINGS_SCHEMA
from lid_spark.tables import read_table, resolve_table, write_table

log = get_logger(__name__)

def run(spark: SparkSession, cfg: Config) -> dict:
    """Run the stage on ``cfg``'s tables; returns the report (also written to the report directory)."""
    emb = cfg.embeddings
    params = emb.to_dict()
    report = {}

    if emb.evaluate:
        with step("held-out ranking: SGNS grid and peers"):
            _, labelled = label_configured_plays(spark, cfg, datetime.now(UTC).replace(tzinfo=None))
            evaluation = evaluate_embeddings(labelled, cfg.cooccurrence.to_dict(), params, grid=emb.grid.to_dict(),
                                             peers=list(emb.peers))
        params.update(evaluation["best_params"])
        report["held-out ranking (Recall@10, MAP)"] = evaluation["methods"]
        report["grid"] = {(", ".join(f"{k}={p['params'][k]}" for k in sorted(emb.grid)) or "configured"):
                          {"recall_at_10": p["recall_at_10"], "map": p["map"], "seconds": p["seconds"]}
                          for p in evaluation["grid"]}
        report["evaluation data"] = {k: evaluation[k] for k in
                                     ("train_pairs", "vocabulary", "heldout_queries", "mean_relevant_per_query")}

    with step("stream track_neighbors to pair shards"):
        shards = stream_pair_shards(read_table(spark, resolve_table(cfg, "track_neighbors")),
                                    weight_power=float(params["weight_power"]), buckets=emb.buckets,
                                    shard_pairs=emb.shard_pairs, seed=emb.seed)
    with shards, step(f"train SGNS ({emb.buckets} bucket(s))"):
        result = fit_shards(spark, shards, params)

    with step("write consumption_embeddings"):
        vocabulary = shards.vocabulary.astype(str)
        ref = resolve_table(cfg, "consumption_embeddings")
        write_table(spark.createDataFrame(embeddings_arrow(vocabulary, result.vectors, emb.model_version),
                                          EMBEDDINGS_SCHEMA), ref)

    report["model"] = {"model_version": emb.model_version, "tracks": len(vocabulary),
                       "pairs": shards.pairs, "shards": len(shards.shards), "buckets": emb.buckets,
                       "device": result.device, "pairs_per_s": result.pairs_per_s,
                       "final_loss": result.losses[-1], "table": str(ref)}
    report["parameters"] = {k: params[k] for k in ("dim", "epochs", "negatives", "learning_rate", "optimizer",
                                                   "batch_size", "weight_power", "seed", "device", "buckets")}
    json_path, _ = write_report(cfg.output.report_dir, "train_embeddings", "Consumption embeddings report", report)
    log.info("embedded %d tracks (%s); report %s", len(vocabulary), emb.model_version, json_path)
    return report


def embeddings_arrow(track_ids: np.ndarray, vectors: np.ndarray, model_version: str) -> pa.Table:
    """The output rows as one Arrow table (no Python list per track: 10^6 x 64 floats stay one buffer)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    offsets = np.arange(0, vectors.size + 1, vectors.shape[1], dtype=np.int32)
    return pa.table({"track_id": pa.array(track_ids, pa.string()),
                     "vector": pa.ListArray.from_arrays(pa.array(offsets), pa.array(vectors.reshape(-1))),
                     "model_version": pa.array([model_version] * len(track_ids), pa.string())})
