"""Augmentation of training utterances: the speaker-robust set of spoken language ID, and music.

Two groups, each switched on by name in ``pretrain_spoken_lid.augmentations``:

- on the *voice*, before it is laid over music (:func:`voice_augment`): ``formant`` (vocal tract
  length perturbation: the spectral envelope warped by 0.85-1.18 with the harmonics kept, so the
  formants move and the pitch does not), ``pitch`` (+-4 semitones, formants moving along, as a
  phase-vocoder pitch shift does), ``tempo`` (0.8-1.25x, pitch kept);
- on the *recording*, after the music (:func:`augment`): ``reverb`` (room impulse of 0.08-0.8 s
  decay), ``band`` (low-pass 2.5-7 kHz, high-pass 80-400 Hz, or a 300-3400 Hz telephone band),
  ``noise`` (white or pink, 5-30 dB SNR), ``codec`` (MP3 or Ogg Vorbis at a low bitrate through
  libsndfile, or 8-bit mu-law), then a random gain.

``specaugment`` (time and frequency masks on the features) is applied by the training loop.
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
>>> warped = formant_shift(wave, 1.1)
>>> warped.shape == wave.shape
True
>>> random_crop(wave, np.random.default_rng(0), 0.5).size
8000
"""

from __future__ import annotations

import numpy as np

from lid_spark.tools.pretrain_spoken_lid.settings import SAMPLE_RATE
from lid_spark.tools.synth.dsp import level_gain
from lid_spark.tools.synth.music import GENRES, accompaniment, plan_song

# What ``pretrain_spoken_lid.augmentations`` may name (all on by default).
VOICE_AUGMENTATIONS = ("formant", "pitch", "tempo")
RECORDING_AUGMENTATIONS = ("reverb", "band", "noise", "codec")
AUGMENTATIONS = VOICE_AUGMENTATIONS + RECORDING_AUGMENTATIONS + ("specaugment",)
# The first embedded models' set (before formant, pitch, tempo and codec).
LEGACY_AUGMENTATIONS = ("reverb", "band", "noise", "specaugment")
FORMANT_WARP = (0.85, 1.18)
PITCH_SEMITONES = 4.0
TEMPO = (0.8, 1.25)

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
    """Convolution with a random exponentially decaying noise impulse (a small room to a hall)."""
    from scipy.signal import fftconvolve

    decay_s = rng.uniform(0.08, 0.8)
    n = int(decay_s * SAMPLE_RATE)
    impulse = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / n)  # -60 dB at decay_s
    impulse[0] = 1.0 / rng.uniform(0.3, 1.0)  # direct path
    wet = fftconvolve(wave, impulse)[: wave.size]
    return wet / (np.max(np.abs(wet)) + 1e-9) * np.max(np.abs(wave))


def _band_filter(wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random low-pass (2.5-7 kHz), high-pass (80-400 Hz) or telephone band-pass (300-3400 Hz) filter."""
    from scipy.signal import butter, sosfilt

    u = rng.random()
    if u < 0.4:
        sos = butter(4, rng.uniform(2500, 7000), btype="lowpass", fs=SAMPLE_RATE, output="sos")
    elif u < 0.8:
        sos = butter(2, rng.uniform(80, 400), btype="highpass", fs=SAMPLE_RATE, output="sos")
    else:
        sos = butter(4, (rng.uniform(250, 400), rng.uniform(3000, 3600)), btype="bandpass", fs=SAMPLE_RATE,
                     output="sos")
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


def lossy_codec(wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``wave`` through a lossy codec and back: MP3 or Ogg Vorbis at a low bitrate (libsndfile's
    encoders, compression level 0.6-1.0), or 8-bit mu-law (telephony)."""
    import io

    import soundfile as sf

    peak = np.max(np.abs(wave)) + 1e-9
    x = (wave / peak * 0.9).astype(np.float32)
    u = rng.random()
    if u < 0.25:   # 8-bit mu-law companding, as G.711
        mu = 255.0
        coded = np.round(np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu) * 127) / 127
        out = np.sign(coded) * np.expm1(np.abs(coded) * np.log1p(mu)) / mu
    else:
        fmt, subtype = ("MP3", "MPEG_LAYER_III") if u < 0.65 else ("OGG", "VORBIS")
        buffer = io.BytesIO()
        sf.write(buffer, x, SAMPLE_RATE, format=fmt, subtype=subtype, compression_level=float(rng.uniform(0.6, 1.0)))
        buffer.seek(0)
        decoded, _ = sf.read(buffer, dtype="float32")
        out = np.zeros_like(x)
        out[: min(x.size, decoded.size)] = decoded[: x.size]
    return (out * peak / 0.9).astype(wave.dtype if wave.dtype.kind == "f" else np.float32)


