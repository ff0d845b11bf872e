"""Augmentation of training utterances: random crops, reverberation, filtering, noise, gain, music.

VoxLingua107's YouTube speech is often over music, and the vocals the embedded model embeds come
out of a separator: :func:`over_music` lays an utterance over synthetic accompaniment
(:mod:`lid_spark.tools.synth.music`) and optionally returns the separator's vocal estimate.

Example
-------
>>> import numpy as np
>>> wave = np.sin(2 * np.pi * 220 * np.arange(SAMPLE_RATE) / SAMPLE_RATE)
>>> out = augment(wave, np.random.default_rng(0))
>>> out.shape, out.dtype, bool(np.max(np.abs(out)) <= 0.95)
((16000,), dtype('float32'), True)
>>> random_crop(wave, np.random.default_rng(0), 0.5).size
8000
"""

from __future__ import annotations

import numpy as np

from lid_spark.tools.pretrain_spoken_lid.settings import SAMPLE_RATE
from lid_spark.tools.synth.dsp import level_gain
from lid_spark.tools.synth.music import GENRES, accompaniment, plan_song

# Voice over music at this level (voice RMS over accompaniment RMS, dB): a little wider than the
# synthetic catalog's default vocal levels, so the model is not fitted to exactly those.
MUSIC_VOICE_LEVEL_DB = (-9.0, 9.0)


def random_crop(wave: np.ndarray, rng: np.random.Generator, seconds: float) -> np.ndarray:
    """A random ``seconds``-long excerpt of ``wave`` (the whole of it when shorter)."""
    length = int(seconds * SAMPLE_RATE)
    if wave.size <= length:
        return wave
    start = int(rng.integers(0, wave.size - length + 1))
    return wave[start:start + length]


def _reverberate(wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Convolution with a random exponentially decaying noise impulse (a small to mid-sized room)."""
    from scipy.signal import fftconvolve

    decay_s = rng.uniform(0.08, 0.5)
    n = int(decay_s * SAMPLE_RATE)
    impulse = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / n)  # -60 dB at decay_s
    impulse[0] = 1.0 / rng.uniform(0.3, 1.0)  # direct path
    wet = fftconvolve(wave, impulse)[: wave.size]
    return wet / (np.max(np.abs(wet)) + 1e-9) * np.max(np.abs(wave))


def _band_filter(wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random low-pass (2.5-7 kHz) or high-pass (80-400 Hz) Butterworth filter."""
    from scipy.signal import butter, sosfilt

    if rng.random() < 0.5:
        sos = butter(4, rng.uniform(2500, 7000), btype="lowpass", fs=SAMPLE_RATE, output="sos")
    else:
        sos = butter(2, rng.uniform(80, 400), btype="highpass", fs=SAMPLE_RATE, output="sos")
    return sosfilt(sos, wave)


def _add_noise(wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """White or pink-ish noise at 5-30 dB SNR."""
    noise = rng.standard_normal(wave.size)
    if rng.random() < 0.5:  # pink-ish: 1/sqrt(f) amplitude
        spectrum = np.fft.rfft(noise)
        spectrum /= np.sqrt(np.maximum(np.arange(spectrum.size), 1))
        noise = np.fft.irfft(spectrum, n=wave.size)
    snr_db = rng.uniform(5, 30)
    power = np.mean(wave ** 2) + 1e-12
    noise *= np.sqrt(power / (np.mean(noise ** 2) + 1e-12) / 10 ** (snr_db / 10))
    return wave + noise


def augment(wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random reverberation, band filtering, additive noise (5-30 dB SNR) and gain.

    Parameters
    ----------
    wave : np.ndarray
        Mono 16 kHz samples.
    rng : np.random.Generator

    Returns
    -------
    np.ndarray
        float32, same length.
    """
    out = np.asarray(wave, dtype=np.float64)
    if rng.random() < 0.4:
        out = _reverberate(out, rng)
    if rng.random() < 0.5:
        out = _band_filter(out, rng)
    if rng.random() < 0.7:
        out = _add_noise(out, rng)
    out = out / (np.max(np.abs(out)) + 1e-9) * rng.uniform(0.05, 0.95)
    return out.astype(np.float32)


def music_bed(rng: np.random.Generator, n_samples: int) -> np.ndarray:
    """``n_samples`` of synthetic accompaniment in a random genre, drawn independently of any language."""
    genre = GENRES[sorted(GENRES)[int(rng.integers(len(GENRES)))]]
    song = plan_song(genre, rng, n_samples / SAMPLE_RATE + 0.01)
    return accompaniment(song, genre, rng, SAMPLE_RATE)[:n_samples]


def over_music(wave: np.ndarray, rng: np.random.Generator, separator=None) -> np.ndarray:
    """``wave`` laid over a :func:`music_bed` at a voice level drawn from ``MUSIC_VOICE_LEVEL_DB``.

    With a ``separator`` (:class:`lid_spark.audio.separation.Separator`), its vocal estimate of the
    mix is returned instead: the accompaniment residue and masking artefacts that the pipeline's
    separated vocals carry.
    """
    wave = np.asarray(wave, dtype=np.float32)
    bed = music_bed(rng, wave.size)
    mix = wave * level_gain(wave, bed, rng.uniform(*MUSIC_VOICE_LEVEL_DB)) + bed
    mix = (mix / (np.max(np.abs(mix)) + 1e-9) * 0.9).astype(np.float32)
    return mix if separator is None else separator.separate(mix, SAMPLE_RATE)
