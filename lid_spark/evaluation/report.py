"""The paper's tables as JSON and markdown, the calibration against the paper, and the quality checks.

``table1.json``: ``{subset: {language: {"precision", "recall", "f1", "ap"}, "avg": {...}}}`` for the
subsets timbral, vocals, consumption, audio, multimodal and spoken_lid_direct.
``table2.json``: ``{variant: {language: {"ap"}, "avg": {"ap"}}}`` for baseline_Z, baseline_A, aug_Z,
aug_Z+G, aug_A, aug_A+G: one row per class of the catalog (its target languages, then ``ot``).
Languages without test tracks hold nulls. ``avg`` is the macro average over the target languages,
as in the paper over its ten (``ot`` is reported, not averaged).

Example
-------
>>> row = {"de": {"ap": 0.9}, "avg": {"ap": 0.9}}
>>> print(table2_markdown({"aug_A": row}).splitlines()[2])
| de | 0.900 |
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from lid_spark import OTHER_LANGUAGE, TARGET_LANGUAGES
from lid_spark.reports import write_json
from lid_spark.schemas import is_missing

TABLE1_SUBSETS = ("timbral", "vocals", "consumption", "audio", "multimodal", "spoken_lid_direct")
TABLE2_VARIANTS = ("baseline_Z", "baseline_A", "aug_Z", "aug_Z+G", "aug_A", "aug_A+G")
# The paper's single-modality mAPs (Table 1) and the ranges the synthetic world is calibrated to.
PAPER_MAP = {"timbral": 0.622, "vocals": 0.920, "consumption": 0.981, "audio": 0.949, "multimodal": 0.995,
             "spoken_lid_direct": 0.610}
CALIBRATION_RANGES = {"timbral": (0.60, 0.70), "vocals": (0.87, 0.93), "consumption": (0.96, 0.98)}
_TITLES = {"timbral": "Timbral", "vocals": "Vocals", "consumption": "Consumption", "audio": "Audio",
           "multimodal": "Multimodal", "spoken_lid_direct": "Spoken-LID direct"}


def _fmt(value) -> str:
    return "–" if is_missing(value) else f"{value:.3f}"


def _rows(table: Mapping) -> list[str]:
    """The classes in the table's order (targets, then ``ot``), then ``avg``."""
    first = next(iter(table.values()))
    languages = [lang for lang in first if lang not in ("avg", OTHER_LANGUAGE)]
    return languages + ([OTHER_LANGUAGE] if OTHER_LANGUAGE in first else []) + ["avg"]


