"""Same-session co-occurrence: plays -> track pairs with LLR scores -> debiased top-k neighbours.

The stage itself is :func:`lid_spark.stages.cooccurrence.run`; this file is its spark-submit entry point.
"""

from lid_spark.jobs._cli import job_parser, parse_job_args, run_as_script

from lid_spark.spark import get_spark
from lid_spark.stages import cooccurrence


def main(argv=None) -> int:
    _, cfg = parse_job_args(job_parser("cooccurrence", cooccurrence.__doc__), argv)
    cooccurrence.run(get_spark(cfg), cfg)
    return 0


if __name__ == "__main__":
    run_as_script(main)
