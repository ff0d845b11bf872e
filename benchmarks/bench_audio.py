"""Audio feature extraction speed per CPU core, vocal separation quality, and the cost of 10^7 songs.

Builds a synthetic world with true vocal stems, then on one core (one process, one torch thread,
timed in CPU seconds of the process, so a busy machine does not distort the per-core rates):
- decoding (lid_spark.audio.decode) against librosa.load as the decoding peer,
- vocal separation, segmentation, spoken-LID embedding, timbral encoding, and the whole
  extraction of a track (lid_spark.audio.pipeline.extract_track), each in seconds of audio per
  second (x real time; real time is the peer, ratio 1),
- separation SDR and SI-SDR of the vocals against the true stems, with the mixture-as-estimate
  baseline,
- the projected CPU-hours to extract 10^7 songs of --song-seconds each from the measured rate.

Prints one JSON object. ``--quick`` runs a small world (about a minute on an idle core).

    python benchmarks/bench_audio.py --quick
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
# One core: no BLAS/OpenMP thread pools (set before numpy loads them).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402


def _median(values):
    return float(np.median(values)) if len(values) else None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small world (about a minute)")
    parser.add_argument("--tracks", type=int, default=None, help="tracks in the world (default 12 quick, 44 full)")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per track (default 12 quick, 30 full)")
    parser.add_argument("--song-seconds", type=float, default=210.0, help="average song length for the projection")
    parser.add_argument("--songs", type=float, default=1e7, help="catalog size for the projection")
    parser.add_argument("overrides", nargs="*", help="config key=value (e.g. audio.separation.backend=softmask)")
    args = parser.parse_args(argv)
    wall_start = time.perf_counter()
    tracks = args.tracks or (12 if args.quick else 44)
    seconds = args.seconds or (12.0 if args.quick else 30.0)

    import librosa
    import pandas as pd
    import soundfile as sf
    import torch

    from lid_spark.audio.decode import decode
    from lid_spark.audio.pipeline import extract_track
    from lid_spark.audio.segments import segments_from_config
    from lid_spark.audio.separation import sdr, separator_from_config, si_sdr
    from lid_spark.audio.spoken_lid import SpokenLID, target_scores
    from lid_spark.audio.timbral import Codebook, log_mel, split_runs
    from lid_spark.config import load_config
    from lid_spark.tools.synth.world import build_world

    torch.set_num_threads(1)
    cfg = load_config(overrides=["audio.spoken_lid.device=cpu", "audio.separation.device=cpu", *args.overrides])
    sr = cfg.audio.sample_rate
    work = Path(tempfile.mkdtemp(prefix="bench-audio-"))
    world = build_world(work / "world", {"tracks": tracks, "seconds": seconds, "users": 20, "sessions_per_user": 2.0,
                                         "workers": 1, "write_stems": True, "report": False,
                                         "instrumental_share": 0.0})
    catalog = pd.read_parquet(world.tracks_path)
    uris = list(catalog["audio_uri"])

    # Decoding: ours against librosa.load, same files, same output rate.
    timings = {name: 0.0 for name in ("decode", "librosa_load", "separation", "segmentation", "timbral",
                                      "embedding", "extraction")}
    decode(uris[0], sample_rate=sr)  # first calls pay for imports and caches: warm both up
    librosa.load(uris[0], sr=sr, mono=True, res_type="soxr_hq")
    waves = []
    for uri in uris:
        clock = time.process_time()
        waves.append(decode(uri, sample_rate=sr).wave)
        timings["decode"] += time.process_time() - clock
        clock = time.process_time()
        librosa.load(uri, sr=sr, mono=True, res_type="soxr_hq")
        timings["librosa_load"] += time.process_time() - clock
    audio_seconds = sum(len(w) for w in waves) / sr

    conf = cfg.audio.timbral
    codebook = Codebook.fit([run for w in waves
                             for run in split_runs(log_mel(w, sr, conf.n_mels, conf.window_seconds))],
                            sr, n_mels=conf.n_mels, window_seconds=conf.window_seconds,
                            pca_variance=conf.pca_variance, codebook_size=conf.codebook_size, seed=conf.seed)
    separator = separator_from_config(cfg)
    spoken_lid = SpokenLID.load(cfg.audio.spoken_lid.source, device="cpu")
    spoken_lid.embed([np.zeros(sr, dtype=np.float32)])  # warm-up outside the clock

    quality = {"sdr": [], "si_sdr": [], "mixture_sdr": [], "mixture_si_sdr": []}
    segment_seconds = 0.0
    for track_id, wave in zip(catalog["track_id"], waves):
        clock = time.process_time()
        vocals = separator.separate(wave, sr)
        timings["separation"] += time.process_time() - clock
        clock = time.process_time()
        found = segments_from_config(vocals, sr, cfg, mixture=wave)
        timings["segmentation"] += time.process_time() - clock
        clock = time.process_time()
        codebook.encode(wave, sr)
        timings["timbral"] += time.process_time() - clock
        pieces = [vocals[a:b] for a, b in found.intervals]
        if pieces:
            clock = time.process_time()
            spoken_lid.embed(pieces, batch_size=cfg.audio.spoken_lid.batch_size,
                             bucket_ratio=cfg.audio.spoken_lid.bucket_ratio)
            timings["embedding"] += time.process_time() - clock
            segment_seconds += sum(len(p) for p in pieces) / sr
        true_vocals, _ = sf.read(world.stems_dir / f"{track_id}.vocals.flac", dtype="float32")
        if np.abs(true_vocals).max() > 1e-3:
            quality["sdr"].append(sdr(true_vocals, vocals))
            quality["si_sdr"].append(si_sdr(true_vocals, vocals))
            quality["mixture_sdr"].append(sdr(true_vocals, wave))
            quality["mixture_si_sdr"].append(si_sdr(true_vocals, wave))
    statuses = {}
    for uri in uris:
        clock = time.process_time()
        features = extract_track(uri, cfg, separator, codebook, spoken_lid, scores=target_scores)
        timings["extraction"] += time.process_time() - clock
        statuses[features.status] = statuses.get(features.status, 0) + 1

    def rate(stage, seconds_of_audio=audio_seconds):
        return seconds_of_audio / timings[stage] if timings[stage] else None

    rates = {"decode": rate("decode"), "librosa_load": rate("librosa_load"), "separation": rate("separation"),
             "segmentation": rate("segmentation"), "timbral": rate("timbral"),
             "embedding_per_segment_second": rate("embedding", segment_seconds),
             "embedding_per_track_second": rate("embedding"), "extraction": rate("extraction")}
    whole = rates["extraction"]
    # The length cap bounds the work per song; the projection uses min(song length, audio.max_seconds).
    analysed = min(args.song_seconds, cfg.audio.max_seconds)
    cpu_hours = args.songs * analysed / whole / 3600.0
    result = {
        "benchmark": "audio feature extraction, one CPU core (torch threads = 1), timed in process CPU seconds",
        "figure": {"name": "whole extraction, seconds of audio per second per core (x real time)",
                   "value": round(whole, 2)},
        "peer": {"name": "real time", "value": 1.0},
        "ratio": round(whole / 1.0, 2),
        "decoding": {"ours_x_real_time": round(rates["decode"], 1),
                     "librosa_load_x_real_time": round(rates["librosa_load"], 1),
                     "ratio_ours_over_librosa": round(rates["decode"] / rates["librosa_load"], 2)},
        "stages_x_real_time_per_core": {k: (round(v, 2) if v else None) for k, v in rates.items()},
        "stage_share_of_time": {k: round(timings[k] / sum(timings[s] for s in ("decode", "separation", "segmentation",
                                                                                "timbral", "embedding")), 3)
                                for k in ("decode", "separation", "segmentation", "timbral", "embedding")},
        "separation_quality_db": {
            "separator": cfg.audio.separation.backend,
            "tracks": len(quality["sdr"]),
            "sdr_mean": round(float(np.mean(quality["sdr"])), 2),
            "sdr_median": round(_median(quality["sdr"]), 2),
            "mixture_sdr_mean": round(float(np.mean(quality["mixture_sdr"])), 2),
            "sdr_improvement_mean": round(float(np.mean(quality["sdr"]) - np.mean(quality["mixture_sdr"])), 2),
            "si_sdr_mean": round(float(np.mean(quality["si_sdr"])), 2),
            "si_sdr_median": round(_median(quality["si_sdr"]), 2),
            "mixture_si_sdr_mean": round(float(np.mean(quality["mixture_si_sdr"])), 2),
            "si_sdr_improvement_mean": round(float(np.mean(quality["si_sdr"]) - np.mean(quality["mixture_si_sdr"])), 2),
        },
        "projection": {"songs": args.songs, "song_seconds": args.song_seconds, "analysed_seconds": analysed,
                       "cpu_core_hours": round(cpu_hours),
                       "note": "from the measured whole-extraction rate on this machine's core"},
        "workload": {"tracks": len(uris), "seconds_per_track": seconds, "audio_seconds": round(audio_seconds, 1),
                     "segment_seconds": round(segment_seconds, 1), "statuses": statuses,
                     "spoken_lid_embedding_dim": spoken_lid.embedding_dim, "codebook_size": codebook.size,
                     "cpu": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 2), "quick": args.quick,
                     "wall_seconds": round(time.perf_counter() - wall_start, 1)},
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
