"""Ranking and annotation metrics of the paper (section 4.3, footnote 3).

For each language the tracks are ranked by ``P(language | X)``: *AP* is the area under that
ranking's precision-recall curve (the step-wise sum ``sum_n (R_n - R_{n-1}) P_n``, as scikit-learn's
``average_precision_score``), *mAP* its macro average over languages. P, R and F1 are measured at a
per-language acceptance threshold tuned for F1 on the validation set.

Example
-------
>>> average_precision([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1])
0.8333333333333333
>>> best_f1_threshold([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1])
0.7
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from lid_spark import TARGET_LANGUAGES
from lid_spark.errors import ParameterError


def _ranked(y_true, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Cumulative TP/FP at each distinct score (descending), the distinct scores, and #positives."""
    y = np.asarray(y_true).astype(bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ParameterError(f"y_true and scores differ in length: {y.shape[0]} vs {s.shape[0]}")
    if not np.all(np.isfinite(s)):
        raise ParameterError("scores must be finite")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last_of_run = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1] if len(s) else np.zeros(0, dtype=int)
    tp = np.cumsum(y)[last_of_run]
    fp = np.cumsum(~y)[last_of_run]
    return tp, fp, s[last_of_run], int(y.sum())


def average_precision(y_true, scores) -> float:
    """Area under the precision-recall curve of ranking by ``scores``; NaN when there is no positive.

    Parameters
    ----------
    y_true : binary labels (1 = the language)
    scores : the language's posterior per item

    Returns
    -------
    float in [0, 1], or NaN without positives
    """
    tp, fp, _, positives = _ranked(y_true, scores)
    if positives == 0:
        return float("nan")
    precision = tp / (tp + fp)
    recall = tp / positives
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def best_f1_threshold(y_true, scores, default: float = 0.5) -> float:
    """The acceptance threshold (accept when score >= it) that maximises F1 on these items.

    Among thresholds with equal F1 the highest wins. Without positives, ``default``.
    """
    tp, fp, thresholds, positives = _ranked(y_true, scores)
    if positives == 0 or len(tp) == 0:
        return float(default)
    f1 = 2 * tp / (2 * tp + fp + (positives - tp))
    return float(thresholds[int(np.argmax(f1))])


def precision_recall_f1(y_true, scores, threshold: float) -> tuple[float, float, float]:
    """P, R and F1 of accepting items whose score >= threshold (0 where undefined)."""
    y = np.asarray(y_true).astype(bool).ravel()
    accepted = np.asarray(scores, dtype=np.float64).ravel() >= threshold
    tp = float(np.sum(y & accepted))
    precision = tp / accepted.sum() if accepted.sum() else 0.0
    recall = tp / y.sum() if y.sum() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def tune_thresholds(labels: Sequence[str], scores: np.ndarray, languages: Sequence[str]) -> dict[str, float]:
    """Per-language thresholds maximising F1 on a validation set.

    Parameters
    ----------
    labels : true language per item
    scores : [items, len(languages)] posteriors
    languages : the columns of ``scores``

    Returns
    -------
    dict language -> threshold
    """
    labels = np.asarray(labels)
    scores = np.asarray(scores)
    return {lang: best_f1_threshold(labels == lang, scores[:, j]) for j, lang in enumerate(languages)}


def language_metrics(labels: Sequence[str], scores: np.ndarray, languages: Sequence[str],
                     thresholds: Mapping[str, float] | None = None,
                     average_over: Sequence[str] = TARGET_LANGUAGES) -> dict[str, dict[str, float | None]]:
    """The per-language row of Tables 1/2: P, R, F1 at ``thresholds`` and AP, plus their macro ``avg``.

    Parameters
    ----------
    labels : true language per item
    scores : [items, len(languages)] posteriors
    languages : the columns of ``scores``
    thresholds : language -> threshold; None: only ``ap`` is reported (Table 2)
    average_over : languages whose metrics enter ``avg`` (the paper averages its 10 targets;
        ``ot`` is reported but not averaged). Languages without test items are None and skipped.

    Returns
    -------
    {language: {"precision", "recall", "f1", "ap"}, "avg": {...}} (only "ap" without thresholds)
    """
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(labels), len(languages)):
        raise ParameterError(f"scores must be [{len(labels)}, {len(languages)}], got {scores.shape}")
    keys = ("precision", "recall", "f1", "ap") if thresholds is not None else ("ap",)
    table: dict[str, dict[str, float | None]] = {}
    for j, lang in enumerate(languages):
        positives = labels == lang
        if not positives.any():
            table[lang] = {k: None for k in keys}
            continue
        row = {"ap": average_precision(positives, scores[:, j])}
        if thresholds is not None:
            p, r, f = precision_recall_f1(positives, scores[:, j], thresholds[lang])
            row.update(precision=p, recall=r, f1=f)
        table[lang] = {k: row[k] for k in keys}
    averaged = [lang for lang in average_over if lang in table and table[lang]["ap"] is not None]
    table["avg"] = {k: (float(np.mean([table[lang][k] for lang in averaged])) if averaged else None)
                    for k in keys}
    return table


