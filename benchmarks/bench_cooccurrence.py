"""Co-occurrence throughput: lid-spark's Spark plan (local Spark) against the same SQL in DuckDB.

The computation, from Parquet plays to Parquet pairs, identical in both engines: drop invalid
plays (null ids, clock skew, unknown tracks, exact duplicates), sessionize (given session_id,
else a 30-minute inactivity gap), one row per track per session, leave out bot sessions (more
than 1000 distinct tracks), count pairs (sessions and distinct users), marginals, filter
(>= 2 sessions, >= 2 users), signed LLR. The per-session cap is set to the bot threshold so both
engines keep the same tracks (their hash functions differ) and the results can be compared
exactly: the JSON says whether they agree (pair count, sums of counts and scores).

Each engine runs in its own process over all sizes (smallest first, after a warm-up), so peak
resident memory is measured per engine: the Python process's ru_maxrss, plus the JVM's VmHWM for
Spark. Prints one JSON object:

    python benchmarks/bench_cooccurrence.py            # 10^6 and 10^7 plays
    python benchmarks/bench_cooccurrence.py --quick    # 5*10^4 and 2*10^5 plays, about a minute
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
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

GAP_MINUTES, BOT_TRACKS, MIN_SESSIONS, MIN_USERS, SEED = 30, 1000, 2, 2, 11
NOW = datetime(2026, 6, 1)
MIN_TS = datetime(2000, 1, 1)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_spark(datasets: list[dict], out_dir: str) -> list[dict]:
    from pyspark.sql import functions as F

    from lid_spark.config import load_config
    from lid_spark.consumption.pairs import cooccurrence_pairs
    from lid_spark.consumption.sessions import label_plays, session_tracks
    from lid_spark.contract import conform
    from lid_spark.spark import get_spark

    cores = os.cpu_count() or 2
    spark = get_spark(load_config(overrides=[
        f"spark.master=local[{cores}]", f"spark.shuffle_partitions={max(4, 2 * cores)}",
        f"spark.driver_memory={os.environ.get('BENCH_SPARK_MEMORY', '6g')}", "spark.log_level=ERROR"]))
    jvm_pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
    results = []
    for i, data in enumerate(datasets):
        start = time.perf_counter()
        plays = conform(spark.read.parquet(data["plays"]), "plays")
        tracks = conform(spark.read.parquet(data["tracks"]), "tracks")
        labelled = label_plays(plays, tracks, now=NOW, gap_minutes=GAP_MINUTES, max_tracks_per_session=BOT_TRACKS,
                               bot_session_tracks=BOT_TRACKS, seed=SEED, min_valid_ts=MIN_TS)
        scored, _ = cooccurrence_pairs(session_tracks(labelled), MIN_SESSIONS, MIN_USERS)
        target = f"{out_dir}/spark_{i}"
        scored.write.mode("overwrite").parquet(target)
        seconds = time.perf_counter() - start
        summary = spark.read.parquet(target).agg(F.count(F.lit(1)).alias("pairs"), F.sum("n_sessions").alias("s"),
                                                 F.sum("score").alias("llr")).first()
        results.append({"seconds": seconds, "pairs": summary["pairs"], "sum_n_sessions": summary["s"],
                        "sum_llr": summary["llr"]})
    jvm_peak = _vm_hwm_mb(jvm_pid)
    spark.stop()
    return results, {"peak_rss_mb": _rss_mb() + jvm_peak, "jvm_peak_rss_mb": jvm_peak}


def _vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


DUCKDB_SQL = """
CREATE OR REPLACE MACRO xlogx(x) AS CASE WHEN x > 0 THEN x * ln(x) ELSE 0 END;
COPY (
WITH plays AS (SELECT user_id, track_id, CAST(ts AS TIMESTAMP) AS ts, session_id
  FROM read_parquet('{plays}/*.parquet')),
catalog AS (SELECT DISTINCT track_id FROM read_parquet('{tracks}/*.parquet') WHERE track_id IS NOT NULL),
valid AS (
  SELECT DISTINCT p.user_id, p.track_id, p.ts, p.session_id FROM plays p JOIN catalog c ON p.track_id = c.track_id
  WHERE p.user_id IS NOT NULL AND trim(p.user_id) <> '' AND trim(p.track_id) <> '' AND p.ts IS NOT NULL
    AND p.ts <= TIMESTAMP '{latest}' AND p.ts >= TIMESTAMP '{min_ts}'),
flagged AS (SELECT *, (session_id IS NOT NULL AND trim(session_id) <> '') AS has_id FROM valid),
gaps AS (
  SELECT *, CASE WHEN lag(ts) OVER w IS NULL OR epoch(ts) - epoch(lag(ts) OVER w) > {gap_s} THEN 1 ELSE 0 END AS start
  FROM flagged WINDOW w AS (PARTITION BY user_id, has_id ORDER BY ts, track_id)),
keyed AS (
  SELECT user_id, track_id, CASE WHEN has_id THEN user_id || chr(31) || 's' || chr(31) || session_id
    ELSE user_id || chr(31) || 'g' || chr(31) || CAST(sum(start) OVER (PARTITION BY user_id, has_id
      ORDER BY ts, track_id ROWS UNBOUNDED PRECEDING) AS VARCHAR) END AS session_key
  FROM gaps),
st AS (SELECT DISTINCT session_key, user_id, track_id FROM keyed),
sized AS (SELECT *, count(*) OVER (PARTITION BY session_key) AS n_distinct FROM st),
used AS (SELECT session_key, user_id, track_id FROM sized WHERE n_distinct <= {bot}),
marg AS (SELECT track_id, count(*) AS n FROM used GROUP BY track_id),
total AS (SELECT count(DISTINCT session_key) AS n_total FROM used),
pairs AS (
  SELECT a.track_id AS track_a, b.track_id AS track_b, count(*) AS n_sessions, count(DISTINCT a.user_id) AS n_users
  FROM used a JOIN used b ON a.session_key = b.session_key AND a.track_id < b.track_id GROUP BY 1, 2),
kept AS (
  SELECT p.*, ma.n AS n_a, mb.n AS n_b, t.n_total FROM pairs p
  JOIN marg ma ON ma.track_id = p.track_a JOIN marg mb ON mb.track_id = p.track_b CROSS JOIN total t
  WHERE p.n_sessions >= {min_sessions} AND p.n_users >= {min_users}),
g AS (
  SELECT *, greatest(0.0, 2.0 * (xlogx(n_sessions::DOUBLE) + xlogx((n_a - n_sessions)::DOUBLE)
    + xlogx((n_b - n_sessions)::DOUBLE) + xlogx((n_total - n_a - n_b + n_sessions)::DOUBLE)
    - xlogx(n_a::DOUBLE) - xlogx((n_total - n_a)::DOUBLE) - xlogx(n_b::DOUBLE) - xlogx((n_total - n_b)::DOUBLE)
    + xlogx(n_total::DOUBLE))) AS g2 FROM kept)
SELECT track_a, track_b, n_sessions, n_users, n_a, n_b, n_total,
  CASE WHEN n_sessions::DOUBLE * n_total > n_a::DOUBLE * n_b THEN g2 ELSE -g2 END AS score FROM g
) TO '{target}' (FORMAT parquet);
"""


def run_duckdb(datasets: list[dict], out_dir: str) -> list[dict]:
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    results = []
    for i, data in enumerate(datasets):
        target = f"{out_dir}/duckdb_{i}.parquet"
        sql = DUCKDB_SQL.format(plays=data["plays"], tracks=data["tracks"], latest=NOW.isoformat(sep=" "),
                                min_ts=MIN_TS.isoformat(sep=" "), gap_s=GAP_MINUTES * 60, bot=BOT_TRACKS,
                                min_sessions=MIN_SESSIONS, min_users=MIN_USERS, target=target)
        start = time.perf_counter()
        con.execute(sql)
        seconds = time.perf_counter() - start
        pairs, s, llr = con.execute(f"SELECT count(*), sum(n_sessions), sum(score) FROM '{target}'").fetchone()
        results.append({"seconds": seconds, "pairs": pairs, "sum_n_sessions": s, "sum_llr": llr})
    return results, {"peak_rss_mb": _rss_mb()}


def _engine_main(engine: str, datasets: list[dict], out_dir: str) -> None:
    fn = run_spark if engine == "spark" else run_duckdb
    results, memory = fn(datasets, out_dir)
    print("RESULT " + json.dumps({"results": results, **memory}))


def _run_engine(engine: str, datasets: list[dict], out_dir: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--engine", engine, "--datasets", json.dumps(datasets),
                           "--workdir", out_dir], capture_output=True, text=True, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{engine} run failed:\n{proc.stderr[-4000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5*10^4 and 2*10^5 plays (about a minute)")
    parser.add_argument("--sizes", default=None, help="comma-separated play counts (default 1e6,1e7)")
    parser.add_argument("--workdir", default=None, help="where data and results go (default: a temp dir)")
    parser.add_argument("--engine", choices=["spark", "duckdb"], help=argparse.SUPPRESS)
    parser.add_argument("--datasets", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine:
        _engine_main(args.engine, json.loads(args.datasets), args.workdir)
        return

    from listening import generate

    sizes = [int(float(s)) for s in (args.sizes or ("5e4,2e5" if args.quick else "1e6,1e7")).split(",")]
    workdir = args.workdir or tempfile.mkdtemp(prefix="bench-cooccurrence-")
    warmup = generate(f"{workdir}/warmup", 20_000, seed=1)
    datasets = [warmup] + [generate(f"{workdir}/plays_{n}", n, seed=2) for n in sizes]
    measured = {engine: _run_engine(engine, datasets, workdir) for engine in ("spark", "duckdb")}
    report = {"benchmark": "cooccurrence", "cpu_count": os.cpu_count(), "sizes": {}}
    for i, data in enumerate(datasets[1:], start=1):
        spark, duck = measured["spark"]["results"][i], measured["duckdb"]["results"][i]
        agree = (spark["pairs"] == duck["pairs"] and spark["sum_n_sessions"] == duck["sum_n_sessions"]
                 and abs(spark["sum_llr"] - duck["sum_llr"]) <= 1e-6 * max(1.0, abs(duck["sum_llr"])))
        report["sizes"][str(data["n_plays"])] = {
            "plays": data["n_plays"], "tracks": data["n_tracks"], "pairs_kept": spark["pairs"],
            "spark_seconds": spark["seconds"], "duckdb_seconds": duck["seconds"],
            "spark_plays_per_s": data["n_plays"] / spark["seconds"],
            "duckdb_plays_per_s": data["n_plays"] / duck["seconds"],
            "spark_over_duckdb_plays_per_s": duck["seconds"] / spark["seconds"],
            "results_agree": agree,
        }
    if len(datasets) > 2:
        small, large = datasets[1], datasets[-1]
        s_small, s_large = measured["spark"]["results"][1], measured["spark"]["results"][-1]
        d_small, d_large = measured["duckdb"]["results"][1], measured["duckdb"]["results"][-1]
        report["growth"] = {"plays_ratio": large["n_plays"] / small["n_plays"],
                            "spark_time_ratio": s_large["seconds"] / s_small["seconds"],
                            "duckdb_time_ratio": d_large["seconds"] / d_small["seconds"]}
    report["peak_rss_mb"] = {"spark": measured["spark"]["peak_rss_mb"],
                             "spark_jvm": measured["spark"]["jvm_peak_rss_mb"],
                             "duckdb": measured["duckdb"]["peak_rss_mb"],
                             "spark_over_duckdb": measured["spark"]["peak_rss_mb"] / measured["duckdb"]["peak_rss_mb"]}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
