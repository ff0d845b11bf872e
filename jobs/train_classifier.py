"""Train the singing-language classifier (one feature subset, or every subset of the paper's ablation).

The stage itself is :func:`lid_spark.stages.train_classifier.run`; this file is its spark-submit entry point.
"""

from lid_spark.jobs._cli import job_parser, parse_job_args, run_as_script

from lid_spark.spark import get_spark
from lid_spark.stages import train_classifier


def main(argv=None) -> int:
    parser = job_parser("train_classifier", train_classifier.__doc__)
    parser.add_argument("--all-subsets", action="store_true", help="train every feature subset (the ablation)")
    args, cfg = parse_job_args(parser, argv)
    train_classifier.run(get_spark(cfg), cfg, all_subsets=args.all_subsets)
    return 0


if __name__ == "__main__":
    run_as_script(main)
