"""The training corpus: augmented utterances of every language as log-mel features, cached on disk.

A ``sung_share`` of the utterances are chanted (:func:`~.utterances.sing_utterance`), a
``music_share`` laid over accompaniment and a ``separated_share`` of those separated again
(:func:`~.augment.over_music`); the corpus is the same for any number of ``workers``, and is
cached under the :meth:`~.settings.PretrainSettings.data_key` of the settings that shape it.

Example
-------
>>> from lid_spark.tools.pretrain_spoken_lid.settings import PretrainSettings
>>> settings = PretrainSettings(languages=("en", "ta"), utterances_per_language=2)
>>> cache_path(settings, "cache").name == f"spoken_lid_train_{settings.data_key()}.pt"
True
>>> corpus = build_corpus(settings)                            # doctest: +SKIP
>>> corpus.labels.tolist()                                     # doctest: +SKIP
[0, 0, 1, 1]
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lid_spark.progress import get_logger
from lid_spark.tools.pretrain_spoken_lid.augment import (
    VOICE_AUGMENTATIONS,
    augment,
    over_music,
    random_crop,
    voice_augment,
)
from lid_spark.tools.pretrain_spoken_lid.settings import SAMPLE_RATE, PretrainSettings
from lid_spark.tools.pretrain_spoken_lid.utterances import (
    LEGACY_TRAINING,
    TRAINING,
    sing_utterance,
    speak_utterance,
    world_sing_utterance,
)

MAX_TRAIN_SECONDS = 6.0   # training utterances are cropped at random to at most this


@dataclass
class Corpus:
    """Cached log-mel features of generated utterances (float16, [frames, n_mels]) with labels."""

    features: list
    labels: np.ndarray
    seconds: float


def fbank(n_mels: int):
    """The model's feature extractor (speechbrain's Fbank, as in ``hyperparams.yaml``)."""
    from speechbrain.lobes.features import Fbank

    return Fbank(n_mels=n_mels)


def language_utterances(settings: PretrainSettings, index: int) -> tuple[list, float]:
    """Log-mel features (float16) of the augmented training utterances of language ``index``, and their seconds.

    A ``sung_share`` of them are chanted (:func:`sing_utterance`): VoxLingua107's 6,600 hours of
    YouTube speech hold far more prosodic variety than espeak-ng's read speech, and without any the
    embeddings of a small model carry little language information on singing. A ``music_share``
    are laid over accompaniment (:func:`over_music`), a ``separated_share`` of those separated again.
    """
    import torch

    separator = settings.make_separator() if settings.music_share and settings.separated_share else None
    voices = LEGACY_TRAINING if settings.voices == "legacy" else TRAINING
    voice_augmentations = tuple(a for a in settings.augmentations if a in VOICE_AUGMENTATIONS)
    features_of = fbank(settings.n_mels)
    rng = np.random.default_rng([settings.seed, index, 0])
    lang = settings.languages[index]
    features, seconds = [], 0.0
    for _ in range(settings.utterances_per_language):
        render = speak_utterance
        if rng.random() < settings.sung_share:
            render = sing_utterance
            if settings.world_singing_share and rng.random() < settings.world_singing_share:
                render = world_sing_utterance
        wave = random_crop(render(lang, rng, voices), rng, MAX_TRAIN_SECONDS)
        if voice_augmentations:
            wave = voice_augment(wave, rng, voice_augmentations)
        if rng.random() < settings.music_share:
            wave = over_music(wave, rng, separator if rng.random() < settings.separated_share else None)
        wave = augment(wave, rng, settings.augmentations)
        seconds += wave.size / SAMPLE_RATE
        with torch.no_grad():
            features.append(features_of(torch.from_numpy(wave)[None])[0].to(torch.float16))
    return features, seconds


def cache_path(settings: PretrainSettings, cache_dir: str | Path) -> Path:
    """Where the corpus of ``settings`` is cached in ``cache_dir``."""
    return Path(cache_dir) / f"spoken_lid_train_{settings.data_key()}.pt"


def build_corpus(settings: PretrainSettings, cache_dir: str | Path | None = None, log=None) -> Corpus:
    """Generate (or read from ``cache_dir``) the augmented training utterances as features."""
    import torch

    from lid_spark.processes import map_in_processes

    log = log or get_logger()
    cache = cache_path(settings, cache_dir) if cache_dir else None
    if cache is not None and cache.is_file():
        data = torch.load(cache, weights_only=False)
        log.info("training features read from cache %s", cache)
        return Corpus(data["features"], data["labels"], data["seconds"])
    features, labels, seconds = [], [], 0.0
    started = time.perf_counter()
    calls = [(settings, index) for index in range(len(settings.languages))]
    # in language order, whatever the number of workers: the corpus is deterministic
    for index, (feats, secs) in enumerate(map_in_processes(language_utterances, calls, settings.workers)):
        features.extend(feats)
        labels.extend([index] * len(feats))
        seconds += secs
        log.info("generated %s (%d/%d languages, %.0f s of speech, %.0f s)", settings.languages[index],
                 index + 1, len(settings.languages), seconds, time.perf_counter() - started)
    corpus = Corpus(features, np.array(labels), seconds)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"features": features, "labels": corpus.labels, "seconds": seconds}, cache)
    return corpus
