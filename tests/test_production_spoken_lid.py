"""The production spoken-LID model's layout end to end, and the catalog's own languages through the pipeline.

A directory in the published layout of ``speechbrain/lang-id-voxlingua107-ecapa`` (its hyperparams.yaml,
107 labels ``"pt: Portuguese"``, 256-dimensional embeddings, 60 mel bands; random weights of the right
shapes, channels shrunk for speed: tests/_voxlingua_layout.py) is ``audio.spoken_lid.source`` for
extract_features -> train_classifier -> tag_catalog on a tiny synthetic catalog whose targets are pt, ko
and ru (the paper's languages sing behind ``ot``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lid_spark.tables import read_table, resolve_table
from tests._voxlingua_layout import VOXLINGUA107, write_voxlingua_layout

pytestmark = pytest.mark.slow

TARGETS = ("pt", "ko", "ru")


@pytest.fixture(scope="module")
def run(spark, spark_config, tmp_path_factory):
    from lid_spark.stages import extract_features, fit_codebook, tag_catalog, train_classifier
    from lid_spark.tools.synth.world import tiny_world

    root = tmp_path_factory.mktemp("voxlingua")
    model = write_voxlingua_layout(root / "lang-id-voxlingua107-ecapa")
    # 4 classes x 3 tracks, one artist each; sung in pt, ko, ru, and en / de behind "ot".
    world = tiny_world(root / "catalog", tracks=12, targets=list(TARGETS), other_languages=["en", "de"])
    cfg = spark_config.with_overrides([
        *world.config_overrides(), f"tables.location={root / 'tables'}", f"output.report_dir={root / 'report'}",
        f"output.models_dir={root / 'models'}", f"audio.spoken_lid.source={model}",
        f"classifier.languages=[{','.join(TARGETS)}]", "classifier.features=audio", "classifier.epochs=3",
        "audio.timbral.codebook_size=8", "audio.timbral.n_mels=32", "audio.timbral.fit_frames_per_track=100",
        "audio.udf.partitions=2", "audio.udf.tracks_per_batch=3", "evaluation.mlflow.enabled=false",
    ])
    fit_codebook.run(spark, cfg)
    extracted = extract_features.run(spark, cfg)
    trained = train_classifier.run(spark, cfg)
    tagged = tag_catalog.run(spark, cfg)
    return {"cfg": cfg, "model": model, "extracted": extracted, "trained": trained, "tagged": tagged,
            "world": world}


def test_the_published_layout_loads_with_its_107_labels_and_256_dim_embeddings(run):
    from lid_spark.audio.spoken_lid import SpokenLID

    lid = SpokenLID.load(str(run["model"]), device="cpu")
    assert len(lid.languages) == 107 == len(VOXLINGUA107) and lid.languages[VOXLINGUA107.index("pt")] == \
        "pt: Portuguese"
    assert lid.embedding_dim == 256
    assert not (run["model"] / "checksums.json").exists(), "a copy of the hub repository needs no checksums"


def test_extraction_stores_embeddings_and_a_score_per_language_of_the_model(spark, run):
    cfg = run["cfg"]
    assert run["extracted"]["warnings"] == [], "not the embedded model: nothing to warn about"
    segments = read_table(spark, resolve_table(cfg, "vocal_segments")).collect()
    assert segments, "the sung tracks have vocal segments"
    assert {len(s["embedding"]) for s in segments} == {256}
    keys = set(segments[0]["spoken_lid_scores"])
    assert {"pt", "ko", "ru", "en", "he", "zh"} <= keys and "iw" not in keys   # iw read as he
    assert len(keys) == 107
    assert sum(segments[0]["spoken_lid_scores"].values()) == pytest.approx(1.0, abs=1e-4)


def test_the_classifier_learns_the_catalogs_classes_and_the_tags_use_them(spark, run):
    from lid_spark.model.artifact import LanguageClassifier

    trained = run["trained"]
    assert trained["classes"] == [*TARGETS, "ot"]
    assert trained["data"]["labels_invalid_language"] == 0 and trained["data"]["tracks_ot"] > 0
    clf = LanguageClassifier.load(trained["models"]["audio"]["directory"])
    assert clf.languages == (*TARGETS, "ot") and set(clf.thresholds) == {*TARGETS, "ot"}
    # vocals: the 256-dim embedding and the log spoken-LID score of each of the 4 classes
    assert clf.layout.dims["vocals"] == 256 + 4
    summary = run["tagged"]
    assert summary.languages == [*TARGETS, "ot"] and summary.warnings == []
    assert summary.tracks_in == summary.tracks_tagged_or_listed == run["world"].n_tracks
    tags = read_table(spark, resolve_table(run["cfg"], "language_tags")).collect()
    assert {t["language"] for t in tags} <= {*TARGETS, "ot", "zxx", "und"}
    scored = [t for t in tags if t["scores"]]
    assert scored and all(set(t["scores"]) == {*TARGETS, "ot"} for t in scored)
    report = json.loads((Path(run["cfg"].output.report_dir) / "tagging.json").read_text())
    assert report["languages"] == [*TARGETS, "ot"]
