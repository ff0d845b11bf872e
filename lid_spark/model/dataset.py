"""The labelled data set: labels + artists + the track feature frame, split by artist, on the driver.

Training is single-node (like the paper's): the labelled tracks and their features are collected
to the driver as pandas. At the paper's size (54k songs, 8 segments of 256 floats) that is about
half a gigabyte.

Data problems are counted, never fatal and never silent: labels with a null or unknown language,
tracks labelled twice with different languages (left out as ambiguous), labels whose track is not
in the tracks table (they become their own artist), tracks with no features at all (kept out of
training, reported).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from lid_spark import LANGUAGE_CLASSES
from lid_spark.config import Config
from lid_spark.errors import InputError
from lid_spark.model.features import MODALITIES, subset_modalities, track_feature_frame
from lid_spark.model.train import artist_split
from lid_spark.progress import get_logger
from lid_spark.schemas import is_missing

log = get_logger(__name__)


@dataclass
class LabelledData:
    """Labelled feature rows (pandas) with ``language``, ``artist_id``, ``split`` and modality flags."""

    frame: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)

    def split(self, name: str, subset: str | None = None, complete: bool = False) -> pd.DataFrame:
        """Rows of one split; ``subset``: only tracks with at least one of its modalities;
        ``complete``: only tracks that have every modality (the evaluation set of the tables)."""
        rows = self.frame[self.frame["split"] == name]
        if complete:
            rows = rows[rows[[f"has_{m}" for m in MODALITIES]].all(axis=1)]
        if subset is not None:
            rows = rows[rows[[f"has_{m}" for m in subset_modalities(subset)]].any(axis=1)]
        return rows.reset_index(drop=True)


def _present(value) -> bool:
    return not is_missing(value)


def add_modality_flags(pdf: pd.DataFrame) -> pd.DataFrame:
    """Add has_consumption, has_timbral, has_vocals columns."""
    out = pdf.copy()
    out["has_consumption"] = out["consumption"].map(_present)
    out["has_timbral"] = out["timbral"].map(_present)
    out["has_vocals"] = out["seg_embeddings"].map(_present)
    return out


def load_labelled(spark, cfg: Config) -> LabelledData:
    """Read labels, tracks and features; split by artist (``classifier.split``, ``classifier.seed``)."""
    from pyspark.sql import functions as F

    from lid_spark.contract import conform
    from lid_spark.tables import input_table, read_table

    labels = conform(read_table(spark, input_table(cfg, "labels")), "labels").select("track_id", "language")
    tracks = (conform(read_table(spark, input_table(cfg, "tracks")), "tracks")
              .select("track_id", "artist_id", F.lit(True).alias("in_tracks")).dropDuplicates(["track_id"]))
    features = track_feature_frame(spark, cfg, labels.select("track_id"))
    # Two collects: the labels (to validate them in pandas) and the features of labelled tracks.
    label_rows = labels.toPandas()
    feature_rows = features.join(tracks, "track_id", "left").toPandas()

    # Every label row lands in exactly one of: without_track_id, invalid_language, duplicate_rows,
    # ambiguous_rows, or a labelled track (the counts add up to labels_in).
    counts = {"labels_in": len(label_rows)}
    has_id = label_rows["track_id"].notna() & label_rows["track_id"].astype(str).str.strip().ne("")
    known = has_id & label_rows["language"].isin(LANGUAGE_CLASSES)
    counts["labels_without_track_id"] = int((~has_id).sum())
    counts["labels_invalid_language"] = int((has_id & ~known).sum())
    valid = label_rows[known].drop_duplicates()
    counts["labels_duplicate_rows"] = int(known.sum()) - len(valid)
    n_languages = valid.groupby("track_id")["language"].nunique()
    ambiguous = set(n_languages[n_languages > 1].index)
    counts["labels_ambiguous_tracks"] = len(ambiguous)
    counts["labels_ambiguous_rows"] = int(valid["track_id"].isin(ambiguous).sum())
    valid = valid[~valid["track_id"].isin(ambiguous)]
    if valid.empty:
        raise InputError(f"no labelled tracks to learn from: inputs.labels has {counts['labels_in']} rows, none "
                         f"usable ({', '.join(f'{k}={v}' for k, v in counts.items())})")
    pdf = valid.merge(feature_rows, on="track_id", how="left").sort_values("track_id").reset_index(drop=True)
    counts["labels_without_track"] = int((pdf["in_tracks"] != True).sum())  # noqa: E712 (null-safe)
    pdf = add_modality_flags(pdf.drop(columns=["in_tracks"]))
    pdf["split"] = artist_split(pdf, cfg.classifier.split, cfg.classifier.seed)
    counts["labelled_tracks"] = len(pdf)
    counts["tracks_without_features"] = int((~pdf[["has_consumption", "has_timbral", "has_vocals"]].any(axis=1)).sum())
    for name in ("train", "val", "test"):
        counts[f"{name}_tracks"] = int((pdf["split"] == name).sum())
    for m in MODALITIES:
        counts[f"tracks_with_{m}"] = int(pdf[f"has_{m}"].sum())
    log.info("labelled data: %s", ", ".join(f"{k}={v}" for k, v in counts.items()))
    return LabelledData(pdf, counts)
