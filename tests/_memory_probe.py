"""Peak memory of one Python process doing what an extraction UDF worker does to a long file.

Run as ``python -m tests._memory_probe CODEBOOK_DIR WARMUP_FILE LONG_FILE [key=value ...]``: it loads
the separator, the embedded spoken-LID model and the codebook as a worker does, extracts the
features of a short warm-up file (so every code path and model buffer is resident), then those of
the long file, and prints one JSON object: the process's peak resident set (``ru_maxrss``) after the
warm-up and after the long file, their difference, the Python-heap peak (tracemalloc) during the long
file, and the track's status, measured duration, segments and time taken.
"""

from __future__ import annotations

import json
import resource
import sys
import time
import tracemalloc


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def main(argv: list[str]) -> dict:
    import torch

    from lid_spark.audio.pipeline import extract_track
    from lid_spark.audio.separation import separator_from_config
    from lid_spark.audio.spoken_lid import SpokenLID, target_scores
    from lid_spark.audio.timbral import Codebook
    from lid_spark.config import load_config

    codebook_path, warmup, long_file, *overrides = argv
    cfg = load_config(overrides=overrides)
    torch.set_num_threads(cfg.audio.udf.torch_threads)
    separator = separator_from_config(cfg)
    spoken_lid = SpokenLID.load(cfg.audio.spoken_lid.source, device="cpu")
    codebook = Codebook.load(codebook_path)
    warm = extract_track(warmup, cfg, separator, codebook, spoken_lid, scores=target_scores)
    before = _peak_rss_mb()
    tracemalloc.start()
    clock = time.perf_counter()
    features = extract_track(long_file, cfg, separator, codebook, spoken_lid, scores=target_scores)
    seconds = time.perf_counter() - clock
    heap_peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    after = _peak_rss_mb()
    return {"warmup_status": warm.status, "status": features.status, "error": features.error,
            "duration_s": features.duration_s, "n_segments": len(features.segments),
            "max_seconds": cfg.audio.max_seconds, "extract_seconds": round(seconds, 2),
            "peak_rss_after_warmup_mb": round(before, 1), "peak_rss_after_long_file_mb": round(after, 1),
            "peak_rss_growth_mb": round(after - before, 1), "python_heap_peak_mb": round(heap_peak, 1)}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
