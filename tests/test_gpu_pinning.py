"""A task that Spark gave a GPU (``spark.task.resource.gpu.amount``) pins ``CUDA_VISIBLE_DEVICES`` to it
before the extraction UDF loads its models, as the tagging UDF does (tests/test_tagging.py). The same
pinning on a real standalone cluster, with a discovery script announcing fake GPUs, is checked in
tests/test_cluster.py."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from lid_spark.config import load_config
from lid_spark.schemas import STATUS_NO_URI


class _GPUs:
    addresses = ["2"]


class _GPUTask:
    def resources(self):
        return {"gpu": _GPUs()}


class _CPUTask:
    def resources(self):
        return {}


@pytest.fixture()
def spoken_lid_loads(monkeypatch):
    """A fresh worker-model cache and a spoken-LID loader that records its device (no model is loaded)."""
    import pyspark
    from lid_spark.udfs import worker

    from lid_spark.audio import separation
    from lid_spark.audio.spoken_lid import SpokenLID

    monkeypatch.setattr(worker, "_MODELS", {})
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    loads = []

    def fake_load(source="embedded", device="auto", savedir=None):
        loads.append((source, device, os.environ.get("CUDA_VISIBLE_DEVICES")))
        return object()

    def fake_separator(cfg, device="auto"):
        loads.append(("separator", device, os.environ.get("CUDA_VISIBLE_DEVICES")))
        return object()

    monkeypatch.setattr(SpokenLID, "load", staticmethod(fake_load))
    monkeypatch.setattr(separation, "separator_from_config", fake_separator)
    return loads, monkeypatch, pyspark.TaskContext


def _extract(device: str) -> list[pd.DataFrame]:
    from lid_spark.udfs.audio_features import extract_features_udf

    cfg = load_config([], [f"audio.spoken_lid.device={device}", f"audio.separation.device={device}"])
    run = extract_features_udf(cfg.to_dict(), codebook=None, version="v1")
    batch = pd.DataFrame({"track_id": ["a", "b"], "audio_uri": [None, None]})
    return list(run(iter([batch, batch])))


def test_extraction_udf_loads_once_on_the_task_gpu(spoken_lid_loads):
    loads, monkeypatch, task_context = spoken_lid_loads
    monkeypatch.setattr(task_context, "get", staticmethod(lambda: _GPUTask()))
    out = _extract("auto")
    # GPU 2 is the only one visible when the model loads, on cuda:0 (the first visible), once per worker.
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "2"
    assert loads == [("embedded", "cuda:0", "2"), ("separator", "cuda:0", "2")]
    assert [list(frame.status) for frame in out] == [[STATUS_NO_URI] * 2] * 2


@pytest.mark.parametrize("device, task", [("cpu", _GPUTask), ("auto", _CPUTask)])
def test_extraction_udf_without_a_task_gpu_leaves_the_gpus_alone(spoken_lid_loads, device, task):
    loads, monkeypatch, task_context = spoken_lid_loads
    monkeypatch.setattr(task_context, "get", staticmethod(lambda: task()))
    _extract(device)
    assert "CUDA_VISIBLE_DEVICES" not in os.environ
    assert loads == [("embedded", device, None), ("separator", device, None)]
