"""Bring your own catalog: the example config validates, and tables in the documented layout meet the contract."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from lid_spark.audio.decode import resolve_uri
from lid_spark.config import load_config
from lid_spark.contract import conform
from lid_spark.errors import InputError
from lid_spark.tables import input_table, read_table, resolve_table

EXAMPLE = Path(__file__).parents[1] / "conf" / "examples" / "my_catalog.yaml"
DOC = Path(__file__).parents[1] / "docs" / "byo_catalog.md"


def test_example_config_validates_and_points_everything_at_the_catalog():
    cfg = load_config([EXAMPLE])
    for key in ("tracks", "plays", "labels", "audio_root"):
        assert cfg.inputs[key], f"inputs.{key} is set in the example"
    assert str(resolve_table(cfg, "language_tags")) == f"{cfg.tables.location}/language_tags"
    with_schema = load_config([EXAMPLE], ["tables.schema=main.music_lid"])
    assert str(resolve_table(with_schema, "language_tags")) == "main.music_lid.language_tags"
    # Catalog names are accepted where the example gives paths.
    named = load_config([EXAMPLE], ["inputs.tracks=main.music.tracks"])
    assert not input_table(named, "tracks").is_path
    # The doc runs every stage with this file, in pipeline order.
    doc = DOC.read_text(encoding="utf-8")
    stages = ["cooccurrence", "train_embeddings", "fit_codebook", "extract_features", "train_classifier",
              "tag_catalog"]
    positions = [doc.index(f"lid-spark {s} --config conf/examples/my_catalog.yaml") for s in stages]
    assert positions == sorted(positions)


def test_tables_in_the_documented_layout_meet_the_contract(spark, tmp_path):
    # Tracks as Delta with a relative audio_uri, an integer duration and extra columns; plays as
    # Parquet without session ids; labels as Delta.
    tracks = tmp_path / "catalog" / "tracks"
    spark.createDataFrame(
        [("t1", "a1", "pop/t1.flac", 200, "IN", "Song one"), ("t2", "a2", "s3a://b/t2.mp3", None, "FR", "Deux")],
        "track_id string, artist_id string, audio_uri string, duration_s int, market string, title string",
    ).write.format("delta").save(str(tracks))
    plays = tmp_path / "catalog" / "plays"
    spark.createDataFrame([("u1", "t1", datetime(2026, 1, 1, 12)), ("u1", "t2", datetime(2026, 1, 1, 12, 4))],
                          "user_id string, track_id string, ts timestamp").write.parquet(str(plays))
    labels = tmp_path / "catalog" / "language_labels"
    spark.createDataFrame([("t1", "ta")], "track_id string, language string").write.format("delta").save(str(labels))
    cfg = load_config([EXAMPLE], [f"inputs.tracks={tracks}", f"inputs.plays={plays}", f"inputs.labels={labels}",
                                  f"inputs.audio_root={tmp_path / 'audio'}", f"tables.location={tmp_path / 'tables'}"])

    checked = {name: conform(read_table(spark, input_table(cfg, name)), name) for name in ("tracks", "plays", "labels")}
    assert checked["tracks"].columns[:5] == ["track_id", "artist_id", "audio_uri", "duration_s", "market"]
    assert dict(checked["tracks"].dtypes)["duration_s"] == "double" and "title" in checked["tracks"].columns
    assert dict(checked["plays"].dtypes)["session_id"] == "string"        # optional: filled with nulls
    assert checked["plays"].where("session_id IS NULL").count() == 2
    assert checked["labels"].count() == 1
    uris = {r.track_id: resolve_uri(r.audio_uri, cfg.inputs.audio_root) for r in checked["tracks"].collect()}
    assert uris == {"t1": str(tmp_path / "audio" / "pop" / "t1.flac"), "t2": "s3://b/t2.mp3"}

    # A tracks table without audio_uri stops at the contract check, naming the column.
    bad = tmp_path / "catalog" / "bad_tracks"
    spark.createDataFrame([("t1", "a1")], "track_id string, artist_id string").write.parquet(str(bad))
    with pytest.raises(InputError, match="missing column 'audio_uri'"):
        conform(read_table(spark, input_table(cfg.with_overrides([f"inputs.tracks={bad}"]), "tracks")), "tracks")
