# Databricks notebook source
# MAGIC %md
# MAGIC # Tag your own catalog
# MAGIC
# MAGIC Point lid-spark at your tables (the data contract: `tracks` with track_id, artist_id, audio_uri,
# MAGIC duration_s; `plays` with user_id, track_id, ts, session_id) and a trained classifier, then run the
# MAGIC feature stages and tagging. Every stage is incremental: rerunning scores only new or changed tracks.
# MAGIC
# MAGIC Set the widgets (Databricks) or the environment variables (locally):
# MAGIC `LID_SPARK_TRACKS`, `LID_SPARK_PLAYS`, `LID_SPARK_TABLES`, `LID_SPARK_MODELS`, `LID_SPARK_REPORT`.

# COMMAND ----------

import os

from lid_spark.config import load_config
from lid_spark.pipeline import run_job
from lid_spark.spark import get_spark


def setting(name: str, default: str | None = None) -> str | None:
    try:
        return dbutils.widgets.get(name.lower())  # noqa: F821
    except NameError:
        return os.environ.get(f"LID_SPARK_{name.upper()}", default)


overrides = [
    f"inputs.tracks={setting('tracks')}",
    f"inputs.plays={setting('plays')}",
    f"tables.location={setting('tables', 'lid-spark-out/tables')}",
    f"output.models_dir={setting('models', 'lid-spark-out/models')}",
    f"output.report_dir={setting('report', 'lid-spark-out/report')}",
    *[s for s in os.environ.get("LID_SPARK_NOTEBOOK_SETTINGS", "").split() if s],
]
cfg = load_config(overrides=overrides)
spark = get_spark(cfg)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Features: consumption embeddings from plays, audio features from the files
# MAGIC The timbral codebook is fitted once on an unlabeled sample (skip `fit_codebook` when one exists).

# COMMAND ----------

for stage in ("cooccurrence", "train_embeddings", "extract_features"):
    run_job(stage, cfg)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Tag
# MAGIC MERGEs into `language_tags`: one row per track, with a status (`tagged`, `low_confidence`,
# MAGIC `instrumental`, `no_features`) so that no track is silently missing.

# COMMAND ----------

run_job("tag_catalog", cfg)
tags_path = os.path.join(cfg.tables.location, cfg.tables.names.language_tags)
spark.read.format("delta").load(os.path.abspath(tags_path)).groupBy("status").count().show()
