"""tag_catalog end to end on planted feature tables: every track tagged or listed, reruns idempotent."""

import os
import runpy
from collections import Counter
from pathlib import Path

import pytest

from lid_spark.tables import read_table, resolve_table, write_table
from lid_spark.tools.synth.catalog import market_country
from tests._feature_world import SCHEMAS, make_world


@pytest.mark.slow
def test_tag_catalog_counts_reruns_and_query_notebook(spark, table_config, tmp_path):
    from lid_spark.jobs import tag_catalog, train_classifier

    # Sharp consumption clusters: the small model tags confidently, so languages_per_market has rows.
    world = make_world(tracks_per_language=9, seed=5, noise={"consumption": 0.3})
    cfg = table_config
    for key, table in (("consumption", "consumption_embeddings"), ("timbral", "timbral_features"),
                       ("segments", "vocal_segments"), ("status", "audio_status")):
        write_table(spark.createDataFrame(world[key], SCHEMAS[key]), resolve_table(cfg, table))
    # One catalog track nobody extracted features for, and a duplicate row: both must be accounted for.
    # A market per track as the synthetic catalog has it; Parquet files, as the synthetic catalog writes.
    language = dict(zip(world["labels"].track_id, world["labels"].language))
    tracks = [(*r, market_country(language[r[0]], r[1])) for r in world["tracks"].itertuples(index=False)]
    tracks += [("never_seen", "ar_x", "audio/x.wav", 1.0, "US"), tracks[0]]
    spark.createDataFrame(tracks, SCHEMAS["tracks"] + ", market string").write.parquet(str(tmp_path / "tracks"))
    spark.createDataFrame(world["labels"], SCHEMAS["labels"]).write.format("delta").save(str(tmp_path / "labels"))
    settings = [f"inputs.tracks={tmp_path / 'tracks'}", f"inputs.labels={tmp_path / 'labels'}",
                f"tables.location={cfg.tables.location}", f"output.report_dir={cfg.output.report_dir}",
                f"output.models_dir={cfg.output.models_dir}", "classifier.channels=8", "classifier.torch_threads=1",
                "classifier.epochs=20", "classifier.segments_per_track=2"]
    assert train_classifier.main(settings) == 0

    assert tag_catalog.main(settings) == 0
    tags_ref = resolve_table(cfg, "language_tags")
    tags = {r.track_id: r for r in read_table(spark, tags_ref).collect()}
    distinct_tracks = {t[0] for t in tracks}
    assert set(tags) == distinct_tracks, "count in must equal count out"
    assert tags["never_seen"].status == "no_features" and tags["never_seen"].language == "und"
    status = world["status"]
    no_vocals = set(status.loc[status["status"] == "no_vocals", "track_id"])
    assert all(tags[t].language == "zxx" and tags[t].is_instrumental for t in no_vocals)
    assert {r.status for r in tags.values()} <= {"tagged", "low_confidence", "instrumental", "no_features"}
    scored = [r for r in tags.values() if r.status in ("tagged", "low_confidence")]
    assert scored and all(abs(sum(r.scores.values()) - 1.0) < 1e-5 for r in scored)

    version_after_first = spark.sql(f"DESCRIBE HISTORY {tags_ref.sql()}").agg({"version": "max"}).first()[0]
    assert tag_catalog.main(settings) == 0
    version_after_rerun = spark.sql(f"DESCRIBE HISTORY {tags_ref.sql()}").agg({"version": "max"}).first()[0]
    assert version_after_rerun == version_after_first, "a rerun with nothing changed must write nothing"

    # New timbral features for one track: only that track is scored again.
    timbral = world["timbral"].copy()
    timbral.at[timbral.index[0], "vector"] = [float(v) + 1.0 for v in timbral.iloc[0]["vector"]]
    write_table(spark.createDataFrame(timbral, SCHEMAS["timbral"]), resolve_table(cfg, "timbral_features"))
    assert tag_catalog.main(settings) == 0
    import json
    report = json.loads((Path(cfg.output.report_dir) / "tagging.json").read_text())
    assert report["scored"] == 1 and report["tracks_in"] == len(distinct_tracks)
    assert report["tracks_tagged_or_listed"] == report["tracks_in"]
    seconds = report["seconds"]
    assert seconds["total"] >= seconds["score"] + seconds["merge"] and min(seconds.values()) > 0

    # The query notebook runs locally against these tables.
    os.environ["LID_SPARK_TABLES"] = cfg.tables.location
    os.environ["LID_SPARK_TRACKS"] = str(tmp_path / "tracks")
    try:
        notebook = runpy.run_path(str(Path(__file__).parents[1] / "notebooks" / "03_query_tags.py"),
                                  run_name="notebook")
    finally:
        del os.environ["LID_SPARK_TABLES"], os.environ["LID_SPARK_TRACKS"]
    # Languages per market: the confident tags counted per (market, language) over the catalog's rows.
    per_market = {(r.market, r.language): r.tracks for r in notebook["results"]["languages_per_market"].collect()}
    current = {r.track_id: r for r in read_table(spark, tags_ref).collect()}
    expected = Counter((t[4], current[t[0]].language) for t in tracks if current[t[0]].status == "tagged")
    assert per_market == dict(expected) and len({m for m, _ in per_market}) >= 3
