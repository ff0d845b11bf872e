"""Consumption embeddings: weighted skip-gram with negative sampling over track_neighbors.

The stage itself is :func:`lid_spark.stages.train_embeddings.run`; this file is its spark-submit entry point.
"""

from lid_spark.jobs._cli import job_parser, parse_job_args, run_as_script

from lid_spark.spark import get_spark
from lid_spark.stages import train_embeddings


def main(argv=None) -> int:
    _, cfg = parse_job_args(job_parser("train_embeddings", train_embeddings.__doc__), argv)
    train_embeddings.run(get_spark(cfg), cfg)
    return 0


if __name__ == "__main__":
    run_as_script(main)
