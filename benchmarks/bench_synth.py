"""Speed of the synthetic world: seconds of sung, mixed audio rendered per wall-clock second.

Peers measured in the same run: espeak-ng speaking the same words (no singing, no
accompaniment, no mix: the floor cost of the voice) and real time (1.0). Also reports plays
generated per second by the vectorised session model (sessions-only mode).

    python benchmarks/bench_synth.py            # 220 tracks x 12 s, 2 workers; 10^7 plays
    python benchmarks/bench_synth.py --quick    # 44 tracks x 12 s; 2 x 10^6 plays: about a minute

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def espeak_rate(lyrics: list[str], plan) -> float:
    """Audio seconds per second for espeak-ng alone reading every song's lyrics once, as speech."""
    from lid_spark.tools.synth.espeak import ESPEAK_SAMPLE_RATE, speak

    speak("warm up", "en")   # engine start-up is not part of the rate
    start, samples = time.perf_counter(), 0
    for text, row in zip(lyrics, plan.itertuples()):
        for line in filter(None, text.split(" / ")):
            samples += speak(line, row.language, rate=int(row.rate), variant=row.variant,
                             sample_rate=ESPEAK_SAMPLE_RATE).size
    return samples / ESPEAK_SAMPLE_RATE / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)

    import pandas as pd

    from lid_spark.tools.synth.catalog import catalog_plan
    from lid_spark.tools.synth.world import build_world, write_sessions_only

    tracks = 44 if args.quick else 220
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        world = build_world(Path(tmp) / "w", {"tracks": tracks, "seconds": 12.0, "workers": args.workers,
                                              "report": False, "users": 50})
        wall = time.perf_counter() - start
        truth = pd.read_parquet(world.truth_path)
        plan = catalog_plan(world.params)
        sung = ~plan["is_instrumental"].to_numpy()
        speech = espeak_rate(list(truth["lyrics"][sung]), plan[sung])
        plays_target = 2_000_000 if args.quick else 10_000_000
        start = time.perf_counter()
        plays = write_sessions_only(Path(tmp) / "s", {"tracks": 100_000, "users": plays_target // 50,
                                                      "plays": plays_target, "chunk_plays": 1_000_000})
        plays_wall = time.perf_counter() - start
    figure = world.audio_seconds / wall
    print(json.dumps({
        "benchmark": "synth_audio_rate",
        "tracks": tracks, "seconds_per_track": 12.0, "workers": args.workers,
        "audio_seconds_per_second": round(figure, 2),
        "peer": "espeak-ng speaking the same lyrics (1 process, no singing/accompaniment/mix)",
        "peer_audio_seconds_per_second": round(speech, 2),
        "ratio_to_peer": round(figure / speech, 4),
        "ratio_to_real_time": round(figure, 2),
        "sessions_only_plays": plays.n_plays,
        "sessions_only_plays_per_second": round(plays.n_plays / plays_wall),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
