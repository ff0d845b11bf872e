"""Sung vocals from espeak-ng: monotone words re-pitched to melody notes, held vowels, vibrato.

Speech becomes singing in four cheap steps, all vectorised numpy:

1. espeak-ng speaks each word with intonation switched off (``pitch_range=0``), so its F0 is flat,
   at the espeak pitch setting closest to the note (a per-voice calibration maps setting -> Hz);
2. one resampling moves the flat F0 exactly onto the note (the residual shift is small, so the
   formants barely move);
3. the word's last strong vowel is held to the note's length by repeating a whole number of
   pitch periods (seamless because the F0 is flat and known) -- no PSOLA or phase vocoder;
4. the phrase gets vibrato (a slowly modulated read position) and note envelopes.

Example
-------
>>> voice = Voice("it", variant="m3", base_pitch=45, rate=130)
>>> wave, notes = sing_line(["ciao", "bella"], [60, 62], voice, beat=0.5, sample_rate=16000)
>>> [round(n.midi) for n in notes]
[60, 62]
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from lid_spark.errors import ParameterError
from lid_spark.tools.synth.dsp import flat_f0
from lid_spark.tools.synth.espeak import ESPEAK_SAMPLE_RATE, speak
from lid_spark.tools.voices import LEGACY_WORLD_VARIANTS, espeak_variants

# The classic espeak-ng voice variants (timbre presets), independent of language: the world's
# singers before ``synth.voices``; now every variant espeak-ng ships can sing (lid_spark.tools.voices).
VARIANTS = LEGACY_WORLD_VARIANTS
_CALIBRATION_PITCHES = (10, 50, 90)   # the extremes confuse F0 trackers (sub-50 Hz)


@dataclass(frozen=True)
class Voice:
    """A singer: espeak-ng language voice, variant, base pitch setting (0-100) and speed (wpm)."""

    language: str
    variant: str | None = None
    base_pitch: int = 50
    rate: int = 140
    vibrato_hz: float = 5.5
    vibrato_depth: float = 0.02   # peak frequency deviation as a fraction (0.02 ~ 34 cents)

    def __post_init__(self):
        if self.variant is not None and self.variant not in espeak_variants():
            raise ParameterError(f"voice variant must be one of espeak-ng's variants, got {self.variant!r}")
        if not 0 <= self.base_pitch <= 100:
            raise ParameterError(f"base_pitch must be 0..100, got {self.base_pitch}")


@dataclass(frozen=True)
class Note:
    """A sung note: onset and length in seconds, MIDI pitch, and the word sung on it."""

    start: float
    duration: float
    midi: float
    word: str


@functools.lru_cache(maxsize=256)
def pitch_calibration(language: str, variant: str | None) -> tuple[tuple[int, float], ...]:
    """(espeak pitch setting, F0 in Hz) pairs for a voice, measured once per process.

    espeak-ng's F0 grows roughly exponentially with the pitch setting, from a base that depends
    on the voice and variant; three points and a log-linear fit are enough.
    """
    from lid_spark.tools.synth.lexicon import vocabulary

    word = vocabulary(language)[0] if language else "la"
    points = []
    for p in _CALIBRATION_PITCHES:
        wave = speak(f"{word} {word}", language, rate=120, pitch=p, pitch_range=0, variant=variant,
                     sample_rate=ESPEAK_SAMPLE_RATE)
        points.append((p, flat_f0(wave, ESPEAK_SAMPLE_RATE)))
    # Some variants' F0 tracks badly at low settings (octave errors, e.g. "announcer", "david"):
    # keep the points whose F0 falls going down from the highest setting, at least the top two.
    kept = [points[-1]]
    for p, f0 in reversed(points[:-1]):
        if not f0 < kept[-1][1]:
            break
        kept.append((p, f0))
    return tuple(reversed(kept)) if len(kept) >= 2 else tuple(points[-2:])


def _log_f0_line(calibration) -> tuple[float, float]:
    """Slope and intercept of log F0 against the espeak pitch setting."""
    slope, intercept = np.polyfit([p for p, _ in calibration], np.log([f for _, f in calibration]), 1)
    return float(slope), float(intercept)


def _setting_for(f0_hz: float, calibration) -> tuple[int, float]:
    """The espeak pitch setting (0-100) whose F0 is closest to ``f0_hz``, and that F0."""
    slope, intercept = _log_f0_line(calibration)
    setting = int(np.clip(round((np.log(f0_hz) - intercept) / slope), 0, 100))
    return setting, float(np.exp(intercept + slope * setting))


def voice_range_hz(voice: Voice) -> tuple[float, float, float]:
    """(lowest, base, highest) F0 the voice reaches without formant-shifting resampling."""
    slope, intercept = _log_f0_line(pitch_calibration(voice.language, voice.variant))
    return tuple(float(np.exp(intercept + slope * p)) for p in (0, voice.base_pitch, 100))


def _trim(wave: np.ndarray, threshold: float = 0.01) -> np.ndarray:
    loud = np.flatnonzero(np.abs(wave) > threshold)
    return wave[loud[0]: loud[-1] + 1] if loud.size else wave[:0]


def pitched_word(word: str, midi: float, voice: Voice, sample_rate: int) -> np.ndarray:
    """``word`` spoken by ``voice`` on a flat F0 equal to the note ``midi``, at ``sample_rate``."""
    import soxr

    target = 440.0 * 2.0 ** ((midi - 69.0) / 12.0)
    setting, setting_f0 = _setting_for(target, pitch_calibration(voice.language, voice.variant))
    wave = _trim(speak(word, voice.language, rate=voice.rate, pitch=setting, pitch_range=0,
                       variant=voice.variant, sample_rate=ESPEAK_SAMPLE_RATE))
    if wave.size == 0:
        return wave
    ratio = target / setting_f0   # > 1: shorten and raise
    return soxr.resample(wave, ESPEAK_SAMPLE_RATE, sample_rate / ratio, quality="MQ").astype(np.float32)


def sustain(wave: np.ndarray, n_samples: int, f0_hz: float, sample_rate: int) -> np.ndarray:
    """Lengthen ``wave`` to ``n_samples`` by repeating whole pitch periods of its last strong vowel.

    Returns exactly ``n_samples`` samples (a longer input is cut with a short fade-out).
    """
    if wave.size >= n_samples or wave.size == 0:
        out = np.zeros(n_samples, dtype=np.float32)
        out[: min(n_samples, wave.size)] = wave[:n_samples]
        return _fade(out, sample_rate)
    frame = max(1, int(0.01 * sample_rate))
    n_frames = wave.size // frame
    if n_frames < 3:
        out = np.zeros(n_samples, dtype=np.float32)
        out[: wave.size] = wave
        return out
    energy = np.sqrt(np.mean(wave[: n_frames * frame].reshape(n_frames, frame) ** 2, axis=1))
    strong = np.flatnonzero(energy > 0.35 * energy.max())
    loop_end = int(strong[-1]) * frame              # start of the last strong frame: inside the vowel
    period = sample_rate / f0_hz
    loop_len = int(round(max(1, round(0.025 * sample_rate / period)) * period))
    loop_start = max(0, loop_end - loop_len)
    loop = wave[loop_start:loop_end]
    if loop.size < 4:
        out = np.zeros(n_samples, dtype=np.float32)
        out[: wave.size] = wave
        return out
    repeats = int(np.ceil((n_samples - wave.size) / loop.size))
    held = np.concatenate([wave[:loop_end], np.tile(loop, repeats), wave[loop_end:]])
    return _fade(held[:n_samples].astype(np.float32), sample_rate)


def _fade(wave: np.ndarray, sample_rate: int, seconds: float = 0.02) -> np.ndarray:
    n = min(wave.size, int(seconds * sample_rate))
    if n:
        wave[-n:] *= np.linspace(1.0, 0.0, n, dtype=np.float32)
    return wave


def vibrato(wave: np.ndarray, sample_rate: int, rate_hz: float, depth: float, onsets: np.ndarray,
            delay_s: float = 0.25) -> np.ndarray:
    """Frequency vibrato by a sinusoidally modulated read position, fading in ``delay_s`` after each onset.

    ``depth`` is the peak relative frequency deviation; the read position drifts by at most
    ``depth * sample_rate / (2 pi rate_hz)`` samples, so timing is preserved.
    """
    n = wave.size
    t = np.arange(n) / sample_rate
    since_onset = t - onsets[np.clip(np.searchsorted(onsets, t, side="right") - 1, 0, None)] if onsets.size else t
    ramp = np.clip((since_onset - delay_s) / 0.3, 0.0, 1.0)
    # instantaneous speed 1 + depth*ramp*cos(...): integrate to a read position
    speed = 1.0 + depth * ramp * np.cos(2 * np.pi * rate_hz * t)
    position = np.cumsum(speed) - speed[0]
    return np.interp(position, np.arange(n), wave, right=0.0).astype(np.float32)


def sing_line(words: list[str], midis: list[int], voice: Voice, beat: float, sample_rate: int,
              hold_last_beats: float = 2.0) -> tuple[np.ndarray, list[Note]]:
    """Sing ``words`` on ``midis`` (one note per word), each note a whole number of half-beats.

    Parameters
    ----------
    words, midis : list
        Equal-length lists: the lyric line and its melody.
    voice : Voice
    beat : float
        Seconds per beat (60 / tempo).
    sample_rate : int
    hold_last_beats : float
        Extra beats the line's final note is held for.

    Returns
    -------
    wave : numpy.ndarray (float32)
    notes : list of Note, times relative to the start of the line.
    """
    if len(words) != len(midis):
        raise ParameterError(f"sing_line needs one note per word, got {len(words)} words and {len(midis)} notes")
    half = beat / 2
    pieces, notes, t = [], [], 0.0
    for i, (word, midi) in enumerate(zip(words, midis)):
        wave = pitched_word(word, midi, voice, sample_rate)
        natural = wave.size / sample_rate + 0.05
        length = max(1, int(np.ceil(natural / half))) * half
        if i == len(words) - 1:
            length += hold_last_beats * beat
        n = int(round(length * sample_rate))
        pieces.append(sustain(wave, n, 440.0 * 2.0 ** ((midi - 69.0) / 12.0), sample_rate))
        notes.append(Note(t, length, float(midi), word))
        t += length
    line = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
    onsets = np.array([n.start for n in notes])
    return vibrato(line, sample_rate, voice.vibrato_hz, voice.vibrato_depth, onsets), notes
