"""Convert a Spleeter TensorFlow checkpoint into the ``pretrained`` backend's weights (safetensors).

The checkpoint's variables are read in the Spleeter environment (``tf.train.load_checkpoint``; a
short script run by its Python writes them as a plain ``.npz`` of arrays and the Spleeter params
as JSON), then mapped here onto the torch U-Net of :mod:`lid_spark.audio.separation.pretrained` and
written as ``config.json`` + ``<stem>.safetensors`` (:func:`~lid_spark.audio.separation.pretrained.save_weights`).

Supported: Spleeter's ``unet.unet`` model (the ``2stems`` family: one 12-layer U-Net per stem,
default LeakyReLU / ReLU activations) with any ``conv_n_filters``, ``T``, ``F``, frame sizes, sample
rate and instrument list containing ``vocals`` (e.g. the reduced models ``lid-spark train_spleeter``
trains, and Deezer's ``2stems``; its 4- and 5-stem models are unet.unet too and convert, with more
stems). Not supported: ``unet.softmax_unet``, ``blstm`` and non-default activations (a
ParameterError says so).

Keras names the layers in creation order, one U-Net per stem in ``instrument_list`` order, so stem
``i`` has ``conv2d_{7i}`` .. ``conv2d_{7i+5}`` (encoder) and ``conv2d_{7i+6}`` (the final 4x4
dilated convolution), ``conv2d_transpose_{6i}`` .. ``_{6i+5}`` (decoder) and
``batch_normalization_{12i}`` .. ``_{12i+11}`` (6 encoder, then 6 decoder); the first of each has no
suffix. Kernels are ``[h, w, in, out]`` (transposed convolutions ``[h, w, out, in]``): both become
torch's layout with one permutation, no flip.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from lid_spark.audio.separation.pretrained import ModelConfig, save_weights
from lid_spark.audio.separation.spleeter_process import resolve_env_python
from lid_spark.errors import ParameterError

# Run by the Spleeter environment's Python: argv = checkpoint dir or prefix, params descriptor, out dir.
_DUMP_SCRIPT = r"""
import json, sys
import numpy as np
import tensorflow as tf
from spleeter.utils.configuration import load_configuration
source, descriptor, out = sys.argv[1:4]
prefix = tf.train.latest_checkpoint(source) if tf.io.gfile.isdir(source) else source
if prefix is None:
    sys.exit(f"no TensorFlow checkpoint in {source}")
reader = tf.train.load_checkpoint(prefix)
names = [n for n in reader.get_variable_to_shape_map()
         if n.split("/")[0].startswith(("conv2d", "batch_normalization")) and "Adam" not in n]
np.savez(out + "/variables.npz", **{n.replace("/", "|"): reader.get_tensor(n) for n in names})
with open(out + "/params.json", "w") as f:
    json.dump(load_configuration(descriptor), f)
