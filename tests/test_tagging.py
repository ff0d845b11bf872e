import os

import numpy as np
import pandas as pd
import pytest

from lid_spark.schemas import STATUS_MISSING, STATUS_NO_VOCALS, STATUS_OK, STATUS_UNREADABLE, TAG_COLUMNS
from lid_spark.tagging import tag_rows


def _frame():
    return pd.DataFrame({
        "track_id": ["sure", "unsure", "instr", "nothing", "missing_pred"],
        "consumption": [np.ones(3), np.ones(3), None, None, np.ones(3)],
        "timbral": [np.ones(2), None, np.ones(2), None, None],
        "status": [STATUS_OK, STATUS_MISSING, STATUS_NO_VOCALS, STATUS_UNREADABLE, None],
        "feature_fingerprint": [1, 2, 3, 4, 5],
    })


def _preds():
    return pd.DataFrame({
        "track_id": ["sure", "unsure"],
        "scores": [{"ta": 0.9, "te": 0.1}, {"hi": 0.4, "pa": 0.35}],
        "language": ["ta", "hi"], "confidence": [0.9, 0.4], "above_threshold": [True, True],
        "second_language": [None, "pa"], "modalities": [["consumption", "timbral"], ["consumption"]],
    })


def test_every_track_gets_one_row_with_a_status():
    out = tag_rows(_frame(), _preds(), "m1", min_confidence=0.5)
    assert list(out.columns) == TAG_COLUMNS
    assert list(out.track_id) == list(_frame().track_id)
    by_id = out.set_index("track_id")
    assert by_id.loc["sure", "status"] == "tagged" and by_id.loc["sure", "language"] == "ta"
    # Above its threshold but under the confidence floor: kept, flagged, with a reason.
    assert by_id.loc["unsure", "status"] == "low_confidence" and by_id.loc["unsure", "language"] == "hi"
    assert by_id.loc["unsure", "second_language"] == "pa"
    assert by_id.loc["instr", "language"] == "zxx" and bool(by_id.loc["instr", "is_instrumental"])
    assert by_id.loc["nothing", "status"] == "no_features" and "unreadable" in by_id.loc["nothing", "reason"]
    assert by_id.loc["missing_pred", "status"] == "no_features"
    assert set(out.model_version) == {"m1"}


def test_embedded_model_on_a_real_catalog_is_said_in_the_reason():
    from lid_spark.schemas import EMBEDDED_ON_REAL_CATALOG

    preds = _preds().assign(modalities=[["consumption", "timbral", "vocals"], ["consumption"]])
    out = tag_rows(_frame(), preds, "m1", min_confidence=0.5, note=EMBEDDED_ON_REAL_CATALOG).set_index("track_id")
    assert out.loc["sure", "status"] == "tagged" and out.loc["sure", "reason"] == EMBEDDED_ON_REAL_CATALOG
    assert "speechbrain/lang-id-voxlingua107-ecapa" in out.loc["sure", "reason"]
    # Only tags that read the vocals carry it; without the note nothing changes.
    assert EMBEDDED_ON_REAL_CATALOG not in out.loc["unsure", "reason"]
    assert tag_rows(_frame(), preds, "m1", min_confidence=0.5).set_index("track_id").loc["sure", "reason"] is None


def test_a_catalog_is_synthetic_only_with_the_synth_provenance(spark):
    from lid_spark.contract import SYNTHETIC_PROVENANCE, is_synthetic_catalog

    synthetic = spark.createDataFrame([("t1", SYNTHETIC_PROVENANCE)] * 2, "track_id string, provenance string")
    assert is_synthetic_catalog(synthetic)
    assert not is_synthetic_catalog(synthetic.select("track_id"))
    mixed = synthetic.union(spark.createDataFrame([("t9", None)], "track_id string, provenance string"))
    assert not is_synthetic_catalog(mixed)


def test_no_predictions_at_all():
    out = tag_rows(_frame(), None, "m1", min_confidence=0.5)
    assert list(out.status) == ["no_features", "no_features", "instrumental", "no_features", "no_features"]


class _FakeClassifier:
    def predict_tracks(self, wanted, second_language_min):
        return _preds()[_preds().track_id.isin(wanted.track_id)]


class _GPUs:
    addresses = ["1"]


class _GPUTask:
    def resources(self):
        return {"gpu": _GPUs()}


@pytest.fixture()
def worker(monkeypatch):
    """A fresh worker-model cache, a fake classifier loader that records its device, and the
    environment restored afterwards."""
    import pyspark
    from lid_spark.udfs import worker

    from lid_spark.model.artifact import LanguageClassifier

    monkeypatch.setattr(worker, "_MODELS", {})
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    loads = []

    def fake_load(directory, device="cpu"):
        loads.append((directory, device))
        return _FakeClassifier()

    monkeypatch.setattr(LanguageClassifier, "load", staticmethod(fake_load))
    monkeypatch.setattr(pyspark.TaskContext, "get", staticmethod(lambda: _GPUTask()))
    return loads


def test_tagging_udf_loads_once_on_the_task_gpu(worker):
    from lid_spark.udfs.tagging import tag_batches

    score = tag_batches("/models/m1", "m1", 0.5, 0.3, device="cuda", torch_threads=0)
    out = list(score(iter([_frame(), _frame()])))
    # Spark gave the task GPU 1: it is the only one visible and the classifier loads on cuda:0, once.
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "1"
    assert worker == [("/models/m1", "cuda:0")]
    assert list(out[0].status) == list(out[1].status) == ["tagged", "low_confidence", "instrumental",
                                                          "no_features", "no_features"]


def test_tagging_udf_on_cpu_leaves_the_gpus_alone(worker):
    from lid_spark.udfs.tagging import tag_batches

    list(tag_batches("/models/m1", "m1", 0.5, 0.3, device="cpu", torch_threads=0)(iter([_frame()])))
    assert "CUDA_VISIBLE_DEVICES" not in os.environ
    assert worker == [("/models/m1", "cpu")]
