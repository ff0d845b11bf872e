"""The tagging pandas UDF: the classifier is loaded once per Python worker, then scores batches.

The classifier comes through :func:`lid_spark.udfs.worker.worker_model`: cached per worker, on the
GPU Spark gave the task when ``tagging.device`` is not ``cpu``, with ``tagging.torch_threads``
intra-op threads (0: torch's default).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pandas as pd
from lid_spark.udfs.worker import worker_model


def _classifier(model_dir: str, device: str, torch_threads: int):
    def load(resolved: str):
        from lid_spark.model.artifact import LanguageClassifier

        return LanguageClassifier.load(model_dir, device=resolved)

    return worker_model("tagging", model_dir, load, device=device, torch_threads=torch_threads)


def tag_batches(model_dir: str, model_version: str, min_confidence: float, second_language_min: float,
                device: str = "cpu", torch_threads: int = 1, note: str | None = None,
                guard: dict | None = None) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """A ``mapInPandas`` function from track-feature-frame batches to ``language_tags`` rows
    (``note``: added to the reason of every tag that read the vocals; ``guard``: the precision
    target and guard arguments of ``predict_tracks``, :func:`lid_spark.tagging.guard_settings`)."""
    from lid_spark.tagging import has_usable_features, is_instrumental, tag_rows

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        classifier = _classifier(model_dir, device, torch_threads)
        for frame in batches:
            wanted = frame[has_usable_features(frame) & ~is_instrumental(frame)]
            predictions = (classifier.predict_tracks(wanted, second_language_min, **(guard or {}))
                           if len(wanted) else None)
            yield tag_rows(frame, predictions, model_version, min_confidence, note=note)

    return score
