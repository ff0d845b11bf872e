"""Train the singing-language classifier (one feature subset, or every subset of the paper's ablation).

Reads the labels, the tracks (artist_id for the artist-level split) and the feature tables; trains
the 1D-ResNet of classifier.features (or each subset with --all-subsets) and saves it under
output.models_dir/<subset>/. Parameters, metrics and the artifact are logged to MLflow; the label
counts (rows left out and why) and the models saved go to <output.report_dir>/train_classifier.json.
"""

if __package__ in (None, ""):
    import _bootstrap  # noqa: F401  (spark-submit jobs/train_classifier.py from a checkout)

from dataclasses import replace
from pathlib import Path

from lid_spark.cli import job_parser, parse_job_args, run_job
from lid_spark.evaluation.tracking import flatten, mlflow_run
from lid_spark.model.dataset import load_labelled
from lid_spark.model.features import SUBSETS
from lid_spark.model.train import TrainSettings, train_model
from lid_spark.progress import get_logger, step, write_job_report
from lid_spark.spark import get_spark

log = get_logger(__name__)


def main(argv=None) -> int:
    parser = job_parser("train_classifier", __doc__)
    parser.add_argument("--all-subsets", action="store_true", help="train every feature subset (the ablation)")
    args, cfg = parse_job_args(parser, argv)
    base = TrainSettings.from_config(cfg)
    subsets = list(SUBSETS) if args.all_subsets else [base.subset]

    spark = get_spark(cfg)
    with step("read labels, tracks and features"):
        data = load_labelled(spark, cfg)
    report = {"data": data.counts, "models": {}}
    for subset in subsets:
        settings = replace(base, subset=subset)
        directory = Path(cfg.output.models_dir) / subset
        with mlflow_run(cfg, f"train {subset}") as mlflow, step(f"train {subset}"):
            classifier = train_model(data.split("train", subset), data.split("val", subset), settings)
            classifier.save(directory)
            if mlflow:
                mlflow.log_params(settings.to_dict())
                mlflow.log_metrics(flatten("", {k: v for k, v in classifier.metrics.items()}))
                mlflow.log_metrics(flatten("data", data.counts))
                mlflow.log_dict(classifier.thresholds, "thresholds.json")
                mlflow.set_tag("model_version", classifier.model_version)
                mlflow.log_artifacts(str(directory), f"model/{subset}")
        log.info("saved %s to %s", classifier.model_version, directory)
        report["models"][subset] = {"model_version": classifier.model_version, "directory": str(directory),
                                    "val_map": classifier.metrics.get("val_map")}
    write_job_report(cfg.output.report_dir, "train_classifier", report)
    return 0


if __name__ == "__main__":
    run_job(main)
