"""Consumption embeddings: weighted skip-gram with negative sampling over track_neighbors.

Reads track_neighbors (from the cooccurrence job); with embeddings.evaluate, also inputs.plays and
inputs.tracks to rank held-out co-listened pairs (Recall@10, MAP) for every point of
embeddings.grid and for the peers, and trains the final model with the best point. Writes the
Delta table consumption_embeddings (track_id, vector, model_version) and the report
train_embeddings.json / .md under output.report_dir. The same seed gives the same table.
"""

from datetime import UTC, datetime

import pandas as pd
from pyspark.sql import SparkSession

from lid_spark.config import Config
from lid_spark.consumption.holdout import evaluate_embeddings
from lid_spark.consumption.sessions import label_configured_plays
from lid_spark.consumption.training import fit_embeddings, graph_from_neighbors, neighbors_to_pandas
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

    with step("train SGNS on track_neighbors"):
        graph = graph_from_neighbors(neighbors_to_pandas(read_table(spark, resolve_table(cfg, "track_neighbors"))))
        local_mode = spark.sparkContext.master.startswith("local")
        result = fit_embeddings(graph, params, distributed=emb.distributed, num_processes=emb.num_processes,
                                local_mode=local_mode)

    with step("write consumption_embeddings"):
        table = pd.DataFrame({"track_id": graph.vocabulary.astype(str),
                              "vector": [row.tolist() for row in result.vectors],
                              "model_version": emb.model_version})
        ref = resolve_table(cfg, "consumption_embeddings")
        write_table(spark.createDataFrame(table, EMBEDDINGS_SCHEMA), ref)

    report["model"] = {"model_version": emb.model_version, "tracks": len(graph.vocabulary),
                       "pairs": int(len(graph.src)), "distributed": emb.distributed,
                       "processes": emb.num_processes if emb.distributed else 1,
                       "pairs_per_s": result.pairs_per_s, "final_loss": result.losses[-1],
                       "table": str(ref)}
    report["parameters"] = {k: params[k] for k in ("dim", "epochs", "negatives", "learning_rate", "optimizer",
                                                   "batch_size", "weight_power", "seed")}
    json_path, _ = write_report(cfg.output.report_dir, "train_embeddings", "Consumption embeddings report", report)
    log.info("embedded %d tracks (%s); report %s", len(graph.vocabulary), emb.model_version, json_path)
    return report
