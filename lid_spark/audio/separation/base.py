"""What every separation backend is: a :class:`Separator`, its one fatal error, and the quality measures.

Example
-------
>>> import numpy as np
>>> s = np.sin(np.arange(1000) / 10)
>>> round(sdr(s, 0.9 * s), 1)
20.0
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from lid_spark.errors import ParameterError


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

    def separate_many(self, waves: list[np.ndarray], sr: int) -> list[np.ndarray | Exception]:
        """Vocals of each of ``waves``, or the exception that track raised (one bad track does not fail
        the others); :class:`SeparationUnavailable` is raised. Default: :meth:`separate` per track;
        backends that batch across tracks override it.
        """
        return [self._separate_or_error(wave, sr) for wave in waves]

    def _separate_or_error(self, wave: np.ndarray, sr: int) -> np.ndarray | Exception:
        try:
            return self.separate(wave, sr)
        except SeparationUnavailable:
            raise
        except Exception as e:  # noqa: BLE001 - this track's error (AudioError: its status; else failed)
            return e


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
