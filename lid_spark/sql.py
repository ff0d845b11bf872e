"""Downstream SQL: the "current tags" view and the example queries analysts start from.

The queries are templates over validated table references (``{tags}``, ``{tracks}``), so the
same text runs in local Spark SQL and on Databricks. ``docs/sql.md`` shows them; the tests run
every one of them against a real Delta table.

Example
-------
>>> sorted(EXAMPLE_QUERIES)[:2]
['change_feed_since', 'changed_between_versions']
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from lid_spark.config import Config
from lid_spark.errors import ParameterError
from lid_spark.languages import normalise_language
from lid_spark.schemas import TAG_LOW_CONFIDENCE, TAG_TAGGED, USABLE_TAG_STATUSES
from lid_spark.tables import TableRef, input_table, parse_table_ref, read_table, resolve_table, table_exists

CURRENT_TAGS_VIEW = "current_language_tags"
TRACKS_VIEW = "lid_spark_tracks"  # temporary view over a Parquet tracks table

# name -> (what it answers, SQL template)
EXAMPLE_QUERIES: dict[str, tuple[str, str]] = {
    "tags_per_language": (
        "How many tracks carry each language tag (instrumental = zxx, undetermined = und)",
        "SELECT language, status, count(*) AS tracks FROM {tags} GROUP BY language, status ORDER BY tracks DESC",
    ),
    "languages_per_market": (
        "Language mix of each market's catalog (the optional tracks.market column, e.g. an ISO 3166 country)",
        "SELECT tr.market, t.language, count(*) AS tracks, "
        "round(count(*) / sum(count(*)) OVER (PARTITION BY tr.market), 3) AS share "
        "FROM {tags} t JOIN {tracks} tr ON t.track_id = tr.track_id "
        f"WHERE t.status = '{TAG_TAGGED}' GROUP BY tr.market, t.language ORDER BY tr.market, tracks DESC",
    ),
    "low_confidence_review_queue": (
        "Tracks whose best language is below threshold: the queue for human review, least sure first",
        "SELECT track_id, language AS best_guess, confidence, second_language, modalities, reason "
        f"FROM {{tags}} WHERE status = '{TAG_LOW_CONFIDENCE}' ORDER BY confidence ASC LIMIT 100",
    ),
    "tracks_in_language": (
        "Every confidently tagged track of one language (`language=`: any of the catalog's classes, in any "
        "spelling: `ta`, `Tamil`, `pt_BR`; default `ta`), most confident first",
        "SELECT track_id, confidence FROM {tags} WHERE language = {language} "
        f"AND status = '{TAG_TAGGED}' ORDER BY confidence DESC",
    ),
    "changed_between_versions": (
        "Tags that differ between two versions of the table (time travel), e.g. before and after a new model",
        "SELECT new.track_id, old.language AS old_language, new.language AS new_language, "
        "old.model_version AS old_model, new.model_version AS new_model "
        "FROM {tags} VERSION AS OF {old_version} old JOIN {tags} VERSION AS OF {new_version} new "
        "ON old.track_id = new.track_id WHERE NOT (old.language <=> new.language)",
    ),
    "change_feed_since": (
        "Row-level changes since a table version, from Delta's change data feed",
        "SELECT track_id, language, _change_type, _commit_version FROM table_changes({tags_literal}, {since_version}) "
        "WHERE _change_type IN ('insert', 'update_postimage') ORDER BY _commit_version, track_id",
    ),
    "multilingual_tracks": (
        "Songs with a second language",
        "SELECT track_id, language, second_language, confidence FROM {tags} WHERE second_language IS NOT NULL",
    ),
}


def _table_literal(ref: TableRef) -> str:
    # table_changes() takes the table as a string literal: a catalog name or delta.`path`.
    text = ref.value if not ref.is_path else f"delta.`{ref.value}`"
    if "'" in text:
        raise ParameterError(f"table reference {ref} may not contain a quote")
    return f"'{text}'"


def _language_literal(language: str) -> str:
    code, reason = normalise_language(language)
    if code is None:
        raise ParameterError(f"language {language!r} is not a language code or name ({reason})")
    return f"'{code}'"   # a normalised code: letters only


def render_query(name: str, tags: TableRef, tracks: TableRef | None = None, language: str = "ta",
                 **versions: int) -> str:
    """The SQL text of example query ``name`` over these tables; versions must be integers, ``language``
    a language code or name (read by :func:`lid_spark.languages.normalise_language`)."""
    if name not in EXAMPLE_QUERIES:
        raise ParameterError(f"unknown query {name!r}; known: {', '.join(sorted(EXAMPLE_QUERIES))}")
    for key, value in versions.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ParameterError(f"{key} must be a non-negative integer table version, got {value!r}")
    template = EXAMPLE_QUERIES[name][1]
    if "{tracks}" in template and tracks is None:
        raise ParameterError(f"query {name!r} needs the tracks table (inputs.tracks)")
    return template.format(tags=tags.sql(), tracks=tracks.sql() if tracks else "", tags_literal=_table_literal(tags),
                           language=_language_literal(language) if "{language}" in template else "", **versions)


def run_query(spark: SparkSession, cfg: Config, name: str, language: str = "ta", **versions: int) -> DataFrame:
    """Run example query ``name`` over the configured tags table (and ``inputs.tracks`` when it needs it).

    A tracks table given as Parquet files (the synthetic catalog's layout) is read through the
    temporary view ``lid_spark_tracks``: Spark SQL's ``delta.`path``` syntax needs a Delta table.
    """
    tags = resolve_table(cfg, "language_tags")
    tracks = input_table(cfg, "tracks") if cfg.inputs.tracks else None
    if (name in EXAMPLE_QUERIES and "{tracks}" in EXAMPLE_QUERIES[name][1] and tracks is not None
            and tracks.is_path and not table_exists(spark, tracks)):
        read_table(spark, tracks).createOrReplaceTempView(TRACKS_VIEW)
        tracks = parse_table_ref(TRACKS_VIEW)
    return spark.sql(render_query(name, tags, tracks, language, **versions))


def create_current_tags_view(spark: SparkSession, cfg: Config) -> str:
    """(Re)create the view of usable tags: a temporary view for path tables, a catalog view otherwise."""
    tags = resolve_table(cfg, "language_tags")
    usable = ", ".join(f"'{status}'" for status in USABLE_TAG_STATUSES)
    body = (f"SELECT track_id, language, confidence, second_language, is_instrumental, modalities, "
            f"model_version, tagged_at FROM {tags.sql()} WHERE status IN ({usable})")
    if tags.is_path:
        spark.sql(f"CREATE OR REPLACE TEMPORARY VIEW `{CURRENT_TAGS_VIEW}` AS {body}")
        return CURRENT_TAGS_VIEW
    schema = cfg.tables.schema
    view = parse_table_ref(f"{schema}.{CURRENT_TAGS_VIEW}")
    spark.sql(f"CREATE OR REPLACE VIEW {view.sql()} AS {body}")
    return view.value


def table_versions(spark: SparkSession, cfg: Config) -> tuple[int, int]:
    """The oldest and the latest version of the tags table still in its history."""
    from delta.tables import DeltaTable

    tags = resolve_table(cfg, "language_tags")
    table = DeltaTable.forPath(spark, tags.value) if tags.is_path else DeltaTable.forName(spark, tags.value)
    versions = [r["version"] for r in table.history().select("version").collect()]
    return min(versions), max(versions)


def queries_markdown() -> str:
    """docs/sql.md: every example query, as it reads over the catalog table ``language_tags``."""
    tags = parse_table_ref("language_tags")
    tracks = parse_table_ref("tracks")
    lines = ["# Querying the language tags", "",
             "Generated by `python -m lid_spark.sql > docs/sql.md`; the tests run every query against a",
             "real Delta table. Table names below are catalog names; over a path use ``delta.`/path` ``.",
             "", "The view `current_language_tags` (`lid_spark.sql.create_current_tags_view`) holds the",
             "usable tags only (status `tagged` or `instrumental`).", ""]
    for name, (question, _) in EXAMPLE_QUERIES.items():
        sql = render_query(name, tags, tracks, old_version=3, new_version=4, since_version=3)
        lines += [f"## {name}", "", question + ".", "", "```sql", sql, "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(queries_markdown(), end="")
