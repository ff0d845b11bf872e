# Databricks notebook source
# MAGIC %md
# MAGIC # lid-spark quick start: the whole pipeline on a synthetic catalog
# MAGIC
# MAGIC Builds a small synthetic music catalog (sung audio in the paper's ten languages plus others, listening
# MAGIC sessions, labels), then runs every stage: co-occurrence, consumption embeddings, timbral
# MAGIC codebook, audio features, classifier training and evaluation (the paper's Table 1 and 2), and
# MAGIC tagging into the Delta table `language_tags`.
# MAGIC
# MAGIC Runs on Databricks (attach to a cluster with lid-spark installed; the parameters below become
# MAGIC widgets) and locally as plain Python: `python notebooks/01_quickstart.py`, with the parameters
# MAGIC from `LID_SPARK_OUT` and `LID_SPARK_SETTINGS` environment variables.

# COMMAND ----------

# Parameters. `settings`: configuration overrides, `key=value` separated by spaces, e.g. a smaller
# world: "synth.tracks=110 synth.seconds=6 evaluation.table2=false".
PARAMETERS = {
    "out": "notebook-out",   # the catalog, Delta tables, models and report go under this directory
    "settings": "",
}

# COMMAND ----------

from pathlib import Path

from lid_spark.notebook import notebook_parameters, split_settings
from lid_spark.spark import get_spark
from lid_spark.stages import demo
from lid_spark.tables import read_table, resolve_table

params = notebook_parameters(PARAMETERS, globals().get("dbutils"))
out = Path(params["out"]).resolve()
cfg = demo.demo_config(out, overrides=split_settings(params["settings"]))  # default.yaml + conf/demo.yaml + settings
spark = get_spark(cfg)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Run the pipeline
# MAGIC Each stage prints a line when it starts and ends; the end prints Table 1, the tags per language
# MAGIC and where everything is. The synthetic catalog size is `synth.tracks`.

# COMMAND ----------

demo.run(cfg, out)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Look at the tags
# MAGIC One row per catalog track: `tagged`, `low_confidence` (best guess kept, flagged), `instrumental`
# MAGIC (`zxx`) or `no_features` (`und`).

# COMMAND ----------

tags = read_table(spark, resolve_table(cfg, "language_tags"))
tags.groupBy("language", "status").count().orderBy("language", "status").show(50)
catalog_tracks = spark.read.parquet(str(out / "catalog" / "tracks")).select("track_id").distinct().count()
print(f"{catalog_tracks} catalog tracks, {tags.count()} rows in language_tags")
