"""Stage 1: plays accounting, sessionization, pair counts, LLR, debiasing, the cooccurrence job."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import numpy as np
import pytest
from planted import PLAYS_SCHEMA, planted_catalog
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual
from scipy.stats import norm, spearmanr

from lid_spark.consumption.debias import (
    correct_scores,
    directed_edges,
    graph_measures,
    k_occurrence_skewness,
    normal_cdf_column,
    top_k,
)
from lid_spark.consumption.pairs import (
    filter_counts,
    filter_pairs,
    llr,
    pair_counts,
    score_pairs,
    signed_llr,
    track_marginals,
)
from lid_spark.consumption.sessions import label_plays, session_tracks, with_session_key
from lid_spark.errors import ParameterError

T0 = datetime(2026, 3, 1, 12, 0, 0)
NOW = datetime(2026, 6, 1)


def _plays(spark, rows):
    return spark.createDataFrame(rows, PLAYS_SCHEMA)


def _tracks(spark, ids):
    return spark.createDataFrame([(t,) for t in ids], "track_id string")


def _at(minutes):
    return T0 + timedelta(minutes=minutes)


# --- LLR --------------------------------------------------------------------------------------

def test_llr_matches_hand_computed_g2():
    # 1000 sessions, a and b in 20 each, together in 10. Expected counts: 0.4, 19.6, 19.6, 960.4.
    # G^2 = 2 * (10 ln(10/0.4) + 2 * 10 ln(10/19.6) + 970 ln(970/960.4))
    by_hand = 2 * (10 * np.log(25.0) + 20 * np.log(10 / 19.6) + 970 * np.log(970 / 960.4))
    assert llr(10, 10, 10, 970) == pytest.approx(by_hand, rel=1e-12)
    assert by_hand == pytest.approx(56.7554, abs=1e-4)
    # independence gives 0; fewer meetings than chance gives a negative signed score
    assert llr(5, 5, 5, 5) == pytest.approx(0.0, abs=1e-12)
    assert signed_llr(0, 500, 500, 1000) < -100
    with pytest.raises(ParameterError):
        llr(-1, 1, 1, 1)


def test_spark_llr_equals_numpy(spark):
    rows = [("a", "b", 10, 3, 20, 20, 1000), ("a", "c", 1, 1, 500, 500, 1000), ("b", "c", 7, 7, 7, 7, 7),
            ("c", "d", 460, 2, 500, 900, 1000)]
    pairs = spark.createDataFrame(rows, "track_a string, track_b string, n_sessions long, n_users long, "
                                        "n_a long, n_b long, n_total long")
    marginals = spark.createDataFrame([("a", 20), ("b", 20), ("c", 500), ("d", 900)],
                                      "track_id string, n_sessions long")
    scored = {(r.track_a, r.track_b): r.score for r in
              score_pairs(pairs.select("track_a", "track_b", "n_sessions", "n_users"), marginals, 1000).collect()}
    assert scored[("a", "b")] == pytest.approx(56.7554, abs=1e-4)
    assert scored[("a", "c")] == pytest.approx(float(signed_llr(1, 20, 500, 1000)), rel=1e-9)
    assert scored[("a", "c")] < 0
    assert scored[("c", "d")] == pytest.approx(float(signed_llr(460, 500, 900, 1000)), rel=1e-9)


# --- plays accounting and sessions ------------------------------------------------------------

def test_every_play_is_used_or_counted_under_one_reason(spark):
    rows = [
        (None, "t1", _at(0), None), ("", "t1", _at(0), None),          # null_user_id x2
        ("u1", None, _at(0), None),                                      # null_track_id
        ("u1", "t1", None, None),                                        # null_ts
        ("u1", "t1", NOW + timedelta(days=2), None),                     # future_ts
        ("u1", "t1", datetime(1970, 1, 1), None),                        # ancient_ts
        ("u1", "nope", _at(1), None),                                    # unknown_track
        ("u1", "t1", _at(1), None), ("u1", "t1", _at(1), None),          # one used + duplicate_play
        ("u1", "t1", _at(2), None),                                      # repeat_in_session
        ("u1", "t2", _at(3), None),                                      # used
    ]
    # a bot: one user, one session id, 7 distinct tracks (> bot_session_tracks=6), 100 plays
    rows += [("bot", f"t{i % 7 + 1}", _at(i), "s-bot") for i in range(100)]
    # a session over the cap (4): 6 distinct tracks -> 4 used, 2 session_cap
    rows += [("u2", f"t{i + 1}", _at(i), "s-big") for i in range(6)]
    tracks = _tracks(spark, [f"t{i}" for i in range(1, 10)])
    labelled = label_plays(_plays(spark, rows), tracks, now=NOW, max_tracks_per_session=4, bot_session_tracks=6)
    counts = {r["reason"]: r["count"] for r in labelled.groupBy("reason").count().collect()}
    assert counts == {"null_user_id": 2, "null_track_id": 1, "null_ts": 1, "future_ts": 1, "ancient_ts": 1,
                      "unknown_track": 1, "duplicate_play": 1, "repeat_in_session": 1, "bot_session": 100,
                      "session_cap": 2, "used": 2 + 4}
    assert sum(counts.values()) == len(rows)
    used_sessions = {r.session_key for r in session_tracks(labelled).collect()}
    assert len(used_sessions) == 2 and not any("s-bot" in k for k in used_sessions)


def test_gap_sessionization_and_given_session_ids(spark):
    rows = [("u1", "a", _at(0), None), ("u1", "b", _at(20), None), ("u1", "c", _at(45), None),
            ("u1", "d", _at(80), None),                    # 35 min after c: a new session
            ("u1", "e", _at(10), None),                    # arrives out of order: belongs with a, b
            ("u2", "a", _at(0), "x"), ("u2", "b", _at(500), "x"),   # given id: one session despite the gap
            ("u3", "a", _at(0), "x")]                      # same id, other user: another session
    keyed = with_session_key(_plays(spark, rows), gap_minutes=30).collect()
    key = {(r.user_id, r.track_id): r.session_key for r in keyed}
    assert key["u1", "a"] == key["u1", "b"] == key["u1", "c"] == key["u1", "e"] != key["u1", "d"]
    assert key["u2", "a"] == key["u2", "b"] != key["u3", "a"]
    assert len(set(key.values())) == 4


def test_session_cap_is_a_deterministic_hash_sample(spark):
    rows = [("u", f"t{i}", _at(i), "s") for i in range(20)]
    tracks = _tracks(spark, [f"t{i}" for i in range(20)])

    def kept(seed):
        labelled = label_plays(_plays(spark, rows), tracks, now=NOW, max_tracks_per_session=5, seed=seed)
        return sorted(r.track_id for r in labelled.where("reason = 'used'").collect())

    first = kept(11)
    assert len(first) == 5 and first == kept(11)
    # the sample is the 5 tracks with the smallest xxhash64(session_key, track_id, seed)
    key = "u\u001fs\u001fs"
    hashed = spark.createDataFrame([(key, f"t{i}") for i in range(20)], "session_key string, track_id string")
    smallest = hashed.orderBy(F.xxhash64("session_key", "track_id", F.lit(11))).limit(5).collect()
    assert first == sorted(r.track_id for r in smallest)
    assert kept(12) != first
    with pytest.raises(ParameterError):
        label_plays(_plays(spark, rows), tracks, now=NOW, max_tracks_per_session=10, bot_session_tracks=5)


# --- pairs ------------------------------------------------------------------------------------

def _sessions(spark, sessions):
    """sessions: {session_key: (user, [tracks])} -> session_tracks frame."""
    rows = [(key, user, t) for key, (user, ts) in sessions.items() for t in ts]
    return spark.createDataFrame(rows, "session_key string, user_id string, track_id string")


def test_pair_counts_users_marginals_and_filters(spark):
    st = _sessions(spark, {"s1": ("u1", ["a", "b", "c"]), "s2": ("u1", ["a", "b"]), "s3": ("u2", ["a", "b"]),
                           "s4": ("u3", ["b", "c"]), "s5": ("u4", ["d"])})
    pairs = {(r.track_a, r.track_b): (r.n_sessions, r.n_users) for r in pair_counts(st).collect()}
    assert pairs == {("a", "b"): (3, 2), ("a", "c"): (1, 1), ("b", "c"): (2, 2)}
    marginals = {r.track_id: (r.n_sessions, r.n_users) for r in track_marginals(st).collect()}
    assert marginals == {"a": (3, 2), "b": (4, 3), "c": (2, 2), "d": (1, 1)}
    raw = pair_counts(st)
    assert filter_counts(raw, 2, 2) == {"pairs": 3, "below_min_sessions": 1, "below_min_users": 0, "kept": 2}
    assert filter_counts(raw, 3, 3) == {"pairs": 3, "below_min_sessions": 2, "below_min_users": 1, "kept": 0}
    kept = score_pairs(filter_pairs(raw, 2, 2), track_marginals(st), 5).collect()
    by_pair = {(r.track_a, r.track_b): r for r in kept}
    assert set(by_pair) == {("a", "b"), ("b", "c")}
    ab = by_pair["a", "b"]
    assert (ab.n_a, ab.n_b, ab.n_total) == (3, 4, 5)
    assert ab.score == pytest.approx(float(signed_llr(3, 3, 4, 5)), rel=1e-9)


# --- debiasing and top-k -----------------------------------------------------------------------

def test_normal_cdf_column_is_accurate(spark):
    z = [-3.1, -1.0, -0.2, 0.0, 0.5, 1.7, 4.0]
    df = spark.createDataFrame([(v,) for v in z], "z double")
    got = [r.p for r in df.select(normal_cdf_column(F.col("z")).alias("p")).collect()]
    np.testing.assert_allclose(got, norm.cdf(z), atol=2e-7)


def _hub_pairs(spark):
    """Tracks q0..q5 each pair with a popular hub h (the higher raw LLR) and with their own partner r."""
    rows = []
    for i in range(6):
        for a, b, k, n_a, n_b in (("h", f"q{i}", 38, 400, 40), (f"q{i}", f"r{i}", 4, 40, 10)):
            rows.append((a, b, k, k, n_a, n_b, 1000, float(signed_llr(k, n_a, n_b, 1000))))
    return spark.createDataFrame(rows, "track_a string, track_b string, n_sessions long, n_users long, "
                                       "n_a long, n_b long, n_total long, score double")


def test_top_k_and_corrections_reduce_hubness(spark):
    edges = directed_edges(_hub_pairs(spark)).cache()
    assert edges.count() == 24
    raw_top1 = {r.track_id: r.neighbor_id for r in
                top_k(edges.withColumn("score", F.col("llr")), 1).collect()}
    assert all(raw_top1[f"q{i}"] == "h" for i in range(6))      # the hub is everyone's first neighbour
    corrected = correct_scores(edges, popularity_power=0.5, hubness="mutual_proximity")
    top1 = {r.track_id: r.neighbor_id for r in top_k(corrected, 1).collect()}
    assert all(top1[f"q{i}"] == f"r{i}" for i in range(6))      # own partner wins after the correction
    scores = [r.score for r in corrected.collect()]
    assert all(0.0 < s < 1.0 for s in scores)
    ranked = top_k(corrected, 2).where("track_id = 'q0'").orderBy("rank").collect()
    assert [r.rank for r in ranked] == [1, 2] and ranked[0].score >= ranked[1].score
    tracks = edges.select("track_id").distinct()
    before = graph_measures(top_k(edges.withColumn("score", F.col("llr")), 1), tracks)
    after = graph_measures(top_k(corrected, 1), tracks)
    assert before["k_occurrence_max"] == 6 and after["k_occurrence_max"] < 6
    assert after["k_occurrence_skewness"] < before["k_occurrence_skewness"]
    with pytest.raises(ParameterError):
        correct_scores(edges, hubness="csls")
    edges.unpersist()


def test_graph_measures_agree_with_numpy_and_scipy(spark):
    rng = np.random.default_rng(0)
    n, k = 30, 3
    lists = np.array([rng.choice([j for j in range(n) if j != i], k, replace=False) for i in range(n)])
    popularity = rng.integers(1, 1000, n)
    scores = rng.random((n, k))
    rows = [(f"t{i:02d}", f"t{lists[i, j]:02d}", float(scores[i, j]), int(popularity[lists[i, j]]))
            for i in range(n) for j in range(k)]
    neighbors = spark.createDataFrame(rows, "track_id string, neighbor_id string, score double, n_neighbor long")
    measures = graph_measures(neighbors, neighbors.select("track_id"))
    assert measures["k_occurrence_skewness"] == pytest.approx(k_occurrence_skewness(lists, n), rel=1e-9)
    expected_rho = spearmanr(scores.ravel(), popularity[lists].ravel()).statistic
    assert measures["score_popularity_spearman"] == pytest.approx(expected_rho, abs=1e-9)
    assert measures["edges"] == n * k


# --- the job ------------------------------------------------------------------------------------

@pytest.mark.slow
def test_cooccurrence_job_writes_tables_report_and_is_idempotent(spark, table_config, tmp_path):
    from lid_spark.jobs import cooccurrence

    from lid_spark.tables import read_table, resolve_table

    plays_path, tracks_path, n_plays = planted_catalog(spark, tmp_path)
    args = [f"inputs.plays={plays_path}", f"inputs.tracks={tracks_path}",
            f"tables.location={table_config.tables.location}", f"output.report_dir={table_config.output.report_dir}",
            "spark.shuffle_partitions=2", "cooccurrence.top_k=5"]
    assert cooccurrence.main(args) == 0
    cfg = table_config
    tables = {name: read_table(spark, resolve_table(cfg, name))
              for name in ("play_quality", "track_cooccurrence", "track_neighbors")}
    first = {name: df.collect() for name, df in tables.items()}
    report = json.loads((tmp_path / "report" / "cooccurrence.json").read_text())
    assert report["plays"]["plays_in"] == n_plays
    assert sum(report["plays"][r] for r in report["plays"] if r != "plays_in") == n_plays
    assert report["plays"]["null_user_id"] == 1 and report["plays"]["unknown_track"] == 1
    assert report["plays"]["future_ts"] == 1
    neighbors = tables["track_neighbors"]
    assert neighbors.groupBy("track_id").count().agg(F.max("count")).first()[0] == 5
    # community tracks' neighbours are from their own community
    same = neighbors.where(F.col("track_id").startswith("c") & F.col("neighbor_id").startswith("c")).select(
        (F.substring("track_id", 1, 2) == F.substring("neighbor_id", 1, 2)).cast("double").alias("same"))
    assert same.agg(F.avg("same")).first()[0] > 0.95
    measures = report["hubness_and_popularity_bias"]
    assert set(measures) == {"raw_llr", "popularity_power_0.5", "corrected (track_neighbors)"}
    assert (tmp_path / "report" / "cooccurrence.md").read_text().startswith("# Co-occurrence report")

    assert cooccurrence.main(args) == 0
    for name in first:
        assertDataFrameEqual(read_table(spark, resolve_table(cfg, name)), first[name])
