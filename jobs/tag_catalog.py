"""Tag the catalog: score every new or changed track and MERGE the tags into language_tags."""

if __package__ in (None, ""):
    import _bootstrap  # noqa: F401  (spark-submit jobs/tag_catalog.py from a checkout)

from lid_spark.cli import job_parser, parse_job_args, run_job
from lid_spark.progress import step
from lid_spark.spark import get_spark
from lid_spark.tagging import tag_catalog


def main(argv=None) -> int:
    parser = job_parser("tag_catalog", __doc__)
    parser.add_argument("--full", action="store_true", help="re-tag every track, not only new or changed ones")
    args, cfg = parse_job_args(parser, argv)
    with step("start Spark"):
        spark = get_spark(cfg)
    summary = tag_catalog(spark, cfg, full=args.full)
    print(summary.markdown())
    return 0


if __name__ == "__main__":
    run_job(main)
