"""Small numpy signal helpers for the generator (no librosa import on the rendering path).

Example
-------
>>> import numpy as np
>>> sr = 16000
>>> t = np.arange(sr) / sr
>>> round(flat_f0(np.sin(2 * np.pi * 220 * t), sr))
220
>>> voice, backing = np.sin(2 * np.pi * 220 * t), 0.1 * np.sin(2 * np.pi * 110 * t)
>>> round(20 * float(np.log10(active_rms(voice * level_gain(voice, backing, 6.0)) / active_rms(backing))), 3)
6.0
"""

from __future__ import annotations

import numpy as np


def flat_f0(wave: np.ndarray, sample_rate: int, fmin: float = 50.0, fmax: float = 700.0, frame: int = 2048) -> float:
    """Median F0 (Hz) over the loudest frames of a signal with a steady pitch (autocorrelation).

    Returns nan when the signal is too short or silent.
    """
    hop = frame // 2
    if wave.size < frame:
        return float("nan")
    n_frames = 1 + (wave.size - frame) // hop
    frames = np.lib.stride_tricks.sliding_window_view(wave, frame)[::hop][:n_frames]
    energy = np.sqrt(np.mean(frames ** 2, axis=1))
    if energy.max() <= 0:
        return float("nan")
    frames = frames[energy > 0.5 * energy.max()] * np.hanning(frame)
    spectrum = np.fft.rfft(frames, n=2 * frame, axis=1)
    acf = np.fft.irfft(np.abs(spectrum) ** 2, axis=1)[:, :frame]
    acf /= acf[:, :1] + 1e-12
    lo, hi = int(sample_rate / fmax), min(frame - 1, int(sample_rate / fmin))
    estimates = []
    for row in acf:
        lag = lo + int(np.argmax(row[lo:hi]))
        # prefer the shortest lag that is nearly as periodic: avoids octave-down errors
        for divisor in (3, 2):
            short = int(round(lag / divisor))
            if short >= lo:
                window = row[max(lo, short - 2): short + 3]
                if window.max() > 0.9 * row[lag]:
                    lag = max(lo, short - 2) + int(np.argmax(window))
                    break
        # parabolic interpolation of the peak for sub-sample precision
        if 0 < lag < frame - 1:
            a, b, c = row[lag - 1], row[lag], row[lag + 1]
            denom = a - 2 * b + c
            lag = lag + (0.5 * (a - c) / denom if denom != 0 else 0.0)
        estimates.append(sample_rate / lag)
    return float(np.median(estimates))


def active_rms(wave: np.ndarray, floor: float = 1e-4) -> float:
    """RMS over the samples louder than ``floor`` (silences do not count); 0 when there are none."""
    active = wave[np.abs(wave) > floor]
    return float(np.sqrt(np.mean(active ** 2))) if active.size else 0.0


def level_gain(voice: np.ndarray, backing: np.ndarray, level_db: float) -> np.float32:
    """The gain putting ``voice`` ``level_db`` above ``backing`` (below when negative) by :func:`active_rms`."""
    return np.float32(active_rms(backing) / max(active_rms(voice), 1e-6) * 10 ** (level_db / 20))


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int = 40, fmin: float = 30.0,
                   fmax: float | None = None) -> np.ndarray:
    """Triangular mel filters, shape (n_mels, n_fft // 2 + 1) (HTK mel scale)."""
    fmax = fmax or sample_rate / 2
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731
    hz = lambda m: 700.0 * (10 ** (m / 2595.0) - 1.0)  # noqa: E731
    edges = hz(np.linspace(mel(fmin), mel(fmax), n_mels + 2))
    bins = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    return np.maximum(0.0, np.minimum((bins - lower) / (centre - lower), (upper - bins) / (upper - centre)))


def mfcc_stats(wave: np.ndarray, sample_rate: int, n_mfcc: int = 20, n_fft: int = 1024, hop: int = 512) -> np.ndarray:
    """Mean and standard deviation over time of MFCCs (log-mel, DCT-II): ``2 * n_mfcc`` floats."""
    from scipy.fft import dct

    if wave.size < n_fft:
        wave = np.pad(wave, (0, n_fft - wave.size))
    frames = np.lib.stride_tricks.sliding_window_view(wave, n_fft)[::hop] * np.hanning(n_fft)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    log_mel = np.log(power @ mel_filterbank(sample_rate, n_fft).T + 1e-10)
    cepstra = dct(log_mel, type=2, axis=1, norm="ortho")[:, :n_mfcc]
    return np.concatenate([cepstra.mean(axis=0), cepstra.std(axis=0)]).astype(np.float32)
