"""Extract audio features of the catalog into vocal_segments, timbral_features and audio_status.

The stage itself is :func:`lid_spark.stages.extract_features.run`; this file is its spark-submit entry point.
"""

from lid_spark.jobs._cli import job_parser, parse_job_args, run_as_script

from lid_spark.spark import get_spark
from lid_spark.stages import extract_features


def main(argv=None) -> int:
    _, cfg = parse_job_args(job_parser("extract_features", extract_features.__doc__), argv)
    extract_features.run(get_spark(cfg), cfg)
    return 0


if __name__ == "__main__":
    run_as_script(main)
