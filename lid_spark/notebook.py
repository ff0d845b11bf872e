"""Notebook parameters: Databricks widgets on Databricks, environment variables elsewhere.

The notebooks in ``notebooks/`` declare their parameters as a dict of defaults at the top. On
Databricks each one becomes a text widget (so a job or ``dbutils.notebook.run`` can set it);
run locally as plain Python, ``LID_SPARK_<NAME>`` environment variables override the defaults.
Configuration overrides travel in one parameter, ``settings``: ``key=value`` items separated by
spaces, exactly as on the ``lid-spark`` command line.

Example
-------
>>> env = {"LID_SPARK_SETTINGS": "synth.tracks=44"}
>>> params = notebook_parameters({"out": "notebook-out", "settings": ""}, environ=env)
>>> params["out"], split_settings(params["settings"])
('notebook-out', ['synth.tracks=44'])
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping

from lid_spark.errors import ParameterError


def notebook_parameters(defaults: Mapping[str, str], dbutils=None,
                        environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The values of a notebook's parameters.

    Parameters
    ----------
    defaults : mapping name -> default text ("" for unset)
    dbutils : Databricks ``dbutils`` (``globals().get("dbutils")`` in a notebook), or None locally
    environ : where ``LID_SPARK_<NAME>`` variables are read when ``dbutils`` is None
        (default: ``os.environ``)

    Returns
    -------
    dict name -> text value
    """
    for name in defaults:
        if not name.isidentifier():
            raise ParameterError(f"notebook parameter names must be identifiers, got {name!r}")
    if dbutils is not None:
        values = {}
        for name, default in defaults.items():
            dbutils.widgets.text(name, str(default))
            values[name] = dbutils.widgets.get(name)
        return values
    environ = os.environ if environ is None else environ
    return {name: environ.get(f"LID_SPARK_{name.upper()}", str(default)) for name, default in defaults.items()}


def split_settings(text: str) -> list[str]:
    """``key=value`` overrides from one parameter string (shell quoting allowed).

    Example
    -------
    >>> split_settings("synth.tracks=44 'evaluation.subsets=[multimodal]'")
    ['synth.tracks=44', 'evaluation.subsets=[multimodal]']
    """
    items = shlex.split(text or "")
    bad = [item for item in items if "=" not in item]
    if bad:
        raise ParameterError(f"settings must be key=value items separated by spaces; not understood: {bad}")
    return items
