"""Every documented downstream query runs against a real Delta tags table."""

import datetime as dt

import pytest

from lid_spark.errors import ParameterError
from lid_spark.schemas import TAG_INSTRUMENTAL, TAG_LOW_CONFIDENCE, TAG_SCHEMA, TAG_TAGGED
from lid_spark.sql import EXAMPLE_QUERIES, create_current_tags_view, render_query, run_query
from lid_spark.tables import merge_upsert, parse_table_ref, resolve_table, write_table

NOW = dt.datetime(2026, 1, 1)


def _tag(track_id, language, status=TAG_TAGGED, confidence=0.9, model="m1", second=None):
    return (track_id, language, confidence, {language: confidence}, second, language == "zxx",
            ["audio"], status, None, 1, model, NOW)


@pytest.fixture()
def tags_cfg(spark, table_config, tmp_path):
    tracks_path = str(tmp_path / "tracks")
    write_table(spark.createDataFrame(
        [("a", "IN"), ("b", "IN"), ("c", "FR"), ("d", "FR"), ("e", "US")], "track_id string, market string"),
        parse_table_ref(tracks_path))
    cfg = table_config.with_overrides([f"inputs.tracks={tracks_path}"])
    ref = resolve_table(cfg, "language_tags")
    v0 = [_tag("a", "ta"), _tag("b", "hi", TAG_LOW_CONFIDENCE, 0.3), _tag("c", "fr", second="en"),
          _tag("d", "zxx", TAG_INSTRUMENTAL, 1.0), _tag("e", "en")]
    merge_upsert(spark, spark.createDataFrame(v0, TAG_SCHEMA), ref, keys=["track_id"])
    v1 = [_tag("a", "te", model="m2"), _tag("e", "en", model="m2")]
    merge_upsert(spark, spark.createDataFrame(v1, TAG_SCHEMA), ref, keys=["track_id"])
    return cfg


def test_every_example_query_runs(spark, tags_cfg):
    results = {}
    for name in EXAMPLE_QUERIES:
        results[name] = run_query(spark, tags_cfg, name, old_version=0, new_version=1, since_version=1).collect() \
            if "version" in EXAMPLE_QUERIES[name][1] else run_query(spark, tags_cfg, name).collect()
    per_market = {(r.market, r.language): r.tracks for r in results["languages_per_market"]}
    assert per_market == {("IN", "te"): 1, ("FR", "fr"): 1, ("US", "en"): 1}
    assert [r.track_id for r in results["low_confidence_review_queue"]] == ["b"]
    assert [(r.track_id, r.old_language, r.new_language)
            for r in results["changed_between_versions"]] == [("a", "ta", "te")]
    assert sorted(r.track_id for r in results["change_feed_since"]) == ["a", "e"]
    assert [r.track_id for r in results["multilingual_tracks"]] == ["c"]
    assert results["tracks_in_language"] == []   # a was ta, then te
    assert [r.track_id for r in run_query(spark, tags_cfg, "tracks_in_language", language="English").collect()] == ["e"]


def test_current_tags_view_hides_unusable_rows(spark, tags_cfg):
    view = create_current_tags_view(spark, tags_cfg)
    rows = {r.track_id: r.language for r in spark.sql(f"SELECT * FROM `{view}`").collect()}
    assert rows == {"a": "te", "c": "fr", "d": "zxx", "e": "en"}


def test_query_parameters_are_validated():
    tags = parse_table_ref("main.lid.language_tags")
    with pytest.raises(ParameterError, match="old_version"):
        render_query("changed_between_versions", tags, old_version="1; DROP TABLE x", new_version=2)
    with pytest.raises(ParameterError, match="needs the tracks table"):
        render_query("languages_per_market", tags)
    with pytest.raises(ParameterError, match="unknown query"):
        render_query("nope", tags)
    assert "table_changes('main.lid.language_tags', 3)" in render_query("change_feed_since", tags, since_version=3)
    assert "WHERE language = 'pt' " in render_query("tracks_in_language", tags, language="pt_BR")
    with pytest.raises(ParameterError, match="is not a language code"):
        render_query("tracks_in_language", tags, language="x'; DROP TABLE t; --")


def test_docs_show_the_queries_the_code_runs():
    from pathlib import Path

    from lid_spark.sql import queries_markdown

    assert (Path(__file__).parents[1] / "docs" / "sql.md").read_text(encoding="utf-8") == queries_markdown(), \
        "docs/sql.md is stale: python -m lid_spark.sql > docs/sql.md"
