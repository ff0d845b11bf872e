"""Tagging throughput: tracks tagged per second by tag_catalog, against the same model in plain Python.

For each catalog size it writes shape-correct feature tables straight from Spark (random vectors
of the real sizes: consumption embeddings of ``embeddings.dim``, timbral vectors of twice
``audio.timbral.codebook_size``, spoken-LID segment embeddings of the embedded ECAPA model's
size; ~90% of tracks with consumption, ~3% with missing audio, ~5% instrumental, the rest with
``--segments`` vocal segments) and a ``language_tags`` table that an older model wrote for every
track. Then ``lid_spark.stages.tag_catalog.run`` re-tags the whole catalog (a new model version: every
track is scored and every row MERGE-updated), timed as a whole and per step:

- ``frame``: assembling the track feature frame alone (joins, segment grouping), no inference;
- ``score``: frame + inference in the pandas UDF (the model loaded once per Python worker);
- ``merge``: the Delta MERGE of the new tags into the table;
- ``total``: the job, counts and checks included.

The peer, measured in the same run: the same classifier's tags computed in one plain Python
process without Spark (``LanguageClassifier.predict_tracks`` + ``tag_rows``, exactly the UDF's
work) over the same feature rows held in pandas, at most ``--peer-rows`` of them. The classifier
is untrained (saved through the public artifact API with the default architecture): inference
costs the same as for a trained one. Also: peak memory (RSS of the whole process tree: driver,
JVM, Python workers) and the cost of a 10^7-track catalog in core-hours, extrapolated from the
growth of the total time between the two sizes.

Prints one JSON object. ``--quick`` runs 10^4 and 5x10^4 tracks; the full run 10^5 and 10^6.

    python benchmarks/bench_tagging.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

VOCAL_EMBEDDING = 128   # the embedded spoken-LID ECAPA model's embedding size (emb_dim)


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _is_jvm(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip() == "java"
    except (FileNotFoundError, ProcessLookupError):
        return False


class PeakMemory:
    """Samples the resident memory of this process (and, with ``tree``, all its descendants).

    ``peak`` is the largest sum seen; ``peak_jvm`` and ``peak_python`` are the largest seen of the
    JVM alone and of the Python processes (driver and UDF workers) together.
    """

    def __init__(self, tree: bool, interval: float = 0.25):
        self.tree, self.interval = tree, interval
        self.peak = self.peak_jvm = self.peak_python = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            pids = _descendants(os.getpid()) if self.tree else [os.getpid()]
            rss = {p: _rss_bytes(p) for p in pids}
            jvm = sum(v for p, v in rss.items() if _is_jvm(p))
            self.peak = max(self.peak, sum(rss.values()))
            self.peak_jvm = max(self.peak_jvm, jvm)
            self.peak_python = max(self.peak_python, sum(rss.values()) - jvm)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def save_untrained_classifier(directory: Path, dims: dict[str, int], channels: int, seed: int = 0) -> str:
    """A multimodal classifier with the default architecture and random weights, via the artifact API."""
    import torch

    from lid_spark.model.artifact import LanguageClassifier
    from lid_spark.model.features import InputLayout, ModalityStats
    from lid_spark.model.resnet1d import ResNet1D
    from lid_spark.model.train import TrainSettings, has_timbral_replicas

    torch.manual_seed(seed)
    defaults = TrainSettings()
    layout = InputLayout.for_subset("multimodal", dims)
    stats = {m: ModalityStats(np.full(d, 0.5, np.float32), np.full(d, 0.29, np.float32)) for m, d in dims.items()}
    # the default architecture and scoring: linear path, and a second pass with the timbral part at its fallback
    net = ResNet1D(11, channels, defaults.position, layout.size, linear_path=defaults.linear_path).eval()
    classifier = LanguageClassifier(
        net=net, subset="multimodal", layout=layout, stats=stats,
        fallback={m: "A" for m in dims}, input_mean=np.full(layout.size, 0.5, np.float32),
        input_std=np.full(layout.size, 0.29, np.float32), model_version="bench-untrained",
        average_without_timbral=defaults.average_without_timbral and has_timbral_replicas(defaults, layout))
    classifier.save(directory)
    return classifier.model_version


def write_catalog(spark, cfg, n: int, segments: int, dims: dict[str, int], seed: int) -> None:
    """Tracks, the four feature tables and an older model's language_tags for ``n`` tracks, in Delta."""
    from pyspark.sql import functions as F

    from lid_spark import LANGUAGE_CLASSES
    from lid_spark.tables import input_table, resolve_table, write_table

    def vector(size: int, salt: int):
        return F.array(*[F.rand(seed * 1000 + salt * 300 + i).cast("float") for i in range(size)])

    base = spark.range(n).withColumn("track_id", F.format_string("t%08d", "id")) \
        .withColumn("u", F.rand(seed)).withColumn("v", F.rand(seed + 1))
    tracks = base.select("track_id", F.format_string("ar%07d", (F.col("id") / 4).cast("long")).alias("artist_id"),
                         F.concat(F.lit("audio/"), "track_id", F.lit(".flac")).alias("audio_uri"),
                         F.lit(210.0).alias("duration_s"))
    write_table(tracks, input_table(cfg, "tracks"))
    write_table(base.where("v < 0.9").select("track_id", vector(dims["consumption"], 1).alias("vector"),
                                             F.lit("bench").alias("model_version")),
                resolve_table(cfg, "consumption_embeddings"))
    status = base.select("track_id", F.when(F.col("u") < 0.03, "missing_file")
                         .when(F.col("u") < 0.08, "no_vocals").otherwise("ok").alias("status"))
    write_table(status.select("track_id", "status", F.lit(None).cast("string").alias("error"),
                              F.lit(0.5).alias("vocal_ratio"), F.lit(segments).alias("n_segments"),
                              F.lit(210.0).alias("duration_s"), F.lit("bench").alias("feature_version")),
                resolve_table(cfg, "audio_status"))
    write_table(status.where("status != 'missing_file'").select(
        "track_id", vector(dims["timbral"], 2).alias("vector"), F.lit("bench").alias("feature_version")),
        resolve_table(cfg, "timbral_features"))
    langs = F.array(*[F.lit(x) for x in LANGUAGE_CLASSES])
    segs = status.where("status = 'ok'").select("track_id", F.explode(F.sequence(F.lit(0), F.lit(segments - 1)))
                                                 .alias("seg_idx"))
    write_table(segs.select("track_id", "seg_idx", (F.col("seg_idx") * 4.0).alias("start_s"),
                            (F.col("seg_idx") * 4.0 + 3.5).alias("end_s"), vector(dims["vocals"], 3).alias("embedding"),
                            F.map_from_arrays(langs, vector(len(LANGUAGE_CLASSES), 4)).alias("spoken_lid_scores"),
                            F.lit("bench").alias("feature_version")),
                resolve_table(cfg, "vocal_segments"))
    previous = base.select("track_id", F.lit("en").alias("language"), F.lit(0.9).alias("confidence"),
                           F.create_map(F.lit("en"), F.lit(0.9)).alias("scores"),
                           F.lit(None).cast("string").alias("second_language"), F.lit(False).alias("is_instrumental"),
                           F.array(F.lit("timbral")).alias("modalities"), F.lit("tagged").alias("status"),
                           F.lit(None).cast("string").alias("reason"),
                           F.lit(0).cast("long").alias("feature_fingerprint"),
                           F.lit("older-model").alias("model_version"), F.current_timestamp().alias("tagged_at"))
    write_table(previous, resolve_table(cfg, "language_tags"), change_data_feed=True)


