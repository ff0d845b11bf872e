"""Quality on catalogs large enough to resolve the goals: Table 1/2 with intervals, transfer, instrumentals, ablations.

1. Catalog A (`lid-spark synth` defaults, the demo's world), cached under --cache by a digest of its
   synth settings; every stage of the pipeline on it (lid_spark.stages, the demo's configuration).
2. Table 1 and Table 2 from the saved models on A's test split, each macro mAP with its 95 % bootstrap
   interval, the paper's values beside ours, the evaluation's calibration verdicts and quality checks.
3. The size estimate: the test tracks (and catalog tracks) for a 95 % interval of macro mAP no wider
   than --target-width for audio and multimodal, from the intervals measured on A (width ~ 1/sqrt(n)).
   In the full run, A is first a pilot of --pilot-tracks, then rebuilt at the estimated size
   (capped by --max-tracks); --tracks skips the estimate's rebuild.
4. Transfer: catalog B (conf/examples/second_catalog.yaml) through the same pipeline (its own
   audio and multimodal models: "with retraining"); B's audio features extracted again with A's
   codebook and scored by A's audio and multimodal models ("without retraining"; the multimodal
   model with consumption at its fallback, since B's embeddings are another space).
5. Instrumentals: recall and false-instrumental rate of `zxx` tags (language_tags vs the truth).
6. Ablations on A: every other separation backend (lid_spark.audio.separation.BACKENDS; a backend that
   cannot run here is listed as skipped with the reason) and the classifier choices of
   lid_spark.evaluation.quality.CLASSIFIER_ABLATIONS, audio and multimodal models.
7. Cost: wall and CPU seconds (this process and its descendants: the Spark JVM, its Python workers)
   per stage.

    python benchmarks/bench_quality.py --quick --out /tmp/q     # small catalogs: about 10 min, idle 2 cores
    python benchmarks/bench_quality.py --out quality-full       # pilot, estimated size, everything

Prints ONE JSON object; writes <out>/bench_quality.json, <out>/bench_quality.md and PNG plots.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

QUICK = {"tracks": 132, "seconds": 8.0, "users": 150}
FULL_PILOT = 528          # the demo catalog: the size the estimate starts from
# A's models scored on all of B: which modality carries over (consumption dropped: another space).
DIAGNOSIS_SUBSETS = ("timbral", "vocals", "spoken_lid_direct", "audio", "multimodal")
SECOND_CATALOG = Path(__file__).resolve().parents[1] / "conf" / "examples" / "second_catalog.yaml"


def run_catalog(spark, name: str, out: Path, cache: Path, synth: dict, cost, files=(), extra=()):
    """A catalog (cached by its synth settings) through every stage; returns its config and directory."""
    from lid_spark.evaluation.quality import settings_key
    from lid_spark.stages import PIPELINE
    from lid_spark.stages.demo import catalog_config, demo_config
    from lid_spark.tools.synth.world import build_world

    overrides = [f"synth.{k}={v}" for k, v in synth.items()] + ["evaluation.mlflow.enabled=false", *extra]
    cfg = demo_config(out / name, files, overrides)
    key = settings_key({k: v for k, v in cfg.synth.to_dict().items() if k != "workers"})
    catalog = cache / f"catalog-{key}"
    marker = catalog / "settings.json"
    if not marker.exists():
        with cost.measure(f"{name}: synth"):
            build_world(catalog, cfg)
        marker.write_text(json.dumps(cfg.synth.to_dict(), sort_keys=True, default=str), encoding="utf-8")
    cfg = catalog_config(cfg, catalog)
    cfg.write_yaml(out / name / "config.yaml")
    reports = {}
    for stage_name, stage in PIPELINE.items():
        with cost.measure(f"{name}: {stage_name}"):
            reports[stage_name] = stage.run(spark, cfg)
    return cfg, catalog, reports


def table_rows(spark, cfg, subsets, variants, resamples):
    from lid_spark.evaluation.quality import saved_model_scores, scored_rows
    from lid_spark.model.dataset import load_labelled
    from lid_spark.model.train import TrainSettings

    data = load_labelled(spark, cfg)
    test = data.split("test", complete=True)
    scores = saved_model_scores(test, cfg.output.models_dir, subsets, variants, TrainSettings.from_config(cfg))
    return data, test, scored_rows(test, scores, data.classes, data.targets, resamples, cfg.classifier.seed)


def instrumentals(spark, cfg, catalog: Path) -> dict:
    import pandas as pd

    from lid_spark.evaluation.quality import instrumental_rates
    from lid_spark.tables import read_table, resolve_table

    tags = read_table(spark, resolve_table(cfg, "language_tags")).select("track_id", "language").toPandas()
    return instrumental_rates(pd.read_parquet(catalog / "truth"), tags)


def transfer(spark, cfg_a, cfg_b, cost, out: Path, resamples: int) -> dict:
    """A's audio and multimodal models on B (A's codebook), and B's own, on the same test tracks of B."""
    from lid_spark.evaluation.quality import audio_table_overrides, saved_model_scores, scored_rows
    from lid_spark.model.dataset import load_labelled
    from lid_spark.stages import extract_features
    from lid_spark.tables import resolve_table

    cfg_t = cfg_b.with_overrides([f"output.models_dir={cfg_a.output.models_dir}",
                                  f"output.report_dir={out / 'B' / 'report-transfer'}",
                                  *audio_table_overrides("codebook_a")])
    with cost.measure("B: extract_features with A's codebook"):
        extract_features.run(spark, cfg_t)
    own, moved = load_labelled(spark, cfg_b), load_labelled(spark, cfg_t)
    ids = set(own.split("test", complete=True)["track_id"]) & set(moved.split("test", complete=True)["track_id"])
    test_own = own.split("test", complete=True).query("track_id in @ids").reset_index(drop=True)
    test_moved = moved.split("test", complete=True).query("track_id in @ids").reset_index(drop=True)
    space_differs = resolve_table(cfg_a, "consumption_embeddings") != resolve_table(cfg_b, "consumption_embeddings")
    seed = cfg_a.classifier.seed
    without = scored_rows(test_moved, saved_model_scores(test_moved, cfg_a.output.models_dir, ["audio", "multimodal"],
                                                         drop_consumption=space_differs),
                          own.classes, own.targets, resamples, seed)
    with_ = scored_rows(test_own, saved_model_scores(test_own, cfg_b.output.models_dir, ["audio", "multimodal"]),
                        own.classes, own.targets, resamples, seed)
    # Which modality fails to transfer: each of A's models on every labelled track of B with the
    # audio modalities (A never saw any of B, so all of them are test tracks for it: tighter intervals).
    every = moved.frame[moved.frame["has_timbral"] & moved.frame["has_vocals"]].reset_index(drop=True)
    diagnosis = scored_rows(every, saved_model_scores(every, cfg_a.output.models_dir, DIAGNOSIS_SUBSETS,
                                                      drop_consumption=True),
                            own.classes, own.targets, resamples, seed)
    return {"test_tracks": len(ids), "consumption": "dropped (B's embeddings are another space)" if space_differs
            else "kept", **{s: {"without_retraining": without[s], "with_retraining": with_[s]}
                            for s in ("audio", "multimodal")},
            "by_modality_all_of_B": {"tracks": len(every), **diagnosis}}


