"""Run the pipeline end to end on the embedded synthetic catalog, in local Spark.

Settings: the package's default.yaml, then its demo.yaml (the demo's lighter choices), then --config
files and key=value overrides. The demo itself is :func:`lid_spark.stages.demo.run`.
"""

from pathlib import Path

from lid_spark.jobs._cli import job_parser, run_as_script

from lid_spark.stages import demo


def main(argv=None) -> int:
    parser = job_parser("demo", __doc__)
    parser.add_argument("--out", default="demo-out", help="directory for tables (out/tables) and report (out/report)")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    demo.run(demo.demo_config(out, args.config, args.settings), out)
    return 0


if __name__ == "__main__":
    run_as_script(main)
