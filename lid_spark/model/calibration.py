"""Calibrated scores and the out-of-domain guard of a classifier, fitted on its validation split.

The classifier's head is a softmax over the classes, and a track's song-level scores are the
duration-weighted mean of its segments' posteriors (:func:`lid_spark.model.features.song_scores`):
a probability vector per track. Calibration acts on that vector, as the model outputs it:

- **temperature scaling** (the default): ``softmax(log p / T)``, one ``T`` for every class, fitted
  by minimising the validation negative log-likelihood. It keeps the ranking of the classes of
  every track, so the argmax (the tag's language) never changes;
- **per-language isotonic** one-vs-rest maps (renormalised over the classes), only when every
  class has at least ``min_positives`` validation tracks: an isotonic map fitted on a handful of
  positives is a staircase that overfits them.

The guard: the Mahalanobis distance of a track's last hidden layer (the representation the logits
are a linear map of) from the training tracks', with a Ledoit-Wolf shrunk covariance. Its
validation distances are kept sorted, so a tagging run picks its limit as a validation quantile.

Example
-------
>>> import numpy as np
>>> p = np.array([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1]])
>>> np.round(apply_temperature(p, 1.0), 3).tolist() == p.tolist()
True
>>> bool(apply_temperature(p, 2.0)[0, 0] < 0.7)    # T > 1 softens an over-confident model
True
>>> cal = fit_calibration(np.array([[0.9, 0.1], [0.9, 0.1], [0.1, 0.9]]), np.array([0, 1, 1]), ("de", "ot"))
>>> cal.method, bool(cal.temperature > 1.0)  # one of the two 0.9s is wrong: soften
('temperature', True)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize_scalar

from lid_spark.errors import ParameterError

METHODS = ("temperature", "isotonic")
# Bumped when the fitting changes: a saved model whose calibration has another version is recalibrated on reuse.
CALIBRATION_VERSION = 2
TEMPERATURE_BOUNDS = (0.05, 20.0)
_EPS = 1e-12


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log(probs) / temperature)`` row by row (rows of probabilities, [items, classes])."""
    logp = np.log(np.clip(np.asarray(probs, dtype=np.float64), _EPS, 1.0)) / float(temperature)
    logp -= logp.max(axis=1, keepdims=True)
    out = np.exp(logp)
    return out / out.sum(axis=1, keepdims=True)


def fit_temperature(probs: np.ndarray, label_index: np.ndarray, smoothing: float | None = None) -> float:
    """The temperature minimising the mean cross-entropy of :func:`apply_temperature` against the
    labels, smoothed: each target puts ``1 - smoothing`` on its label and spreads ``smoothing``
    over the other classes (searched on log T within :data:`TEMPERATURE_BOUNDS`).

    ``smoothing`` None: ``1 / (n + 2)`` for ``n`` items, Laplace's rule of succession. Without it a
    validation split the model gets entirely right (a few dozen tracks of an easy catalog) drives
    T to its lower bound and every confidence to 1.0, which no test set bears out: with ``n`` right
    answers out of ``n`` the accuracy one may claim is about ``(n + 1) / (n + 2)``.

    >>> p = np.array([[0.99, 0.01]] * 8 + [[0.01, 0.99]] * 2)
    >>> fit_temperature(p, np.array([0] * 6 + [1] * 4)) > 2.0   # 2 of 10 confident answers wrong
    True
    """
    probs = np.asarray(probs, dtype=np.float64)
    label_index = np.asarray(label_index, dtype=np.int64)
    if len(probs) == 0 or probs.shape[0] != len(label_index):
        raise ParameterError(f"fit_temperature needs one label per row; got {probs.shape} and {label_index.shape}")
    n, classes = probs.shape
    eps = 1.0 / (n + 2) if smoothing is None else float(smoothing)
    target = np.full((n, classes), eps / max(classes - 1, 1))
    target[np.arange(n), label_index] = 1.0 - eps

    def nll(log_t: float) -> float:
        return float(-np.mean(np.sum(target * np.log(apply_temperature(probs, np.exp(log_t)) + _EPS), axis=1)))

    low, high = np.log(TEMPERATURE_BOUNDS[0]), np.log(TEMPERATURE_BOUNDS[1])
    found = minimize_scalar(nll, bounds=(low, high), method="bounded", options={"xatol": 1e-4})
    return float(np.exp(found.x))


def fit_isotonic(probs: np.ndarray, label_index: np.ndarray, languages) -> dict[str, list[list[float]]]:
    """Per-language isotonic maps (score -> share of positives), as ``{language: [x, y]}`` breakpoints."""
    from sklearn.isotonic import IsotonicRegression

    maps = {}
    for j, lang in enumerate(languages):
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        iso.fit(probs[:, j], (label_index == j).astype(np.float64))
        maps[lang] = [iso.X_thresholds_.tolist(), iso.y_thresholds_.tolist()]
    return maps


