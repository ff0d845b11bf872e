"""Run the pipeline end to end on the embedded synthetic catalog, in local Spark.

Settings: conf/default.yaml, then conf/demo.yaml (the demo's lighter choices), then --config files
and key=value overrides.
"""

if __package__ in (None, ""):
    import _bootstrap  # noqa: F401  (spark-submit jobs/demo.py from a checkout)

from pathlib import Path

from lid_spark.cli import job_parser, run_job
from lid_spark.demo import demo_config, run_demo


def main(argv=None) -> int:
    parser = job_parser("demo", __doc__)
    parser.add_argument("--out", default="demo-out", help="directory for tables (out/tables) and report (out/report)")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    return run_demo(demo_config(out, args.config, args.settings), out)


if __name__ == "__main__":
    run_job(main)