def separator_available(cfg) -> str | None:
    """None when the configured separator runs here, else why not."""
    import numpy as np

    from lid_spark.audio.separation import separator_from_config

    try:
        separator_from_config(cfg).separate(np.zeros(cfg.audio.sample_rate, np.float32), cfg.audio.sample_rate)
    except Exception as error:  # noqa: BLE001 (any failure: the row is skipped with its reason)
        return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:300]
    return None


def ablations(spark, cfg_a, wanted, cost, out: Path, resamples: int, baseline: dict) -> dict:
    from lid_spark.audio.separation import BACKENDS
    from lid_spark.audio.timbral import codebook_dir
    from lid_spark.evaluation.quality import ablation_rows, audio_table_overrides
    from lid_spark.stages import evaluate, extract_features

    rows = {"default": {"overrides": [], **{s: baseline[s] for s in ("audio", "multimodal")}}}
    for name, overrides in ablation_rows(BACKENDS, cfg_a.audio.separation.backend).items():
        if wanted is not None and name not in wanted:
            continue
        slug = "".join(c if c.isalnum() else "_" for c in name)
        where = out / "A" / "ablations" / slug
        cfg = cfg_a.with_overrides([*overrides, f"output.models_dir={where / 'models'}",
                                    f"output.report_dir={where / 'report'}",
                                    "evaluation.subsets=[audio, multimodal]", "evaluation.table2=false"])
        if name.startswith("separator="):
            why = separator_available(cfg)
            if why:
                rows[name] = {"overrides": overrides, "skipped": why}
                continue
            shutil.copytree(codebook_dir(cfg_a), codebook_dir(cfg), dirs_exist_ok=True)
            cfg = cfg.with_overrides(audio_table_overrides(slug))
            with cost.measure(f"ablation {name}: extract_features"):
                extract_features.run(spark, cfg)
        with cost.measure(f"ablation {name}: evaluate"):
            evaluate.run(spark, cfg)
        _, test, scored = table_rows(spark, cfg, ["audio", "multimodal"], [], resamples)
        rows[name] = {"overrides": overrides, "test_tracks": len(test), **scored}
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=f"small catalogs ({QUICK}); no rebuild at the estimate")
    parser.add_argument("--out", default="bench-quality-out", help="tables, models, the report and plots")
    parser.add_argument("--cache", default=None, help="catalogs, by settings digest (default <out>/../bench-quality-"
                                                      "cache)")
    parser.add_argument("--tracks", type=int, default=None, help="catalog size (skips the full run's estimate)")
    parser.add_argument("--seconds", type=float, default=None, help="track length (default: synth's)")
    parser.add_argument("--users", type=int, default=None, help="listeners (default: synth's)")
    parser.add_argument("--synth", action="append", default=[], help="another synth key=value for both catalogs")
    parser.add_argument("--pilot-tracks", type=int, default=FULL_PILOT)
    parser.add_argument("--max-tracks", type=int, default=20000, help="cap on the estimated catalog size")
    parser.add_argument("--target-width", type=float, default=0.01)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--ablations", default="all", help="'all', 'none' or comma-separated row names")
    parser.add_argument("--no-table2", action="store_true", help="skip Table 2's five extra multimodal models")
    args = parser.parse_args(argv)

    from lid_spark.config import CONF_DIR, load_config
    from lid_spark.evaluation.plots import plot_intervals, plot_stage_seconds
    from lid_spark.evaluation.quality import quality_markdown, size_estimate
    from lid_spark.evaluation.report import PAPER_MAP, TABLE1_SUBSETS, TABLE2_VARIANTS, calibration, verdict
    from lid_spark.processes import StageCost
    from lid_spark.spark import get_spark

    started = time.perf_counter()
    out = Path(args.out).resolve()
    cache = Path(args.cache).resolve() if args.cache else out.parent / "bench-quality-cache"
    out.mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    cost = StageCost()
    synth = dict(kv.split("=", 1) for kv in args.synth)
    if args.quick:
        synth = {**QUICK, **synth}
    for key in ("seconds", "users"):
        if getattr(args, key) is not None:
            synth[key] = getattr(args, key)
    synth["tracks"] = args.tracks or synth.get("tracks") or args.pilot_tracks
    table2 = not args.no_table2
    extra = [f"evaluation.table2={'true' if table2 else 'false'}"]
    with cost.measure("spark start"):
        spark = get_spark(load_config([CONF_DIR / "demo.yaml"], []))

    variants = TABLE2_VARIANTS if table2 else ()
    pilot = not (args.quick or args.tracks)
    # The pilot only needs the two models the estimate is about.
    pilot_extra = ["evaluation.subsets=[audio, multimodal]", "evaluation.table2=false"]
    cfg_a, catalog_a, reports = run_catalog(spark, "pilot" if pilot else "A", out, cache, synth, cost,
                                            extra=pilot_extra if pilot else extra)
    subsets = ("audio", "multimodal") if pilot else TABLE1_SUBSETS
    data, test, rows = table_rows(spark, cfg_a, subsets, () if pilot else variants, args.resamples)
    estimate = size_estimate({s: rows[s]["interval"] for s in ("audio", "multimodal")}, len(test),
                             int(synth["tracks"]), args.target_width)
    estimate["pilot"] = pilot
    estimate["pilot_map"] = {s: rows[s]["map"] for s in ("audio", "multimodal")}
    (out / "size_estimate.json").write_text(json.dumps(estimate, indent=1), encoding="utf-8")
    print(f"size estimate: {json.dumps(estimate)}", file=sys.stderr, flush=True)
    if pilot:   # rebuild A at the estimated size and measure everything there
        defaults = load_config([], []).synth
        synth["tracks"] = min(args.max_tracks, max(int(synth["tracks"]), estimate["catalog_tracks_needed"]))
        if args.users is None:   # listeners grow with the catalog, so plays per track stay the demo's
            synth["users"] = math.ceil(defaults.users * synth["tracks"] / defaults.tracks)
        cfg_a, catalog_a, reports = run_catalog(spark, "A", out, cache, synth, cost, extra=extra)
        data, test, rows = table_rows(spark, cfg_a, TABLE1_SUBSETS, variants, args.resamples)
    evaluation = reports["evaluate"]

    checks = [{**c, "verdict": verdict(c)} for c in evaluation["checks"]]
    result = {
        "benchmark": "quality", "quick": bool(args.quick),
        "catalog": {"tracks": int(synth["tracks"]), "synth": synth, "labelled_tracks": data.counts["labelled_tracks"],
                    "test_tracks": len(test), "directory": str(catalog_a)},
        "size_estimate": estimate,
        "table1": {s: {**rows[s], "paper": PAPER_MAP.get(s),
                       **{k: evaluation["table1"][s]["avg"].get(k) for k in ("precision", "recall", "f1")}}
                   for s in TABLE1_SUBSETS},
        "table2": {v: rows[v] for v in variants},
        "calibration": calibration(evaluation["table1"]),
        "checks": checks,
    }
    result["table2_paper_range_augmented"] = [0.911, 0.940]
    cfg_b, catalog_b, _ = run_catalog(spark, "B", out, cache, synth, cost, files=[SECOND_CATALOG],
                                      extra=["evaluation.subsets=[audio, multimodal]", "evaluation.table2=false"])
    result["transfer"] = transfer(spark, cfg_a, cfg_b, cost, out, args.resamples)
    result["instrumentals"] = {"A": instrumentals(spark, cfg_a, catalog_a), "B": instrumentals(spark, cfg_b, catalog_b)}
    wanted = None if args.ablations == "all" else set() if args.ablations == "none" else set(args.ablations.split(","))
    result["ablations"] = ablations(spark, cfg_a, wanted, cost, out, args.resamples, rows)
    result["seconds"] = {"stages": cost.seconds, "total": {**cost.total(), "wall": time.perf_counter() - started}}

    figures = [
        plot_intervals(result["table1"], out / "table1_intervals.png", "Table 1: test mAP, catalog A",
                       reference=PAPER_MAP),
        plot_intervals({f"{s} {k.replace('_', ' ')}": v for s in ("audio", "multimodal")
                        for k, v in result["transfer"][s].items()}, out / "transfer.png",
                       "Transfer: catalog B's test mAP"),
        plot_intervals({n: r["audio"] for n, r in result["ablations"].items() if "audio" in r},
                       out / "ablations_audio.png", "Ablations: audio model"),
        plot_intervals({n: r["multimodal"] for n, r in result["ablations"].items() if "multimodal" in r},
                       out / "ablations_multimodal.png", "Ablations: multimodal model"),
        plot_stage_seconds(cost.seconds, out / "seconds.png"),
    ]
    if table2:
        figures.insert(1, plot_intervals(result["table2"], out / "table2_intervals.png",
                                         "Table 2: consumption missing, catalog A"))
    result["report"] = str(out / "bench_quality.md")
    (out / "bench_quality.md").write_text(quality_markdown(result, [Path(f).name for f in figures]), encoding="utf-8")
    (out / "bench_quality.json").write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
