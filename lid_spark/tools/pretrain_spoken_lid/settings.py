"""What defines a pretraining run: the ``pretrain_spoken_lid`` config section as :class:`PretrainSettings`.

Example
-------
>>> settings = settings_from_config({"languages": "en, fr", "minutes": 1.0, "torch_threads": 2})
>>> settings.languages, settings.minutes, settings.torch_threads
(('en', 'fr'), 1.0, 2)
>>> settings_from_config({"languages": ["en", "fr"], "steps": 3})
Traceback (most recent call last):
...
lid_spark.errors.ParameterError: unknown pretrain_spoken_lid keys: steps
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

from lid_spark import TARGET_LANGUAGES
from lid_spark.errors import ParameterError

SECTION = "pretrain_spoken_lid"   # the config section, named after the job
SAMPLE_RATE = 16000               # the model's input rate, as speechbrain's VoxLingua107 ECAPA

# Ten targets and forty others from several families and scripts, so that the classifier learns
# languages beyond the catalog's (as VoxLingua107 does) and "ot" has real competitors.
DEFAULT_LANGUAGES = TARGET_LANGUAGES + (
    "af", "am", "ar", "bg", "bn", "ca", "cmn", "cs", "da", "el", "et", "eu", "fa", "fi", "gu", "he",
    "hr", "hu", "hy", "id", "ka", "kn", "ko", "lt", "lv", "ml", "mr", "ne", "nl", "pl", "pt", "ro",
    "ru", "sv", "sw", "th", "tr", "uk", "ur", "vi")
AUGMENTATIONS = ("formant", "pitch", "tempo", "reverb", "band", "noise", "codec", "specaugment")  # augment.py
TRAIN_VOICES = ("training", "legacy")
DATA_VERSION = 5  # bump when data generation changes, so that cached features are not reused


@dataclass(frozen=True)
class PretrainSettings:
    """Everything that defines a pretraining run (the ``pretrain_spoken_lid`` config section)."""

    languages: tuple[str, ...] = DEFAULT_LANGUAGES
    utterances_per_language: int = 100    # training sentences per language (each ~3-6 s)
    sung_share: float = 0.5               # share of them chanted (words held on notes) instead of spoken
    world_singing_share: float = 0.5      # share of the sung ones sung the synthetic world's way, not chanted
    music_share: float = 0.5              # share of them laid over synthetic accompaniment
    separated_share: float = 0.5          # share of those passed through the pipeline's vocal separator
    voices: str = "training"              # training (lid_spark.tools.voices) | legacy (the first 13 variants)
    augmentations: tuple[str, ...] = AUGMENTATIONS   # augment.AUGMENTATIONS: which are on
    eval_utterances: int = 4              # held-out spoken and sung clips per language
    minutes: float = 20.0                 # training time budget (data generation not included)
    max_steps: int = 100000
    batch_size: int = 32
    crop_frames: tuple[int, int] = (100, 200)   # random crop length range, 10 ms frames
    learning_rate: float = 0.002
    n_mels: int = 60
    channels: int = 64                    # ECAPA channels of the four frame blocks (last is 3x)
    lin_neurons: int = 128                # embedding size
    seed: int = 20240501
    torch_threads: int = 1                # more threads oversubscribe a shared CPU
    workers: int = 1                      # processes generating training speech (one language each)
    # The separator of the separated share: audio.separation settings as sorted (key, value) pairs;
    # empty: the default config's (the pipeline's default separator).
    separation: tuple = ()

    def validate(self) -> None:
        if len(self.languages) < 2 or len(set(self.languages)) != len(self.languages):
            raise ParameterError(f"{SECTION}.languages needs two or more distinct languages")
        for key in ("utterances_per_language", "eval_utterances", "max_steps", "batch_size", "n_mels",
                    "channels", "lin_neurons", "torch_threads", "workers"):
            if getattr(self, key) < 1:
                raise ParameterError(f"{SECTION}.{key} must be >= 1, got {getattr(self, key)}")
        for key in ("sung_share", "world_singing_share", "music_share", "separated_share"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ParameterError(f"{SECTION}.{key} must be within [0, 1], got {getattr(self, key)}")
        if self.voices not in TRAIN_VOICES:
            raise ParameterError(f"{SECTION}.voices must be one of {', '.join(TRAIN_VOICES)}, got {self.voices!r}")
        unknown = sorted(set(self.augmentations) - set(AUGMENTATIONS))
        if unknown:
            raise ParameterError(f"{SECTION}.augmentations: unknown {unknown}; known: {', '.join(AUGMENTATIONS)}")
        if self.minutes <= 0 or self.learning_rate <= 0:
            raise ParameterError(f"{SECTION}.minutes and learning_rate must be positive")
        low, high = self.crop_frames
        if not 50 <= low <= high:
            raise ParameterError(f"{SECTION}.crop_frames must be [low, high] with 50 <= low <= high, "
                                 f"got {self.crop_frames}")

    def separation_settings(self) -> dict:
        """The ``audio.separation`` settings of the separated share (the default config's when unset)."""
        if self.separation:
            return dict(self.separation)
        from lid_spark.config import load_config

        return load_config().audio.separation.to_dict()

    def make_separator(self):
        """The separator of the separated share (:func:`lid_spark.audio.separation.separator_from_config`)."""
        from types import SimpleNamespace

        from lid_spark.audio.separation import separator_from_config

        conf = SimpleNamespace(audio=SimpleNamespace(separation=SimpleNamespace(**self.separation_settings())))
        return separator_from_config(conf)

    def data_key(self) -> str:
        """Hash of the settings that determine the generated data (the feature cache key)."""
        # the separator's settings shape the separated share: a cache made with others must not be reused
        separation = {k: v for k, v in self.separation_settings().items() if k != "device"}
        fields = (DATA_VERSION, self.languages, self.utterances_per_language, self.sung_share, self.music_share,
                  self.separated_share, sorted(separation.items()), self.eval_utterances, self.n_mels,
                  self.seed, self.voices, sorted(set(self.augmentations) - {"specaugment"}), self.world_singing_share)
        return hashlib.sha256(repr(fields).encode()).hexdigest()[:16]


def settings_from_config(section, separation=None) -> PretrainSettings:
    """PretrainSettings from the ``pretrain_spoken_lid`` config section (a Config or a mapping).

    ``separation``: the ``audio.separation`` section whose separator makes the separated share
    (None: the default config's).
    """
    values = dict(section.to_dict() if hasattr(section, "to_dict") else section)
    if separation is not None:
        values["separation"] = tuple(sorted(dict(separation.to_dict() if hasattr(separation, "to_dict")
                                                 else separation).items()))
    values.pop("cache_dir", None)
    languages = values.pop("languages", None) or DEFAULT_LANGUAGES
    if isinstance(languages, str):
        languages = [lang.strip() for lang in languages.split(",") if lang.strip()]
    augmentations = tuple(values.pop("augmentations", AUGMENTATIONS))
    crop = values.pop("crop_frames", PretrainSettings.crop_frames)
    if not (isinstance(crop, (list, tuple)) and len(crop) == 2):
        raise ParameterError(f"{SECTION}.crop_frames must be [low, high], got {crop!r}")
    known = {f.name for f in dataclasses.fields(PretrainSettings)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ParameterError(f"unknown {SECTION} keys: {', '.join(unknown)}")
    settings = PretrainSettings(languages=tuple(str(lang) for lang in languages), augmentations=augmentations,
                                crop_frames=(int(crop[0]), int(crop[1])), **values)
    settings.validate()
    return settings


def check_languages(languages) -> tuple[str, ...]:
    """Languages that espeak-ng can speak and CLDR has words for; ParameterError names the others."""
    from lid_spark.tools.synth.espeak import available_voices
    from lid_spark.tools.synth.lexicon import vocabulary

    voices = available_voices()
    bad = []
    for lang in languages:
        if lang not in voices:
            bad.append(f"{lang} (no espeak-ng voice)")
            continue
        try:
            vocabulary(lang)
        except ParameterError as exc:
            bad.append(f"{lang} ({exc})")
    if bad:
        raise ParameterError(f"{SECTION}.languages: cannot train " + ", ".join(bad))
    return tuple(languages)
