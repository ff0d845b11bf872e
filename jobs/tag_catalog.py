"""Tag the catalog: score every new or changed track and MERGE the tags into language_tags.

The stage itself is :func:`lid_spark.stages.tag_catalog.run`; this file is its spark-submit entry point.
"""

from lid_spark.jobs._cli import job_parser, parse_job_args, run_as_script

from lid_spark.progress import step
from lid_spark.spark import get_spark
from lid_spark.stages import tag_catalog


def main(argv=None) -> int:
    parser = job_parser("tag_catalog", tag_catalog.__doc__)
    parser.add_argument("--full", action="store_true", help="re-tag every track, not only new or changed ones")
    args, cfg = parse_job_args(parser, argv)
    with step("start Spark"):
        spark = get_spark(cfg)
    print(tag_catalog.run(spark, cfg, full=args.full).markdown())
    return 0


if __name__ == "__main__":
    run_as_script(main)
