# Databricks notebook source
# MAGIC %md
# MAGIC # Query the language tags
# MAGIC
# MAGIC The example queries of `lid_spark.sql` (also in `docs/sql.md`): languages per market, the
# MAGIC low-confidence review queue, tags that changed between two table versions (time travel) and
# MAGIC the change data feed. On Databricks with `tables.schema` set, the same queries run on the
# MAGIC catalog table `<schema>.language_tags`. Languages per market needs the optional `market`
# MAGIC column of the tracks table (the synthetic catalog has one: an ISO 3166 country per track).

# COMMAND ----------

# Parameters (Databricks widgets; locally LID_SPARK_<NAME> environment variables).
PARAMETERS = {
    "config": "",                        # a YAML config file (e.g. the one your catalog runs with)
    "tables": "",                        # tables.location of language_tags (default lid-spark-out/tables)
    "tracks": "",                        # inputs.tracks: for languages per market
    "language": "",                      # tracks_in_language: one of your classes (default: the most tagged one)
}

# COMMAND ----------

from lid_spark.config import load_config
from lid_spark.notebook import notebook_parameters
from lid_spark.spark import get_spark
from lid_spark.sql import EXAMPLE_QUERIES, create_current_tags_view, run_query, table_versions
from lid_spark.tables import input_table, read_table

params = notebook_parameters(PARAMETERS, globals().get("dbutils"))
overrides = [f"{key}={params[name]}" for name, key in (("tables", "tables.location"), ("tracks", "inputs.tracks"))
             if params[name]]
cfg = load_config([params["config"]] if params["config"] else [], overrides)
spark = get_spark(cfg)
tracks_columns = read_table(spark, input_table(cfg, "tracks")).columns if cfg.inputs.tracks else []
view = create_current_tags_view(spark, cfg)
print(f"current tags view: {view}")
# The classes are the catalog's (classifier.languages, recorded in the model): ask for one it has.
language = params["language"] or next(
    (r["language"] for r in run_query(spark, cfg, "tags_per_language").collect()
     if r["language"] not in ("ot", "zxx", "und")), "ot")

# COMMAND ----------

results = {}  # query name -> DataFrame, for further exploration
for name, (question, _) in EXAMPLE_QUERIES.items():
    if name == "languages_per_market" and "market" not in tracks_columns:
        print(f"\n-- {name}: skipped, the tracks table has no market column")
        continue
    print(f"\n-- {name}: {question}")
    if name in ("changed_between_versions", "change_feed_since"):
        first, latest = table_versions(spark, cfg)
        results[name] = run_query(spark, cfg, name, old_version=first, new_version=latest, since_version=first)
    else:
        results[name] = run_query(spark, cfg, name, language=language)
    results[name].show(20, truncate=False)
