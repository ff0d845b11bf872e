"""Which espeak-ng voices the embedded spoken-LID model hears in training, and which are held out.

One definition shared by the model's training (:mod:`lid_spark.tools.pretrain_spoken_lid`) and the
synthetic world (:mod:`lid_spark.tools.synth`, ``synth.voices``), so that "a voice the model never
heard" means the same thing in both. Whole voices are held out, not clips: a *voice* is an
espeak-ng speaker variant (every file in its data directory's ``voices/!v``: the classic ``m1``..
``f5``, the Klatt and formant presets, whisper, creaky and robotic ones, plus espeak-ng's plain
voice, named ``None`` here; two stateful ones are left out, :data:`STATEFUL_VARIANTS`) and a pitch
/ speed range.

The split is deterministic and does not depend on the order espeak-ng lists its files:

- the variants the shipped model was first trained on stay in training and its first held-out
  variants stay held out (:data:`PINNED`), so figures before and after a retrain are comparable;
- every other variant is held out when the first byte of ``blake2b(name)`` is below
  ``HELD_OUT_SHARE * 256`` (about a quarter of them), so a variant a later espeak-ng adds falls on
  one side for good.

Held-out clips draw pitch and speed from espeak-ng's whole range, of which training uses only
the middle (:data:`TRAINING_PITCH`, :data:`TRAINING_RATE`): a share of the held-out clips are
also at pitches and speeds never heard.

Example
-------
>>> training, held_out = voice_split("training"), voice_split("held_out")
>>> set(training.variants).isdisjoint(held_out.variants)
True
>>> {None, "m1", "klatt", "croak", "whisper"} <= set(training.variants)
True
>>> {"m7", "f4", "f5", "klatt3"} <= set(held_out.variants)
True
>>> training.pitch, held_out.pitch
((10, 90), (0, 100))
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

from lid_spark.errors import ParameterError

SPLITS = ("all", "training", "held_out")
# The values of synth.voices: a split, or the twelve variants every world sang with before the split
# (m1-m7, f1-f5, all heard by the shipped model but m7, f4 and f5), the demo's default.
LEGACY_WORLD_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")
WORLD_VOICES = ("legacy",) + SPLITS
HELD_OUT_SHARE = 0.25
# Fixed sides: the 13 training and 4 held-out variants of the first embedded model (see the module
# docstring), and the two whisper presets split between the sides so both sides have one.
PINNED = {
    **dict.fromkeys((None, "m1", "m2", "m3", "m4", "m5", "m6", "f1", "f2", "f3", "klatt", "klatt2", "croak",
                     "whisper"), "training"),
    **dict.fromkeys(("m7", "f4", "f5", "klatt3", "whisperf"), "held_out"),
}
# espeak-ng's pitch setting (0-100) and speed (words per minute) drawn by each side.
TRAINING_PITCH, FULL_PITCH = (10, 90), (0, 100)
TRAINING_RATE, FULL_RATE = (100, 280), (80, 350)
TRAINING_PITCH_RANGE, FULL_PITCH_RANGE = (10, 100), (0, 100)   # intonation range
# Variants whose F0 does not follow the pitch setting (measured: whisper noise), so they cannot
# sing a melody: the synthetic world leaves them out.
UNPITCHED_VARIANTS = ("whisper", "whisperf")
# Variants left out of both sides: their samples depend on what espeak-ng spoke before (Klatt
# voicing source 6 with breath noise keeps state across calls, measured), which would make the
# corpus and the world depend on the order of rendering.
STATEFUL_VARIANTS = ("Reed", "caleb")


@dataclass(frozen=True)
class VoiceSplit:
    """One side of the split: the variants and the pitch, intonation-range and speed ranges it draws."""

    name: str
    variants: tuple[str | None, ...]
    pitch: tuple[int, int]
    pitch_range: tuple[int, int]
    rate: tuple[int, int]

    @property
    def sung_variants(self) -> tuple[str | None, ...]:
        """The variants that can sing a melody (all but :data:`UNPITCHED_VARIANTS`)."""
        return tuple(v for v in self.variants if v not in UNPITCHED_VARIANTS)


@functools.lru_cache(maxsize=1)
def espeak_variants() -> tuple[str, ...]:
    """Every speaker variant espeak-ng ships (the files of its data directory's ``voices/!v``), sorted."""
    from pathlib import Path

    import espeakng_loader

    directory = Path(espeakng_loader.get_data_path()) / "voices" / "!v"
    return tuple(sorted(p.name for p in directory.iterdir() if p.is_file()))


def side_of(variant: str | None) -> str:
    """``"training"`` or ``"held_out"``: the pinned side, else by the hash of the variant's name.

    >>> side_of("m7"), side_of(None)
    ('held_out', 'training')
    """
    if variant in PINNED:
        return PINNED[variant]
    first_byte = hashlib.blake2b(str(variant).encode(), digest_size=8).digest()[0]
    return "held_out" if first_byte < HELD_OUT_SHARE * 256 else "training"


@functools.cache
def voice_split(name: str) -> VoiceSplit:
    """The variants and ranges of ``name``: ``training``, ``held_out`` or ``all`` (both sides)."""
    if name not in SPLITS:
        raise ParameterError(f"voice split must be one of {', '.join(SPLITS)}, got {name!r}")
    every = (None,) + tuple(v for v in espeak_variants() if v not in STATEFUL_VARIANTS)
    variants = tuple(v for v in every if name == "all" or side_of(v) == name)
    if name == "training":
        return VoiceSplit(name, variants, TRAINING_PITCH, TRAINING_PITCH_RANGE, TRAINING_RATE)
    return VoiceSplit(name, variants, FULL_PITCH, FULL_PITCH_RANGE, FULL_RATE)
