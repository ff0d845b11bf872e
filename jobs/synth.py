"""Generate a synthetic world: a multilingual sung catalog (FLAC audio) with listening sessions.

Writes the input contract (OUT/tracks, OUT/plays, OUT/labels as Parquet; OUT/audio/*.flac),
the ground truth (OUT/truth) and a report (OUT/report: gallery.png, synth_report.md/.json).
With --sessions-only it writes tracks, labels, truth and plays only, in bounded memory
(chunked Parquet), e.g. 10^8 plays for 10^6 tracks for the consumption benchmarks.

  lid-spark synth --out demo-world --tracks 528 --seconds 12 --seed 7
  lid-spark synth --sessions-only --tracks 1000000 --plays 100000000 --users 2000000 --out big
  lid-spark synth --out w synth.write_stems=true synth.genre_language_affinity=0.3
"""

from pathlib import Path

from lid_spark.jobs._cli import job_parser, parse_job_args, run_as_script

from lid_spark.tools.synth.world import build_world, write_sessions_only


def main(argv=None) -> int:
    parser = job_parser("synth", __doc__)
    parser.add_argument("--out", required=True, help="output directory (its tables, audio and report are replaced)")
    parser.add_argument("--tracks", type=int, help="tracks in the catalog (synth.tracks)")
    parser.add_argument("--seconds", type=float, help="seconds of audio per track (synth.seconds)")
    parser.add_argument("--seed", type=int, help="random seed (synth.seed)")
    parser.add_argument("--users", type=int, help="listeners (synth.users)")
    parser.add_argument("--plays", type=int, help="target number of plays (synth.plays)")
    parser.add_argument("--sessions-only", action="store_true", help="no audio: tracks, labels, truth and plays only")
    args = parser.parse_args(argv)
    flags = {"tracks": args.tracks, "seconds": args.seconds, "seed": args.seed, "users": args.users,
             "plays": args.plays}
    overrides = [f"synth.{key}={value}" for key, value in flags.items() if value is not None]
    _, cfg = parse_job_args(parser, argv, extra_overrides=overrides)
    out = Path(args.out)
    world = write_sessions_only(out, cfg) if args.sessions_only else build_world(out, cfg)
    print(f"tracks={world.n_tracks} labelled={world.n_labelled} instrumental={world.n_instrumental} "
          f"plays={world.n_plays} -> {world.out_dir}")
    if not args.sessions_only and world.params.report:
        print(f"report: {world.report_dir / 'synth_report.md'}")
    return 0


if __name__ == "__main__":
    run_as_script(main)
