"""Vocal separation behind one interface: ``Separator.separate(wave, sr) -> vocals``.

Backends are chosen by ``audio.separation.backend``:

- ``softmask`` (default, weight-free, runs anywhere): REPET-SIM. Accompaniment repeats (the same
  chords, beats and riffs recur), singing much less: each spectrogram frame's accompaniment is
  estimated as the median of its most similar frames (``librosa.decompose.nn_filter``), and the
  vocals get a Wiener-like soft mask (``librosa.util.softmask``). The track is processed in blocks
  of ``block_seconds`` so time and memory grow linearly with its length.
- ``spleeter``: the paper's separator, run in its own environment and driven over pipes
  (:mod:`lid_spark.audio.spleeter_backend`).

Quality is measured by :func:`sdr` and :func:`si_sdr` against true stems (benchmarks/bench_audio.py).

Example
-------
>>> import numpy as np
>>> sep = SoftMaskSeparator()
>>> vocals = sep.separate(np.random.default_rng(0).normal(size=32000).astype("float32"), 16000)
>>> vocals.shape, vocals.dtype
((32000,), dtype('float32'))
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from lid_spark.errors import ParameterError

BACKENDS = ("softmask", "spleeter")


class SeparationUnavailable(RuntimeError):
    """The separation backend itself is gone (not one track's problem): the job must stop.

    A failure of one track raises :class:`lid_spark.audio.decode.AudioError` with status
    ``separation_failed`` instead, and the batch goes on.
    """


class Separator(ABC):
    """Estimates the vocal stem of a mono mixture.

    ``separate`` raises ``AudioError`` for a track it cannot separate and
    :class:`SeparationUnavailable` when no further track can be separated.
    """

    name: str = ""

    @abstractmethod
    def separate(self, wave: np.ndarray, sr: int) -> np.ndarray:
        """Vocals of ``wave`` (mono float32 at ``sr``): a float32 array of the same length."""


class SoftMaskSeparator(Separator):
    """REPET-SIM vocal separation with soft masks (weight-free).

    Parameters
    ----------
    n_fft : int
        STFT size at 16 kHz (scaled with the sample rate).
    similar_seconds : float
        Frames closer in time than this are not used as "similar" frames (so a sustained note
        does not explain itself away as accompaniment).
    margin : float
        Vocal mask margin: larger is more conservative (less accompaniment leaks into vocals).
    power : float
        Soft-mask exponent (``librosa.util.softmask``).
    block_seconds : float
        Length of the blocks the track is separated in.

    Example
    -------
    >>> sep = SoftMaskSeparator(margin=3.0)
    >>> float(sep.separate(np.zeros(16000, dtype="float32"), 16000).max())
    0.0
    """

    name = "softmask"

    def __init__(self, n_fft: int = 2048, similar_seconds: float = 0.5, margin: float = 3.0, power: float = 2.0,
                 block_seconds: float = 30.0):
        if n_fft < 64 or n_fft & (n_fft - 1):
            raise ParameterError(f"audio.separation.n_fft must be a power of two >= 64, got {n_fft}")
        if similar_seconds <= 0 or margin <= 0 or power <= 0:
            raise ParameterError("audio.separation.similar_seconds, margin and power must be positive, got "
                                 f"{similar_seconds}, {margin}, {power}")
        if block_seconds < 4 * similar_seconds:
            raise ParameterError(f"audio.separation.block_seconds ({block_seconds}) must be at least 4 x "
                                 f"similar_seconds ({similar_seconds}) to find repeating frames")
        self.n_fft = n_fft
        self.similar_seconds = similar_seconds
        self.margin = margin
        self.power = power
        self.block_seconds = block_seconds

    def separate(self, wave: np.ndarray, sr: int) -> np.ndarray:
        wave = np.asarray(wave, dtype=np.float32)
        if wave.ndim != 1:
            raise ParameterError(f"separate() takes a mono wave, got shape {wave.shape}")
        block = int(self.block_seconds * sr)
        n_blocks = max(1, int(np.ceil(len(wave) / block)))
        if n_blocks > 1 and len(wave) - (n_blocks - 1) * block < block // 2:
            n_blocks -= 1  # fold a short tail into the last block: it needs context to find repeats
        bounds = [i * block for i in range(n_blocks)] + [len(wave)]
        return np.concatenate([self._separate_block(wave[a:b], sr) for a, b in zip(bounds, bounds[1:])])

    def _separate_block(self, wave: np.ndarray, sr: int) -> np.ndarray:
        import librosa

        n_fft = max(64, int(2 ** round(np.log2(self.n_fft * sr / 16000))))
        hop = n_fft // 4
        if len(wave) < n_fft or not np.any(wave):
            return np.zeros_like(wave)
        spec = librosa.stft(wave, n_fft=n_fft, hop_length=hop)
        magnitude, phase = np.abs(spec), np.exp(1j * np.angle(spec))
        width = int(librosa.time_to_frames(self.similar_seconds, sr=sr, hop_length=hop))
        if magnitude.shape[1] <= 2 * width + 2:
            return np.zeros_like(wave)  # too short to find repetition: no vocal evidence
        repeating = librosa.decompose.nn_filter(magnitude, aggregate=np.median, metric="cosine", width=width)
        repeating = np.minimum(magnitude, repeating)
        mask = librosa.util.softmask(magnitude - repeating, self.margin * repeating, power=self.power)
        vocals = librosa.istft(mask * magnitude * phase, hop_length=hop, n_fft=n_fft, length=len(wave))
        return vocals.astype(np.float32)


def make_separator(backend: str = "softmask", **params) -> Separator:
    """The separator named ``backend`` (``audio.separation.backend``) built with ``params``.

    Example
    -------
    >>> make_separator("softmask").name
    'softmask'
    """
    if backend == "softmask":
        return SoftMaskSeparator(**params)
    if backend == "spleeter":  # one long-lived Spleeter process per Python worker and configuration
        from lid_spark.audio.spleeter_backend import shared_separator

        return shared_separator(**params)
    raise ParameterError(f"audio.separation.backend must be one of {', '.join(BACKENDS)}, got {backend!r}")


def separator_from_config(cfg) -> Separator:
    """The separator configured under ``audio.separation`` of a :class:`~lid_spark.config.Config`."""
    conf = cfg.audio.separation
    if conf.backend == "spleeter":
        return make_separator("spleeter", env_python=conf.spleeter_env, model_path=conf.spleeter_models,
                              params=conf.spleeter_params, timeout_s=conf.spleeter_timeout_s,
                              max_restarts=conf.spleeter_max_restarts)
    if conf.backend != "softmask":
        return make_separator(conf.backend)
    return make_separator("softmask", n_fft=conf.n_fft, similar_seconds=conf.similar_seconds,
                          margin=conf.margin, power=conf.power, block_seconds=conf.block_seconds)


def sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Signal-to-distortion ratio in dB: ``10 log10(|s|^2 / |s - s_hat|^2)`` (plain, not scale-invariant).

    Example
    -------
    >>> s = np.sin(np.arange(1000) / 10)
    >>> round(sdr(s, 0.9 * s), 1)
    20.0
    """
    reference, estimate = _pair(reference, estimate)
    error = np.sum((reference - estimate) ** 2)
    return float(10 * np.log10((np.sum(reference ** 2) + 1e-12) / (error + 1e-12)))


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant SDR in dB (Le Roux et al. 2019): the estimate's gain does not count.

    Example
    -------
    >>> s = np.sin(np.arange(1000) / 10)
    >>> si_sdr(s, 0.5 * s) > 100
    True
    """
    reference, estimate = _pair(reference, estimate)
    reference = reference - reference.mean()
    estimate = estimate - estimate.mean()
    alpha = np.dot(estimate, reference) / (np.dot(reference, reference) + 1e-12)
    target = alpha * reference
    return float(10 * np.log10((np.sum(target ** 2) + 1e-12) / (np.sum((target - estimate) ** 2) + 1e-12)))


def _pair(reference: np.ndarray, estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    reference = np.asarray(reference, dtype=np.float64)
    estimate = np.asarray(estimate, dtype=np.float64)
    if reference.shape != estimate.shape or reference.ndim != 1:
        raise ParameterError(f"reference and estimate must be 1-D of one length, got {reference.shape} "
                             f"and {estimate.shape}")
    return reference, estimate