print(prefix)
"""


def _suffix(name: str, index: int) -> str:
    return name if index == 0 else f"{name}_{index}"


def map_unet(variables: dict[str, np.ndarray], stem_index: int) -> dict[str, np.ndarray]:
    """The torch state dict of stem ``stem_index``'s U-Net from Spleeter's variables (``layer/var`` names).

    Example
    -------
    >>> import torch
    >>> from lid_spark.audio.separation.pretrained import unet
    >>> net = unet((2, 2, 2, 2, 2, 2))
    >>> names = [k for k in map_unet(fake_variables((2, 2, 2, 2, 2, 2)), 0)]
    >>> sorted(names) == sorted(k for k in net.state_dict() if not k.endswith("num_batches_tracked"))
    True
    """
    def get(layer: str, var: str) -> np.ndarray:
        key = f"{layer}/{var}"
        if key not in variables:
            raise ParameterError(f"the checkpoint lacks {key} (stem {stem_index}): not a Spleeter unet.unet model")
        return np.asarray(variables[key], dtype=np.float32)

    def batch_norm(index: int) -> dict[str, np.ndarray]:
        layer = _suffix("batch_normalization", 12 * stem_index + index)
        return {"weight": get(layer, "gamma"), "bias": get(layer, "beta"),
                "running_mean": get(layer, "moving_mean"), "running_var": get(layer, "moving_variance")}

    state: dict[str, np.ndarray] = {}
    for level in range(6):
        conv = _suffix("conv2d", 7 * stem_index + level)
        state[f"down{level + 1}_conv.1.weight"] = get(conv, "kernel").transpose(3, 2, 0, 1)
        state[f"down{level + 1}_conv.1.bias"] = get(conv, "bias")
        for k, v in batch_norm(level).items():
            state[f"down{level + 1}_act.0.{k}"] = v
        deconv = _suffix("conv2d_transpose", 6 * stem_index + level)
        state[f"up{level + 1}.0.weight"] = get(deconv, "kernel").transpose(3, 2, 0, 1)
        state[f"up{level + 1}.0.bias"] = get(deconv, "bias")
        for k, v in batch_norm(6 + level).items():
            state[f"up{level + 1}.3.{k}"] = v
    final = _suffix("conv2d", 7 * stem_index + 6)
    state["up7.0.weight"] = get(final, "kernel").transpose(3, 2, 0, 1)
    state["up7.0.bias"] = get(final, "bias")
    return {k: np.ascontiguousarray(v) for k, v in state.items()}


def fake_variables(conv_n_filters, n_stems: int = 1, in_channels: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    """Random variables named and shaped as Spleeter's checkpoint of a ``unet.unet`` model (for tests)."""
    rng = np.random.default_rng(seed)
    n = list(conv_n_filters)
    out: dict[str, np.ndarray] = {}

    def add_bn(index: int, width: int):
        layer = _suffix("batch_normalization", index)
        out[f"{layer}/gamma"] = rng.uniform(0.5, 1.5, width).astype(np.float32)
        out[f"{layer}/beta"] = rng.normal(0, 0.1, width).astype(np.float32)
        out[f"{layer}/moving_mean"] = rng.normal(0, 0.1, width).astype(np.float32)
        out[f"{layer}/moving_variance"] = rng.uniform(0.5, 1.5, width).astype(np.float32)

    for stem in range(n_stems):
        widths = [in_channels, *n]
        for level in range(6):
            conv = _suffix("conv2d", 7 * stem + level)
            out[f"{conv}/kernel"] = rng.normal(0, 0.1, (5, 5, widths[level], widths[level + 1])).astype(np.float32)
            out[f"{conv}/bias"] = rng.normal(0, 0.1, widths[level + 1]).astype(np.float32)
            add_bn(12 * stem + level, widths[level + 1])
        ups = [(n[5], n[4]), (2 * n[4], n[3]), (2 * n[3], n[2]), (2 * n[2], n[1]), (2 * n[1], n[0]), (2 * n[0], 1)]
        for level, (i, o) in enumerate(ups):
            deconv = _suffix("conv2d_transpose", 6 * stem + level)
            out[f"{deconv}/kernel"] = rng.normal(0, 0.1, (5, 5, o, i)).astype(np.float32)
            out[f"{deconv}/bias"] = rng.normal(0, 0.1, o).astype(np.float32)
            add_bn(12 * stem + 6 + level, o)
        final = _suffix("conv2d", 7 * stem + 6)
        out[f"{final}/kernel"] = rng.normal(0, 0.1, (4, 4, 1, in_channels)).astype(np.float32)
        out[f"{final}/bias"] = rng.normal(0, 0.1, in_channels).astype(np.float32)
    return out


def convert_variables(variables: dict[str, np.ndarray], params: dict, out_dir) -> Path:
    """Write the weights directory of Spleeter ``variables`` (``layer/var`` -> array) for ``params``."""
    config = ModelConfig.from_spleeter_params(params)
    states = {stem: map_unet(variables, i) for i, stem in enumerate(config.instruments)}
    first = states[config.instruments[0]]["down1_conv.1.weight"]
    if first.shape[1] != config.n_channels or first.shape[0] != config.conv_n_filters[0]:
        raise ParameterError(f"the checkpoint's first layer is {first.shape}, the params say "
                             f"{config.n_channels} channels into {config.conv_n_filters[0]} filters")
    return save_weights(out_dir, config, states)


def convert_checkpoint(checkpoint: str | os.PathLike, params: str, out_dir: str | os.PathLike,
                       env_python: str | os.PathLike | None = None, timeout_s: float = 600.0) -> dict:
    """Convert a Spleeter checkpoint to ``out_dir`` (``audio.separation.pretrained_weights``).

    Parameters
    ----------
    checkpoint : path
        The model directory (its latest checkpoint is read) or a checkpoint prefix.
    params : str
        The model's Spleeter params: a JSON file or ``spleeter:<name>`` (e.g. ``spleeter:2stems``).
    out_dir : path
        Written: ``config.json`` and ``<stem>.safetensors``.
    env_python : path, optional
        The Spleeter environment (:func:`~lid_spark.audio.separation.spleeter_process.resolve_env_python`).

    Returns
    -------
    dict with ``out_dir``, ``checkpoint`` (the prefix read), ``instruments`` and ``config``.
    """
    python = resolve_env_python(env_python)
    if not params.startswith("spleeter:") and not Path(params).is_file():
        raise ParameterError(f"--params {params}: no such Spleeter params file (or use spleeter:<name>)")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", PYTHONNOUSERSITE="1", CUDA_VISIBLE_DEVICES="")
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run([str(python), "-c", _DUMP_SCRIPT, str(checkpoint), params, tmp], env=env,
                                capture_output=True, text=True, timeout=timeout_s)
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
            raise RuntimeError(f"reading the Spleeter checkpoint {checkpoint} failed: {tail}")
        with np.load(Path(tmp) / "variables.npz", allow_pickle=False) as data:
            variables = {k.replace("|", "/"): data[k] for k in data.files}
        spleeter_params = json.loads((Path(tmp) / "params.json").read_text())
    out = convert_variables(variables, spleeter_params, out_dir)
    config = json.loads((out / "config.json").read_text())
    return {"out_dir": str(out), "checkpoint": result.stdout.strip().splitlines()[-1],
            "instruments": config["instruments"], "config": config}
