"""The SparkSession factory.

Locally (plain ``python`` or ``lid-spark``) it builds a ``local[*]`` session with Delta Lake, whose
jars are resolved from Maven Central at session start. Under ``spark-submit`` it creates the session
spark-submit prepared, adding the Delta SQL settings and the config's session settings
(:func:`session_settings`) wherever spark-submit was not given them (``--conf`` wins). In a notebook
or on Databricks it returns the session that exists as it is.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pyspark.sql import SparkSession

from lid_spark.config import Config

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"


def _launched_by_spark() -> bool:
    # spark-submit and the pyspark shell start the JVM first and hand Python its gateway port.
    return "PYSPARK_GATEWAY_PORT" in os.environ


def session_settings(cfg: Config) -> dict[str, str]:
    """The Spark properties lid-spark sessions run with, local or spark-submitted: Delta, the config's
    ``spark.*`` keys (``spark.conf`` last, so it can override any of them).

    Example
    -------
    >>> from lid_spark.config import load_config
    >>> settings = session_settings(load_config([], ["spark.shuffle_partitions=4"]))
    >>> settings["spark.sql.shuffle.partitions"], settings["spark.sql.session.timeZone"]
    ('4', 'UTC')
    """
    settings = {
        "spark.sql.extensions": DELTA_EXTENSION,
        "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
        "spark.sql.shuffle.partitions": str(cfg.spark.shuffle_partitions),
        "spark.default.parallelism": str(cfg.spark.shuffle_partitions),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.arrow.maxRecordsPerBatch": str(cfg.spark.arrow_batch_rows),
        # Sessions are cut and reported in UTC whatever the machines' time zone.
        "spark.sql.session.timeZone": "UTC",
    }
    settings.update({key: str(value) for key, value in cfg.spark.conf.items()})
    return settings


def get_spark(cfg: Config) -> SparkSession:
    """The session to run lid-spark jobs in (created locally, or the existing one)."""
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if _launched_by_spark():
        from pyspark import SparkConf

        # What spark-submit was given (--conf, --properties-file, spark-defaults.conf) is kept.
        submitted = SparkConf()
        builder = SparkSession.builder.appName(cfg.spark.app_name)
        for key, value in session_settings(cfg).items():
            if not submitted.contains(key):
                builder = builder.config(key, value)
        spark = builder.getOrCreate()
    else:
        spark = _local_session(cfg)
    spark.sparkContext.setLogLevel(cfg.spark.log_level)
    return spark


def _local_session(cfg: Config) -> SparkSession:
    from delta import configure_spark_with_delta_pip

    # Local Python workers are fresh interpreters: let them import this checkout's lid_spark/udfs.
    root = str(Path(__file__).resolve().parents[1])
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([root, *paths])
    # PySpark starts local workers with $PYSPARK_PYTHON (default: python3 on PATH); use this
    # interpreter so UDFs see the same packages.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

    builder = (
        SparkSession.builder.master(cfg.spark.master)
        .appName(cfg.spark.app_name)
        .config("spark.driver.memory", cfg.spark.driver_memory)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.databricks.delta.snapshotPartitions", "2")
    )
    for key, value in session_settings(cfg).items():
        builder = builder.config(key, value)
    if cfg.spark.resolve_delta_jars:
        builder = configure_spark_with_delta_pip(builder)
    return builder.getOrCreate()
