# Databricks notebook source
# MAGIC %md
# MAGIC # lid-spark quick start: the whole pipeline on a synthetic catalog
# MAGIC
# MAGIC Builds a small synthetic music catalog (sung audio in ten languages plus others, listening
# MAGIC sessions, labels), then runs every stage: co-occurrence, consumption embeddings, timbral
# MAGIC codebook, audio features, classifier training and evaluation (the paper's Table 1 and 2), and
# MAGIC tagging into the Delta table `language_tags`.
# MAGIC
# MAGIC Runs on Databricks (attach to a cluster with lid-spark installed) and locally as plain Python:
# MAGIC `python notebooks/01_quickstart.py` (settings from the environment, see below).

# COMMAND ----------

import os
from pathlib import Path

from lid_spark.config import load_config
from lid_spark.demo import run_demo
from lid_spark.spark import get_spark

try:  # Databricks provides dbutils and spark; locally lid-spark creates the session.
    OUT = dbutils.widgets.get("out")  # noqa: F821
except NameError:
    OUT = os.environ.get("LID_SPARK_NOTEBOOK_OUT", "notebook-out")
SETTINGS = [s for s in os.environ.get("LID_SPARK_NOTEBOOK_SETTINGS", "").split() if s]

out = Path(OUT).resolve()
cfg = load_config(overrides=[f"tables.location={out / 'tables'}", f"output.report_dir={out / 'report'}",
                             f"output.models_dir={out / 'models'}", *SETTINGS])
spark = get_spark(cfg)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Run the pipeline
# MAGIC Each stage prints a line when it starts and ends. The synthetic catalog size is `synth.tracks`.

# COMMAND ----------

run_demo(cfg, out)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Look at the tags

# COMMAND ----------

tags = spark.read.format("delta").load(str(out / "tables" / "language_tags"))
tags.groupBy("language", "status").count().orderBy("language").show(50)
