"""Spoken-LID embedding throughput: length-bucketed batches against one clip at a time.

Prints one JSON object: seconds of audio embedded per second per CPU thread (or on the GPU) for
bucketed batching (what the UDF uses) and for one-clip-at-a-time, their ratio, and the largest
deviation of the batched embeddings from the one-at-a-time ones (cosine distance).

  python benchmarks/bench_spoken_lid.py [--quick] [--source embedded] [--device auto]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def _clips(n: int, seed: int) -> list[np.ndarray]:
    """Speech-like clips of 1-8 s (espeak-ng sentences), the range of vocal segments."""
    from lid_spark.tools.pretrain_spoken_lid.utterances import HELD_OUT, speak_utterance

    rng = np.random.default_rng(seed)
    languages = ("en", "hi", "ta", "es", "ja", "ru")
    clips = []
    for i in range(n):
        wave = speak_utterance(languages[i % len(languages)], rng, HELD_OUT, min_seconds=1.0)
        clips.append(wave[: int(rng.uniform(1.0, 8.0) * 16000)])
    return clips


def main(argv=None) -> int:
    import torch

    from lid_spark.audio.spoken_lid import SpokenLID

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="about a minute")
    parser.add_argument("--source", default="embedded")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.torch_threads)
    clips = _clips(24 if args.quick else 96, seed=3)
    audio_seconds = sum(c.size for c in clips) / 16000
    lid = SpokenLID.load(args.source, device=args.device)
    lid.embed(clips[:2])  # warm-up

    start = time.perf_counter()
    batched, _ = lid.embed(clips, batch_size=args.batch_size, bucket_ratio=1.25)
    batched_s = time.perf_counter() - start
    start = time.perf_counter()
    single = np.concatenate([lid.embed([c], batch_size=1)[0] for c in clips])
    single_s = time.perf_counter() - start

    cosine = np.sum(batched * single, axis=1) / (np.linalg.norm(batched, axis=1) * np.linalg.norm(single, axis=1))
    units = 1 if lid.device.startswith("cuda") else args.torch_threads
    result = {
        "benchmark": "spoken_lid_embed",
        "device": lid.device, "torch_threads": args.torch_threads, "source": args.source,
        "clips": len(clips), "audio_seconds": round(audio_seconds, 1),
        "bucketed_audio_s_per_s_per_unit": round(audio_seconds / batched_s / units, 2),
        "one_at_a_time_audio_s_per_s_per_unit": round(audio_seconds / single_s / units, 2),
        "speedup_bucketed_vs_one_at_a_time": round(single_s / batched_s, 2),
        "max_cosine_distance_bucketed_vs_one_at_a_time": float(f"{1.0 - cosine.min():.2e}"),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
