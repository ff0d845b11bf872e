"""Evaluate: the paper's Table 1 and Table 2 on this catalog, with plots, as markdown and JSON.

Trains (or reuses, when saved with the same settings on the same tracks) every model the tables
need under output.models_dir, scores the test artists, and writes output.report_dir/table1.json,
table2.json, calibration.json, report.md and the figures. Everything is logged to MLflow.
"""

if __package__ in (None, ""):
    import _bootstrap  # noqa: F401  (spark-submit jobs/evaluate.py from a checkout)

from lid_spark.cli import job_parser, parse_job_args, run_job
from lid_spark.evaluation.experiment import run_experiments
from lid_spark.evaluation.report import quality_checks, verdict
from lid_spark.evaluation.tracking import flatten, mlflow_run
from lid_spark.model.dataset import load_labelled
from lid_spark.model.train import TrainSettings
from lid_spark.progress import get_logger, step
from lid_spark.spark import get_spark

log = get_logger(__name__)


def main(argv=None) -> int:
    parser = job_parser("evaluate", __doc__)
    _, cfg = parse_job_args(parser, argv)
    spark = get_spark(cfg)
    with step("read labels, tracks and features"):
        data = load_labelled(spark, cfg)
    with mlflow_run(cfg, "evaluate") as mlflow:
        result = run_experiments(data, cfg)
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
    for check in quality_checks(result.table1, result.table2, result.intervals):
        log.info("%-60s %-4s %s", check["check"], verdict(check), check["detail"])
    log.info("report: %s", result.report_paths["report"])
    return 0


if __name__ == "__main__":
    run_job(main)