@dataclass
class Calibration:
    """How raw song-level scores become calibrated ones (saved in the artifact's meta.json)."""

    method: str = "temperature"
    temperature: float = 1.0
    isotonic: dict[str, list[list[float]]] = field(default_factory=dict)
    val_nll: dict[str, float] = field(default_factory=dict)   # before / after, on the validation split
    version: int = CALIBRATION_VERSION

    def apply(self, probs: np.ndarray, languages) -> np.ndarray:
        """Calibrated scores [items, classes] (rows sum to 1)."""
        probs = np.asarray(probs, dtype=np.float64)
        if self.method == "temperature" or len(probs) == 0:
            return apply_temperature(probs, self.temperature) if len(probs) else probs
        mapped = np.column_stack([np.interp(probs[:, j], *self.isotonic[lang]) for j, lang in enumerate(languages)])
        total = mapped.sum(axis=1, keepdims=True)
        # a row every map sends to 0: fall back to temperature scaling (still a distribution)
        fallback = apply_temperature(probs, self.temperature)
        return np.where(total > _EPS, mapped / np.maximum(total, _EPS), fallback)

    def to_json(self) -> dict:
        return {"method": self.method, "temperature": self.temperature, "isotonic": self.isotonic,
                "val_nll": self.val_nll, "version": self.version}

    @classmethod
    def from_json(cls, data: dict) -> Calibration:
        if data.get("method") not in METHODS:
            raise ParameterError(f"calibration method must be one of {METHODS}, got {data.get('method')!r}")
        return cls(method=data["method"], temperature=float(data["temperature"]),
                   isotonic={k: [list(map(float, x)), list(map(float, y))] for k, (x, y) in data["isotonic"].items()},
                   val_nll={k: float(v) for k, v in data.get("val_nll", {}).items()},
                   version=int(data.get("version", 1)))


def _nll(probs: np.ndarray, label_index: np.ndarray) -> float:
    return float(-np.mean(np.log(probs[np.arange(len(probs)), label_index] + _EPS)))


def fit_calibration(probs: np.ndarray, label_index: np.ndarray, languages, min_positives: int = 50) -> Calibration:
    """Temperature scaling, or per-language isotonic maps when every class has at least
    ``min_positives`` validation tracks (the temperature is fitted either way: the isotonic
    fallback for rows every map sends to 0)."""
    probs = np.asarray(probs, dtype=np.float64)
    label_index = np.asarray(label_index, dtype=np.int64)
    temperature = fit_temperature(probs, label_index)
    positives = np.bincount(label_index, minlength=len(languages))
    method = "isotonic" if min_positives > 0 and positives.min() >= min_positives else "temperature"
    cal = Calibration(method=method, temperature=temperature,
                      isotonic=fit_isotonic(probs, label_index, languages) if method == "isotonic" else {})
    cal.val_nll = {"before": _nll(probs, label_index), "after": _nll(cal.apply(probs, languages), label_index)}
    return cal


# ---------------------------------------------------------------- the out-of-domain guard


@dataclass
class DistanceGuard:
    """Mahalanobis distance in the last hidden layer from the training tracks' distribution.

    ``val_distances``: the validation tracks' distances, sorted: :meth:`limit` is their quantile.

    >>> rng = np.random.default_rng(0)
    >>> guard = fit_distance_guard(rng.normal(size=(200, 3)), rng.normal(size=(100, 3)))
    >>> near, far = guard.distances(np.array([[0.0, 0.0, 0.0], [8.0, 8.0, 8.0]]))
    >>> bool(near < guard.limit(0.99) < far)
    True
    """

    mean: np.ndarray
    precision: np.ndarray
    val_distances: np.ndarray

    def distances(self, hidden: np.ndarray) -> np.ndarray:
        centred = np.asarray(hidden, dtype=np.float64) - self.mean
        return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", centred, self.precision, centred), 0.0))

    def limit(self, quantile: float) -> float:
        """The ``quantile`` of the validation distances: about ``1 - quantile`` of in-domain tracks exceed it."""
        if not 0.0 < quantile <= 1.0:
            raise ParameterError(f"the guard's quantile must be in (0, 1], got {quantile}")
        return float(np.quantile(self.val_distances, quantile)) if len(self.val_distances) else float("inf")

    def to_json(self) -> dict:
        return {"mean": self.mean.tolist(), "precision": self.precision.tolist(),
                "val_distances": self.val_distances.tolist()}

    @classmethod
    def from_json(cls, data: dict) -> DistanceGuard:
        return cls(np.asarray(data["mean"], dtype=np.float64), np.asarray(data["precision"], dtype=np.float64),
                   np.asarray(data["val_distances"], dtype=np.float64))


def fit_distance_guard(train_hidden: np.ndarray, val_hidden: np.ndarray) -> DistanceGuard:
    """Mean and Ledoit-Wolf shrunk precision matrix of ``train_hidden``; the sorted distances of ``val_hidden``."""
    from sklearn.covariance import LedoitWolf

    train_hidden = np.asarray(train_hidden, dtype=np.float64)
    if len(train_hidden) < 2:
        raise ParameterError(f"the distance guard needs at least 2 training tracks, got {len(train_hidden)}")
    fitted = LedoitWolf().fit(train_hidden)
    guard = DistanceGuard(fitted.location_, fitted.precision_, np.zeros(0))
    guard.val_distances = np.sort(guard.distances(val_hidden))
    return guard
