"""Held-out evaluation: new sentences by voices never heard in training, spoken, sung, sung then separated,
and the synthetic world's songs by such voices, clean and separated from their mix.

Example
-------
>>> import numpy as np
>>> labels = ["en: English", "fr: French", "ta: Tamil"]
>>> posteriors = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1]])
>>> report = accuracy_report(posteriors, np.array([0, 1, 2]), labels)
>>> report["accuracy"], report["per_target_accuracy"]
(0.6667, {'en': 1.0, 'fr': 1.0, 'ta': 0.0})
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from lid_spark import OTHER_LANGUAGE, TARGET_LANGUAGES
from lid_spark.errors import ParameterError
from lid_spark.progress import get_logger
from lid_spark.tools.pretrain_spoken_lid.augment import over_music
from lid_spark.tools.pretrain_spoken_lid.settings import SAMPLE_RATE, PretrainSettings
from lid_spark.tools.pretrain_spoken_lid.utterances import HELD_OUT, sing_utterance, speak_utterance

HELDOUT_KINDS = ("spoken", "sung", "sung_separated", "catalog_sung", "catalog_separated")
CLIP_SECONDS = 5.0


def heldout_clips(settings: PretrainSettings, kind: str) -> tuple[list[np.ndarray], np.ndarray]:
    """Held-out clips by voices never heard in training (:data:`~.utterances.HELD_OUT`), new sentences.

    ``kind``: ``spoken``; ``sung`` (chanted, as a share of the training data is); ``sung_separated``
    (the sung clips laid over music and passed through the pipeline's separator, ``settings.make_separator()``);
    ``catalog_sung`` and ``catalog_separated``: the synthetic world's own singing
    (:func:`catalog_clips`), its clean vocal stem or its mix through the separator.
    """
    if kind not in HELDOUT_KINDS:
        raise ParameterError(f"held-out kind must be one of {HELDOUT_KINDS}, got {kind!r}")
    if kind.startswith("catalog_"):
        return catalog_clips(settings, separated=kind == "catalog_separated")
    separator = settings.make_separator() if kind == "sung_separated" else None
    render = speak_utterance if kind == "spoken" else sing_utterance
    clips, labels = [], []
    for index, lang in enumerate(settings.languages):
        rng = np.random.default_rng([settings.seed, index, 1 if kind == "spoken" else 2])
        music_rng = np.random.default_rng([settings.seed, index, 3])
        for _ in range(settings.eval_utterances):
            wave = render(lang, rng, HELD_OUT)[: int(CLIP_SECONDS * SAMPLE_RATE)]
            if separator is not None:
                wave = over_music(wave, music_rng, separator)
            clips.append(_normalised(wave))
            labels.append(index)
    return clips, np.array(labels)


def _normalised(wave: np.ndarray) -> np.ndarray:
    return (wave / (np.max(np.abs(wave)) + 1e-9) * 0.5).astype(np.float32)


def catalog_clips(settings: PretrainSettings, separated: bool) -> tuple[list[np.ndarray], np.ndarray]:
    """Songs of the synthetic world sung by held-out voices (``synth.voices: held_out``), one
    ``CLIP_SECONDS`` excerpt from the first sung note each: the clean vocal stem, or the mix through
    the pipeline's default separator (as the catalog's vocal segments are).

    The world sings the model's languages: the targets among them as its classes, the rest as
    ``ot``; ``eval_utterances`` x the number of languages songs, balanced over the classes.
    """
    from lid_spark import TARGET_LANGUAGES
    from lid_spark.tools.synth.params import SynthParams

    languages = list(settings.languages)
    targets = tuple(lang for lang in languages if lang in TARGET_LANGUAGES) or tuple(languages[:1])
    others = tuple(lang for lang in languages if lang not in targets)
    if len(others) < 2:   # the world needs two "other" languages: the last targets become others
        targets, others = targets[:-2], targets[-2:] + others
    params = SynthParams(seed=settings.seed % 2 ** 31, seconds=CLIP_SECONDS + 4.0, sample_rate=SAMPLE_RATE,
                         targets=targets, other_languages=others, voices="held_out", instrumental_share=0.0,
                         bilingual_song_share=0.0, bilingual_artist_share=0.0, intro_seconds=(1.0, 2.0),
                         tracks=settings.eval_utterances * len(languages))
    separator = settings.make_separator() if separated else None
    clips, labels = [], []
    for language, mix, vocals in _catalog_excerpts(params):
        wave = separator.separate(mix, SAMPLE_RATE) if separator is not None else vocals
        clips.append(_normalised(wave))
        labels.append(languages.index(language))
    return clips, np.array(labels)


@functools.lru_cache(maxsize=1)
def _catalog_excerpts(params) -> tuple:
    """(sung language, mix, vocal stem) excerpts from each song's first note: rendered once for both kinds."""
    from lid_spark.tools.synth.catalog import catalog_plan
    from lid_spark.tools.synth.render import render_track

    n = int(CLIP_SECONDS * SAMPLE_RATE)
    excerpts = []
    for row in catalog_plan(params).to_dict("records"):
        song = render_track(row, params)
        if song.notes:
            start = int(song.notes[0].start * SAMPLE_RATE)
            excerpts.append((row["language"], song.mix[start:start + n], song.vocals[start:start + n]))
    return tuple(excerpts)


