"""The quality benchmark: its arithmetic (lid_spark.evaluation.quality, metrics.map_interval, processes.StageCost)
and, slow, one end-to-end run of benchmarks/bench_quality.py --quick on tiny catalogs."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lid_spark.audio.separation import BACKENDS
from lid_spark.errors import ParameterError
from lid_spark.evaluation.quality import (
    CLASSIFIER_ABLATIONS,
    ablation_rows,
    audio_table_overrides,
    catalog_tracks_for,
    instrumental_rates,
    settings_key,
    size_estimate,
    tracks_for_interval_width,
    variant_model_name,
)
from lid_spark.metrics import map_interval
from lid_spark.model.train import TrainSettings
from lid_spark.processes import StageCost, tree_cpu_seconds

ROOT = Path(__file__).resolve().parents[1]


def test_interval_width_shrinks_as_one_over_root_n_so_four_times_narrower_needs_sixteen_times_the_tracks():
    assert tracks_for_interval_width(0.04, 100, 0.01) == 1600
    assert tracks_for_interval_width(0.02, 77, 0.01) == 308
    # already narrow enough: no fewer tracks than measured
    assert tracks_for_interval_width(0.005, 77, 0.01) == 77
    assert catalog_tracks_for(1600, 80, 528) == 10560
    with pytest.raises(ParameterError):
        tracks_for_interval_width(0.04, 0, 0.01)
    with pytest.raises(ParameterError):
        catalog_tracks_for(100, 0, 528)


def test_size_estimate_takes_the_widest_subset():
    est = size_estimate({"audio": (0.90, 0.96), "multimodal": (0.99, 1.0)}, test_tracks=80, catalog_tracks=528)
    assert est["subsets"]["audio"]["test_tracks_needed"] == 2880
    assert est["subsets"]["multimodal"]["test_tracks_needed"] == 80
    assert est["test_tracks_needed"] == 2880
    assert est["catalog_tracks_needed"] == catalog_tracks_for(2880, 80, 528)


def test_map_interval_narrows_with_more_tracks_and_holds_the_point_estimate():
    rng = np.random.default_rng(0)
    languages = ["de", "en", "ot"]

    def noisy(n):
        labels = np.array(languages)[rng.integers(0, 3, n)]
        scores = rng.random((n, 3)) + 0.8 * (labels[:, None] == np.array(languages)[None, :])
        return labels, scores

    small, large = noisy(60), noisy(960)
    lo_s, hi_s = map_interval(*small, languages, average_over=["de", "en"], resamples=300)
    lo_l, hi_l = map_interval(*large, languages, average_over=["de", "en"], resamples=300)
    assert 0 < lo_s < hi_s <= 1 and 0 < lo_l < hi_l <= 1
    # 16x the tracks: about a quarter of the width (allow bootstrap noise)
    assert 0.15 < (hi_l - lo_l) / (hi_s - lo_s) < 0.4
    with pytest.raises(ParameterError):
        map_interval(["de"], np.zeros((2, 3)), languages)


def test_settings_key_is_order_free_and_changes_with_any_value():
    a = {"tracks": 528, "seed": 7, "vocal_level_db": [-6.0, 6.0]}
    assert settings_key(a) == settings_key(dict(reversed(list(a.items()))))
    assert settings_key(a) != settings_key({**a, "seed": 8})
    assert settings_key(a) != settings_key({**a, "vocal_level_db": [-9.0, 6.0]})


def test_instrumental_rates_count_recall_and_false_instrumentals_and_untagged_tracks():
    truth = pd.DataFrame({"track_id": list("abcdef"), "is_instrumental": [True, True, False, False, False, False]})
    tags = pd.DataFrame({"track_id": list("abcde"), "language": ["zxx", "en", "zxx", "de", "en"]})
    r = instrumental_rates(truth, tags)
    assert (r["instrumentals"], r["tagged_zxx"], r["recall"]) == (2, 1, 0.5)
    assert (r["sung"], r["sung_tagged_zxx"], r["false_instrumental_rate"]) == (4, 1, 0.25)


def test_ablation_rows_follow_the_backends_and_the_classifier_keys_exist():
    rows = ablation_rows(BACKENDS, "softmask")
    assert [r for r in rows if r.startswith("separator=")] == [f"separator={b}" for b in BACKENDS if b != "softmask"]
    assert "separator=pretrained" in ablation_rows((*BACKENDS, "pretrained"), "softmask")
    from lid_spark.config import load_config

    cfg = load_config([], [])
    for overrides in CLASSIFIER_ABLATIONS.values():
        cfg.with_overrides(overrides)   # an unknown key or value fails here
    assert audio_table_overrides("separator=x") == [
        "tables.names.vocal_segments=vocal_segments_separator_x", "tables.names.timbral_features=timbral_features_"
        "separator_x", "tables.names.audio_status=audio_status_separator_x"]
    cfg.with_overrides(audio_table_overrides("separator=x"))


def test_variant_model_names_match_the_experiment_runner():
    base = TrainSettings(augment_missing_consumption="A")
    assert variant_model_name("aug_A", base) == "multimodal"
    assert variant_model_name("aug_Z+G", base) == "multimodal-aug-Z+G"
    assert variant_model_name("baseline_Z", base) == variant_model_name("baseline_A", base) == "multimodal-aug-none"


def test_stage_cost_counts_the_cpu_of_child_processes():
    cost = StageCost()
    before = tree_cpu_seconds()
    with cost.measure("child"):
        subprocess.run([sys.executable, "-c", "t=__import__('time').process_time()\n"
                        "while __import__('time').process_time() - t < 0.5: pass"], check=True)
    with cost.measure("sleep"):
        time.sleep(0.2)
    assert cost.seconds["child"]["cpu"] >= 0.4
    assert cost.seconds["sleep"]["cpu"] < 0.15 and cost.seconds["sleep"]["wall"] >= 0.2
    assert tree_cpu_seconds() >= before + 0.4
    assert cost.total()["cpu"] == pytest.approx(cost.seconds["child"]["cpu"] + cost.seconds["sleep"]["cpu"])


def test_tree_cpu_keeps_the_time_of_workers_whose_parent_never_collects_them():
    # As Spark's Python daemon: SIGCHLD ignored, so an exited worker's time reaches no parent's cutime.
    # The parent waits until the worker is done (and gone), so the worker stays in the tree while it runs.
    script = ("import os, signal, time\n"
              "signal.signal(signal.SIGCHLD, signal.SIG_IGN)\n"
              "r, w = os.pipe()\n"
              "if os.fork() == 0:\n"
              "    t = time.process_time()\n"
              "    while time.process_time() - t < 1.2: pass\n"
              "    os.write(w, b'x')\n"
              "    os._exit(0)\n"
              "os.read(r, 1)\n"
              "time.sleep(0.5)\n")
    cost = StageCost()
    with cost.measure("daemon"):
        subprocess.run([sys.executable, "-c", script], check=True)
    assert cost.seconds["daemon"]["cpu"] >= 0.9
    # one reading after the fact cannot see it: the sampling is what keeps it
    before = tree_cpu_seconds()
    subprocess.run([sys.executable, "-c", script], check=True)
    assert tree_cpu_seconds() - before < 0.6


@pytest.mark.slow
def test_bench_quality_quick_prints_every_key_with_figures_in_range(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_quality.py"), "--quick", "--tracks", "66", "--seconds", "5",
         "--users", "80", "--synth", "tracks_per_artist=1.5", "--resamples", "100",
         "--ablations", "channels=8,separator=spleeter", "--out", str(out), "--cache", str(tmp_path / "cache")],
        capture_output=True, text=True, timeout=3000, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_quick_result(json.loads(proc.stdout.strip().splitlines()[-1]), out)


def check_quick_result(result: dict, out: Path) -> None:
    """The keys, ranges and files of a bench_quality --quick run of the test's sizes."""
    for key in ("table1", "table2", "transfer", "instrumentals", "seconds", "ablations", "size_estimate"):
        assert key in result, key

    def in_range(row):   # a percentile interval need not hold the point estimate: both checked apart
        low, high = row["interval"]
        assert 0.0 <= low <= high <= 1.0 and 0.0 <= row["map"] <= 1.0, row

    for subset in ("timbral", "vocals", "consumption", "audio", "multimodal", "spoken_lid_direct"):
        in_range(result["table1"][subset])
    assert set(result["table2"]) == {"baseline_Z", "baseline_A", "aug_Z", "aug_Z+G", "aug_A", "aug_A+G"}
    for row in result["table2"].values():
        in_range(row)
    for subset in ("audio", "multimodal"):
        in_range(result["transfer"][subset]["without_retraining"])
        in_range(result["transfer"][subset]["with_retraining"])
    assert result["transfer"]["test_tracks"] > 0
    by_modality = result["transfer"]["by_modality_all_of_B"]
    assert by_modality["tracks"] >= result["transfer"]["test_tracks"]
    for subset in ("timbral", "vocals", "spoken_lid_direct", "audio", "multimodal"):
        in_range(by_modality[subset])
    assert result["size_estimate"]["catalog_tracks_needed"] >= 66
    for name in ("A", "B"):
        r = result["instrumentals"][name]
        assert r["instrumentals"] > 0 and 0 <= r["recall"] <= 1 and 0 <= r["false_instrumental_rate"] <= 1
    assert set(result["ablations"]) == {"default", "channels=8", "separator=spleeter"}
    in_range(result["ablations"]["channels=8"]["audio"])
    spleeter = result["ablations"]["separator=spleeter"]
    if "skipped" in spleeter:   # no Spleeter environment or model here: the row names the error that stopped it
        assert spleeter["skipped"].split(":")[0].endswith(("Error", "Unavailable")), spleeter
    else:
        in_range(spleeter["audio"])
    stages = result["seconds"]["stages"]
    for stage in ("A: synth", "A: extract_features", "A: evaluate", "B: evaluate", "ablation channels=8: evaluate"):
        assert stages[stage]["wall"] > 0, stage
    # Spark's JVM and Python workers are descendants: extraction must cost CPU beyond the driver's
    assert stages["A: extract_features"]["cpu"] > 1.0
    report = (out / "bench_quality.md").read_text()
    assert "## Transfer" in report and "## Ablations" in report
    for png in ("table1_intervals.png", "table2_intervals.png", "transfer.png", "seconds.png"):
        assert (out / png).stat().st_size > 1000, png
