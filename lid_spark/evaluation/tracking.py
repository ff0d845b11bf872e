"""MLflow run tracking for training and evaluation (mlflow-skinny is enough).

Where runs go (``evaluation.mlflow.tracking_uri``): the configured URI; else ``MLFLOW_TRACKING_URI``
from the environment; else ``databricks`` when running on Databricks; else a local file store
``mlruns/`` next to ``output.report_dir`` (a ``file://`` URI). ``evaluation.mlflow.enabled: false``
turns tracking off.

Example
-------
>>> with mlflow_run(cfg, "train multimodal") as run:              # doctest: +SKIP
...     log_params(run, {"channels": 16})
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path

from lid_spark.config import Config
from lid_spark.progress import get_logger

log = get_logger(__name__)


def tracking_uri(cfg: Config) -> str:
    """The MLflow tracking URI these settings resolve to (see the module docstring)."""
    configured = cfg.evaluation.mlflow.tracking_uri
    if configured:
        return configured
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    if os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        return "databricks"
    return (Path(cfg.output.report_dir).resolve().parent / "mlruns").as_uri()


@contextmanager
def mlflow_run(cfg: Config, run_name: str):
    """An active MLflow run (the ``mlflow`` module), or None when tracking is disabled."""
    if not cfg.evaluation.mlflow.enabled:
        yield None
        return
    import mlflow

    uri = tracking_uri(cfg)
    if uri.startswith("file:"):
        # MLflow 3 keeps the file store only on request; it is the zero-setup local default here.
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    # set_tracking_uri also exports MLFLOW_TRACKING_URI, which tracking_uri() would then take for a
    # later run with other settings in this process (a notebook, a test session): put it back after.
    exported = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        mlflow.set_experiment(cfg.evaluation.mlflow.experiment)
        with mlflow.start_run(run_name=run_name) as run:
            log.info("MLflow run %s in %s", run.info.run_id, uri)
            yield mlflow
    finally:
        if exported is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = exported


def flatten(prefix: str, value) -> dict[str, float]:
    """Nested numbers as flat MLflow metric names (``table1.multimodal.avg.ap``); None skipped."""
    out = {}
    if isinstance(value, Mapping):
        for k, v in value.items():
            out.update(flatten(f"{prefix}.{k}" if prefix else str(k), v))
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
        out[prefix.replace("+", "_plus_")] = float(value)
    return out
