"""The pipeline's stages, each a function ``run(spark, cfg, ...) -> report`` (jobs/ wraps them for spark-submit).

The order they run in (README "Jobs"): :data:`PIPELINE`. ``train_classifier`` is not in it: ``evaluate``
trains (or reuses) every model its tables need, ``tag_catalog`` among them.
"""

from __future__ import annotations

from lid_spark.stages import cooccurrence, evaluate, extract_features, fit_codebook, tag_catalog, train_embeddings

PIPELINE = {
    "cooccurrence": cooccurrence,
    "train_embeddings": train_embeddings,
    "fit_codebook": fit_codebook,
    "extract_features": extract_features,
    "evaluate": evaluate,
    "tag_catalog": tag_catalog,
}
