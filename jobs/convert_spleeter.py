"""Convert a Spleeter TensorFlow checkpoint into weights for the pretrained separator (safetensors).

Reads the checkpoint in the Spleeter environment (audio.separation.spleeter_env; `lid-spark spleeter_env`
builds it) and writes OUT/config.json and OUT/<stem>.safetensors. Use them with:
  audio.separation.backend=pretrained audio.separation.pretrained_weights=OUT

  lid-spark convert_spleeter --checkpoint models/spleeter/2stems-synth --out models/pretrained/2stems-synth
  lid-spark convert_spleeter --checkpoint pretrained_models/2stems --params spleeter:2stems --out w/2stems
"""

import json
from pathlib import Path

from lid_spark.jobs._cli import job_parser, parse_job_args, run_as_script

from lid_spark.progress import step
from lid_spark.tools.spleeter.convert import convert_checkpoint


def main(argv=None) -> int:
    parser = job_parser("convert_spleeter", __doc__)
    parser.add_argument("--checkpoint", required=True, help="Spleeter model directory (or checkpoint prefix)")
    parser.add_argument("--params", default=None,
                        help="its Spleeter params: a JSON file or spleeter:<name> (default: CHECKPOINT/params.json)")
    parser.add_argument("--out", required=True, help="weights directory to write")
    args, cfg = parse_job_args(parser, argv)
    params = args.params or str(Path(args.checkpoint) / "params.json")
    with step(f"convert {args.checkpoint}"):
        result = convert_checkpoint(args.checkpoint, params, args.out, cfg.audio.separation.spleeter_env)
    print(json.dumps({k: result[k] for k in ("out_dir", "checkpoint", "instruments")}))
    return 0


if __name__ == "__main__":
    run_as_script(main)
