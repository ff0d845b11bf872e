"""Evaluate: the paper's Table 1 and Table 2 on this catalog, with plots, as markdown and JSON.

Trains (or reuses, when saved with the same settings on the same tracks) every model the tables
need under output.models_dir, scores the test artists, and writes output.report_dir/table1.json,
table2.json, calibration.json, report.md and the figures. Everything is logged to MLflow.
"""

from lid_spark.config import Config
from lid_spark.evaluation.experiment import run_experiments
from lid_spark.evaluation.instrumental import read_instrumental_detection
from lid_spark.evaluation.report import quality_checks, verdict
from lid_spark.evaluation.tracking import flatten, mlflow_run
from lid_spark.model.dataset import load_labelled
from lid_spark.model.train import TrainSettings
from lid_spark.progress import get_logger, step

log = get_logger(__name__)


def run(spark, cfg: Config) -> dict:
    """Train or reuse the tables' models, score the test artists; returns the report (report.md and JSON files)."""
    with step("read labels, tracks and features"):
        data = load_labelled(spark, cfg)
    with step("instrumental detection"):
        instrumental = read_instrumental_detection(spark, cfg)
    if instrumental:
        log.info("instrumentals tagged zxx: %s; sung tracks tagged zxx: %s", instrumental["instrumental_tagged_zxx"],
                 instrumental["sung_tagged_zxx"])
    with mlflow_run(cfg, "evaluate") as mlflow:
        result = run_experiments(data, cfg, instrumental)
        if mlflow:
            mlflow.log_params(TrainSettings.from_config(cfg).to_dict())
            mlflow.log_metrics(flatten("data", data.counts))
            mlflow.log_metrics(flatten("table1", {s: t["avg"] for s, t in result.table1.items()}))
            mlflow.log_metrics(flatten("table2", {v: t["avg"] for v, t in result.table2.items()}))
            mlflow.log_dict(result.table1, "report/table1.json")
            mlflow.log_dict(result.table2, "report/table2.json")
            mlflow.log_artifacts(str(result.report_paths["report"].parent), "report")
            for name, directory in result.model_dirs.items():
                mlflow.log_artifacts(str(directory), f"model/{name}")
    checks = quality_checks(result.table1, result.table2, result.intervals)
    for check in checks:
        log.info("%-60s %-4s %s", check["check"], verdict(check), check["detail"])
    log.info("report: %s", result.report_paths["report"])
    return {"table1": result.table1, "table2": result.table2, "checks": checks, "instrumental": instrumental,
            "report": str(result.report_paths["report"]), "models": {k: str(v) for k, v in result.model_dirs.items()}}
