"""One utterance of a language at 16 kHz: an espeak-ng sentence of CLDR words, spoken or chanted.

The words come from :func:`lid_spark.tools.synth.lexicon.vocabulary` and the voice from
:func:`lid_spark.tools.synth.espeak.speak`. Chanting here is not the catalog's singing
(:func:`lid_spark.tools.synth.singing.sing_line`: calibrated MIDI pitch, pitch-period loops,
vibrato): each word is held on a note by a phase-vocoder stretch to a free length, which is what
the embedded model was trained and evaluated on (docs/spoken_lid.md).

Example
-------
>>> import numpy as np
>>> wave = speak_utterance("fr", np.random.default_rng(0), HELD_OUT, min_seconds=1.0)
>>> wave.dtype, wave.size >= SAMPLE_RATE
(dtype('float32'), True)
"""

from __future__ import annotations

import numpy as np

from lid_spark.tools.pretrain_spoken_lid.settings import SAMPLE_RATE
from lid_spark.tools.synth.espeak import speak
from lid_spark.tools.synth.lexicon import vocabulary
from lid_spark.tools.synth.music import SCALES
from lid_spark.tools.voices import VoiceSplit, voice_split

# Training voices, and voices never heard in training for the held-out test (lid_spark.tools.voices:
# the same split as the synthetic world's synth.voices). Every espeak-ng variant is on one side.
TRAINING, HELD_OUT = voice_split("training"), voice_split("held_out")
# The split of the first embedded models (13 training, 4 held-out variants; pitch 20-80, 110-240 wpm).
LEGACY_TRAINING = VoiceSplit("legacy_training", (None, "m1", "m2", "m3", "m4", "m5", "m6", "f1", "f2", "f3",
                                                 "klatt", "klatt2", "croak"), (20, 81), (20, 101), (110, 240))
LEGACY_HELD_OUT = VoiceSplit("legacy_held_out", ("m7", "f4", "f5", "klatt3"), (20, 81), (20, 101), (110, 240))
# Chanted notes: the major scale and its octave, in espeak-ng pitch units of about a third of a semitone.
_CHANT_SCALE = np.array(SCALES["major"] + (12,))
_PITCH_UNITS_PER_SEMITONE = 3


def random_sentence(words: tuple[str, ...], rng: np.random.Generator, n_words: int) -> str:
    """``n_words`` words drawn from ``words``, joined by spaces."""
    return " ".join(words[i] for i in rng.integers(0, len(words), n_words))


def _draw(rng: np.random.Generator, bounds: tuple[int, int]) -> int:
    return int(rng.integers(bounds[0], bounds[1] + 1 if bounds[1] > bounds[0] else bounds[1]))


def speak_utterance(lang: str, rng: np.random.Generator, voices: VoiceSplit, min_seconds: float = 2.6) -> np.ndarray:
    """A spoken sentence of ``lang`` at 16 kHz by a random variant, rate and pitch of ``voices``.

    Sentences are extended until they last at least ``min_seconds`` of audio.
    """
    words = vocabulary(lang)
    variants = voices.variants
    variant = variants[rng.integers(len(variants))]
    # the legacy split drew from half-open ranges (rng.integers' high excluded): kept as they were
    if voices.name.startswith("legacy"):
        rate, pitch, pitch_range = (int(rng.integers(*voices.rate)), int(rng.integers(*voices.pitch)),
                                    int(rng.integers(*voices.pitch_range)))
    else:
        rate, pitch, pitch_range = _draw(rng, voices.rate), _draw(rng, voices.pitch), _draw(rng, voices.pitch_range)
    pieces, total = [], 0
    while total < min_seconds * SAMPLE_RATE:
        wave = speak(random_sentence(words, rng, int(rng.integers(5, 11))), voice=lang, rate=rate, pitch=pitch,
                     pitch_range=pitch_range, variant=variant, sample_rate=SAMPLE_RATE)
        pieces.append(wave)
        total += wave.size
    return np.concatenate(pieces)


def sing_utterance(lang: str, rng: np.random.Generator, voices: VoiceSplit, min_seconds: float = 3.0) -> np.ndarray:
    """A *sung* phrase of ``lang``: each word held on a note of a melody.

    Every word is spoken monotone (no intonation) at the pitch of its note, then time-stretched to
    the note's duration (0.35-0.9 s, so vowels are sustained as in singing), with short breaths
    between notes. This keeps the words and voices of the spoken data but changes their phonation,
    rhythm and pitch contour: the shift that makes spoken-LID models weak on singing.
    """
    import librosa

    words = vocabulary(lang)
    variants = voices.variants
    variant = variants[rng.integers(len(variants))]
    root = int(rng.integers(20, 45))  # espeak-ng pitch setting (0-100) of the tonic
    notes, total = [], 0
    while total < min_seconds * SAMPLE_RATE:
        word = words[rng.integers(len(words))]
        pitch = int(min(100, root + _PITCH_UNITS_PER_SEMITONE * _CHANT_SCALE[rng.integers(len(_CHANT_SCALE))]))
        wave = speak(word, voice=lang, rate=int(rng.integers(90, 140)), pitch=pitch, pitch_range=0,
                     variant=variant, sample_rate=SAMPLE_RATE)
        wave, _ = librosa.effects.trim(wave, top_db=35)
        if wave.size < 400:
            continue
        duration = rng.uniform(0.35, 0.9)
        stretch = max(0.25, min(4.0, wave.size / (duration * SAMPLE_RATE)))
        wave = librosa.effects.time_stretch(wave, rate=stretch)
        gap = np.zeros(int(rng.uniform(0.03, 0.12) * SAMPLE_RATE), dtype=np.float32)
        notes.extend([wave.astype(np.float32), gap])
        total += wave.size + gap.size
    return np.concatenate(notes)


def world_sing_utterance(lang: str, rng: np.random.Generator, voices: VoiceSplit,
                         min_seconds: float = 3.0) -> np.ndarray:
    """A phrase sung the synthetic world's way (:func:`lid_spark.tools.synth.singing.sing_line`:
    words re-pitched onto a melody around the singer's base pitch, held vowels, vibrato) by a
    random singing voice of ``voices``: the singing transformations the catalog's vocals go through."""
    from lid_spark.tools.synth.music import GENRES, melody, plan_song
    from lid_spark.tools.synth.singing import Voice, sing_line, voice_range_hz

    singers = [v for v in voices.sung_variants if v is not None]
    voice = Voice(lang, singers[rng.integers(len(singers))], base_pitch=int(rng.integers(30, 81)),
                  rate=int(rng.integers(110, 181)), vibrato_hz=float(rng.uniform(4.5, 6.5)),
                  vibrato_depth=float(rng.uniform(0.01, 0.035)))
    _, base_hz, _ = voice_range_hz(voice)
    genre = GENRES[sorted(GENRES)[int(rng.integers(len(GENRES)))]]
    song = plan_song(genre, rng, 30.0, tonic_midi=int(round(69 + 12 * np.log2(base_hz / 440.0))) - 5)
    words = vocabulary(lang)
    lines, total = [], 0
    while total < min_seconds * SAMPLE_RATE:
        line = [words[i] for i in rng.integers(0, len(words), int(rng.integers(3, 7)))]
        wave, _ = sing_line(line, melody(song, rng, len(line), register=-1), voice, song.beat, SAMPLE_RATE,
                            hold_last_beats=float(rng.choice([1.0, 2.0])))
        lines.extend([wave, np.zeros(int(song.beat * SAMPLE_RATE), dtype=np.float32)])
        total += wave.size
    return np.concatenate(lines).astype(np.float32)