def formant_shift(wave: np.ndarray, warp: float, n_fft: int = 1024) -> np.ndarray:
    """Vocal tract length perturbation that keeps the pitch: each STFT frame's spectral envelope
    (its low-quefrency cepstrum) is read at ``frequency / warp``, so the formants move by ``warp``
    (> 1: a shorter vocal tract), and the harmonic fine structure stays where it was."""
    import librosa

    hop = n_fft // 4
    spec = librosa.stft(np.asarray(wave, dtype=np.float32), n_fft=n_fft, hop_length=hop)
    log_mag = np.log(np.abs(spec) + 1e-7)
    cepstrum = np.fft.irfft(log_mag, axis=0)
    lifter = 30   # quefrency bins kept: 1.9 ms at 16 kHz, below the pitch period of voices under 500 Hz
    cepstrum[lifter:-lifter] = 0.0
    envelope = np.fft.rfft(cepstrum, axis=0).real[: log_mag.shape[0]]
    bins = np.arange(log_mag.shape[0], dtype=np.float64)
    source = np.clip(bins / warp, 0, bins[-1])
    warped = np.stack([np.interp(source, bins, column) for column in envelope.T], axis=1)
    out = librosa.istft(spec * np.exp(warped - envelope), hop_length=hop, length=len(wave))
    return out.astype(np.float32)


def voice_augment(wave: np.ndarray, rng: np.random.Generator,
                  augmentations=VOICE_AUGMENTATIONS) -> np.ndarray:
    """The voice-level augmentations named in ``augmentations`` (formant, pitch, tempo), each with
    probability 0.5: what makes the voice another speaker's. Tempo changes the length."""
    import librosa

    out = np.asarray(wave, dtype=np.float32)
    if "formant" in augmentations and rng.random() < 0.5:
        out = formant_shift(out, float(np.exp(rng.uniform(*np.log(FORMANT_WARP)))))
    if "pitch" in augmentations and rng.random() < 0.5:
        out = librosa.effects.pitch_shift(out, sr=SAMPLE_RATE, n_steps=float(rng.uniform(-1, 1) * PITCH_SEMITONES))
    if "tempo" in augmentations and rng.random() < 0.5:
        out = librosa.effects.time_stretch(out, rate=float(np.exp(rng.uniform(*np.log(TEMPO)))))
    return out.astype(np.float32)


def augment(wave: np.ndarray, rng: np.random.Generator, augmentations=RECORDING_AUGMENTATIONS) -> np.ndarray:
    """The recording-level augmentations named in ``augmentations``, then a random gain.

    Reverberation (p 0.4), band filtering (p 0.5), additive noise at 5-30 dB SNR (p 0.7), a lossy
    codec (p 0.4).

    Parameters
    ----------
    wave : np.ndarray
        Mono 16 kHz samples.
    rng : np.random.Generator
    augmentations : collection of str
        Names from :data:`RECORDING_AUGMENTATIONS`.

    Returns
    -------
    np.ndarray
        float32, same length.
    """
    out = np.asarray(wave, dtype=np.float64)
    # the first three decisions are drawn whether they are on or not, and the codec's only when it
    # is on: with the legacy set the draws are those of the first embedded models
    if rng.random() < 0.4 and "reverb" in augmentations:
        out = _reverberate(out, rng)
    if rng.random() < 0.5 and "band" in augmentations:
        out = _band_filter(out, rng)
    if rng.random() < 0.7 and "noise" in augmentations:
        out = _add_noise(out, rng)
    if "codec" in augmentations and rng.random() < 0.4:
        out = lossy_codec(out, rng)
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
