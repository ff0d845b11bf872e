"""The quick-start and tag-your-catalog notebooks run locally as plain Python, at tiny sizes."""

from __future__ import annotations

import json
import os
import runpy
from pathlib import Path

import pandas as pd
import pytest

from lid_spark.errors import ParameterError
from lid_spark.notebook import notebook_parameters, split_settings
from lid_spark.tables import read_table, resolve_table, table_exists

NOTEBOOKS = Path(__file__).parents[1] / "notebooks"
# A world of 44 tracks x 4 s (4 per class, one artist each) and every stage at its smallest useful size.
TINY = " ".join([
    "synth.tracks=44", "synth.seconds=4.0", "synth.users=80", "synth.sessions_per_user=4.0", "synth.workers=1",
    "synth.report=false", "synth.tracks_per_artist=1.0", "'synth.intro_seconds=[0.5, 1.0]'", "synth.outro_seconds=0.5",
    "cooccurrence.min_users=1", "embeddings.dim=16", "embeddings.epochs=2", "embeddings.evaluate=false",
    "embeddings.peers=[]", "audio.timbral.n_mels=32", "audio.timbral.codebook_size=8",
    "audio.timbral.fit_frames_per_track=100", "audio.segments.max_per_track=2", "audio.udf.partitions=2",
    "classifier.channels=8", "classifier.epochs=4", "classifier.torch_threads=1", "classifier.segments_per_track=2",
    "evaluation.subsets=[multimodal]", "evaluation.table2=false", "evaluation.mlflow.enabled=false",
    "evaluation.tsne_max_points=50", "evaluation.tsne_perplexity=5.0",
])


def _run_notebook(name: str, **params: str) -> dict:
    env = {f"LID_SPARK_{k.upper()}": v for k, v in params.items()}
    os.environ.update(env)
    try:
        return runpy.run_path(str(NOTEBOOKS / name), run_name="notebook")
    finally:
        for key in env:
            del os.environ[key]


def test_parameters_come_from_widgets_on_databricks_and_the_environment_locally():
    class Widgets:
        def __init__(self):
            self.values = {"out": "/dbfs/lid"}

        def text(self, name, default):
            self.values.setdefault(name, default)

        def get(self, name):
            return self.values[name]

    class DbUtils:
        widgets = Widgets()

    defaults = {"out": "notebook-out", "settings": ""}
    assert notebook_parameters(defaults, DbUtils()) == {"out": "/dbfs/lid", "settings": ""}
    assert notebook_parameters(defaults, environ={"LID_SPARK_SETTINGS": "a.b=1"}) == {"out": "notebook-out",
                                                                                       "settings": "a.b=1"}
    assert split_settings("x.y=1 'z=[a, b]'") == ["x.y=1", "z=[a, b]"]
    with pytest.raises(ParameterError, match="key=value"):
        split_settings("synth.tracks 44")


@pytest.mark.slow
def test_quickstart_then_tag_your_catalog_notebooks(spark, tmp_path):
    out = tmp_path / "quickstart"
    quick = _run_notebook("01_quickstart.py", out=str(out), settings=TINY)
    cfg = quick["cfg"]
    catalog = out / "catalog"
    tracks = pd.read_parquet(catalog / "tracks")
    for name in ("consumption_embeddings", "timbral_features", "vocal_segments", "audio_status", "language_tags"):
        assert table_exists(spark, resolve_table(cfg, name)), name
    tags = read_table(spark, resolve_table(cfg, "language_tags")).toPandas()
    assert sorted(tags["track_id"]) == sorted(tracks["track_id"]), "count in must equal count out"
    status = read_table(spark, resolve_table(cfg, "audio_status")).toPandas()
    no_vocals = set(status.loc[status["status"] == "no_vocals", "track_id"])
    assert set(tags.loc[tags["is_instrumental"], "track_id"]) == no_vocals
    assert set(tags.loc[tags["is_instrumental"], "language"]) <= {"zxx"}
    report = Path(cfg.output.report_dir)
    for name in ("table1.json", "report.md", "tagging.json", "tagging.md"):
        assert (report / name).is_file(), name
    assert list(json.loads((report / "table1.json").read_text())) >= ["multimodal"]

    # Tag your catalog: the same tables and models, a catalog grown by three tracks (two copies of
    # known audio under new ids, one whose file is missing). Only those are extracted and scored.
    grown = pd.concat([tracks, tracks.head(2).assign(track_id=["new_0", "new_1"]),
                       tracks.head(1).assign(track_id="new_gone", audio_uri=str(tmp_path / "gone.flac"))])
    grown.to_parquet(tmp_path / "grown_tracks.parquet")
    status_before = read_table(spark, resolve_table(cfg, "audio_status")).count()
    _run_notebook("02_tag_your_catalog.py", tracks=str(tmp_path / "grown_tracks.parquet"),
                  plays=str(catalog / "plays"), tables=cfg.tables.location, models=cfg.output.models_dir,
                  report=cfg.output.report_dir, settings=TINY)
    status = read_table(spark, resolve_table(cfg, "audio_status")).toPandas()
    assert len(status) == status_before + 3 and status["track_id"].is_unique
    assert status.set_index("track_id").loc["new_gone", "status"] == "missing_file"
    tags = read_table(spark, resolve_table(cfg, "language_tags")).toPandas().set_index("track_id")
    assert sorted(tags.index) == sorted(grown["track_id"]), "count in must equal count out"
    assert tags.loc["new_gone", "status"] == "no_features" and tags.loc["new_gone", "language"] == "und"
    assert set(tags.loc[["new_0", "new_1"], "status"]) <= {"tagged", "low_confidence", "instrumental"}
    tagging = json.loads((report / "tagging.json").read_text())
    assert tagging["tracks_in"] == tagging["tracks_tagged_or_listed"] == len(grown)
    assert tagging["scored"] == 3, "only the new tracks are scored (the embeddings retrain to the same vectors)"
