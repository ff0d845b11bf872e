"""The labelled data set: labels + artists + the track feature frame, split by artist, on the driver.

Training is single-node (like the paper's): the labelled tracks and their features are collected
to the driver as pandas. At the paper's size (54k songs, 8 segments of 256 floats) that is about
half a gigabyte.

Labels are read as people write them (``EN``, ``en-US``, ``eng``, ``English``, ``pt_BR``:
:func:`lid_spark.languages.normalise_language`); the classes are ``classifier.languages`` (or,
when empty, every label language with at least ``classifier.min_tracks_per_language`` labelled
tracks) plus ``ot``, which every other language becomes.

Data problems are counted, never fatal and never silent: labels with a missing, unreadable or
non-linguistic language (counted per reason), tracks labelled twice with different languages
(left out as ambiguous), labels whose track is not in the tracks table (they become their own
artist), tracks with no features at all (kept out of training, reported).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from lid_spark import OTHER_LANGUAGE, TARGET_LANGUAGES
from lid_spark.config import Config
from lid_spark.errors import InputError
from lid_spark.languages import REASONS, choose_targets, class_of, normalise_language
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
    # The target languages chosen for this catalog (default: the paper's); the classes are the targets then "ot".
    targets: tuple[str, ...] = TARGET_LANGUAGES
    # Labelled tracks per normalised language, before the rest became "ot" (for the report).
    label_languages: dict[str, int] = field(default_factory=dict)

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.targets) + (OTHER_LANGUAGE,)

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


def read_label_languages(languages: pd.Series) -> tuple[pd.Series, dict[str, int]]:
    """Each label's normalised code (None when it cannot be read) and the count per reason.

    Example
    -------
    >>> codes, reasons = read_label_languages(pd.Series(["EN", "pt_BR", "??", None, "zxx"]))
    >>> codes.tolist(), reasons
    (['en', 'pt', None, None, None], {'missing': 1, 'unreadable': 1, 'not_a_language': 1})
    """
    read = {value: normalise_language(value) for value in languages.dropna().unique()}
    codes = languages.map(lambda v: read[v][0] if v in read else None)
    reasons = languages.map(lambda v: read[v][1] if v in read else normalise_language(v)[1])
    return codes, {reason: int((reasons == reason).sum()) for reason in REASONS}


def prepare_labels(label_rows: pd.DataFrame, languages, min_tracks: int
                   ) -> tuple[pd.DataFrame, dict[str, int], tuple[str, ...], pd.Series]:
    """Read the labels' languages, choose the targets, and keep one class per labelled track.

    Parameters
    ----------
    label_rows : ``track_id``, ``language`` as the labels table holds them
    languages : ``classifier.languages`` (empty: every language with ``min_tracks`` labelled tracks)
    min_tracks : ``classifier.min_tracks_per_language``

    Returns
    -------
    (valid rows with ``language`` now a class, counts, targets, labelled tracks per normalised code)

    Example
    -------
    >>> rows = pd.DataFrame({"track_id": ["a", "b", "c", "d", "e"], "language": ["PT-br", "ko", "sv", "??", None]})
    >>> valid, counts, targets, _ = prepare_labels(rows, ["pt", "ko"], 1)
    >>> valid["language"].tolist(), targets, counts["labels_invalid_language"], counts["labels_as_other"]
    (['pt', 'ko', 'ot'], ('pt', 'ko'), 2, 1)
    """
    # Every label row lands in exactly one of: without_track_id, invalid_language (its reasons:
    # invalid_language_<reason>), duplicate_rows, ambiguous_rows, or a labelled track (the counts add
    # up to labels_in).
    counts = {"labels_in": len(label_rows)}
    has_id = label_rows["track_id"].notna() & label_rows["track_id"].astype(str).str.strip().ne("")
    codes, _ = read_label_languages(label_rows["language"])
    known = has_id & codes.notna()
    counts["labels_without_track_id"] = int((~has_id).sum())
    counts["labels_invalid_language"] = int((has_id & ~known).sum())
    _, reasons = read_label_languages(label_rows.loc[has_id & ~known, "language"])
    counts.update({f"labels_invalid_language_{reason}": n for reason, n in reasons.items()})
    label_rows = label_rows.assign(language=codes)
    per_code = label_rows[known].drop_duplicates(["track_id", "language"])["language"].value_counts()
    targets = choose_targets(list(languages), per_code.to_dict(), int(min_tracks))
    label_rows = label_rows.assign(language=[class_of(c, targets) for c in label_rows["language"]])
    counts["labels_as_other"] = int((known & label_rows["language"].eq(OTHER_LANGUAGE)).sum())
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
    if not targets:
        raise InputError(f"the labels name no language with classifier.min_tracks_per_language="
                         f"{min_tracks} labelled tracks or more "
                         f"({dict(per_code.head(5))}); list the targets in classifier.languages or lower it")
    return valid, counts, targets, per_code


def load_labelled(spark, cfg: Config) -> LabelledData:
    """Read labels, tracks and features; choose the classes; split by artist (``classifier.split``, ``.seed``)."""
    from pyspark.sql import functions as F

    from lid_spark.tables import read_input

    labels = read_input(spark, cfg, "labels").select("track_id", "language")
    tracks = (read_input(spark, cfg, "tracks")
              .select("track_id", "artist_id", F.lit(True).alias("in_tracks")).dropDuplicates(["track_id"]))
    features = track_feature_frame(spark, cfg, labels.select("track_id"))
    # Two collects: the labels (to validate them in pandas) and the features of labelled tracks.
    label_rows = labels.toPandas()
    feature_rows = features.join(tracks, "track_id", "left").toPandas()

    valid, counts, targets, per_code = prepare_labels(label_rows, list(cfg.classifier.languages),
                                                      int(cfg.classifier.min_tracks_per_language))
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
    per_class = pdf["language"].value_counts()
    for cls in (*targets, OTHER_LANGUAGE):
        counts[f"tracks_{cls}"] = int(per_class.get(cls, 0))
    empty = [t for t in targets if not per_class.get(t, 0)]
    if empty:
        log.warning("target language(s) %s of classifier.languages have no labelled track: the model cannot "
                    "learn them (they are reported with null metrics)", ", ".join(empty))
    log.info("classes %s; labelled data: %s", ", ".join((*targets, OTHER_LANGUAGE)),
             ", ".join(f"{k}={v}" for k, v in counts.items()))
    return LabelledData(pdf, counts, targets=targets,
                        label_languages={str(k): int(v) for k, v in per_code.items()})
