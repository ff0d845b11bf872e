"""The separator of the training corpus and the held-out clips: the pipeline's default one.

Example
-------
>>> separator_key(pipeline_separator())[0] in ("softmask", "pretrained", "spleeter")
True
"""

from __future__ import annotations

from lid_spark.config import load_config


def pipeline_separator():
    """The separator the pipeline uses by default (``audio.separation`` of the default config): the
    training corpus and the held-out clips are separated as the catalog's vocals are."""
    from lid_spark.audio.separation import separator_from_config

    return separator_from_config(load_config())


def separator_key(separator) -> tuple:
    """The separator's name and scalar settings: what a cached corpus made with it depends on."""
    scalars = (int, float, str, bool, type(None), tuple)
    return (separator.name, sorted((k, v) for k, v in vars(separator).items() if isinstance(v, scalars)))
