"""The models of a Python worker: loaded once per worker, on the task's GPU, with bounded torch threads.

Every UDF gets its models through :func:`worker_model`: a module-level cache keyed by the model's
settings, so a worker loads them on its first batch and reuses them for every later batch and
task. Before loading, :func:`pin_task_gpu` makes the GPU Spark gave the task
(``spark.task.resource.gpu.amount``) the only one visible, so every framework in the worker sees
only that GPU, and the torch intra-op threads are set (Spark runs one task per core: more threads
per worker only oversubscribe).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

Model = TypeVar("Model")

_MODELS: dict[str, object] = {}


def pin_task_gpu(device: str) -> str:
    """Make the task's GPU the only visible one; returns the device setting to load models with.

    Parameters
    ----------
    device : str
        The model's device setting: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.

    Returns
    -------
    str
        ``"cuda:0"`` (the pinned task GPU), or ``device`` unchanged when Spark gave no GPU or
        ``device`` is ``cpu``.
    """
    if device == "cpu":
        return device
    from pyspark import TaskContext

    context = TaskContext.get()
    gpus = context.resources().get("gpu") if context is not None else None
    if gpus is None or not gpus.addresses:
        return device
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(gpus.addresses)
    return "cuda:0"


def set_torch_threads(threads: int) -> None:
    """Intra-op threads of torch in this worker; 0 leaves torch's default."""
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


def worker_model(name: str, settings, load: Callable[[str], Model], *, device: str, torch_threads: int) -> Model:
    """The model ``name`` for ``settings`` in this Python worker, loaded on first use.

    Parameters
    ----------
    name : str
        What the model is (``"audio"``, ``"tagging"``): part of the cache key.
    settings : object
        Everything that makes two models different (plain data with a stable ``repr``); with
        ``name``, ``device`` and ``torch_threads``, the cache key.
    load : callable
        ``load(device) -> model``, called once per worker and key, after the GPU is pinned and
        the threads set; ``device`` is what :func:`pin_task_gpu` resolved.
    device : str
        The device setting (``auto``, ``cpu``, ``cuda``, ``cuda:N``).
    torch_threads : int
        Intra-op threads (0: torch's default).
    """
    key = repr((name, settings, device, torch_threads))
    if key not in _MODELS:
        resolved = pin_task_gpu(device)
        set_torch_threads(torch_threads)
        _MODELS[key] = load(resolved)
    return _MODELS[key]
