"""Shared fixtures: one local SparkSession with Delta Lake for the whole suite."""

from __future__ import annotations

import pytest

from lid_spark.config import load_config


@pytest.fixture(scope="session")
def spark_config(tmp_path_factory):
    warehouse = tmp_path_factory.mktemp("warehouse")
    return load_config(overrides=[
        "spark.master=local[2]",
        "spark.shuffle_partitions=2",
        "spark.driver_memory=3g",
        "spark.log_level=ERROR",
        f"spark.conf={{spark.sql.warehouse.dir: '{warehouse}', "
        f"spark.driver.extraJavaOptions: '-Dderby.system.home={warehouse}'}}",
    ])


@pytest.fixture(scope="session")
def spark(spark_config):
    from lid_spark.spark import get_spark

    session = get_spark(spark_config)
    yield session
    session.stop()


@pytest.fixture()
def table_config(spark_config, tmp_path):
    """A config whose derived tables and outputs live in this test's own directory."""
    return spark_config.with_overrides([
        f"tables.location={tmp_path / 'tables'}",
        f"output.report_dir={tmp_path / 'report'}",
        f"output.models_dir={tmp_path / 'models'}",
    ])
