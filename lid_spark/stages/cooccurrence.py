"""Same-session co-occurrence: plays -> track pairs with LLR scores -> debiased top-k neighbours.

Reads inputs.plays and inputs.tracks; writes the Delta tables play_quality (plays per reason),
track_cooccurrence (filtered pairs with counts, marginals and signed LLR score) and
track_neighbors (top-k per track after the popularity and hubness corrections), and the report
cooccurrence.json / cooccurrence.md under output.report_dir (counts, filters, hubness and
popularity bias before and after the corrections). Reruns on the same input give the same tables.
"""

from datetime import UTC, datetime

from pyspark import StorageLevel
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from lid_spark.config import Config
from lid_spark.consumption.debias import correct_scores, directed_edges, graph_measures, neighbor_graph, top_k
from lid_spark.consumption.pairs import filter_counts, filter_pairs, pair_counts, score_pairs, track_marginals
from lid_spark.consumption.sessions import REASONS, USED, label_configured_plays, reason_counts, session_tracks
from lid_spark.errors import InputError
from lid_spark.progress import get_logger, step
from lid_spark.reports import write_report
from lid_spark.tables import read_table, resolve_table, write_table

log = get_logger(__name__)


def run(spark: SparkSession, cfg: Config) -> dict:
    """Run the stage on ``cfg``'s tables; returns the report (also written to the report directory)."""
    co = cfg.cooccurrence
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)

    with step("label plays: validate, sessionize, cap per session, bots"):
        plays, labelled = label_configured_plays(spark, cfg, now)
        labelled = labelled.persist(StorageLevel.MEMORY_AND_DISK)
        quality = reason_counts(labelled)
        write_table(quality, resolve_table(cfg, "play_quality"))
        by_reason = {r["reason"]: r.asDict() for r in read_table(spark, resolve_table(cfg, "play_quality")).collect()}
        plays_in = plays.count()
        accounted = sum(r["plays"] for r in by_reason.values())
        if accounted != plays_in:  # a bug, never a data problem: every play gets exactly one reason
            raise RuntimeError(f"play accounting broken: {plays_in} plays in, {accounted} labelled")
        if by_reason.get(USED, {}).get("plays", 0) == 0:
            raise InputError(f"no usable plays among {plays_in}: reasons {by_reason}")

    with step("pair counts, filters, LLR -> track_cooccurrence"):
        sessions = session_tracks(labelled).persist(StorageLevel.MEMORY_AND_DISK)
        n_total = sessions.select("session_key").distinct().count()
        raw_pairs = pair_counts(sessions).persist(StorageLevel.MEMORY_AND_DISK)
        filters = filter_counts(raw_pairs, co.min_sessions, co.min_users)
        scored = score_pairs(filter_pairs(raw_pairs, co.min_sessions, co.min_users), track_marginals(sessions), n_total)
        cooc_ref = resolve_table(cfg, "track_cooccurrence")
        write_table(scored, cooc_ref)
        raw_pairs.unpersist()

    with step("debias and top-k -> track_neighbors"):
        cooccurrence = read_table(spark, cooc_ref)
        filters["positive_association"] = cooccurrence.where(F.col("score") > 0).count()
        filters["negative_association"] = filters["kept"] - filters["positive_association"]
        edges = directed_edges(cooccurrence).persist(StorageLevel.MEMORY_AND_DISK)
        graph_tracks = edges.select("track_id").distinct()
        raw = top_k(edges.withColumn("score", F.col("llr")), co.top_k)
        popularity_only = top_k(correct_scores(edges, co.popularity_power, "none"), co.top_k)
        neighbors_ref = resolve_table(cfg, "track_neighbors")
        write_table(neighbor_graph(cooccurrence, co.top_k, co.popularity_power, co.hubness_correction),
                    neighbors_ref)
        measures = {
            "raw_llr": graph_measures(raw, graph_tracks),
            f"popularity_power_{co.popularity_power:g}": graph_measures(popularity_only, graph_tracks),
            "corrected (track_neighbors)": graph_measures(read_table(spark, neighbors_ref), graph_tracks),
        }
        edges.unpersist()

    report = {
        "plays": {"plays_in": plays_in, **{r: by_reason.get(r, {}).get("plays", 0) for r in REASONS}},
        "sessions": {"sessions_used": n_total,
                     "bot_sessions": by_reason.get("bot_session", {}).get("sessions", 0),
                     "users_used": by_reason.get(USED, {}).get("users", 0),
                     "tracks_with_plays": sessions.select("track_id").distinct().count()},
        "pairs": {**filters, "min_sessions": co.min_sessions, "min_users": co.min_users},
        "top_k_graph": {"top_k": co.top_k, "tracks_with_neighbors": graph_tracks.count(),
                        "popularity_power": co.popularity_power, "hubness_correction": co.hubness_correction},
        "hubness_and_popularity_bias": measures,
        "tables": {"play_quality": str(resolve_table(cfg, "play_quality")),
                   "track_cooccurrence": str(cooc_ref), "track_neighbors": str(neighbors_ref)},
    }
    sessions.unpersist()
    labelled.unpersist()
    json_path, _ = write_report(cfg.output.report_dir, "cooccurrence", "Co-occurrence report", report)
    log.info("plays: %s; pairs kept %d of %d; report %s",
             {r: v["plays"] for r, v in by_reason.items()}, filters["kept"], filters["pairs"], json_path)
    return report
