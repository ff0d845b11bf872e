"""Vocal separation: Spleeter (its own environment, driven over pipes) next to the softmask default.

Both backends separate the same held-out synthetic songs (true stems known); the figures are the mean
vocal SDR and SI-SDR against the true vocals, and throughput in seconds of audio per second of wall
time (CPU, one process each; Spleeter's one-off start-up is reported apart). The mixture itself is the
floor every separator must beat.

Without --params, a small 2-stem model is first trained by `spleeter train` on other synthetic songs
(its training time is reported); with --params spleeter:2stems and --models DIR, Deezer's released
model is measured instead.

    python benchmarks/bench_separation.py [--quick] [--params spleeter:2stems --models DIR]

Prints ONE JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from lid_spark.audio.separation import SoftMaskSeparator, sdr, si_sdr  # noqa: E402
from lid_spark.audio.separation.spleeter_process import SpleeterSeparator  # noqa: E402
from lid_spark.tools.spleeter.env import build_spleeter_env  # noqa: E402
from lid_spark.tools.spleeter.training import sung_stems, train_spleeter, training_config, write_training_set  # noqa: E402

SR = 16000


def measure(separator, songs) -> dict:
    sdrs, si_sdrs, seconds, audio = [], [], 0.0, 0.0
    for vocals, backing in songs:
        mix = vocals + backing
        started = time.perf_counter()
        estimate = separator.separate(mix, SR)
        seconds += time.perf_counter() - started
        audio += mix.size / SR
        sdrs.append(sdr(vocals, estimate))
        si_sdrs.append(si_sdr(vocals, estimate))
    return {"vocal_sdr_db": round(float(np.mean(sdrs)), 3), "vocal_si_sdr_db": round(float(np.mean(si_sdrs)), 3),
            "audio_s_per_s": round(audio / seconds, 2)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (about a minute on an idle machine)")
    parser.add_argument("--params", default=None, help="Spleeter params to measure instead of training one")
    parser.add_argument("--models", default=None, help="MODEL_PATH for --params")
    parser.add_argument("--seconds", type=float, default=None, help="song length")
    args = parser.parse_args(argv)
    n_train, n_test, steps, seconds = (5, 3, 60, 5.0) if args.quick else (24, 8, 600, 10.0)
    seconds = args.seconds or seconds
    python = build_spleeter_env(log=lambda line: None)["python"]
    test_songs = [sung_stems(1000 + i, seconds, SR, vocal_db=-6.0 + 6.0 * i / max(1, n_test - 1))
                  for i in range(n_test)]
    result: dict = {"benchmark": "vocal_separation", "device": "cpu", "songs": n_test, "song_seconds": seconds}
    with tempfile.TemporaryDirectory() as tmp:
        if args.params:
            params, models = args.params, args.models
            result["spleeter_model"] = params
        else:
            data = write_training_set(((f"s{i:03d}", *sung_stems(i, seconds, SR, vocal_db=-6.0 + 2.0 * (i % 4)))
                                       for i in range(n_train)), Path(tmp) / "data", SR)
            config = training_config(Path(tmp) / "models" / "bench", data["train_csv"], data["validation_csv"],
                                     steps=steps, sample_rate=SR)
            trained = train_spleeter(config, Path(tmp) / "data", python)
            params, models = trained["params"], str(Path(tmp) / "models")
            result["spleeter_model"] = {"trained_steps": steps, "train_songs": data["n_train"],
                                        "train_seconds": round(trained["seconds"], 1),
                                        "U-Net widths": config["model"]["params"]["conv_n_filters"]}
        with SpleeterSeparator(python, models, params) as spleeter:
            started = time.perf_counter()
            spleeter.separate(np.zeros(SR, np.float32), SR)  # process start + model load, measured apart
            startup = time.perf_counter() - started
            result["spleeter"] = dict(measure(spleeter, test_songs), startup_s=round(startup, 1))
    result["softmask"] = measure(SoftMaskSeparator(), test_songs)
    result["mixture_vocal_sdr_db"] = round(float(np.mean([sdr(v, v + b) for v, b in test_songs])), 3)
    result["sdr_gain_db_spleeter_minus_softmask"] = round(
        result["spleeter"]["vocal_sdr_db"] - result["softmask"]["vocal_sdr_db"], 3)
    result["throughput_ratio_spleeter_over_softmask"] = round(
        result["spleeter"]["audio_s_per_s"] / result["softmask"]["audio_s_per_s"], 3)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