def measure_size(spark, cfg, n: int, segments: int, dims: dict[str, int], peer_rows: int, seed: int) -> dict:
    from pyspark.sql import functions as F

    from lid_spark.model.artifact import LanguageClassifier
    from lid_spark.model.features import track_feature_frame
    from lid_spark.stages import tag_catalog
    from lid_spark.tables import input_table, read_table
    from lid_spark.tagging import guard_settings, has_usable_features, is_instrumental, tag_rows

    start = time.perf_counter()
    write_catalog(spark, cfg, n, segments, dims, seed)
    generate_seconds = time.perf_counter() - start

    ids = read_table(spark, input_table(cfg, "tracks")).select("track_id")
    frame = track_feature_frame(spark, cfg, ids).withColumn("feature_fingerprint", F.xxhash64(
        "consumption", "timbral", "seg_embeddings", "seg_durations", F.coalesce("status", F.lit(""))))
    start = time.perf_counter()
    frame.write.format("noop").mode("overwrite").save()
    frame_seconds = time.perf_counter() - start

    with PeakMemory(tree=True) as spark_memory:
        summary = tag_catalog.run(spark, cfg)
    if summary.scored != n or summary.updated != n or summary.tracks_tagged_or_listed != n:
        raise RuntimeError(f"expected {n} tracks scored and MERGE-updated, got {summary}")

    # The peer: the same rows, in pandas, tagged in this one process.
    rows = frame.orderBy("track_id").limit(min(peer_rows, n)).toPandas()
    classifier = LanguageClassifier.load(cfg.tagging.model_dir)
    import gc

    gc.collect()
    with PeakMemory(tree=False) as peer_memory:
        start = time.perf_counter()
        out = []
        for lo in range(0, len(rows), 10_000):
            chunk = rows.iloc[lo:lo + 10_000]
            wanted = chunk[has_usable_features(chunk) & ~is_instrumental(chunk)]
            predictions = classifier.predict_tracks(wanted, cfg.tagging.second_language_min, **guard_settings(cfg))
            out.append(tag_rows(chunk, predictions, classifier.model_version, cfg.tagging.min_confidence))
        peer_seconds = time.perf_counter() - start
    assert sum(len(o) for o in out) == len(rows)

    s = summary.seconds
    return {
        "tracks": n, "generate_seconds": round(generate_seconds, 1),
        "seconds": {"frame": round(frame_seconds, 2), "score": round(s["score"], 2), "merge": round(s["merge"], 2),
                    "total": round(s["total"], 2)},
        "tracks_per_second": {"score": round(n / s["score"], 1), "inference_only": round(
            n / max(s["score"] - frame_seconds, 1e-9), 1), "merge": round(n / s["merge"], 1),
            "total": round(n / s["total"], 1)},
        "by_status": summary.by_status,
        "peer": {"rows": len(rows), "seconds": round(peer_seconds, 2),
                 "tracks_per_second": round(len(rows) / peer_seconds, 1),
                 "peak_rss_mb": round(peer_memory.peak / 2**20)},
        "ratio_score_vs_peer": round((n / s["score"]) / (len(rows) / peer_seconds), 3),
        "ratio_total_vs_peer": round((n / s["total"]) / (len(rows) / peer_seconds), 3),
        "peak_rss_mb": round(spark_memory.peak / 2**20),
        "peak_rss_mb_jvm": round(spark_memory.peak_jvm / 2**20),
        "peak_rss_mb_python": round(spark_memory.peak_python / 2**20),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10^4 and 5x10^4 tracks")
    parser.add_argument("--sizes", type=int, nargs=2, default=None, help="the two catalog sizes")
    parser.add_argument("--segments", type=int, default=1, help="vocal segments per sung track")
    parser.add_argument("--peer-rows", type=int, default=20_000, help="rows the plain-Python peer tags at most")
    parser.add_argument("--catalog", type=float, default=1e7, help="catalog size of the cost projection")
    parser.add_argument("--cores", type=int, default=2, help="local Spark cores (local[N])")
    parser.add_argument("--out", default=None, help="working directory (default: a temporary one, removed)")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args(argv)
    sizes = args.sizes or ([10_000, 50_000] if args.quick else [100_000, 1_000_000])
    if args.segments < 1 or min(sizes) < 1:
        parser.error("--segments and --sizes must be positive")

    import torch

    from lid_spark.config import load_config
    from lid_spark.spark import get_spark

    out = Path(args.out or tempfile.mkdtemp(prefix="bench-tagging-")).resolve()
    defaults = load_config()
    dims = {"consumption": defaults.embeddings.dim, "timbral": 2 * defaults.audio.timbral.codebook_size,
            "vocals": VOCAL_EMBEDDING}
    model_dir = out / "model"
    save_untrained_classifier(model_dir, dims, defaults.classifier.channels)
    spark_cfg = load_config(overrides=[f"spark.master=local[{args.cores}]", "spark.log_level=ERROR",
                                       f"spark.shuffle_partitions={2 * args.cores}"])
    spark = get_spark(spark_cfg)
    results = []
    try:
        for n in sizes:
            where = out / f"n{n}"
            cfg = spark_cfg.with_overrides([
                f"inputs.tracks={where / 'tracks'}", f"tables.location={where / 'tables'}",
                f"output.report_dir={where / 'report'}", f"output.models_dir={out / 'models'}",
                f"tagging.model_dir={model_dir}"])
            results.append(measure_size(spark, cfg, n, args.segments, dims, args.peer_rows, args.seed))
            shutil.rmtree(where, ignore_errors=True)
    finally:
        spark.stop()
        if args.out is None:
            shutil.rmtree(out, ignore_errors=True)

    small, large = results
    per_track = (large["seconds"]["total"] - small["seconds"]["total"]) / (large["tracks"] - small["tracks"])
    if per_track <= 0:  # sizes too small to see growth past the fixed costs: use the larger size's average
        per_track = large["seconds"]["total"] / large["tracks"]
    projected_seconds = large["seconds"]["total"] + per_track * (args.catalog - large["tracks"])
    report = {
        "benchmark": "tag_catalog tracks tagged per second (UDF inference + Delta MERGE) vs the same model in one "
                     "plain Python process",
        "machine": {"cores": args.cores, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "load_average_1min": round(os.getloadavg()[0], 1)},
        "model": {"subset": "multimodal", "channels": defaults.classifier.channels, "input_dims": dims,
                  "segments_per_sung_track": args.segments, "untrained": True},
        "sizes": results,
        "figure_tracks_per_second_total": large["tracks_per_second"]["total"],
        "peer_tracks_per_second": large["peer"]["tracks_per_second"],
        "ratio_total_vs_peer": large["ratio_total_vs_peer"],
        "projection": {
            "catalog_tracks": int(args.catalog),
            "marginal_seconds_per_track": per_track,
            "wall_hours_on_these_cores": round(projected_seconds / 3600, 2),
            "core_hours": round(projected_seconds * args.cores / 3600, 2),
            "how": "total time at the larger size plus the growth per track between the two sizes, times the "
                   "catalog's remaining tracks; core-hours = wall hours x local cores",
        },
        "peak_rss_mb": max(r["peak_rss_mb"] for r in results),
        "peak_rss_mb_python": max(r["peak_rss_mb_python"] for r in results),
        "spark_driver_memory": spark_cfg.spark.driver_memory,
    }
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
