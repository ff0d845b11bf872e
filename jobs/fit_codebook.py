"""Fit the timbral codebook (PCA + GMM) on an unlabeled sample of the catalog's audio.

The stage itself is :func:`lid_spark.stages.fit_codebook.run`; this file is its spark-submit entry point.
"""

from lid_spark.jobs._cli import job_parser, parse_job_args, run_as_script

from lid_spark.spark import get_spark
from lid_spark.stages import fit_codebook


def main(argv=None) -> int:
    _, cfg = parse_job_args(job_parser("fit_codebook", fit_codebook.__doc__), argv)
    fit_codebook.run(get_spark(cfg), cfg)
    return 0


if __name__ == "__main__":
    run_as_script(main)
