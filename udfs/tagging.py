"""The tagging pandas UDF: the classifier is loaded once per Python worker, then scores batches."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pandas as pd

_CLASSIFIERS: dict[str, object] = {}


def _classifier(model_dir: str, device: str, torch_threads: int):
    from lid_spark.model.artifact import LanguageClassifier

    key = f"{model_dir}|{device}"
    if key not in _CLASSIFIERS:
        if torch_threads > 0:
            import torch

            # Spark runs one task per core: more intra-op threads per worker only oversubscribe.
            torch.set_num_threads(torch_threads)
        _CLASSIFIERS[key] = LanguageClassifier.load(model_dir, device=device)
    return _CLASSIFIERS[key]


def tag_batches(model_dir: str, model_version: str, min_confidence: float, second_language_min: float,
                device: str = "cpu", torch_threads: int = 1,
                ) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """A ``mapInPandas`` function from track-feature-frame batches to ``language_tags`` rows."""
    from lid_spark.tagging import has_usable_features, is_instrumental, tag_rows

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        classifier = _classifier(model_dir, device, torch_threads)
        for frame in batches:
            wanted = frame[has_usable_features(frame) & ~is_instrumental(frame)]
            predictions = classifier.predict_tracks(wanted, second_language_min) if len(wanted) else None
            yield tag_rows(frame, predictions, model_version, min_confidence)

    return score
