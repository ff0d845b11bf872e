"""Small generated audio for the audio tests: espeak-ng vocals over a repeating numpy accompaniment."""

from __future__ import annotations

import numpy as np

from lid_spark.tools.synth.espeak import speak

SR = 16000
LINES = {
    "en": "hello everybody, I am singing a song for you tonight under the moon",
    "fr": "bonjour tout le monde, je chante une chanson pour toi ce soir sous la lune",
    "es": "hola a todos, canto una cancion para ti esta noche bajo la luna",
}


def accompaniment(seconds: float, sr: int = SR, seed: int = 0, bpm: float = 100.0) -> np.ndarray:
    """A four-chord loop with kick and hi-hat: repetitive, as REPET-SIM expects of accompaniment."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    out = np.zeros(n, dtype=np.float32)
    beat = int(60.0 / bpm * sr)
    roots = rng.choice([110.0, 123.5, 130.8, 146.8, 164.8, 174.6, 196.0], 4)
    for i, start in enumerate(range(0, n, beat)):
        end = min(n, start + beat)
        t = np.arange(end - start) / sr
        envelope = np.exp(-3 * t)
        for ratio in (1.0, 1.25, 1.5, 2.0):
            out[start:end] += 0.1 * envelope * np.sin(2 * np.pi * roots[(i // 4) % 4] * ratio * t)
        kick = min(end - start, int(0.15 * sr))
        tk = t[:kick]
        out[start:start + kick] += 0.4 * np.sin(2 * np.pi * (60 + 80 * np.exp(-30 * tk)) * tk) * np.exp(-20 * tk)
        hat_start, hat = start + beat // 2, int(0.05 * sr)
        if hat_start + hat <= n:
            out[hat_start:hat_start + hat] += 0.1 * rng.normal(size=hat) * np.exp(-80 * np.arange(hat) / sr)
    return out


def vocals(seconds: float, language: str = "en", sr: int = SR, seed: int = 0, start_s: float = 1.0,
           end_s: float | None = None) -> np.ndarray:
    """Phrases of espeak-ng speech at varied pitch with pauses, between ``start_s`` and ``end_s``."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    stop = int((end_s if end_s is not None else seconds) * sr)
    out = np.zeros(n, dtype=np.float32)
    pos = int(start_s * sr)
    while pos < stop:
        phrase = speak(LINES[language], language, rate=140, pitch=int(rng.integers(30, 70)), sample_rate=sr)
        phrase = phrase[: stop - pos]
        out[pos:pos + len(phrase)] += phrase
        pos += len(phrase) + int(rng.uniform(0.6, 1.5) * sr)
    return (0.5 * out / max(1e-6, float(np.abs(out).max()))).astype(np.float32)


def song(seconds: float = 12.0, language: str = "en", seed: int = 0, sr: int = SR) -> tuple[np.ndarray, np.ndarray]:
    """(mixture, true vocals) of a short song."""
    voice = vocals(seconds, language, sr, seed)
    return voice + accompaniment(seconds, sr, seed), voice


def drone(seconds: float, sr: int = SR) -> np.ndarray:
    """A sustained chord: sound with nothing sung (every frame repeats)."""
    t = np.arange(int(seconds * sr)) / sr
    return (0.1 * sum(np.sin(2 * np.pi * f * t) for f in (110.0, 138.6, 164.8, 220.0))).astype(np.float32)
