"""Run the pipeline end to end on the embedded synthetic catalog, in local Spark."""

if __package__ in (None, ""):
    import _bootstrap  # noqa: F401  (spark-submit jobs/demo.py from a checkout)

from pathlib import Path

from lid_spark.cli import job_parser, parse_job_args, run_job
from lid_spark.demo import run_demo


def main(argv=None) -> int:
    parser = job_parser("demo", __doc__)
    parser.add_argument("--out", default="demo-out", help="directory for tables (out/tables) and report (out/report)")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    overrides = [f"tables.location={out / 'tables'}", f"output.report_dir={out / 'report'}",
                 f"output.models_dir={out / 'models'}"]
    _, cfg = parse_job_args(parser, argv, extra_overrides=overrides)
    return run_demo(cfg, out)


if __name__ == "__main__":
    run_job(main)
