"""From classifier scores to catalog tags: the rows of the ``language_tags`` table.

Every track of the feature frame gets exactly one row with a ``status``:

- ``tagged``: the best language is above its tuned threshold and ``tagging.min_confidence``;
- ``low_confidence``: below them; the best guess is kept (visible, never hidden or dropped);
- ``instrumental``: the audio was read and holds no vocals: language ``zxx`` (ISO 639-2);
- ``no_features``: neither usable audio nor a consumption embedding: language ``und`` and the reason.

The pandas side (:func:`tag_rows`) runs inside the tagging UDF, once per batch; the Spark side
(:func:`tag_catalog`) is the job: choose what to score, score it, MERGE, count.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from lid_spark import INSTRUMENTAL

UNDETERMINED = "und"  # ISO 639-2 "undetermined"

TAG_SCHEMA_DDL = (
    "track_id string, language string, confidence double, scores map<string,double>, "
    "second_language string, is_instrumental boolean, modalities array<string>, status string, "
    "reason string, feature_fingerprint bigint, model_version string, tagged_at timestamp"
)
TAG_COLUMNS = ["track_id", "language", "confidence", "scores", "second_language", "is_instrumental", "modalities",
               "status", "reason", "feature_fingerprint", "model_version", "tagged_at"]


def has_usable_features(frame: pd.DataFrame) -> pd.Series:
    """True where the classifier has at least one modality to look at."""
    def present(value) -> bool:
        return value is not None and not (isinstance(value, float) and np.isnan(value)) and len(value) > 0

    consumption = frame["consumption"].map(present)
    timbral = frame["timbral"].map(present)
    return consumption | timbral


def is_instrumental(frame: pd.DataFrame) -> pd.Series:
    """Audio decoded fine and no vocal segment was found in it."""
    return frame["status"].fillna("").eq("no_vocals")


def tag_rows(frame: pd.DataFrame, predictions: pd.DataFrame | None, model_version: str,
             min_confidence: float, tagged_at: dt.datetime | None = None) -> pd.DataFrame:
    """Combine the feature frame (one row per track) with classifier predictions into tag rows.

    Parameters
    ----------
    frame : DataFrame
        Rows of the track feature frame: ``track_id``, ``consumption``, ``timbral``, ``status``,
        ``feature_fingerprint`` (see ``lid_spark.model.features``).
    predictions : DataFrame or None
        ``LanguageClassifier.predict_tracks`` output for the tracks with usable features
        (``track_id``, ``scores``, ``language``, ``confidence``, ``above_threshold``,
        ``second_language``, ``modalities``).
    model_version : str
    min_confidence : float
        Tags whose confidence is below this are flagged ``low_confidence`` even above threshold.

    Returns
    -------
    DataFrame with the columns of ``TAG_SCHEMA_DDL``, one row per input track, in input order.
    """
    tagged_at = tagged_at or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    out = pd.DataFrame({"track_id": frame["track_id"].to_numpy()})
    out["feature_fingerprint"] = frame["feature_fingerprint"].to_numpy()
    out["model_version"] = model_version
    out["tagged_at"] = pd.Timestamp(tagged_at)
    preds = (predictions.set_index("track_id") if predictions is not None and len(predictions)
             else pd.DataFrame(columns=["scores", "language", "confidence", "above_threshold",
                                        "second_language", "modalities"]))
    instrumental = is_instrumental(frame).to_numpy()
    usable = has_usable_features(frame).to_numpy()
    rows = []
    for track_id, instr, use, status in zip(frame["track_id"], instrumental, usable, frame["status"]):
        if instr:
            rows.append((INSTRUMENTAL, 1.0, None, None, True, ["audio"], "instrumental", "no vocals in the audio"))
        elif track_id in preds.index:
            p = preds.loc[track_id]
            scores = {str(k): float(v) for k, v in dict(p["scores"]).items()}
            confident = bool(p["above_threshold"]) and float(p["confidence"]) >= min_confidence
            reason = None if confident else "best language below its threshold or the confidence floor"
            second = p["second_language"] if isinstance(p["second_language"], str) else None
            rows.append((p["language"], float(p["confidence"]), scores, second, False, list(p["modalities"]),
                         "tagged" if confident else "low_confidence", reason))
        else:
            why = f"no usable features (audio status: {status or 'not extracted'}, no consumption embedding)"
            if use:
                why = "features present but no prediction was returned"
            rows.append((UNDETERMINED, 0.0, None, None, False, [], "no_features", why))
    cols = ["language", "confidence", "scores", "second_language", "is_instrumental", "modalities", "status", "reason"]
    decided = pd.DataFrame(rows, columns=cols)
    for col in cols:
        out[col] = decided[col].to_numpy()
    return out[TAG_COLUMNS]


# ---------------------------------------------------------------- Spark side


@dataclass
class TaggingSummary:
    """What one tag_catalog run did; ``tracks_in == tracks_tagged_or_listed`` always holds."""

    tracks_in: int
    invalid_track_rows: int
    unchanged_skipped: int
    scored: int
    inserted: int
    updated: int
    by_status: dict[str, int]
    by_language: dict[str, int]
    model_version: str
    table: str
    # Wall seconds: "score" (feature frame + UDF inference of the tracks to score), "merge", "total".
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def tracks_tagged_or_listed(self) -> int:
        return sum(self.by_status.values())

    def markdown(self) -> str:
        lines = [f"## Tagging into {self.table} (model {self.model_version})", "",
                 "| tracks in | invalid rows | unchanged (skipped) | scored now | inserted | updated |",
                 "|---:|---:|---:|---:|---:|---:|",
                 f"| {self.tracks_in} | {self.invalid_track_rows} | {self.unchanged_skipped} | {self.scored} | "
                 f"{self.inserted} | {self.updated} |", "", "| status | tracks |", "|---|---:|"]
        lines += [f"| {k} | {v} |" for k, v in sorted(self.by_status.items())]
        lines += ["", "| language | tracks |", "|---|---:|"]
        lines += [f"| {k} | {v} |" for k, v in sorted(self.by_language.items(), key=lambda kv: -kv[1])]
        return "\n".join(lines)


def model_directory(cfg) -> str:
    """The classifier artifact the tagging job uses."""
    if cfg.tagging.model_dir:
        return cfg.tagging.model_dir
    return os.path.join(cfg.output.models_dir, cfg.classifier.features)


def tag_catalog(spark, cfg, full: bool = False) -> TaggingSummary:
    """Score new or changed tracks of ``inputs.tracks`` and MERGE their tags into ``language_tags``.

    A track is (re)scored when it has no tag yet, when its features changed (their fingerprint),
    or when the tag came from another model version; ``full`` re-scores everything. A rerun with
    nothing changed writes nothing.
    """
    from pyspark.sql import functions as F

    from lid_spark.contract import conform
    from lid_spark.model.artifact import LanguageClassifier
    from lid_spark.model.features import track_feature_frame
    from lid_spark.progress import step
    from lid_spark.tables import input_table, merge_upsert, read_table, resolve_table, table_exists
    from udfs.tagging import tag_batches

    started = time.perf_counter()
    model_dir = model_directory(cfg)
    # Load on the driver first: a missing or tampered artifact fails here, before any work.
    classifier = LanguageClassifier.load(model_dir)
    model_version = classifier.model_version
    ref = resolve_table(cfg, "language_tags")

    tracks = conform(read_table(spark, input_table(cfg, "tracks")), "tracks")
    rows_in = tracks.count()
    ids = tracks.select("track_id").filter(F.col("track_id").isNotNull()).distinct()
    tracks_in = ids.count()

    frame = track_feature_frame(spark, cfg, ids)
    frame = frame.withColumn("feature_fingerprint", F.xxhash64(
        "consumption", "timbral", "seg_embeddings", "seg_durations", F.coalesce("status", F.lit(""))))
    todo = frame
    if table_exists(spark, ref) and not full:
        done = read_table(spark, ref).select("track_id", "feature_fingerprint", "model_version")
        todo = frame.join(done, on=[frame.track_id == done.track_id,
                                    frame.feature_fingerprint == done.feature_fingerprint,
                                    F.lit(model_version) == done.model_version], how="left_anti")
    with step(f"score tracks with {model_dir}"):
        score_start = time.perf_counter()
        tags = todo.mapInPandas(
            tag_batches(model_dir, model_version, cfg.tagging.min_confidence, cfg.tagging.second_language_min,
                        cfg.tagging.device, cfg.tagging.torch_threads),
            TAG_SCHEMA_DDL,
        ).persist()
        scored = tags.count()
        score_seconds = time.perf_counter() - score_start
    with step(f"MERGE {scored} tags into {ref}"):
        merge_start = time.perf_counter()
        metrics = merge_upsert(spark, tags, ref, keys=["track_id"]) if scored else {}
        merge_seconds = time.perf_counter() - merge_start
    tags.unpersist()
    by_status, by_language = {}, {}
    if table_exists(spark, ref):  # absent only when the catalog is empty and nothing was ever tagged
        current = read_table(spark, ref).join(ids, "track_id")
        by_status = {r["status"]: r["n"] for r in current.groupBy("status").agg(F.count("*").alias("n")).collect()}
        by_language = {r["language"]: r["n"]
                       for r in current.groupBy("language").agg(F.count("*").alias("n")).collect()}
    summary = TaggingSummary(
        tracks_in=tracks_in, invalid_track_rows=rows_in - tracks_in, unchanged_skipped=tracks_in - scored,
        scored=scored, inserted=metrics.get("numTargetRowsInserted", 0),
        updated=metrics.get("numTargetRowsUpdated", 0), by_status=by_status, by_language=by_language,
        model_version=model_version, table=str(ref),
        seconds={"score": score_seconds, "merge": merge_seconds, "total": time.perf_counter() - started})
    if summary.tracks_tagged_or_listed != tracks_in:
        raise RuntimeError(f"tagging lost tracks: {tracks_in} in, {summary.tracks_tagged_or_listed} in {ref}")
    _write_report(cfg, summary)
    return summary


def _write_report(cfg, summary: TaggingSummary) -> None:
    report_dir = cfg.output.report_dir
    os.makedirs(report_dir, exist_ok=True)
    with open(os.path.join(report_dir, "tagging.json"), "w", encoding="utf-8") as f:
        json.dump({**asdict(summary), "tracks_tagged_or_listed": summary.tracks_tagged_or_listed}, f, indent=1)
    with open(os.path.join(report_dir, "tagging.md"), "w", encoding="utf-8") as f:
        f.write(summary.markdown() + "\n")
