"""Train the singing-language classifier (one feature subset, or every subset of the paper's ablation).

Reads the labels, the tracks (artist_id for the artist-level split) and the feature tables; trains
the 1D-ResNet of classifier.features (or each subset with --all-subsets) and saves it under
output.models_dir/<subset>/. Parameters, metrics and the artifact are logged to MLflow; the label
counts (rows left out and why) and the models saved go to <output.report_dir>/train_classifier.json.
"""

from dataclasses import replace
from pathlib import Path

from lid_spark.config import Config
from lid_spark.evaluation.tracking import flatten, mlflow_run
from lid_spark.model.dataset import load_labelled
from lid_spark.model.features import SUBSETS
from lid_spark.model.train import TrainSettings, train_model
from lid_spark.progress import get_logger, step
from lid_spark.reports import write_report

log = get_logger(__name__)


def run(spark, cfg: Config, all_subsets: bool = False) -> dict:
    """Train ``classifier.features`` (or every subset); returns the report (also written to the report directory)."""
    base = TrainSettings.from_config(cfg)
    subsets = list(SUBSETS) if all_subsets else [base.subset]

    with step("read labels, tracks and features"):
        data = load_labelled(spark, cfg)
    report = {"data": data.counts, "classes": list(data.classes), "label_languages": data.label_languages,
              "models": {}}
    for subset in subsets:
        settings = replace(base, subset=subset)
        directory = Path(cfg.output.models_dir) / subset
        with mlflow_run(cfg, f"train {subset}") as mlflow, step(f"train {subset}"):
            classifier = train_model(data.split("train", subset), data.split("val", subset), settings, data.classes)
            classifier.save(directory)
            if mlflow:
                mlflow.log_params({**settings.to_dict(), "languages": ",".join(data.classes)})
                mlflow.log_metrics(flatten("", {k: v for k, v in classifier.metrics.items()}))
                mlflow.log_metrics(flatten("data", data.counts))
                mlflow.log_dict(classifier.thresholds, "thresholds.json")
                mlflow.set_tag("model_version", classifier.model_version)
                mlflow.log_artifacts(str(directory), f"model/{subset}")
        log.info("saved %s to %s", classifier.model_version, directory)
        report["models"][subset] = {"model_version": classifier.model_version, "directory": str(directory),
                                    "val_map": classifier.metrics.get("val_map")}
    write_report(cfg.output.report_dir, "train_classifier", "Classifier training report", report)
    return report
