"""Accompaniment and melody: genres, keys, chord progressions, drums, bass and chords in numpy.

Everything is additive synthesis over numpy arrays (no per-sample Python loop), so a 12 s
accompaniment takes a few milliseconds. A :class:`Genre` fixes the timbre (drum kit, bass and
chord waveforms, brightness), the rhythm (tempo range, drum pattern, swing) and the scale; the
song draws its key, tempo and progression from it.

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> song = plan_song(GENRES["pop"], rng, seconds=4.0)
>>> accompaniment(song, GENRES["pop"], rng, sample_rate=16000).shape
(64000,)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lid_spark.errors import ParameterError

# Scale intervals in semitones from the tonic.
SCALES = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "bhairav": (0, 1, 4, 5, 7, 8, 11),     # a raga-like scale (flat 2nd and 6th)
    "pentatonic": (0, 2, 4, 7, 9),
    "in_sen": (0, 1, 5, 7, 10),           # Japanese in scale
}
# Chord progressions as scale degrees (0-based) of triads.
PROGRESSIONS = ((0, 4, 5, 3), (0, 5, 3, 4), (0, 3, 4, 4), (5, 3, 0, 4), (0, 3, 0, 4), (0, 0, 3, 4))


@dataclass(frozen=True)
class Genre:
    """Timbre, rhythm and harmony of a genre.

    Patterns are 16 steps per bar (sixteenth notes); 1 = hit. ``bass`` and ``chords`` name
    waveforms (``sine``, ``saw``, ``square``, ``pluck``, ``organ``, ``pad``); ``brightness`` (0-1)
    scales the harmonic roll-off; ``drone`` adds a sustained tonic+fifth (tanpura-like).
    """

    name: str
    tempo: tuple[float, float]
    scales: tuple[str, ...]
    kick: tuple[int, ...]
    snare: tuple[int, ...]
    hat: tuple[int, ...]
    bass: str
    chords: str
    brightness: float
    swing: float = 0.0
    drone: bool = False
    drum_level: float = 1.0
    kick_pitch: float = 55.0
    snare_tone: float = 190.0
    hat_decay: float = 0.03


def _p(steps: str) -> tuple[int, ...]:
    return tuple(1 if c == "x" else 0 for c in steps)


GENRES: dict[str, Genre] = {g.name: g for g in (
    Genre("pop", (96, 124), ("major", "minor"), _p("x.......x.......") , _p("....x.......x..."),
          _p("x.x.x.x.x.x.x.x."), "saw", "pluck", 0.6),
    Genre("rock", (110, 150), ("minor", "mixolydian"), _p("x.....x.x......."), _p("....x.......x..."),
          _p("x.x.x.x.x.x.x.x."), "square", "saw", 0.9, drum_level=1.3, snare_tone=220.0),
    Genre("electronic", (120, 132), ("minor", "dorian"), _p("x...x...x...x..."), _p("....x.......x..."),
          _p("..x...x...x...x."), "saw", "pad", 0.8, kick_pitch=48.0, hat_decay=0.015),
    Genre("hiphop", (80, 98), ("minor", "dorian"), _p("x.....x...x....."), _p("....x.......x..."),
          _p("x.xxx.x.x.xxx.x."), "sine", "organ", 0.4, swing=0.2, drum_level=1.4, kick_pitch=45.0),
    Genre("folk", (84, 112), ("major", "mixolydian", "pentatonic"), _p("x.......x......."), _p("................"),
          _p("x...x...x...x..."), "sine", "pluck", 0.5, drum_level=0.5),
    Genre("ballad", (64, 84), ("major", "minor"), _p("x.........x....."), _p("........x......."),
          _p("x...x...x...x..."), "sine", "pad", 0.3, drum_level=0.6),
    Genre("latin", (96, 120), ("minor", "harmonic_minor"), _p("x..x..x.x..x..x."), _p("...x..x....x..x."),
          _p("xxxxxxxxxxxxxxxx"), "square", "pluck", 0.7, snare_tone=330.0, hat_decay=0.02),
    Genre("filmi", (88, 116), ("bhairav", "harmonic_minor"), _p("x..x..x...x..x.."), _p("..x...x...x...x."),
          _p("x.x.x.x.x.x.x.x."), "sine", "organ", 0.6, drone=True, snare_tone=420.0, kick_pitch=70.0),
    Genre("jpop", (120, 150), ("major", "in_sen", "pentatonic"), _p("x.......x.x....."), _p("....x.......x..."),
          _p("xxxxxxxxxxxxxxxx"), "saw", "pad", 0.85, hat_decay=0.015),
)}


@dataclass(frozen=True)
class SongPlan:
    """Key, tempo and harmony of one song (all in musical units; times in seconds)."""

    tonic_midi: int
    scale: tuple[int, ...]
    tempo: float
    progression: tuple[int, ...]
    seconds: float

    @property
    def beat(self) -> float:
        return 60.0 / self.tempo

    @property
    def bar(self) -> float:
        return 4 * self.beat

    def chord_at(self, t: float) -> int:
        """Scale degree of the chord root sounding at time ``t``."""
        return self.progression[int(t // self.bar) % len(self.progression)]

    def degree_midi(self, degree: int, octave: int = 0) -> int:
        """MIDI note of a (possibly negative or > 7) scale degree relative to the tonic."""
        n = len(self.scale)
        return self.tonic_midi + 12 * (octave + degree // n) + self.scale[degree % n]


@dataclass(frozen=True)
class MasteringStyle:
    """How a market's records are produced and mastered, applied to every stem alike.

    ``tilt`` in [-1, 1] scales what lies above ~1 kHz by ``1 + tilt`` (dark .. bright);
    ``boosts`` are (centre Hz, gain) resonant EQ boosts (a scene's signature instruments and
    studio sound); ``echo`` (0-1) is the level of one echo ``echo_seconds`` later. All linear,
    so mastered stems still sum to the mastered mix.
    """

    tilt: float = 0.0
    boosts: tuple[tuple[float, float], ...] = ()
    echo: float = 0.0
    echo_seconds: float = 0.2

    def apply(self, wave: np.ndarray, sample_rate: int) -> np.ndarray:
        from scipy.signal import iirpeak, lfilter

        a = float(np.exp(-2 * np.pi * 1000.0 / sample_rate))
        low = lfilter([1 - a], [1, -a], wave)
        out = low + (1.0 + self.tilt) * (wave - low)
        for centre, gain in self.boosts:
            if 0 < centre < 0.45 * sample_rate and gain:
                b, a_coef = iirpeak(centre, Q=2.0, fs=sample_rate)
                out = out + gain * lfilter(b, a_coef, out)
        delay = int(self.echo_seconds * sample_rate)
        if self.echo > 0 and 0 < delay < out.size:
            out[delay:] += self.echo * out[:-delay].copy()
        return out.astype(np.float32)


def get_genre(name: str) -> Genre:
    try:
        return GENRES[name]
    except KeyError:
        raise ParameterError(f"unknown genre {name!r}; known genres: {sorted(GENRES)}") from None


def midi_to_hz(midi: float | np.ndarray) -> float | np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=float) - 69.0) / 12.0)


def plan_song(genre: Genre, rng: np.random.Generator, seconds: float, tonic_midi: int | None = None,
              scale_name: str | None = None) -> SongPlan:
    """Draw key, scale, tempo and progression for a song of ``genre``.

    Parameters
    ----------
    genre : Genre
    rng : numpy.random.Generator
        The song's own generator (its draws are the song's identity).
    seconds : float
        Song length.
    tonic_midi : int, optional
        Key centre; by default drawn in C3..B3 (the singer's octave is set by the melody).
    scale_name : str, optional
        A key of SCALES instead of one of the genre's scales.
    """
    genre_scale = genre.scales[int(rng.integers(len(genre.scales)))]
    scale_name = scale_name or genre_scale
    tempo = float(rng.uniform(*genre.tempo))
    tonic = int(rng.integers(48, 60)) if tonic_midi is None else int(tonic_midi)
    progression = PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))]
    return SongPlan(tonic, SCALES[scale_name], tempo, progression, float(seconds))


# --- instruments -------------------------------------------------------------------------------

_TABLE = 4096


def _tone(freq: float, n: int, sample_rate: int, wave: str, brightness: float, rng: np.random.Generator) -> np.ndarray:
    """One note of ``n`` samples: a band-limited additive waveform with an amplitude envelope."""
    t = np.arange(n) / sample_rate
    nyquist = sample_rate / 2
    if wave == "organ":
        partials = [(1, 1.0), (2, 0.5), (3, 0.3), (4, 0.2), (6, 0.1)]
    elif wave == "sine":
        partials = [(1, 1.0), (2, 0.15 * brightness)]
    elif wave == "square":
        partials = [(k, 1.0 / k) for k in range(1, 16, 2)]
    else:  # saw, pad, pluck: sawtooth spectrum
        partials = [(k, 1.0 / k) for k in range(1, 16)]
    # One period as a wavetable (partials below Nyquist, brightness roll-off), read at the note's frequency.
    grid = np.arange(_TABLE) / _TABLE
    table = np.zeros(_TABLE)
    for k, amp in partials:
        if freq * k >= nyquist * 0.9:
            break
        table += amp * np.exp(-(k - 1) * (1.2 - brightness)) * np.sin(2 * np.pi * k * grid)
    out = np.zeros(n)
    for d in ((1.0, 1.006) if wave == "pad" else (1.0,)):
        phase = (freq * d * t + rng.uniform()) % 1.0
        out += table[(phase * _TABLE).astype(np.int64)]
    if wave == "pluck":
        env = np.exp(-t * 6.0)
    elif wave == "pad":
        env = np.minimum(1.0, t / 0.15) * np.minimum(1.0, (n / sample_rate - t) / 0.1 + 0.05)
    else:
        env = np.minimum(1.0, t / 0.01) * np.exp(-t * 1.5)
    out *= env
    fade = min(n, int(0.005 * sample_rate))
    if fade:
        out[-fade:] *= np.linspace(1, 0, fade)
    return out / (np.max(np.abs(out)) + 1e-9)


def _kick(n: int, sample_rate: int, pitch: float) -> np.ndarray:
    t = np.arange(n) / sample_rate
    freq = pitch + 90 * np.exp(-t * 40)           # pitch sweep down: the "thump"
    phase = 2 * np.pi * np.cumsum(freq) / sample_rate
    return np.sin(phase) * np.exp(-t * 14)


def _snare(n: int, sample_rate: int, tone: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / sample_rate
    noise = rng.standard_normal(n) * np.exp(-t * 22)
    return 0.6 * noise + 0.5 * np.sin(2 * np.pi * tone * t) * np.exp(-t * 30)


def _hat(n: int, sample_rate: int, decay: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / sample_rate
    noise = rng.standard_normal(n)
    noise = np.diff(noise, prepend=0.0)           # first difference: a crude high-pass
    return 0.25 * noise * np.exp(-t / decay)


def _place(track: np.ndarray, sound: np.ndarray, start: int, gain: float) -> None:
    if start >= track.size:
        return
    end = min(track.size, start + sound.size)
    track[start:end] += gain * sound[: end - start]


def accompaniment(song: SongPlan, genre: Genre, rng: np.random.Generator, sample_rate: int,
                  lead_notes: list[tuple[float, float, float]] | None = None) -> np.ndarray:
    """Drums, bass, chords (and an optional lead line) for the whole song, peak-normalised.

    Parameters
    ----------
    song : SongPlan
    genre : Genre
    rng : numpy.random.Generator
    sample_rate : int
    lead_notes : list of (start_s, duration_s, midi), optional
        An instrumental melody (intros, instrumental tracks).

    Returns
    -------
    numpy.ndarray, float32, ``round(song.seconds * sample_rate)`` samples.
    """
    n = int(round(song.seconds * sample_rate))
    tones: dict[tuple, np.ndarray] = {}   # chords and bass repeat: synthesize each distinct note once

    def tone(midi: float, length: int, wave: str) -> np.ndarray:
        key = (midi, length, wave)
        if key not in tones:
            tones[key] = _tone(midi_to_hz(midi), length, sample_rate, wave, genre.brightness, rng)
        return tones[key]

    drums = np.zeros(n)
    bass = np.zeros(n)
    chords = np.zeros(n)
    step = song.beat / 4
    kick = _kick(int(0.35 * sample_rate), sample_rate, genre.kick_pitch)
    snare = _snare(int(0.25 * sample_rate), sample_rate, genre.snare_tone, rng)
    hat = _hat(int(0.12 * sample_rate), sample_rate, genre.hat_decay, rng)
    n_steps = int(song.seconds / step) + 1
    for i in range(n_steps):
        s = i % 16
        t = i * step + (genre.swing * step if i % 2 else 0.0)
        start = int(t * sample_rate)
        accent = 1.0 if s % 4 == 0 else 0.8
        if genre.kick[s]:
            _place(drums, kick, start, accent)
        if genre.snare[s]:
            _place(drums, snare, start, 0.8 * accent)
        if genre.hat[s]:
            _place(drums, hat, start, accent * rng.uniform(0.7, 1.0))
    # Bass: chord root on each beat (octave below the tonic); chords: a triad per bar.
    n_beats = int(song.seconds / song.beat) + 1
    for b in range(n_beats):
        t = b * song.beat
        root = song.chord_at(t)
        midi = song.degree_midi(root, octave=-1)
        length = int(song.beat * sample_rate * (0.9 if genre.bass != "sine" else 1.0))
        _place(bass, tone(midi, length, genre.bass),
               int(t * sample_rate), 0.9 if b % 4 == 0 else 0.7)
    n_bars = int(song.seconds / song.bar) + 1
    for bar in range(n_bars):
        t = bar * song.bar
        root = song.chord_at(t)
        length = int(song.bar * sample_rate)
        strums = 4 if genre.chords == "pluck" else 1
        for k in range(strums):
            seg = length // strums
            for d in (0, 2, 4):
                midi = song.degree_midi(root + d)
                _place(chords, tone(midi, seg, genre.chords),
                       int(t * sample_rate) + k * seg, 0.35)
    mix = genre.drum_level * 0.5 * drums + 0.6 * bass + 0.5 * chords
    if genre.drone:
        t = np.arange(n) / sample_rate
        f = midi_to_hz(song.tonic_midi - 12)
        mix += 0.15 * (np.sin(2 * np.pi * f * t) + 0.6 * np.sin(2 * np.pi * 1.5 * f * t)
                       + 0.3 * np.sin(2 * np.pi * 2 * f * t))
    if lead_notes:
        lead = np.zeros(n)
        for start_s, dur_s, midi in lead_notes:
            m = int(dur_s * sample_rate)
            if m > 0:
                _place(lead, tone(midi, m, "square" if genre.brightness > 0.6 else "organ"),
                       int(start_s * sample_rate), 0.4)
        mix += lead
    return (mix / (np.max(np.abs(mix)) + 1e-9)).astype(np.float32)


def melody(song: SongPlan, rng: np.random.Generator, n_notes: int, register: int = 0) -> list[int]:
    """A stepwise melody of ``n_notes`` MIDI notes in the song's scale, leaning on chord tones.

    ``register`` shifts it by octaves (female voices sing an octave up, for instance).
    """
    n = len(song.scale)
    degree = int(rng.choice([0, 2, 4])) + n     # start on a chord tone, one octave above the tonic
    notes = []
    for _ in range(n_notes):
        degree += int(rng.choice([-2, -1, -1, 0, 1, 1, 2, 3, -3]))
        degree = int(np.clip(degree, n - 2, 2 * n + 2))
        notes.append(song.degree_midi(degree, octave=register))
    return notes
