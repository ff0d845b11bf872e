"""The paper's experiments on a labelled data set: Table 1, Table 2, figures.

Models are trained once and saved under ``output.models_dir``: ``<subset>/`` for the Table 1
subsets (with the configured augmentation; ``multimodal/`` is the production model) and
``multimodal-aug-<mode>/`` for the Table 2 variants that differ from it. A saved model is reused
when its settings, training tracks, labels and feature values match (``evaluation.reuse_models``).

Example
-------
>>> result = run_experiments(load_labelled(spark, cfg), cfg)      # doctest: +SKIP
>>> result.table1["multimodal"]["avg"]["ap"]                        # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from lid_spark import LANGUAGE_CLASSES
from lid_spark.config import Config
from lid_spark.errors import InputError
from lid_spark.evaluation.confidence import confidence_markdown, confidence_report
from lid_spark.evaluation.plots import (
    plot_confusion,
    plot_guard_tradeoff,
    plot_pr_curves,
    plot_reliability,
    plot_tsne_panels,
)
from lid_spark.evaluation.report import ordering_pairs, write_report
from lid_spark.languages import collapse_scores
from lid_spark.metrics import confusion_matrix, language_metrics, map_difference_interval, tune_thresholds
from lid_spark.model.artifact import LanguageClassifier
from lid_spark.model.dataset import LabelledData
from lid_spark.model.features import map_as_dict, segments_of
from lid_spark.model.train import TrainSettings, train_or_load
from lid_spark.progress import get_logger, step
from lid_spark.tagging import target_precision

log = get_logger(__name__)

# Table 2: variant -> (augmentation at training, consumption fallback at test).
VARIANT_SETTINGS = {"baseline_Z": ("none", "Z"), "baseline_A": ("none", "A"), "aug_Z": ("Z", "Z"),
                    "aug_Z+G": ("Z+G", "Z"), "aug_A": ("A", "A"), "aug_A+G": ("A+G", "A")}


def spoken_lid_direct_scores(pdf: pd.DataFrame, languages=LANGUAGE_CLASSES) -> np.ndarray:
    """The spoken-LID model applied directly: duration-weighted mean of each track's segment posteriors.

    Parameters
    ----------
    pdf : track feature frame rows (seg_spoken_lid, seg_durations)
    languages : output columns, the classes: a target takes its language's score (0 when the map
        lacks it), ``ot`` the mass of every other language

    Returns
    -------
    [tracks, languages]; a track without segments gets the uniform distribution.
    """
    out = np.full((len(pdf), len(languages)), 1.0 / len(languages))
    for i, row in enumerate(pdf.to_dict("records")):
        maps = row.get("seg_spoken_lid")
        if maps is None or len(maps) == 0:
            continue
        _, durations = segments_of(row)
        if len(durations) != len(maps):
            durations = np.ones(len(maps))
        weights = durations / durations.sum() if durations.sum() > 0 else np.full(len(maps), 1.0 / len(maps))
        matrix = np.array([collapse_scores(map_as_dict(m), languages) for m in maps])
        out[i] = weights @ matrix
    return out


def song_level_raw(pdf: pd.DataFrame, modalities) -> np.ndarray:
    """Raw song-level features for Figure 2: the modalities concatenated, vocals as the mean embedding."""
    parts = []
    for m in modalities:
        if m == "vocals":
            parts.append(np.stack([np.mean(np.stack([np.asarray(s, np.float64) for s in segs]), axis=0)
                                   for segs in pdf["seg_embeddings"]]))
        else:
            parts.append(np.stack([np.asarray(v, np.float64) for v in pdf[m]]))
    return np.hstack(parts)


@dataclass
class ExperimentResult:
    table1: dict
    table2: dict
    models: dict[str, str] = field(default_factory=dict)
    figures: list[str] = field(default_factory=list)
    model_dirs: dict[str, Path] = field(default_factory=dict)
    report_paths: dict[str, Path] = field(default_factory=dict)
    intervals: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    confidence: dict | None = None


def _model(data: LabelledData, settings: TrainSettings, directory: Path, reuse: bool) -> LanguageClassifier:
    with step(f"model {directory.name}"):
        clf, _ = train_or_load(data.split("train", settings.subset), data.split("val", settings.subset),
                               settings, directory, reuse=reuse, languages=data.classes)
    return clf


def run_experiments(data: LabelledData, cfg: Config, instrumental: dict | None = None) -> ExperimentResult:
    """Train or load every model the tables need, evaluate them on the test artists, write the report.

    Parameters
    ----------
    data : the labelled, artist-split data set (:func:`lid_spark.model.dataset.load_labelled`)
    cfg : Config (``classifier``, ``evaluation``, ``output``)
    instrumental : the instrumental-detection rates for the report
        (:func:`lid_spark.evaluation.instrumental.read_instrumental_detection`), or None

    Returns
    -------
    ExperimentResult with the tables, model versions, figure and report paths.
    """
    ev = cfg.evaluation
    models_dir, report_dir = Path(cfg.output.models_dir), Path(cfg.output.report_dir)
    base = TrainSettings.from_config(cfg)
    test = data.split("test", complete=True)
    val = data.split("val", complete=True)
    if test.empty or val.empty:
        raise InputError(f"evaluation needs complete tracks in val and test; got {len(val)} and {len(test)}")
    labels = test["language"].to_numpy()
    classes, targets = data.classes, data.targets
    result = ExperimentResult({}, {})
    trained: dict[str, LanguageClassifier] = {}
    scores_by_subset: dict[str, np.ndarray] = {}

    for subset in ev.subsets:
        settings = replace(base, subset=subset)
        clf = _model(data, settings, models_dir / subset, ev.reuse_models)
        trained[subset] = clf
        result.models[subset] = clf.model_version
        result.model_dirs[subset] = models_dir / subset
        scores_by_subset[subset] = clf.score_tracks(test)
        result.table1[subset] = language_metrics(labels, scores_by_subset[subset], clf.languages, clf.thresholds,
                                                 average_over=targets)

    direct_thresholds = tune_thresholds(val["language"].to_numpy(), spoken_lid_direct_scores(val, classes), classes)
    direct = spoken_lid_direct_scores(test, classes)
    result.table1["spoken_lid_direct"] = language_metrics(labels, direct, classes, direct_thresholds,
                                                          average_over=targets)
    compared = {**scores_by_subset, "spoken_lid_direct": direct}   # every score set a quality check compares

    if ev.table2:
        multimodal = replace(base, subset="multimodal")
        for variant, (augmentation, fallback) in VARIANT_SETTINGS.items():
            settings = replace(multimodal, augment_missing_consumption=augmentation)
            name = "multimodal" if settings == multimodal else f"multimodal-aug-{augmentation}"
            if name not in trained:
                trained[name] = _model(data, settings, models_dir / name, ev.reuse_models)
                result.models[name] = trained[name].model_version
                result.model_dirs[name] = models_dir / name
            scores = trained[name].score_tracks(test, drop=["consumption"], fallback={"consumption": fallback})
            result.table2[variant] = language_metrics(labels, scores, classes, thresholds=None, average_over=targets)
            compared[variant] = scores

    with step("bootstrap intervals"):
        for a, b, _ in ordering_pairs(result.table2):
            if a in compared and b in compared:
                result.intervals[(a, b)] = map_difference_interval(labels, compared[a], compared[b], classes,
                                                                   average_over=targets, seed=cfg.classifier.seed)

    production = cfg.classifier.features
    if production in trained:
        with step(f"calibration, precision target and guard of the {production} model"):
            result.confidence = confidence_report(
                trained[production], val, test, cfg.tagging.min_confidence, target_precision(cfg),
                cfg.tagging.guard_quantile, bool(cfg.tagging.guard_modalities))
    with step("figures"):
        result.figures = _figures(test, labels, trained, scores_by_subset, data, report_dir, ev)
        if result.confidence is not None:
            result.figures += _confidence_figures(result.confidence, report_dir)
    result.report_paths = write_report(
        report_dir, result.table1, result.table2, data.counts, result.models, result.figures, result.intervals,
        targets=targets, instrumental=instrumental, confidence=result.confidence,
        confidence_section=confidence_markdown(result.confidence) if result.confidence is not None else None)
    return result


def _confidence_figures(confidence: dict, report_dir: Path) -> list[str]:
    figures = []
    for split, s in confidence["splits"].items():
        curves = {f"raw (ECE {s['calibration']['raw']['ece']:.3f})": s["calibration"]["raw"]["reliability"],
                  f"calibrated (ECE {s['calibration']['calibrated']['ece']:.3f})":
                      s["calibration"]["calibrated"]["reliability"]}
        figures.append(str(plot_reliability(curves, report_dir / f"reliability_{split}.png",
                                            title=f"Reliability, {split} split (10 equal-width bins)")))
    rows = confidence["splits"]["test"]["guard_tradeoff"]
    figures.append(str(plot_guard_tradeoff({"test": [(r["guard"], r["wrong_caught"], r["correct_kept"])
                                                     for r in rows]}, report_dir / "guard_tradeoff_test.png")))
    return figures


def _figures(test, labels, trained, scores_by_subset, data, report_dir: Path, ev) -> list[str]:
    classes = data.classes
    figures = []
    for subset, scores in scores_by_subset.items():
        figures.append(str(plot_pr_curves(labels, scores, classes, report_dir / f"pr_{subset}.png",
                                          title=f"Precision-recall, {subset} model (test)")))
    for subset in ("multimodal", "audio"):
        if subset in scores_by_subset:
            predicted = np.asarray(classes)[scores_by_subset[subset].argmax(axis=1)]
            matrix = confusion_matrix(labels, predicted, classes)
            figures.append(str(plot_confusion(matrix, classes, report_dir / f"confusion_{subset}.png",
                                              title=f"Confusion, {subset} model (test, argmax)")))
            break
    # Figure 2 on held-out tracks (validation + test artists), at most evaluation.tsne_max_points.
    held_out = pd.concat([data.split("val", complete=True), test], ignore_index=True)
    if len(held_out) > ev.tsne_max_points:
        held_out = held_out.sample(ev.tsne_max_points, random_state=ev.tsne_seed).reset_index(drop=True)
    panels = [("(a) vocals embeddings (mean per track)", song_level_raw(held_out, ["vocals"]))]
    if "vocals" in trained:
        panels.append(("(b) last hidden layer, Vocals model", trained["vocals"].hidden_tracks(held_out)))
    panels.append(("(c) multimodal features", song_level_raw(held_out, ["consumption", "timbral", "vocals"])))
    if "multimodal" in trained:
        panels.append(("(d) last hidden layer, Multimodal model", trained["multimodal"].hidden_tracks(held_out)))
    if len(held_out) >= 5:
        figures.append(str(plot_tsne_panels(panels, held_out["language"].to_numpy(), classes,
                                            report_dir / "figure2_tsne.png", seed=ev.tsne_seed,
                                            perplexity=ev.tsne_perplexity)))
    return figures
