"""Bring your own catalog: the example config validates, and tables in the documented layout meet the contract."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from lid_spark.audio.decode import resolve_uri
from lid_spark.config import load_config
from lid_spark.contract import conform
from lid_spark.errors import InputError, ParameterError
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


# ------------------------------------------------------------------ tables as users write them


def _pandas_catalog(root: Path) -> dict[str, Path]:
    """tracks, plays, labels written by pandas: integer and blank ids, nanosecond timestamps, labels as written."""
    import pandas as pd

    paths = {name: root / name for name in ("tracks", "plays", "labels")}
    for path in paths.values():
        path.mkdir(parents=True)
    pd.DataFrame({"track_id": [1, 2, 3], "artist_id": ["a1", " ", None], "audio_uri": ["x/1.flac", "", None],
                  "duration_s": [200, 181, 150]}).to_parquet(paths["tracks"] / "part-0.parquet")
    start = pd.Timestamp("2026-01-01 10:00:00.123456789")
    plays = pd.DataFrame({"user_id": ["u1", "u1", "u2", "u2", " ", "u3"], "track_id": [1, 2, 1, 3, 2, 2],
                          "ts": [start + pd.Timedelta(minutes=m) for m in (0, 4, 0, 3, 1, 2)],
                          "session_id": ["s1", "s1", "", None, "s9", "s3"]})
    assert str(plays["ts"].dtype) == "datetime64[ns]"   # pandas' default: Parquet INT64 TIMESTAMP(NANOS)
    plays.to_parquet(paths["plays"] / "part-0.parquet")
    pd.DataFrame({"track_id": [1, 2, 3], "language": ["EN", "pt_BR", "Korean"]}).to_parquet(
        paths["labels"] / "part-0.parquet")
    return paths


def test_tables_written_by_pandas_load_with_their_nanosecond_timestamps(spark, tmp_path, capfd):
    from lid_spark.tables import read_input

    paths = _pandas_catalog(tmp_path)
    cfg = load_config([EXAMPLE], [f"inputs.{k}={v}" for k, v in paths.items()])
    capfd.readouterr()
    plays = read_input(spark, cfg, "plays")
    rows = plays.orderBy("user_id", "ts").collect()
    err = capfd.readouterr().err
    assert "PARQUET_TYPE_ILLEGAL" not in err and "\tat org.apache" not in err, "no Java error on the console"
    assert dict(plays.dtypes)["ts"] == "timestamp" and dict(plays.dtypes)["track_id"] == "string"
    assert rows[1]["ts"] == datetime(2026, 1, 1, 10, 0, 0, 123456)   # nanoseconds to Spark's microseconds
    assert [r["user_id"] for r in rows].count(None) == 1              # a blank id is a missing id
    assert {r["session_id"] for r in rows} == {"s1", None, "s3", "s9"}
    tracks = {r["track_id"]: r for r in read_input(spark, cfg, "tracks").collect()}
    assert set(tracks) == {"1", "2", "3"} and tracks["2"]["artist_id"] is None and tracks["1"]["duration_s"] == 200.0
    assert spark.conf.get("spark.sql.legacy.parquet.nanosAsLong") == "false", "the session's setting is restored"


def test_cooccurrence_runs_on_a_pandas_written_plays_table(spark, tmp_path):
    from lid_spark.jobs import cooccurrence

    paths = _pandas_catalog(tmp_path)
    settings = [f"inputs.{k}={v}" for k, v in paths.items()] + [
        f"tables.location={tmp_path / 'tables'}", f"output.report_dir={tmp_path / 'report'}",
        "cooccurrence.min_sessions=1", "cooccurrence.min_users=1"]
    assert cooccurrence.main(settings) == 0
    import json

    report = json.loads((tmp_path / "report" / "cooccurrence.json").read_text())
    assert "null_user_id" in json.dumps(report)   # the blank user id is counted, not dropped silently


def test_timestamps_as_text_or_epoch_integers(spark, tmp_path):
    from lid_spark.tables import read_input

    expected = datetime(2026, 1, 2, 10, 0, 0)
    epoch = int((expected - datetime(1970, 1, 1)).total_seconds())
    cases = {"iso": ["2026-01-02 10:00:00", "2026-01-02T10:00:00Z", "2026-01-02T10:00:00.000Z"],
             "seconds": [epoch] * 3, "millis": [epoch * 1000] * 3, "micros": [epoch * 10 ** 6] * 3,
             "nanos": [epoch * 10 ** 9] * 3}
    for name, values in cases.items():
        kind = "string" if name == "iso" else "bigint"
        path = tmp_path / name
        spark.createDataFrame([("u", "t", v) for v in values], f"user_id string, track_id string, ts {kind}") \
            .write.parquet(str(path))
        cfg = load_config(overrides=[f"inputs.plays={path}"])
        assert [r["ts"] for r in read_input(spark, cfg, "plays").collect()] == [expected] * 3, name
    # A text value that does not parse is null (counted as null_ts by cooccurrence); a column of them stops.
    path = tmp_path / "some_bad"
    spark.createDataFrame([("u", "t", "2026-01-02 10:00:00"), ("u", "t", "soon")],
                          "user_id string, track_id string, ts string").write.parquet(str(path))
    assert read_input(spark, load_config(overrides=[f"inputs.plays={path}"]), "plays").where("ts IS NULL").count() == 1
    path = tmp_path / "all_bad"
    spark.createDataFrame([("u", "t", "02/01/2026 10h")], "user_id string, track_id string, ts string") \
        .write.parquet(str(path))
    with pytest.raises(InputError, match=r"the plays table does not meet the data contract: column 'ts' is text "
                                         r"that does not read as a timestamp \(e.g. '02/01/2026 10h'\).*ISO 8601") as e:
        read_input(spark, load_config(overrides=[f"inputs.plays={path}"]), "plays")
    assert "\n" not in str(e.value) and f"inputs.plays={path}" in str(e.value)


def test_csv_and_json_lines_inputs(spark, tmp_path):
    import pandas as pd

    from lid_spark.tables import read_input

    (tmp_path / "tracks").mkdir()
    pd.DataFrame({"track_id": ["007", "8"], "artist_id": ["a", ""], "audio_uri": ["a.flac", "b.flac"],
                  "duration_s": ["201.5", "n/a"]}).to_csv(tmp_path / "tracks" / "part-0.csv", index=False)
    (tmp_path / "plays").mkdir()
    pd.DataFrame({"user_id": [1, 2], "track_id": ["007", "8"], "ts": ["2026-01-02 10:00:00", "2026-01-02T11:00:00Z"]}) \
        .to_json(tmp_path / "plays" / "part-0.json", orient="records", lines=True)
    cfg = load_config(overrides=[f"inputs.tracks={tmp_path / 'tracks'}", "inputs.tracks_format=csv",
                                 f"inputs.plays={tmp_path / 'plays'}", "inputs.plays_format=json"])
    tracks = {r["track_id"]: r for r in read_input(spark, cfg, "tracks").collect()}
    assert set(tracks) == {"007", "8"}, "ids stay text: leading zeros kept"
    assert tracks["007"]["duration_s"] == 201.5 and tracks["8"]["duration_s"] is None   # 'n/a' does not parse
    assert tracks["8"]["artist_id"] is None
    plays = read_input(spark, cfg, "plays").orderBy("ts").collect()
    assert [r["user_id"] for r in plays] == ["1", "2"]
    assert [r["ts"] for r in plays] == [datetime(2026, 1, 2, 10), datetime(2026, 1, 2, 11)]
    with pytest.raises(ParameterError, match="inputs.tracks_format=csv needs a path"):
        read_input(spark, cfg.with_overrides(["inputs.tracks=main.music.tracks"]), "tracks")
    with pytest.raises(ParameterError, match="inputs.plays_format"):
        load_config(overrides=["inputs.plays_format=xlsx"])
