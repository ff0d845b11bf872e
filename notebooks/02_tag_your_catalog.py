# Databricks notebook source
# MAGIC %md
# MAGIC # Tag your own catalog
# MAGIC
# MAGIC Point lid-spark at your tables (the data contract, `docs/byo_catalog.md`: `tracks` with track_id,
# MAGIC artist_id, audio_uri, duration_s; `plays` with user_id, track_id, ts, session_id; optionally
# MAGIC `labels` with track_id, language in any spelling: `pt_BR`, `eng`, `Korean`) and run the feature
# MAGIC stages and tagging; the classes are your `languages` (the rest of the labels: `ot`). Every stage is
# MAGIC incremental: rerunning processes only new or changed tracks.
# MAGIC
# MAGIC Either give one config file (`config`, e.g. `conf/examples/my_catalog.yaml`) or the
# MAGIC parameters below; a non-empty parameter overrides the file. On Databricks they are widgets;
# MAGIC locally, `LID_SPARK_<NAME>` environment variables (`LID_SPARK_TRACKS`, ...).

# COMMAND ----------

# Parameters: a table is a Delta/Parquet path or a catalog name (catalog.schema.table).
PARAMETERS = {
    "config": "",       # a YAML config file layered over conf/default.yaml
    "tracks": "",       # inputs.tracks
    "plays": "",        # inputs.plays
    "labels": "",       # inputs.labels: only needed to train a classifier here
    "audio_root": "",   # inputs.audio_root: prefix of relative audio_uri values
    "tables": "",       # tables.location: where the derived Delta tables go
    "models": "",       # output.models_dir: codebook and classifiers
    "report": "",       # output.report_dir
    "model_dir": "",    # tagging.model_dir: tag with a classifier trained elsewhere
    "languages": "",    # classifier.languages, e.g. "pt, ko, ru" ("[]": every label language with enough tracks)
    "settings": "",     # further key=value overrides separated by spaces
}

# COMMAND ----------

import os

from lid_spark.audio.timbral import codebook_dir
from lid_spark.config import load_config
from lid_spark.errors import InputError
from lid_spark.notebook import notebook_parameters, split_settings
from lid_spark.spark import get_spark
from lid_spark.stages import (
    cooccurrence,
    extract_features,
    fit_codebook,
    tag_catalog,
    train_classifier,
    train_embeddings,
)
from lid_spark.tables import input_table, read_table, resolve_table
from lid_spark.tagging import model_directory

params = notebook_parameters(PARAMETERS, globals().get("dbutils"))
keys = {"tracks": "inputs.tracks", "plays": "inputs.plays", "labels": "inputs.labels",
        "audio_root": "inputs.audio_root", "tables": "tables.location", "models": "output.models_dir",
        "report": "output.report_dir", "model_dir": "tagging.model_dir"}
overrides = [f"{key}={params[name]}" for name, key in keys.items() if params[name]]
if params["languages"]:
    overrides.append(f"classifier.languages=[{params['languages'].strip().strip('[]')}]")
cfg = load_config([params["config"]] if params["config"] else [], overrides + split_settings(params["settings"]))
spark = get_spark(cfg)
print(f"tracks: {input_table(cfg, 'tracks')}\nplays:  {input_table(cfg, 'plays')}\n"
      f"tags:   {resolve_table(cfg, 'language_tags')}\nmodel:  {model_directory(cfg)}\n"
      f"target languages: {', '.join(cfg.classifier.languages) or 'every label language with enough tracks'}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Features: consumption embeddings from plays, audio features from the files
# MAGIC The timbral codebook is fitted once on an unlabeled sample of the catalog; an existing one is
# MAGIC kept (its version is part of every audio feature's version: refitting re-extracts everything).

# COMMAND ----------

cooccurrence.run(spark, cfg)
train_embeddings.run(spark, cfg)
if not os.path.isdir(codebook_dir(cfg)):
    fit_codebook.run(spark, cfg)
extract_features.run(spark, cfg)

# COMMAND ----------

# MAGIC %md
# MAGIC ## The classifier
# MAGIC Tagging uses `tagging.model_dir`, else `<output.models_dir>/<classifier.features>`. When neither
# MAGIC holds a classifier and `labels` is given, one is trained here on your labelled tracks.

# COMMAND ----------

if not os.path.isdir(model_directory(cfg)):
    if not cfg.inputs.labels:
        raise InputError(f"no classifier at {model_directory(cfg)}: set model_dir, or labels to train one")
    train_classifier.run(spark, cfg)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Tag
# MAGIC MERGEs into `language_tags`: one row per track, with a status (`tagged`, `low_confidence`,
# MAGIC `instrumental`, `no_features`) so that no track is silently missing.

# COMMAND ----------

tag_catalog.run(spark, cfg)
tags = read_table(spark, resolve_table(cfg, "language_tags"))
tags.groupBy("status").count().show()
