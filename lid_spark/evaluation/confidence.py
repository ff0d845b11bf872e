"""Whether a classifier's confidence means something: calibration, the precision target, the guard.

For the production model (``classifier.features``) on labelled tracks: expected calibration error
(top-label, :data:`lid_spark.metrics.ECE_BINS` equal-width bins) of the raw and the calibrated
scores, their reliability bins, the tagging thresholds ``tagging.target_precision`` picks on the
validation split and the precision and coverage of the ``tagged`` rows they give, and the guard's
trade-off: the share of correct tags it keeps against the share of wrong tags it catches.

Example
-------
>>> outcomes = pd.DataFrame({"label": ["de", "de", "en"], "language": ["de", "en", "en"],
...                          "passes_threshold": [True, True, True], "distance": [1.0, 9.0, 2.0],
...                          "audio_language": [None, "en", "de"]})
>>> row = guard_tradeoff(outcomes, {"distance": (5.0, False)})[1]
>>> row["guard"], row["correct_kept"], row["wrong_caught"]
('distance', 1.0, 1.0)
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from lid_spark.metrics import ECE_BINS, expected_calibration_error, precision_coverage, reliability_bins

# The guard variants the report compares: name -> (validation quantile of the distance limit or
# None, whether the audio-only language must agree).
GUARD_VARIANTS = {"none": (None, False), "distance q0.95": (0.95, False), "distance q0.99": (0.99, False),
                  "distance q0.999": (0.999, False), "modalities": (None, True),
                  "distance q0.99 + modalities": (0.99, True)}


def track_outcomes(clf, pdf: pd.DataFrame, min_confidence: float, target_precision=None) -> pd.DataFrame:
    """Per labelled track: label, language (argmax), raw and calibrated confidence, whether it
    passes its threshold and the confidence floor, the guard's distance and audio-only language."""
    predictions = clf.predict_tracks(pdf, target_precision=target_precision, guard_quantile=0.99,
                                     check_modalities=True)
    raw = clf.score_tracks(pdf)
    return pd.DataFrame({
        "track_id": predictions["track_id"].to_numpy(),
        "label": pdf["language"].astype(str).to_numpy(),
        "language": predictions["language"].to_numpy(),
        "raw_confidence": raw.max(axis=1) if len(raw) else np.zeros(0),
        "raw_language": np.asarray(clf.languages)[raw.argmax(axis=1)] if len(raw) else np.zeros(0, dtype=object),
        "confidence": predictions["confidence"].to_numpy(dtype=np.float64),
        "passes_threshold": (predictions["above_threshold"] & (predictions["confidence"] >= min_confidence)).to_numpy(),
        "distance": predictions["distance"].to_numpy(dtype=np.float64),
        "audio_language": predictions["audio_language"].to_numpy(),
    })


def guard_fires(outcomes: pd.DataFrame, limit: float | None, modalities: bool) -> np.ndarray:
    """Where the guard turns a track low_confidence: distance above ``limit`` (None: not checked), or
    (with ``modalities``) an audio-only language that differs from the track's language."""
    fires = np.zeros(len(outcomes), dtype=bool)
    if limit is not None:
        fires |= outcomes["distance"].to_numpy(dtype=np.float64) > limit
    if modalities:
        audio = outcomes["audio_language"].to_numpy()
        fires |= np.array([isinstance(a, str) and a != lang for a, lang in zip(audio, outcomes["language"])],
                          dtype=bool)
    return fires


def guard_tradeoff(outcomes: pd.DataFrame, variants: Mapping[str, tuple[float | None, bool]]) -> list[dict]:
    """For the unguarded tags and each guard variant (name -> (distance limit, modalities)): tags
    kept, the share of the correct unguarded tags kept, the share of the wrong ones caught, and the
    share of all tracks tagged wrongly."""
    correct = (outcomes["label"] == outcomes["language"]).to_numpy()
    passes = outcomes["passes_threshold"].to_numpy(dtype=bool)
    n = len(outcomes)
    rows = []
    for name, (limit, modalities) in {"none": (None, False), **variants}.items():
        tagged = passes & ~guard_fires(outcomes, limit, modalities)
        right, wrong = passes & correct, passes & ~correct
        rows.append({"guard": name, "tracks": n, "tagged": int(tagged.sum()),
                     "correct_kept": float((tagged & right).sum() / right.sum()) if right.any() else None,
                     "wrong_caught": float((~tagged & wrong).sum() / wrong.sum()) if wrong.any() else None,
                     "wrong_tagged_share": float((tagged & ~correct).sum() / n) if n else None,
                     "coverage": float(tagged.sum() / n) if n else None})
    return rows


