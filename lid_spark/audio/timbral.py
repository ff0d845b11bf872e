"""Timbral features of a song: the pooled audio codebook histogram of the paper (section 3.1.3).

1. Log-mel spectra over half-overlapping windows (:func:`log_mel`).
2. PCA keeping ``pca_variance`` (95 %) of the variance, plus first and second time derivatives:
   a 3P-dimensional feature per window.
3. A codebook of Gaussian codewords (diagonal-covariance GMM fitted by EM on an unlabeled sample).
4. Per-window posteriors over the codewords, pooled over the whole song by mean and max: a
   fixed vector of length 2K.

Fitting uses scikit-learn; everything after is plain numpy. A fitted :class:`Codebook` is saved as
``codebook.npz`` (arrays only, no pickle) and ``codebook.json`` (parameters, feature version,
SHA-256 of the npz), so loading needs neither pickle nor scikit-learn, and a damaged or swapped
file is refused.

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> waves = [rng.normal(size=16000 * 3).astype("float32") * s for s in (0.1, 0.3)]
>>> book = Codebook.fit([log_mel(w, 16000) for w in waves], sample_rate=16000, codebook_size=4)
>>> book.encode(waves[0], 16000).shape
(8,)
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass, field

import numpy as np

from lid_spark.errors import InputError, ParameterError
from lid_spark.faults import fault_point
from lid_spark.files import replace_directory

NPZ_NAME = "codebook.npz"
JSON_NAME = "codebook.json"
_ARRAYS = ("pca_mean", "pca_components", "gmm_weights", "gmm_means", "gmm_variances")


def log_mel(wave: np.ndarray, sr: int, n_mels: int = 64, window_seconds: float = 0.064) -> np.ndarray:
    """Log-mel power spectra (dB) over half-overlapping windows, shape (frames, n_mels).

    Parameters
    ----------
    wave : np.ndarray
        Mono audio.
    sr : int
        Its sample rate.
    n_mels : int
        Mel bands.
    window_seconds : float
        Window length; the hop is half of it.

    Example
    -------
    >>> log_mel(np.ones(16000, dtype="float32"), 16000).shape
    (30, 64)
    """
    import librosa

    if n_mels < 2 or window_seconds <= 0:
        raise ParameterError(f"audio.timbral needs n_mels >= 2 and window_seconds > 0, got {n_mels}, "
                             f"{window_seconds}")
    n_fft = max(32, int(round(window_seconds * sr)))
    hop = n_fft // 2
    wave = np.asarray(wave, dtype=np.float32)
    if len(wave) < n_fft:
        wave = np.pad(wave, (0, n_fft - len(wave)))
    mel = librosa.feature.melspectrogram(y=wave, sr=sr, n_fft=n_fft, hop_length=hop, n_mels=n_mels,
                                         center=False, power=2.0)
    return librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None).T.astype(np.float32)


def with_deltas(features: np.ndarray) -> np.ndarray:
    """Append first and second time derivatives: (T, P) -> (T, 3P).

    Example
    -------
    >>> with_deltas(np.arange(10.0).reshape(10, 1))[4].round(6)
    array([4., 1., 0.])
    """
    import librosa

    features = np.asarray(features, dtype=np.float64)
    if len(features) < 3:
        zeros = np.zeros_like(features)
        return np.concatenate([features, zeros, zeros], axis=1)
    width = min(9, len(features) if len(features) % 2 else len(features) - 1)
    first = librosa.feature.delta(features, width=width, order=1, axis=0, mode="nearest")
    second = librosa.feature.delta(features, width=width, order=2, axis=0, mode="nearest")
    return np.concatenate([features, first, second], axis=1)


FIT_RUN_FRAMES = 50  # contiguous frames per run sampled for the fit (deltas need neighbours)


def sample_frames(mel: np.ndarray, n_frames: int, run: int = FIT_RUN_FRAMES) -> np.ndarray:
    """About ``n_frames`` frames of a track for the codebook fit: contiguous runs spread over all of it.

    A track with at most ``n_frames`` frames is returned whole. Otherwise ``n_frames // run``
    runs of ``run`` frames start at evenly spaced positions from the beginning to the end.

    Example
    -------
    >>> mel = np.arange(1000.0)[:, None]
    >>> picked = sample_frames(mel, 100, run=50)
    >>> picked[:, 0][[0, 49, 50, 99]]
    array([  0.,  49., 950., 999.])
    """
    if n_frames < 1 or run < 1:
        raise ParameterError(f"audio.timbral.fit_frames_per_track must be positive, got {n_frames}")
    mel = np.asarray(mel)
    if len(mel) <= n_frames:
        return mel
    runs = max(1, n_frames // run)
    run = min(run, n_frames)
    starts = np.round(np.linspace(0, len(mel) - run, runs)).astype(np.int64)
    return np.concatenate([mel[s:s + run] for s in starts])


def split_runs(mel: np.ndarray, run: int = FIT_RUN_FRAMES) -> list[np.ndarray]:
    """Cut frames from :func:`sample_frames` back into runs of ``run`` (the last may be shorter)."""
    return [mel[i:i + run] for i in range(0, len(mel), run)]


@dataclass(frozen=True)
class Codebook:
    """A fitted PCA projection and diagonal GMM over (PCA + deltas) features, with mel parameters."""

    sample_rate: int
    n_mels: int
    window_seconds: float
    pca_mean: np.ndarray          # (n_mels,)
    pca_components: np.ndarray    # (P, n_mels)
    gmm_weights: np.ndarray       # (K,)
    gmm_means: np.ndarray         # (K, 3P)
    gmm_variances: np.ndarray     # (K, 3P)
    feature_version: str = "audio-v1"
    info: dict = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Number of codewords K."""
        return len(self.gmm_weights)

    @property
    def vector_size(self) -> int:
        """Length of a song's timbral vector (mean and max pooling: 2K)."""
        return 2 * self.size

    @classmethod
    def fit(cls, mel_frames: list[np.ndarray], sample_rate: int, n_mels: int = 64, window_seconds: float = 0.064,
            pca_variance: float = 0.95, codebook_size: int = 32, max_iter: int = 100, seed: int = 0,
            feature_version: str = "audio-v1") -> Codebook:
        """Fit PCA and the GMM codebook by EM on log-mel frames of unlabeled tracks.

        Parameters
        ----------
        mel_frames : list of np.ndarray
            (frames, n_mels) arrays of contiguous frames (a track, or runs of one), from
            :func:`log_mel` with the same parameters.
        pca_variance : float
            Fraction of variance the PCA keeps (0 < v <= 1).
        codebook_size : int
            Number of Gaussian codewords K.
        """
        from sklearn.decomposition import PCA
        from sklearn.mixture import GaussianMixture

        if not 0 < pca_variance <= 1:
            raise ParameterError(f"audio.timbral.pca_variance must be in (0, 1], got {pca_variance}")
        if codebook_size < 1:
            raise ParameterError(f"audio.timbral.codebook_size must be positive, got {codebook_size}")
        tracks = [np.asarray(m, dtype=np.float64) for m in mel_frames if len(m)]
        if not tracks or any(m.ndim != 2 or m.shape[1] != n_mels for m in tracks):
            raise InputError(f"Codebook.fit needs at least one non-empty (frames, {n_mels}) log-mel array")
        stacked = np.concatenate(tracks)
        if len(stacked) < codebook_size * 2:
            raise InputError(f"Codebook.fit got {len(stacked)} frames for {codebook_size} codewords: "
                             "fit on more tracks or fewer codewords (audio.timbral.fit_tracks, codebook_size)")
        if pca_variance >= 1:
            pca = PCA(n_components=min(stacked.shape), svd_solver="full").fit(stacked)
        else:
            pca = PCA(n_components=pca_variance, svd_solver="full").fit(stacked)
        features = np.concatenate([with_deltas(pca.transform(m)) for m in tracks])
        gmm = GaussianMixture(n_components=codebook_size, covariance_type="diag", max_iter=max_iter,
                              random_state=seed, reg_covar=1e-4).fit(features)
        info = {"fit_runs": len(tracks), "fit_frames": int(len(stacked)), "pca_components": int(pca.n_components_),
                "pca_explained_variance": float(pca.explained_variance_ratio_.sum()),
                "gmm_converged": bool(gmm.converged_), "gmm_iterations": int(gmm.n_iter_)}
        return cls(int(sample_rate), int(n_mels), float(window_seconds), pca.mean_.astype(np.float64),
                   pca.components_.astype(np.float64), gmm.weights_.astype(np.float64),
                   gmm.means_.astype(np.float64), gmm.covariances_.astype(np.float64), feature_version, info)

    def features(self, mel: np.ndarray) -> np.ndarray:
        """(frames, n_mels) log-mel -> (frames, 3P) PCA projection with deltas."""
        mel = np.asarray(mel, dtype=np.float64)
        return with_deltas((mel - self.pca_mean) @ self.pca_components.T)

    def posteriors(self, features: np.ndarray) -> np.ndarray:
        """Posterior probability of each codeword for each frame, shape (frames, K); rows sum to 1."""
        features = np.asarray(features, dtype=np.float64)
        precision = 1.0 / self.gmm_variances
        log_det = np.sum(np.log(self.gmm_variances), axis=1)
        mahalanobis = ((features ** 2) @ precision.T - 2.0 * features @ (self.gmm_means * precision).T
                       + np.sum(self.gmm_means ** 2 * precision, axis=1))
        log_prob = -0.5 * (features.shape[1] * np.log(2 * np.pi) + log_det + mahalanobis) + np.log(self.gmm_weights)
        log_prob -= log_prob.max(axis=1, keepdims=True)
        prob = np.exp(log_prob)
        return prob / prob.sum(axis=1, keepdims=True)

    def encode(self, wave: np.ndarray, sr: int) -> np.ndarray:
        """A song's timbral vector: mean- then max-pooled codeword posteriors, float32 of length 2K."""
        if sr != self.sample_rate:
            raise ParameterError(f"the codebook was fitted at {self.sample_rate} Hz, got audio at {sr} Hz")
        post = self.posteriors(self.features(log_mel(wave, sr, self.n_mels, self.window_seconds)))
        return np.concatenate([post.mean(axis=0), post.max(axis=0)]).astype(np.float32)

    # -- persistence (no pickle) ------------------------------------------------------------------

    @property
    def checksum(self) -> str:
        """SHA-256 of the saved npz bytes: identifies the fitted parameters."""
        return hashlib.sha256(self._npz_bytes()).hexdigest()

    def _npz_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, **{name: getattr(self, name) for name in _ARRAYS})
        return buffer.getvalue()

    def save(self, directory: str) -> str:
        """Write ``codebook.npz`` and ``codebook.json`` into ``directory``; returns the directory.

        The directory is replaced as a whole (:func:`lid_spark.files.replace_directory`): a reader
        sees the previous codebook or this one, never a mix, even when the writer is killed.
        """
        data = self._npz_bytes()
        meta = {"feature_version": self.feature_version, "sample_rate": self.sample_rate, "n_mels": self.n_mels,
                "window_seconds": self.window_seconds, "codebook_size": self.size,
                "sha256": hashlib.sha256(data).hexdigest(), "info": self.info}
        with replace_directory(directory) as tmp:
            (tmp / NPZ_NAME).write_bytes(data)
            fault_point("codebook:npz_written")
            with open(tmp / JSON_NAME, "w", encoding="utf-8") as f:
                json.dump(meta, f, indent=2, sort_keys=True)
        return directory

    @classmethod
    def load(cls, directory: str) -> Codebook:
        """Load a codebook saved by :meth:`save`, checking the npz against the recorded checksum."""
        json_path, npz_path = os.path.join(directory, JSON_NAME), os.path.join(directory, NPZ_NAME)
        if not (os.path.exists(json_path) and os.path.exists(npz_path)):
            raise InputError(f"no timbral codebook in {directory}: run `lid-spark fit_codebook` first")
        with open(json_path, encoding="utf-8") as f:
            meta = json.load(f)
        with open(npz_path, "rb") as f:
            data = f.read()
        if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
            raise InputError(f"{npz_path} does not match the checksum in {json_path}: refit the codebook")
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            values = {name: arrays[name] for name in _ARRAYS}
        return cls(int(meta["sample_rate"]), int(meta["n_mels"]), float(meta["window_seconds"]), **values,
                   feature_version=meta["feature_version"], info=meta.get("info", {}))


def codebook_dir(cfg) -> str:
    """Where ``fit_codebook`` saves and ``extract_features`` loads the codebook under a Config."""
    return os.path.join(cfg.output.models_dir, "timbral_codebook")