def table1_markdown(table1: Mapping) -> str:
    """Table 1 as markdown: one row per language, P/R/F/AP per subset."""
    subsets = list(table1)
    head = ("| Language | " + " | ".join(f"{_TITLES.get(s, s)} {k}" for s in subsets for k in ("P", "R", "F", "AP"))
            + " |")
    rule = "|---|" + "---:|" * (4 * len(subsets))
    lines = [head, rule]
    for lang in _rows(table1):
        cells = [_fmt(table1[s][lang].get(k)) for s in subsets for k in ("precision", "recall", "f1", "ap")]
        lines.append(f"| {'Avg.' if lang == 'avg' else lang} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table2_markdown(table2: Mapping) -> str:
    """Table 2 as markdown: AP per language for each missing-consumption variant."""
    variants = list(table2)
    if not variants:  # evaluation.table2=false
        return "Not run (evaluation.table2 is false)."
    lines = ["| Language | " + " | ".join(variants) + " |", "|---|" + "---:|" * len(variants)]
    for lang in _rows(table2):
        lines.append(f"| {'Avg.' if lang == 'avg' else lang} | "
                     + " | ".join(_fmt(table2[v][lang]["ap"]) for v in variants) + " |")
    return "\n".join(lines)


def _avg(table: Mapping, key: str):
    value = table.get(key, {}).get("avg", {}).get("ap")
    return None if value is None else float(value)


def calibration(table1: Mapping) -> dict[str, dict]:
    """Single-modality mAPs against the ranges the synthetic world should land in (the paper's)."""
    out = {}
    for subset, (low, high) in CALIBRATION_RANGES.items():
        value = _avg(table1, subset)
        out[subset] = {"map": value, "paper": PAPER_MAP[subset], "target": [low, high],
                       "status": "n/a" if value is None else ("in range" if low <= value <= high
                                                              else ("too easy" if value > high else "too hard"))}
    return out


def best_augmented(table2: Mapping) -> str | None:
    """The Table 2 ``aug_*`` variant with the highest mAP (None when Table 2 was not run)."""
    augmented = {v: _avg(table2, v) for v in TABLE2_VARIANTS if v.startswith("aug_")}
    return max((v for v in augmented if augmented[v] is not None), key=lambda v: augmented[v], default=None)


def ordering_pairs(table2: Mapping) -> list[tuple[str, str, float]]:
    """(a, b, margin) for every check of the form mAP(a) - mAP(b) > -margin: the ordering of the
    paper (margin 0) and the best augmented model against audio-only (margin 0.01)."""
    pairs = [("multimodal", "consumption", 0.0), ("audio", "vocals", 0.0), ("vocals", "timbral", 0.0),
             ("vocals", "spoken_lid_direct", 0.0)]
    best = best_augmented(table2)
    return ([(best, "audio", 0.01)] if best else []) + pairs


def quality_checks(table1: Mapping, table2: Mapping, intervals: Mapping[tuple[str, str], tuple[float, float]]
                   | None = None) -> list[dict]:
    """The issue's acceptance criteria and the paper's ordering, each with its values and a verdict.

    ``intervals`` maps (a, b) to the paired bootstrap 95 % interval of mAP(a) - mAP(b) on the test
    tracks (:func:`lid_spark.metrics.map_difference_interval`); a comparison check then
    also says whether the test set can tell the two apart (``significant``: the interval lies wholly
    on one side of the check's bound).
    """
    m = {s: _avg(table1, s) for s in TABLE1_SUBSETS}
    best_aug = best_augmented(table2)
    intervals = intervals or {}
    margins = {(a, b): margin for a, b, margin in ordering_pairs(table2)}
    checks = []

    def check(name: str, ok, detail: str, pair: tuple[str, str] | None = None):
        entry = {"check": name, "pass": None if ok is None else bool(ok), "detail": detail}
        if pair in intervals:
            low, high = intervals[pair]
            bound = -margins[pair]
            entry["interval"] = [low, high]
            entry["significant"] = bool(low > bound or high < bound)
            entry["detail"] += f"; difference 95% interval [{low:+.3f}, {high:+.3f}]"
        checks.append(entry)

    def known(*values):
        return all(v is not None for v in values)

    check("multimodal mAP >= 0.99", m["multimodal"] >= 0.99 if known(m["multimodal"]) else None,
          f"multimodal {_fmt(m['multimodal'])}")
    check("audio mAP >= 0.95", m["audio"] >= 0.95 if known(m["audio"]) else None, f"audio {_fmt(m['audio'])}")
    aug = _avg(table2, best_aug) if best_aug else None
    check("augmented model without consumption within 0.01 of audio",
          aug >= m["audio"] - 0.01 if known(aug, m["audio"]) else None,
          f"{best_aug} {_fmt(aug)} vs audio {_fmt(m['audio'])}" if best_aug else "Table 2 not run",
          (best_aug, "audio"))
    for better, worse, _ in ordering_pairs({}):
        check(f"{better} > {worse}", m[better] > m[worse] if known(m[better], m[worse]) else None,
              f"{better} {_fmt(m[better])} vs {worse} {_fmt(m[worse])}", (better, worse))
    return checks


def verdict(check: Mapping) -> str:
    """pass / FAIL / n/a; a failed comparison the test set cannot resolve says so."""
    if check["pass"] is None:
        return "n/a"
    if check["pass"]:
        return "pass"
    return "FAIL (within test noise)" if check.get("significant") is False else "FAIL"


def report_markdown(table1: Mapping, table2: Mapping, counts: Mapping[str, int], models: Mapping[str, str],
                    figures: list[str], intervals: Mapping | None = None,
                    targets: tuple[str, ...] = TARGET_LANGUAGES, instrumental: Mapping | None = None) -> str:
    """The whole report page: data counts, Table 1, Table 2, calibration, checks, figures."""
    cal = calibration(table1)
    checks = quality_checks(table1, table2, intervals)
    parts = ["# lid-spark evaluation", "",
             "Test set: labelled tracks of the test artists that have every modality (consumption, timbral, "
             "vocals), so that every column of Table 1 is measured on the same tracks. Thresholds for P/R/F1 "
             f"were tuned for F1 on the validation artists. Avg. is the macro average over the {len(targets)} "
             f"target languages ({', '.join(targets)}; the paper averages its ten); `ot` is shown but not "
             "averaged.", "",
             "## Data", "", "| count | value |", "|---|---:|"]
    parts += [f"| {k} | {v} |" for k, v in counts.items()]
    parts += ["", "## Table 1: feature subsets (P, R, F1 at tuned thresholds; AP)", "", table1_markdown(table1), "",
              "## Table 2: multimodal model, consumption dropped from the test set (AP)", "",
              table2_markdown(table2), "",
              "## Calibration of the synthetic world against the paper", "",
              "| subset | mAP here | paper | target range | status |", "|---|---:|---:|---|---|"]
    for subset, c in cal.items():
        parts.append(f"| {subset} | {_fmt(c['map'])} | {c['paper']:.3f} | {c['target'][0]:.2f}–{c['target'][1]:.2f}"
                     f" | {c['status']} |")
    parts += ["", "## Quality checks", ""]
    if intervals:
        parts += ["Comparisons carry the paired bootstrap 95% interval of the mAP difference over the test "
                  "tracks (1000 resamples). A failed check whose interval reaches across its bound is marked "
                  "*within test noise*: this test set cannot tell the two models apart, so the check neither "
                  "holds nor fails on it.", ""]
    parts += ["| check | result | values |", "|---|---|---|"]
    for c in checks:
        parts.append(f"| {c['check']} | {verdict(c)} | {c['detail']} |")
    if instrumental:
        from lid_spark.evaluation.instrumental import instrumental_markdown

        parts += [""] + instrumental_markdown(instrumental)
    parts += ["", "## Models", "", "| model | version |", "|---|---|"]
    parts += [f"| {name} | {version} |" for name, version in models.items()]
    parts += ["", "## Figures", ""] + [f"![{Path(f).stem}]({Path(f).name})" for f in figures]
    return "\n".join(parts) + "\n"


def write_report(report_dir, table1: Mapping, table2: Mapping, counts: Mapping[str, int],
                 models: Mapping[str, str], figures: list[str], intervals: Mapping | None = None,
                 targets: tuple[str, ...] = TARGET_LANGUAGES, instrumental: Mapping | None = None,
                 confidence: Mapping | None = None, confidence_section: str | None = None) -> dict[str, Path]:
    """Write table1.json, table2.json, calibration.json (the synthetic world against the paper),
    instrumental.json (zxx rates, when given), confidence.json (the production model's score
    calibration, precision target and guard, when given) and report.md into ``report_dir``."""
    out = Path(report_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"table1": out / "table1.json", "table2": out / "table2.json",
             "calibration": out / "calibration.json", "report": out / "report.md"}
    write_json(paths["table1"], table1)
    write_json(paths["table2"], table2)
    write_json(paths["calibration"], {"calibration": calibration(table1),
                                      "checks": quality_checks(table1, table2, intervals)})
    if instrumental:
        paths["instrumental"] = out / "instrumental.json"
        write_json(paths["instrumental"], instrumental)
    page = report_markdown(table1, table2, counts, models, figures, intervals, targets, instrumental)
    if confidence is not None:
        paths["confidence"] = out / "confidence.json"
        write_json(paths["confidence"], confidence)
    if confidence_section:
        page += "\n" + confidence_section + "\n"
    paths["report"].write_text(page, encoding="utf-8")
    return paths