def accuracy_report(posteriors: np.ndarray, truth: np.ndarray, labels: list[str]) -> dict:
    """Top-1 accuracy over all languages and over our 11 classes (targets + "ot"), per target."""
    from lid_spark.audio.spoken_lid import language_class, target_scores

    predicted = posteriors.argmax(axis=1)
    scores = target_scores(posteriors, labels)
    classes = list(scores)
    predicted_class = np.array(classes)[np.stack([scores[c] for c in classes], axis=1).argmax(axis=1)]
    true_class = np.array([language_class(labels[t]) for t in truth])
    per_target = {}
    for code in TARGET_LANGUAGES:
        rows = true_class == code
        if rows.any():
            per_target[code] = round(float((predicted_class[rows] == code).mean()), 3)
    on_targets = true_class != OTHER_LANGUAGE
    return {"clips": int(truth.size), "accuracy": round(float((predicted == truth).mean()), 4),
            "chance": round(1.0 / len(labels), 4),
            "class_accuracy": round(float((predicted_class == true_class).mean()), 4),
            # Over target-language clips only: "ot" holds most languages, so class_accuracy flatters.
            "target_class_accuracy": round(float((predicted_class[on_targets] == true_class[on_targets]).mean()), 4)
            if on_targets.any() else None,
            "per_target_accuracy": per_target}


def evaluate(model_dir: str | Path, settings: PretrainSettings, log=None, kinds=HELDOUT_KINDS) -> dict:
    """Accuracy of a model directory on held-out spoken and sung clips of ``settings.languages``.

    Returns
    -------
    dict
        ``{"heldout_<kind>": {...}}`` for each of ``kinds`` (:data:`HELDOUT_KINDS`), each from
        :func:`accuracy_report`.
    """
    from lid_spark.audio.spoken_lid import SpokenLID
    from lid_spark.progress import step

    log = log or get_logger()
    lid = SpokenLID.load(str(model_dir), device="cpu")
    report = {}
    for kind in kinds:
        with step(f"evaluate on held-out {kind} clips", log):
            clips, truth = heldout_clips(settings, kind)
            _, posteriors = lid.embed(clips, batch_size=16)
            report[f"heldout_{kind}"] = result = accuracy_report(posteriors, truth, lid.languages)
            log.info("held-out %s: accuracy %.3f over %d languages, target-class accuracy %.3f", kind,
                     result["accuracy"], len(lid.languages), result["target_class_accuracy"] or float("nan"))
    return report