def variant_limits(clf, variants: Mapping[str, tuple[float | None, bool]] = GUARD_VARIANTS
                   ) -> dict[str, tuple[float | None, bool]]:
    """The variants with each quantile turned into the classifier's distance limit."""
    guard = clf.distance_guard
    return {name: (None if q is None or guard is None else guard.limit(q), m) for name, (q, m) in variants.items()
            if name != "none"}


def calibration_summary(outcomes: pd.DataFrame, bins: int = ECE_BINS) -> dict:
    """ECE and reliability bins of the raw and the calibrated top-label confidence."""
    out = {"bins": bins, "binning": f"{bins} equal-width bins of the top-label confidence over [0, 1]"}
    for name, conf, lang in (("raw", "raw_confidence", "raw_language"), ("calibrated", "confidence", "language")):
        correct = (outcomes[lang] == outcomes["label"]).to_numpy()
        out[name] = {"ece": expected_calibration_error(outcomes[conf], correct, bins),
                     "reliability": reliability_bins(outcomes[conf], correct, bins)}
    return out


def confidence_report(clf, val: pd.DataFrame, test: pd.DataFrame, min_confidence: float, target_precision,
                      guard_quantile: float | None, guard_modalities: bool) -> dict:
    """Calibration (val and test), thresholds, precision/coverage of the tagged rows and the guard trade-off."""
    report = {"model_version": clf.model_version,
              "calibration": clf.calibration.to_json() if clf.calibration is not None else None,
              "target_precision": target_precision, "min_confidence": min_confidence,
              "guard": {"quantile": guard_quantile, "modalities": guard_modalities},
              "thresholds": clf.tag_thresholds(target_precision), "splits": {}}
    limit = (clf.distance_guard.limit(guard_quantile) if guard_quantile is not None and clf.distance_guard
             else None)
    for split, pdf in (("val", val), ("test", test)):
        outcomes = track_outcomes(clf, pdf, min_confidence, target_precision)
        passes = outcomes["passes_threshold"].to_numpy(dtype=bool)
        guarded = passes & ~guard_fires(outcomes, limit, guard_modalities)
        report["splits"][split] = {
            "calibration": calibration_summary(outcomes),
            "tagged_without_guard": precision_coverage(outcomes["label"], outcomes["language"], passes),
            "tagged": precision_coverage(outcomes["label"], outcomes["language"], guarded),
            "guard_tradeoff": guard_tradeoff(outcomes, variant_limits(clf)),
        }
    return report


def _fmt(value, digits: int = 3) -> str:
    return "–" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.{digits}f}"


def confidence_markdown(report: Mapping) -> str:
    """The report's section on calibration, the precision target and the guard."""
    cal = report.get("calibration") or {}
    target = report["target_precision"]
    lines = ["## Confidence: calibration, precision target, guard", "",
             f"Model {report['model_version']}; calibration: {cal.get('method', 'none')}"
             + (f" (temperature {cal['temperature']:.3f})" if cal else "") + ". ECE: top-label expected "
             "calibration error over 10 equal-width confidence bins. Tagged: calibrated confidence at or above "
             f"its language's threshold (target precision {target if target is not None else 'none: F1'}), "
             f"at least tagging.min_confidence ({report['min_confidence']}), and the guard (distance quantile "
             f"{report['guard']['quantile']}, modalities {report['guard']['modalities']}) passed.", "",
             "| split | ECE raw | ECE calibrated | tagged precision | coverage | wrong tags | "
             "without guard: precision | coverage |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for split, s in report["splits"].items():
        t, u = s["tagged"], s["tagged_without_guard"]
        lines.append(f"| {split} | {_fmt(s['calibration']['raw']['ece'])} | "
                     f"{_fmt(s['calibration']['calibrated']['ece'])} | {_fmt(t['precision'])} | "
                     f"{_fmt(t['coverage'])} | {t['wrong']} of {t['items']} | {_fmt(u['precision'])} | "
                     f"{_fmt(u['coverage'])} |")
    lines += ["", "Thresholds: " + ", ".join(f"{k} {v:.3f}" if v <= 1 else f"{k} never"
                                             for k, v in report["thresholds"].items()), "",
              "Guard trade-off on the test split (in-domain: what the guard costs):", "",
              "| guard | tagged | correct tags kept | wrong tags caught | tagged wrongly (share of tracks) |",
              "|---|---:|---:|---:|---:|"]
    for row in report["splits"]["test"]["guard_tradeoff"]:
        lines.append(f"| {row['guard']} | {row['tagged']} | {_fmt(row['correct_kept'])} | "
                     f"{_fmt(row['wrong_caught'])} | {_fmt(row['wrong_tagged_share'])} |")
    return "\n".join(lines)
