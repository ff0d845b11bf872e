"""The quality benchmark's arithmetic (benchmarks/bench_quality.py): interval widths, sizes, cache keys,
instrumentals, ablation rows, test scores of saved models.

Everything here is a pure function of its arguments (or of saved models and a labelled data set), so
the benchmark itself stays a recipe of stage calls.

Example
-------
>>> tracks_for_interval_width(width=0.04, tracks=80, target_width=0.01)
1280
>>> catalog_tracks_for(test_tracks=1280, pilot_test_tracks=80, pilot_catalog_tracks=528)
8448
>>> settings_key({"tracks": 528, "seed": 7}) == settings_key({"seed": 7, "tracks": 528})
True
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from lid_spark import INSTRUMENTAL
from lid_spark.errors import ParameterError
from lid_spark.evaluation.experiment import VARIANT_SETTINGS, spoken_lid_direct_scores
from lid_spark.metrics import language_metrics, map_interval
from lid_spark.model.artifact import LanguageClassifier
from lid_spark.model.train import TrainSettings

# Ablation rows of the classifier's choices: name -> overrides, each against the defaults.
CLASSIFIER_ABLATIONS = {
    "vocal_scores=false": ["classifier.vocal_scores=false"],
    "average_without_timbral=false": ["classifier.average_without_timbral=false"],
    "position=none": ["classifier.position=none"],
    "position=ramp": ["classifier.position=ramp"],
    "channels=8": ["classifier.channels=8"],
    "channels=32": ["classifier.channels=32"],
}
# The audio tables a separator ablation writes under other names (same location, same catalog).
AUDIO_TABLES = ("vocal_segments", "timbral_features", "audio_status")


def settings_key(settings: Mapping) -> str:
    """A short, stable digest of settings (key order does not matter): the cache key of a catalog."""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def tracks_for_interval_width(width: float, tracks: int, target_width: float) -> int:
    """Test tracks for a bootstrap interval of ``target_width``, from one of ``width`` on ``tracks``.

    A bootstrap interval of a mean over independent items narrows as 1/sqrt(n), so
    n = tracks x (width / target_width)^2 (at least the ``tracks`` measured: a width already
    under the target says nothing about fewer tracks).
    """
    if tracks < 1 or target_width <= 0 or width < 0:
        raise ParameterError(f"need tracks >= 1, target_width > 0, width >= 0; got {tracks}, {target_width}, {width}")
    return max(int(tracks), math.ceil(tracks * (width / target_width) ** 2 - 1e-9))


def catalog_tracks_for(test_tracks: int, pilot_test_tracks: int, pilot_catalog_tracks: int) -> int:
    """Catalog size whose test split holds ``test_tracks``, at the pilot's share of test tracks
    (the artist split's 15 %, less unlabelled instrumentals and tracks missing a modality)."""
    if pilot_test_tracks < 1:
        raise ParameterError("the pilot catalog has no complete test track")
    return math.ceil(test_tracks * pilot_catalog_tracks / pilot_test_tracks)


def size_estimate(intervals: Mapping[str, Sequence[float]], test_tracks: int, catalog_tracks: int,
                  target_width: float = 0.01) -> dict:
    """The computation, per subset and overall: the interval measured, the test and catalog tracks needed."""
    rows = {}
    for subset, (low, high) in intervals.items():
        needed = tracks_for_interval_width(high - low, test_tracks, target_width)
        rows[subset] = {"interval": [low, high], "width": high - low, "test_tracks_needed": needed,
                        "catalog_tracks_needed": catalog_tracks_for(needed, test_tracks, catalog_tracks)}
    worst = max(rows.values(), key=lambda r: r["test_tracks_needed"])
    return {"target_width": target_width, "pilot_test_tracks": test_tracks, "pilot_catalog_tracks": catalog_tracks,
            "rule": "n = n_pilot * (width_pilot / target)^2; catalog = n * pilot_catalog / pilot_test",
            "subsets": rows, "test_tracks_needed": worst["test_tracks_needed"],
            "catalog_tracks_needed": worst["catalog_tracks_needed"]}


def instrumental_rates(truth: pd.DataFrame, tags: pd.DataFrame) -> dict:
    """Recall of ``zxx`` tags on truly instrumental tracks and the share of sung tracks tagged ``zxx``.

    ``truth``: track_id, is_instrumental (the synthetic world's truth table); ``tags``: track_id,
    language (the language_tags table). A track without a tag counts as not tagged ``zxx``.
    """
    merged = truth[["track_id", "is_instrumental"]].merge(tags[["track_id", "language"]], on="track_id", how="left")
    instrumental = merged["is_instrumental"].astype(bool).to_numpy()
    zxx = merged["language"].eq(INSTRUMENTAL).to_numpy()
    n_instr, n_sung = int(instrumental.sum()), int((~instrumental).sum())
    hits, false = int((instrumental & zxx).sum()), int((~instrumental & zxx).sum())
    return {"instrumentals": n_instr, "tagged_zxx": hits, "recall": hits / n_instr if n_instr else None,
            "sung": n_sung, "sung_tagged_zxx": false, "false_instrumental_rate": false / n_sung if n_sung else None}


def ablation_rows(backends: Iterable[str], configured_backend: str) -> dict[str, list[str]]:
    """The ablation rows: every separation backend other than the configured one, then the classifier's."""
    rows = {f"separator={b}": [f"audio.separation.backend={b}"] for b in backends if b != configured_backend}
    rows.update(CLASSIFIER_ABLATIONS)
    return rows


def audio_table_overrides(suffix: str) -> list[str]:
    """``tables.names`` overrides that put the audio feature tables beside the originals, under ``_<suffix>``."""
    clean = "".join(c if c.isalnum() else "_" for c in suffix)
    return [f"tables.names.{t}={t}_{clean}" for t in AUDIO_TABLES]


def variant_model_name(variant: str, base: TrainSettings) -> str:
    """The model directory a Table 2 variant was trained into (as the experiment runner names it)."""
    augmentation, _ = VARIANT_SETTINGS[variant]
    settings = replace(base, subset="multimodal", augment_missing_consumption=augmentation)
    return "multimodal" if settings == replace(base, subset="multimodal") else f"multimodal-aug-{augmentation}"


def saved_model_scores(test: pd.DataFrame, models_dir, subsets: Iterable[str], variants: Iterable[str] = (),
                       base: TrainSettings | None = None, drop_consumption: bool = False
                       ) -> dict[str, tuple[np.ndarray, LanguageClassifier | None]]:
    """Test scores of saved models: Table 1 subsets (``spoken_lid_direct`` needs none), Table 2 variants.

    ``drop_consumption``: every subset model is scored with the consumption at its fallback (a catalog
    whose consumption embeddings live in another space); Table 2 variants always drop it.
    """
    models_dir = Path(models_dir)
    out: dict[str, tuple[np.ndarray, LanguageClassifier | None]] = {}
    for subset in subsets:
        if subset == "spoken_lid_direct":
            out[subset] = (None, None)
            continue
        clf = LanguageClassifier.load(models_dir / subset)
        drop = ["consumption"] if drop_consumption and "consumption" in clf.layout.modalities else []
        out[subset] = (clf.score_tracks(test, drop=drop), clf)
    for variant in variants:
        clf = LanguageClassifier.load(models_dir / variant_model_name(variant, base or TrainSettings()))
        _, fallback = VARIANT_SETTINGS[variant]
        out[variant] = (clf.score_tracks(test, drop=["consumption"], fallback={"consumption": fallback}), clf)
    return out


def scored_rows(test: pd.DataFrame, scores: Mapping[str, tuple[np.ndarray | None, LanguageClassifier | None]],
                classes: Sequence[str], targets: Sequence[str], resamples: int = 1000, seed: int = 0) -> dict:
    """Per score set: macro mAP, its bootstrap 95 % interval and the per-language AP on ``test``."""
    labels = test["language"].to_numpy()
    rows = {}
    for name, (matrix, clf) in scores.items():
        if matrix is None:   # spoken-LID applied directly
            matrix = spoken_lid_direct_scores(test, classes)
        languages = clf.languages if clf is not None else classes
        table = language_metrics(labels, matrix, languages, thresholds=None, average_over=targets)
        low, high = map_interval(labels, matrix, languages, average_over=targets, resamples=resamples, seed=seed)
        rows[name] = {"map": table["avg"]["ap"], "interval": [low, high],
                      "ap": {lang: v["ap"] for lang, v in table.items() if lang != "avg"}}
    return rows


def _cell(row: Mapping | None) -> str:
    if not row or row.get("map") is None:
        return "–"
    low, high = row["interval"]
    return f"{row['map']:.3f} [{low:.3f}, {high:.3f}]"


def _num(value, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def quality_markdown(result: Mapping, figures: Sequence[str] = ()) -> str:
    """The benchmark's report page from its JSON result (benchmarks/bench_quality.py)."""
    cat, est = result["catalog"], result["size_estimate"]
    lines = [f"# Quality benchmark{' (quick: small catalogs, figures not for quoting)' if result['quick'] else ''}",
             "", f"Catalog A: {cat['tracks']} tracks ({cat['synth']}), {cat['labelled_tracks']} labelled, "
             f"{cat['test_tracks']} complete test tracks. Intervals: 95 % bootstrap over the test tracks.", "",
             "## Size estimate", "",
             f"Rule: {est['rule']}; target width {est['target_width']}; measured on {est['pilot_test_tracks']} "
             f"test tracks of a {est['pilot_catalog_tracks']}-track catalog.", "",
             "| subset | interval | width | test tracks needed | catalog tracks needed |", "|---|---|---:|---:|---:|"]
    for subset, row in est["subsets"].items():
        lines.append(f"| {subset} | [{row['interval'][0]:.3f}, {row['interval'][1]:.3f}] | {row['width']:.3f} | "
                     f"{row['test_tracks_needed']} | {row['catalog_tracks_needed']} |")
    lines += ["", "## Table 1 (test mAP [95 % interval]; P/R/F1 at tuned thresholds, macro)", "",
              "| subset | mAP [interval] | paper | P | R | F1 |", "|---|---|---:|---:|---:|---:|"]
    for subset, row in result["table1"].items():
        lines.append(f"| {subset} | {_cell(row)} | {_num(row.get('paper'))} | {_num(row.get('precision'))} | "
                     f"{_num(row.get('recall'))} | {_num(row.get('f1'))} |")
    if result["table2"]:
        low, high = result.get("table2_paper_range_augmented", (None, None))
        lines += ["", f"## Table 2 (consumption missing at test; the paper's augmented models: {low}-{high})", "",
                  "| variant | mAP [interval] |", "|---|---|"]
        lines += [f"| {v} | {_cell(row)} |" for v, row in result["table2"].items()]
    lines += ["", "## Calibration and checks", "", "| subset | mAP | paper range | verdict |", "|---|---:|---|---|"]
    for subset, c in result["calibration"].items():
        lines.append(f"| {subset} | {_num(c['map'])} | {c['target'][0]:.2f}–{c['target'][1]:.2f} | {c['status']} |")
    lines += ["", "| check | verdict | values |", "|---|---|---|"]
    lines += [f"| {c['check']} | {c['verdict']} | {c['detail']} |" for c in result["checks"]]
    tr = result["transfer"]
    lines += ["", f"## Transfer: catalog B ({tr['test_tracks']} test tracks; consumption {tr['consumption']})", "",
              "| model | trained on A (no retraining) | trained on B |", "|---|---|---|"]
    lines += [f"| {s} | {_cell(tr[s]['without_retraining'])} | {_cell(tr[s]['with_retraining'])} |"
              for s in ("audio", "multimodal")]
    if "by_modality_all_of_B" in tr:
        by = tr["by_modality_all_of_B"]
        lines += ["", f"Catalog A's models on all {by['tracks']} labelled tracks of B with audio (none seen by A; "
                  "consumption dropped):", "", "| A's model | mAP on B [interval] |", "|---|---|"]
        lines += [f"| {s} | {_cell(row)} |" for s, row in by.items() if s != "tracks"]
    lines += ["", "## Instrumentals (`zxx` tags)", "",
              "| catalog | instrumentals | tagged zxx | recall | sung tagged zxx | false-instrumental rate |",
              "|---|---:|---:|---:|---:|---:|"]
    for name, r in result["instrumentals"].items():
        lines.append(f"| {name} | {r['instrumentals']} | {r['tagged_zxx']} | {_num(r['recall'])} | "
                     f"{r['sung_tagged_zxx']} | {_num(r['false_instrumental_rate'])} |")
    lines += ["", "## Ablations on catalog A (audio and multimodal models)", "",
              "| row | overrides | audio | multimodal |", "|---|---|---|---|"]
    for name, row in result["ablations"].items():
        if "skipped" in row:
            lines.append(f"| {name} | {' '.join(row['overrides'])} | skipped: {row['skipped']} | |")
        else:
            lines.append(f"| {name} | {' '.join(row['overrides']) or '(defaults)'} | {_cell(row['audio'])} | "
                         f"{_cell(row['multimodal'])} |")
    secs = result["seconds"]
    lines += ["", "## Cost (wall and CPU seconds; CPU of this process and its descendants)", "",
              "| stage | wall s | CPU s |", "|---|---:|---:|"]
    lines += [f"| {name} | {s['wall']:.1f} | {s['cpu']:.1f} |" for name, s in secs["stages"].items()]
    lines.append(f"| **total** | {secs['total']['wall']:.1f} | {secs['total']['cpu']:.1f} |")
    lines += ["", "## Figures", ""] + [f"![{Path(f).stem}]({f})" for f in figures]
    return "\n".join(lines) + "\n"
