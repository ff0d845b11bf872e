"""Fit the timbral codebook (PCA + GMM) on an unlabeled sample of the catalog's audio.

Reads inputs.tracks, samples audio.timbral.fit_tracks tracks (seeded), computes log-mel frames in
a pandas UDF, fits PCA (audio.timbral.pca_variance) and a diagonal GMM of
audio.timbral.codebook_size codewords by EM on the driver, and saves the codebook (npz + json,
no pickle) to <output.models_dir>/timbral_codebook. A report goes to
<output.report_dir>/fit_codebook.json.
"""

import numpy as np
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from lid_spark.audio.timbral import Codebook, codebook_dir, split_runs
from lid_spark.config import Config
from lid_spark.errors import InputError
from lid_spark.progress import get_logger, step
from lid_spark.reports import write_report
from lid_spark.schemas import MEL_SCHEMA
from lid_spark.tables import read_input
from lid_spark.udfs.audio_features import arrow_batch_rows, mel_sample_udf


def run(spark: SparkSession, cfg: Config) -> dict:
    """Run the stage on ``cfg``'s tables; returns the report (also written to the report directory)."""
    log = get_logger()
    conf = cfg.audio.timbral

    with step("sample tracks"):
        tracks = read_input(spark, cfg, "tracks")
        candidates = (tracks.where(F.col("audio_uri").isNotNull()).select("track_id", "audio_uri")
                      .dropDuplicates(["track_id"]))
        # A seeded hash order is a uniform sample that does not depend on partitioning.
        sample = (candidates.withColumn("_order", F.sha2(F.concat(F.lit(f"{conf.seed}:"), F.col("track_id")), 256))
                  .orderBy("_order").limit(conf.fit_tracks).drop("_order"))
        partitions = cfg.audio.udf.partitions or spark.sparkContext.defaultParallelism
        sample = sample.repartition(partitions)
    with step("log-mel frames of the sample"):
        with arrow_batch_rows(spark, cfg.audio.udf.tracks_per_batch):
            rows = sample.mapInPandas(mel_sample_udf(cfg.for_executors()), MEL_SCHEMA).collect()
    decoded = [r for r in rows if r["n_frames"] > 0]
    failed = {}
    for r in rows:
        if r["n_frames"] == 0:
            failed[r["status"]] = failed.get(r["status"], 0) + 1
    log.info("sampled %d tracks: %d decoded, not usable by status: %s", len(rows), len(decoded), failed or "none")
    if not decoded:
        raise InputError(f"none of the {len(rows)} sampled tracks could be decoded ({failed}); "
                         "check inputs.tracks audio_uri values and inputs.audio_root")
    runs = [run for r in decoded
            for run in split_runs(np.asarray(r["mel"], dtype=np.float32).reshape(r["n_frames"], conf.n_mels))]

    with step(f"fit PCA + {conf.codebook_size}-word GMM on {sum(len(r) for r in runs)} frames"):
        codebook = Codebook.fit(runs, cfg.audio.sample_rate, n_mels=conf.n_mels, window_seconds=conf.window_seconds,
                                pca_variance=conf.pca_variance, codebook_size=conf.codebook_size,
                                max_iter=conf.max_iter, seed=conf.seed, feature_version=cfg.audio.feature_version)
    directory = codebook.save(codebook_dir(cfg))
    report = {"codebook_dir": directory, "checksum": codebook.checksum, "tracks_sampled": len(rows),
              "tracks_used": len(decoded), "tracks_not_usable": failed, **codebook.info}
    write_report(cfg.output.report_dir, "fit_codebook", "Timbral codebook report", report)
    log.info("codebook saved to %s: %d PCA components (%.1f%% variance), %d codewords, EM %s after %d iterations",
             directory, codebook.info["pca_components"], 100 * codebook.info["pca_explained_variance"],
             codebook.size, "converged" if codebook.info["gmm_converged"] else "stopped",
             codebook.info["gmm_iterations"])
    return report
