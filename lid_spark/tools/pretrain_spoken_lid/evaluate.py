"""Held-out evaluation: new sentences by unseen speaker variants, spoken, sung, and sung then separated.

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

from pathlib import Path

import numpy as np

from lid_spark import OTHER_LANGUAGE, TARGET_LANGUAGES
from lid_spark.errors import ParameterError
from lid_spark.progress import get_logger
from lid_spark.tools.pretrain_spoken_lid.augment import over_music
from lid_spark.tools.pretrain_spoken_lid.settings import SAMPLE_RATE, PretrainSettings
from lid_spark.tools.pretrain_spoken_lid.utterances import HELD_OUT, sing_utterance, speak_utterance

HELDOUT_KINDS = ("spoken", "sung", "sung_separated")


def heldout_clips(settings: PretrainSettings, kind: str) -> tuple[list[np.ndarray], np.ndarray]:
    """Held-out clips by unseen speaker variants, with new sentences.

    ``kind``: ``spoken``, ``sung`` (chanted), or ``sung_separated`` (the sung clips laid over music
    and passed through the soft-mask separator, as the pipeline's vocal segments are).
    """
    if kind not in HELDOUT_KINDS:
        raise ParameterError(f"held-out kind must be one of {HELDOUT_KINDS}, got {kind!r}")
    separator = None
    if kind == "sung_separated":
        from lid_spark.audio.separation import SoftMaskSeparator

        separator = SoftMaskSeparator()
    render = speak_utterance if kind == "spoken" else sing_utterance
    clips, labels = [], []
    for index, lang in enumerate(settings.languages):
        rng = np.random.default_rng([settings.seed, index, 1 if kind == "spoken" else 2])
        music_rng = np.random.default_rng([settings.seed, index, 3])
        for _ in range(settings.eval_utterances):
            wave = render(lang, rng, HELD_OUT)[: 5 * SAMPLE_RATE]
            if separator is not None:
                wave = over_music(wave, music_rng, separator)
            clips.append((wave / (np.max(np.abs(wave)) + 1e-9) * 0.5).astype(np.float32))
            labels.append(index)
    return clips, np.array(labels)


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


def evaluate(model_dir: str | Path, settings: PretrainSettings, log=None) -> dict:
    """Accuracy of a model directory on held-out spoken and sung clips of ``settings.languages``.

    Returns
    -------
    dict
        ``{"heldout_spoken": {...}, "heldout_sung": {...}, "heldout_sung_separated": {...}}``, each
        from :func:`accuracy_report`.
    """
    from lid_spark.audio.spoken_lid import SpokenLID
    from lid_spark.progress import step

    log = log or get_logger()
    lid = SpokenLID.load(str(model_dir), device="cpu")
    report = {}
    for kind in HELDOUT_KINDS:
        with step(f"evaluate on held-out {kind} clips", log):
            clips, truth = heldout_clips(settings, kind)
            _, posteriors = lid.embed(clips, batch_size=16)
            report[f"heldout_{kind}"] = result = accuracy_report(posteriors, truth, lid.languages)
            log.info("held-out %s: accuracy %.3f over %d languages, target-class accuracy %.3f", kind,
                     result["accuracy"], len(lid.languages), result["target_class_accuracy"] or float("nan"))
    return report
