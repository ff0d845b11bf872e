"""Evaluate: the paper's Table 1 and Table 2 on this catalog, with plots, as markdown and JSON.

The stage itself is :func:`lid_spark.stages.evaluate.run`; this file is its spark-submit entry point.
"""

from lid_spark.jobs._cli import job_parser, parse_job_args, run_as_script

from lid_spark.spark import get_spark
from lid_spark.stages import evaluate


def main(argv=None) -> int:
    _, cfg = parse_job_args(job_parser("evaluate", evaluate.__doc__), argv)
    evaluate.run(get_spark(cfg), cfg)
    return 0


if __name__ == "__main__":
    run_as_script(main)
