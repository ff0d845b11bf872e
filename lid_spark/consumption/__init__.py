"""Consumption song embeddings (paper section 3.1.1): from plays to track vectors.

The stages, each a module:

- :mod:`~lid_spark.consumption.sessions`: validate plays (every play used or counted under a
  reason), sessionize, one count per track per session, a hash-sampled cap per session, bots.
- :mod:`~lid_spark.consumption.pairs`: same-session pair counts, distinct users, marginals,
  filters and Dunning's log-likelihood ratio.
- :mod:`~lid_spark.consumption.debias`: popularity and hubness corrections, top-k neighbours,
  and their measurements (k-occurrence skewness, score-popularity correlation).
- :mod:`~lid_spark.consumption.sgns`: weighted skip-gram with negative sampling in torch.
- :mod:`~lid_spark.consumption.ranking`: held-out pair ranking (Recall@k, MAP) and the peers.

Spark transformations take and return DataFrames and never collect plays to the driver; the
numerical pieces (LLR, metrics, SGNS) are plain numpy/torch functions testable without Spark.
"""
