"""From classifier scores to catalog tags: the rows of the ``language_tags`` table.

Every track of the feature frame gets exactly one row with a ``status``:

- ``tagged``: the best language's calibrated confidence is above its threshold (picked for
  ``tagging.target_precision`` on validation) and ``tagging.min_confidence``, and the guard against
  inputs unlike the training catalog passed;
- ``low_confidence``: below them, or the guard fired; the best guess and its calibrated confidence
  are kept (visible, never hidden or dropped) and ``reason`` says which of :func:`doubts` applied;
- ``instrumental``: the audio was read and holds no vocals: language ``zxx`` (ISO 639-2);
- ``no_features``: neither usable audio nor a consumption embedding: language ``und`` and the reason.

:func:`tag_rows` runs inside the tagging UDF, once per batch; the stage
(:mod:`lid_spark.stages.tag_catalog`) chooses what to score, scores it, MERGEs and counts.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping

import pandas as pd

from lid_spark import INSTRUMENTAL
from lid_spark.schemas import (
    STATUS_NO_VOCALS,
    TAG_COLUMNS,
    TAG_INSTRUMENTAL,
    TAG_LOW_CONFIDENCE,
    TAG_NO_FEATURES,
    TAG_TAGGED,
    UNDETERMINED,
    is_missing,
)


def has_usable_features(frame: pd.DataFrame) -> pd.Series:
    """True where the classifier has at least one modality to look at."""
    consumption = frame["consumption"].map(lambda value: not is_missing(value))
    timbral = frame["timbral"].map(lambda value: not is_missing(value))
    return consumption | timbral


def is_instrumental(frame: pd.DataFrame) -> pd.Series:
    """Audio decoded fine and no vocal segment was found in it."""
    return frame["status"].fillna("").eq(STATUS_NO_VOCALS)


BELOW_THRESHOLD = "best language below its threshold or the confidence floor"
FAR_FROM_TRAINING = "unlike the training catalog"
MODALITIES_DISAGREE = "audio alone names another language"


def doubts(prediction: Mapping, min_confidence: float) -> list[str]:
    """Why one prediction (a row of ``predict_tracks``) is not ``tagged``: empty when it is.

    >>> doubts({"above_threshold": True, "confidence": 0.9, "language": "de"}, 0.5)
    []
    >>> doubts({"above_threshold": True, "confidence": 0.9, "language": "de", "distance": 9.0,
    ...         "distance_limit": 4.0, "audio_language": "en"}, 0.5)   # doctest: +NORMALIZE_WHITESPACE
    ['unlike the training catalog (hidden-layer distance 9.0 > 4.0, the validation limit)',
     'audio alone names another language (en, with consumption de)']
    """
    out = []
    if not (bool(prediction["above_threshold"]) and float(prediction["confidence"]) >= min_confidence):
        out.append(BELOW_THRESHOLD)
    distance, limit = prediction.get("distance"), prediction.get("distance_limit")
    if not is_missing(distance) and not is_missing(limit) and float(distance) > float(limit):
        out.append(f"{FAR_FROM_TRAINING} (hidden-layer distance {float(distance):.1f} > {float(limit):.1f}, "
                   "the validation limit)")
    audio = prediction.get("audio_language")
    if isinstance(audio, str) and audio != prediction["language"]:
        out.append(f"{MODALITIES_DISAGREE} ({audio}, with consumption {prediction['language']})")
    return out


def tag_rows(frame: pd.DataFrame, predictions: pd.DataFrame | None, model_version: str,
             min_confidence: float, tagged_at: dt.datetime | None = None, note: str | None = None) -> pd.DataFrame:
    """Combine the feature frame (one row per track) with classifier predictions into tag rows.

    Parameters
    ----------
    frame : DataFrame
        Rows of the track feature frame: ``track_id``, ``consumption``, ``timbral``, ``status``,
        ``feature_fingerprint`` (see ``lid_spark.model.features``).
    predictions : DataFrame or None
        ``LanguageClassifier.predict_tracks`` output for the tracks with usable features
        (``track_id``, ``scores``, ``language``, ``confidence``, ``above_threshold``,
        ``second_language``, ``modalities``; the guard's ``distance``, ``distance_limit`` and
        ``audio_language`` when computed).
    model_version : str
    min_confidence : float
        Tags whose confidence is below this are flagged ``low_confidence`` even above threshold.
    note : str, optional
        Appended to the reason of every prediction that read the vocals (the tag_catalog job's
        warning that the embedded spoken-LID model scored a catalog that is not the synthetic world).

    Returns
    -------
    DataFrame with the columns of :data:`lid_spark.schemas.TAG_SCHEMA`, one row per input track, in input order.
    """
    tagged_at = tagged_at or dt.datetime.now(dt.UTC).replace(tzinfo=None)
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
            rows.append((INSTRUMENTAL, 1.0, None, None, True, ["audio"], TAG_INSTRUMENTAL, "no vocals in the audio"))
        elif track_id in preds.index:
            p = preds.loc[track_id]
            scores = {str(k): float(v) for k, v in dict(p["scores"]).items()}
            why = doubts(p, min_confidence)
            confident = not why
            reason = "; ".join(why) or None
            if note and "vocals" in list(p["modalities"]):
                reason = note if reason is None else f"{reason}; {note}"
            second = p["second_language"] if isinstance(p["second_language"], str) else None
            rows.append((p["language"], float(p["confidence"]), scores, second, False, list(p["modalities"]),
                         TAG_TAGGED if confident else TAG_LOW_CONFIDENCE, reason))
        else:
            why = f"no usable features (audio status: {status or 'not extracted'}, no consumption embedding)"
            if use:
                why = "features present but no prediction was returned"
            rows.append((UNDETERMINED, 0.0, None, None, False, [], TAG_NO_FEATURES, why))
    cols = ["language", "confidence", "scores", "second_language", "is_instrumental", "modalities", "status", "reason"]
    decided = pd.DataFrame(rows, columns=cols)
    for col in cols:
        out[col] = decided[col].to_numpy()
    return out[TAG_COLUMNS]


def target_precision(cfg) -> float | dict[str, float] | None:
    """``tagging.target_precision``, or with ``tagging.target_precision_by_language`` a mapping
    language -> precision whose ``"*"`` entry (the global value; 0, no constraint, when it is null)
    covers the languages it leaves out."""
    by_language = {str(k): float(v) for k, v in dict(cfg.tagging.target_precision_by_language or {}).items()}
    value = cfg.tagging.target_precision
    if not by_language:
        return None if value is None else float(value)
    return {**by_language, "*": 0.0 if value is None else float(value)}


def guard_settings(cfg) -> dict:
    """The keyword arguments of ``LanguageClassifier.predict_tracks`` the ``tagging`` section sets."""
    return {"target_precision": target_precision(cfg), "guard_quantile": cfg.tagging.guard_quantile,
            "check_modalities": bool(cfg.tagging.guard_modalities)}


def model_directory(cfg) -> str:
    """The classifier artifact the tagging job uses."""
    if cfg.tagging.model_dir:
        return cfg.tagging.model_dir
    return os.path.join(cfg.output.models_dir, cfg.classifier.features)
