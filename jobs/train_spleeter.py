"""Train a small Spleeter 2-stem model with Spleeter's own training code on a synthetic world's true stems.

For clusters and tests without Deezer's released models: writes a Spleeter training set from
WORLD/stems/<track_id>.{vocals,accompaniment}.flac, runs `spleeter train` (reduced U-Net) in the
Spleeter environment, and leaves <output.models_dir>/spleeter/<name>/ with the checkpoint, .probe and
params.json. Use it with:  audio.separation.backend=spleeter audio.separation.spleeter_params=<that params.json>
"""

import json
from pathlib import Path

from lid_spark.jobs._cli import job_parser, parse_job_args, run_as_script

from lid_spark.errors import InputError
from lid_spark.progress import step
from lid_spark.tools.spleeter.training import read_world_stems, train_spleeter, training_config, write_training_set


def main(argv=None) -> int:
    parser = job_parser("train_spleeter", __doc__)
    parser.add_argument("--world", required=True, help="synthetic world directory (built with synth.write_stems=true)")
    parser.add_argument("--name", default="2stems-synth", help="model directory name under <models_dir>/spleeter")
    parser.add_argument("--steps", type=int, default=2000, help="training steps (default 2000)")
    parser.add_argument("--limit", type=int, default=None, help="use at most this many tracks")
    args, cfg = parse_job_args(parser, argv)
    root = Path(cfg.output.models_dir).absolute() / "spleeter"
    stems = list(read_world_stems(args.world, args.limit))
    rates = {sr for *_, sr in stems}
    if len(rates) != 1:
        raise InputError(f"stems of {args.world} mix sample rates {sorted(rates)}")
    sample_rate = rates.pop()  # the model is trained (and later fed) at the world's sample rate
    with step("write the Spleeter training set"):
        data = write_training_set(((t, v, a) for t, v, a, _ in stems), root / f"{args.name}-data", sample_rate)
    config = training_config(root / args.name, data["train_csv"], data["validation_csv"], steps=args.steps,
                             sample_rate=sample_rate)
    with step(f"spleeter train ({args.steps} steps, {data['n_train']} tracks)"):
        result = train_spleeter(config, root / f"{args.name}-data", cfg.audio.separation.spleeter_env)
    print(json.dumps({**data, **result}))
    return 0


if __name__ == "__main__":
    run_as_script(main)
