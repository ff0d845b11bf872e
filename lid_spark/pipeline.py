"""Run pipeline jobs from Python (notebooks, the demo) with a Config object instead of argv.

Each job stays the single way a stage runs: this module hands the job its configuration as a
temporary YAML layer and calls the job's ``main``. The active SparkSession is reused.

Example
-------
>>> from lid_spark.config import load_config
>>> cfg = load_config(overrides=["inputs.plays=/data/plays"])
>>> # run_job("cooccurrence", cfg)
"""

from __future__ import annotations

import importlib
import os
import tempfile

import yaml

from lid_spark.config import Config
from lid_spark.errors import ParameterError

# The stages of the pipeline in the order they run (section "Jobs" of the README).
STAGES = ("cooccurrence", "train_embeddings", "fit_codebook", "extract_features", "evaluate", "tag_catalog")


def run_job(name: str, cfg: Config, *args: str) -> int:
    """Run ``jobs/<name>.py`` with ``cfg`` (and extra command-line ``args``); returns its exit code."""
    try:
        module = importlib.import_module(f"jobs.{name}")
    except ModuleNotFoundError:
        raise ParameterError(f"no job named {name!r}") from None
    fd, path = tempfile.mkstemp(prefix=f"lid-spark-{name}-", suffix=".yaml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            yaml.safe_dump(cfg.to_dict(), f, sort_keys=False)
        code = int(module.main(["--config", path, *args]) or 0)
    finally:
        os.unlink(path)
    if code != 0:
        raise RuntimeError(f"job {name} exited with status {code}")
    return code