def confusion_matrix(labels: Sequence[str], predicted: Sequence[str], languages: Sequence[str]) -> np.ndarray:
    """Counts [true language, predicted language] over ``languages`` (others ignored)."""
    index = {lang: i for i, lang in enumerate(languages)}
    matrix = np.zeros((len(languages), len(languages)), dtype=np.int64)
    for truth, guess in zip(labels, predicted):
        if truth in index and guess in index:
            matrix[index[truth], index[guess]] += 1
    return matrix


def map_difference_interval(labels: Sequence[str], scores_a: np.ndarray, scores_b: np.ndarray,
                            languages: Sequence[str], average_over: Sequence[str] = TARGET_LANGUAGES,
                            resamples: int = 1000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Paired bootstrap interval of mAP(a) - mAP(b) over the same test items.

    The items are resampled with replacement (the same draw for both score sets); each draw's
    difference of macro AP over ``average_over`` (languages without a positive in the draw are
    skipped) goes into the percentile interval. An interval containing 0 means the test set
    cannot tell the two apart.

    Returns
    -------
    (low, high) at ``level``
    """
    labels = np.asarray(labels)
    scores_a, scores_b = np.asarray(scores_a, np.float64), np.asarray(scores_b, np.float64)
    if scores_a.shape != (len(labels), len(languages)) or scores_b.shape != scores_a.shape:
        raise ParameterError(f"both score sets must be [{len(labels)}, {len(languages)}], "
                             f"got {scores_a.shape} and {scores_b.shape}")
    columns = [(j, lang) for j, lang in enumerate(languages) if lang in set(average_over)]
    rng = np.random.default_rng(seed)
    differences = []
    for _ in range(resamples):
        draw = rng.integers(0, len(labels), len(labels))
        pairs = [(average_precision(labels[draw] == lang, scores_a[draw, j]),
                  average_precision(labels[draw] == lang, scores_b[draw, j])) for j, lang in columns]
        pairs = [(a, b) for a, b in pairs if not np.isnan(a)]
        if pairs:
            differences.append(np.mean([a for a, _ in pairs]) - np.mean([b for _, b in pairs]))
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(differences, [tail, 100.0 - tail])
    return float(low), float(high)


def map_interval(labels: Sequence[str], scores: np.ndarray, languages: Sequence[str],
                 average_over: Sequence[str] = TARGET_LANGUAGES, resamples: int = 1000, level: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Bootstrap percentile interval of the macro mAP of one score set over its test items.

    The items are resampled with replacement; each draw's macro AP over ``average_over``
    (languages without a positive in the draw are skipped) goes into the percentile interval.

    Example
    -------
    >>> labels = ["de", "en"] * 20
    >>> perfect = np.array([[1.0, 0.0] if x == "de" else [0.0, 1.0] for x in labels])
    >>> map_interval(labels, perfect, ["de", "en"], average_over=["de", "en"], resamples=50)
    (1.0, 1.0)
    """
    labels = np.asarray(labels)
    scores = np.asarray(scores, np.float64)
    if scores.shape != (len(labels), len(languages)):
        raise ParameterError(f"scores must be [{len(labels)}, {len(languages)}], got {scores.shape}")
    columns = [(j, lang) for j, lang in enumerate(languages) if lang in set(average_over)]
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(resamples):
        draw = rng.integers(0, len(labels), len(labels))
        aps = [average_precision(labels[draw] == lang, scores[draw, j]) for j, lang in columns]
        aps = [a for a in aps if not np.isnan(a)]
        if aps:
            draws.append(float(np.mean(aps)))
    if not draws:
        raise ParameterError("no bootstrap draw holds a positive of any averaged language")
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(draws, [tail, 100.0 - tail])
    return float(low), float(high)


# ---------------------------------------------------------------- calibration and tagging precision

ECE_BINS = 10   # equal-width confidence bins over [0, 1] (the usual choice of the calibration literature)


def reliability_bins(confidence, correct, bins: int = ECE_BINS) -> list[dict]:
    """Top-label reliability: per equal-width confidence bin, its count, mean confidence and accuracy.

    Bin ``k`` holds confidences in ``[k/bins, (k+1)/bins)`` (the last bin includes 1.0); empty bins
    have count 0 and None for the means.
    """
    confidence = np.asarray(confidence, dtype=np.float64).ravel()
    correct = np.asarray(correct).astype(bool).ravel()
    if confidence.shape != correct.shape:
        raise ParameterError(f"confidence and correct differ in length: {confidence.shape[0]} vs {correct.shape[0]}")
    index = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    out = []
    for k in range(bins):
        members = index == k
        n = int(members.sum())
        out.append({"low": k / bins, "high": (k + 1) / bins, "count": n,
                    "confidence": float(confidence[members].mean()) if n else None,
                    "accuracy": float(correct[members].mean()) if n else None})
    return out


def expected_calibration_error(confidence, correct, bins: int = ECE_BINS) -> float:
    """Top-label ECE: sum over equal-width bins of (bin share) x |accuracy - mean confidence|.

    ``confidence``: the probability of each item's predicted (argmax) class; ``correct``: whether
    that class is the true one. NaN without items.

    >>> expected_calibration_error([0.9, 0.9, 0.9, 0.9], [1, 1, 1, 0])   # says 0.9, right 3 times in 4
    0.15
    >>> expected_calibration_error([0.75, 0.75, 0.75, 0.75], [1, 1, 1, 0])
    0.0
    """
    rows = reliability_bins(confidence, correct, bins)
    total = sum(r["count"] for r in rows)
    if total == 0:
        return float("nan")
    return float(round(sum(r["count"] / total * abs(r["accuracy"] - r["confidence"]) for r in rows if r["count"]),
                       12))


NEVER = 1.0 + 1e-9   # a threshold no probability reaches: that language is never tagged


def precision_thresholds(predicted: Sequence[str], confidence, correct, languages: Sequence[str],
                         target: float | Mapping[str, float]) -> dict[str, float]:
    """Per-language thresholds on the confidence of the predicted language so that the tagged rows
    (predicted ``language`` with confidence >= its threshold) reach ``target`` precision here.

    For each language the items predicted as it are ranked by confidence; the threshold is the
    lowest confidence whose accepted set (every item at or above it) has precision >= the target,
    i.e. the largest coverage that meets it. A language none of whose accepted sets meets it (or
    never predicted) gets :data:`NEVER`. ``target``: one value, or a mapping language -> value
    (languages it leaves out take its ``"*"`` entry, else 0: no constraint, the lowest confidence).

    >>> precision_thresholds(["de"] * 4, [0.9, 0.8, 0.7, 0.6], [1, 1, 0, 1], ["de"], 0.75)
    {'de': 0.6}
    >>> precision_thresholds(["de"] * 4, [0.9, 0.8, 0.7, 0.6], [1, 1, 0, 1], ["de"], 0.9)
    {'de': 0.8}
    >>> precision_thresholds(["de"] * 2, [0.9, 0.8], [0, 1], ["de", "en"], 0.9)["de"] == NEVER
    True
    """
    predicted = np.asarray(predicted)
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct).astype(bool)
    out = {}
    for lang in languages:
        wanted = float(target.get(lang, target.get("*", 0.0))) if isinstance(target, Mapping) else float(target)
        mine = predicted == lang
        tp, fp, thresholds, _ = _ranked(correct[mine], confidence[mine])
        if len(tp) == 0:
            out[lang] = NEVER
            continue
        meets = np.flatnonzero(tp / (tp + fp) >= wanted - 1e-12)
        out[lang] = float(thresholds[meets[-1]]) if len(meets) else NEVER
    return out


def precision_coverage(labels: Sequence[str], predicted: Sequence[str], tagged) -> dict[str, float | int | None]:
    """Precision of the tagged items (their predicted language is the true one) and their share of all items.

    >>> precision_coverage(["de", "en", "en", "de"], ["de", "en", "de", "de"], [True, True, True, False])
    {'items': 4, 'tagged': 3, 'wrong': 1, 'precision': 0.6666666666666666, 'coverage': 0.75}
    """
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    tagged = np.asarray(tagged).astype(bool)
    n, k = len(labels), int(tagged.sum())
    right = int((tagged & (labels == predicted)).sum())
    return {"items": n, "tagged": k, "wrong": k - right, "precision": right / k if k else None,
            "coverage": k / n if n else None}
