"""Ranking held-out co-listened pairs: Recall@k and MAP, and the peers' embeddings.

The evaluation protocol (used to choose hyper-parameters and to compare with the peers):

1. Sessions are split by a hash of the session key: ``holdout_fraction`` of them are held out.
   Splitting sessions rather than pairs keeps every method honest: a session-sequence peer
   (word2vec) never sees a held-out co-listen, and neither does the co-occurrence graph.
2. Every method learns track vectors from the training sessions only.
3. For each query track q, its relevant set R(q) is the tracks co-listened with q in held-out
   sessions. All candidate tracks (the training graph's vocabulary, common to all methods) are
   ranked by cosine similarity to q; q itself is excluded.
4. ``Recall@k = |top_k(q) ∩ R(q)| / |R(q)|`` and ``AP(q) = (1/|R|) sum_{r in R} hits_up_to(rank r) / rank r``
   over the full ranking; both are averaged over queries (MAP is the mean of AP).

The peers, at the same dimension and epochs: ``implicit_als`` (implicit's ALS on the binary
session x track matrix), ``spark_word2vec`` (Spark ML Word2Vec over the session track sequences)
and ``gensim_word2vec`` (gensim skip-gram with negative sampling over the same sequences).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from lid_spark.errors import ParameterError


def rank_metrics(vectors: np.ndarray, relevant: Mapping[int, Sequence[int]], k: int = 10,
                 chunk: int = 256) -> dict[str, float]:
    """Recall@k and MAP of ranking all items by cosine similarity to each query item.

    Parameters
    ----------
    vectors : np.ndarray
        (n_items, dim); an all-zero row is an item the method has no vector for (it ranks last
        for every query, and as a query it ranks everything at random-equal scores: ties count
        against it, see below).
    relevant : mapping
        query index -> indices of its relevant items (the query itself is ignored).
    k : int
        the cut-off of Recall@k.

    Returns
    -------
    dict
        ``recall_at_k`` (key named with k, e.g. ``recall_at_10``), ``map`` and ``queries``.
        A tie is ranked pessimistically: an item's rank counts every other item scoring >= it.

    Example
    -------
    >>> v = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> rank_metrics(v, {0: [1], 2: [3, 0]}, k=1)
    {'recall_at_1': 0.75, 'map': 0.9166666666666666, 'queries': 2}
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.ndim != 2:
        raise ParameterError(f"vectors must be 2-d (n_items, dim), got shape {vectors.shape}")
    if k < 1:
        raise ParameterError(f"k must be >= 1, got {k}")
    n = len(vectors)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    missing = norms[:, 0] == 0
    queries = [(q, np.unique([r for r in rel if r != q and 0 <= r < n])) for q, rel in relevant.items()]
    queries = [(q, rel) for q, rel in queries if len(rel) and 0 <= q < n]
    if not queries:
        raise ParameterError("no query has a relevant item: nothing to evaluate")
    recalls, aps = [], []
    for start in range(0, len(queries), chunk):
        block = queries[start:start + chunk]
        q_idx = np.array([q for q, _ in block])
        scores = unit[q_idx] @ unit.T
        scores[:, missing] = -np.inf                      # items without a vector rank last
        scores[np.arange(len(block)), q_idx] = np.nan     # the query is not a candidate
        for row, (_q, rel) in zip(scores, block):
            candidates = np.sort(row[~np.isnan(row)])
            # pessimistic rank: the number of candidates scoring >= this one (itself included)
            ranks = np.sort(len(candidates) - np.searchsorted(candidates, row[rel], side="left"))
            # the i-th best relevant item is the i-th hit, at rank ranks[i-1] (>= i): precision i / rank
            aps.append(float(np.mean(np.arange(1, len(ranks) + 1) / ranks)))
            recalls.append(float((ranks <= k).sum() / len(rel)))
    return {f"recall_at_{k}": float(np.mean(recalls)), "map": float(np.mean(aps)), "queries": len(queries)}


def align_vectors(vocabulary: Sequence[str], vectors_by_id: Mapping[str, np.ndarray], dim: int) -> np.ndarray:
    """Rows in ``vocabulary`` order; ids a method has no vector for get a zero row."""
    out = np.zeros((len(vocabulary), dim), dtype=np.float64)
    for i, track in enumerate(vocabulary):
        vec = vectors_by_id.get(track)
        if vec is not None:
            out[i] = vec
    return out


def als_vectors(session_items: Sequence[Sequence[int]], n_items: int, *, dim: int, iterations: int,
                regularization: float = 0.01, alpha: float = 1.0, seed: int = 13) -> np.ndarray:
    """Item factors of implicit's ALS on the binary session x item matrix (sessions are the users)."""
    import scipy.sparse as sp
    from implicit.cpu.als import AlternatingLeastSquares

    rows = np.repeat(np.arange(len(session_items)), [len(s) for s in session_items])
    cols = np.concatenate([np.asarray(s, dtype=np.int64) for s in session_items]) if session_items else np.array([])
    matrix = sp.csr_matrix((np.full(len(cols), alpha, dtype=np.float32), (rows, cols)),
                           shape=(len(session_items), n_items))
    matrix.sum_duplicates()
    from threadpoolctl import threadpool_limits

    model = AlternatingLeastSquares(factors=dim, iterations=iterations, regularization=regularization,
                                    random_state=seed, calculate_training_loss=False)
    with threadpool_limits(1, "blas"):  # implicit parallelises itself; a BLAS thread pool inside slows it down
        model.fit(matrix, show_progress=False)
    return np.asarray(model.item_factors, dtype=np.float64)


def gensim_vectors(sentences: Sequence[Sequence[str]], *, dim: int, epochs: int, window: int = 5,
                   negatives: int = 5, seed: int = 13, workers: int = 1) -> dict[str, np.ndarray]:
    """gensim skip-gram with negative sampling over the session sequences: track id -> vector."""
    from gensim.models import Word2Vec

    model = Word2Vec(sentences=[list(s) for s in sentences], vector_size=dim, window=window, min_count=1, sg=1,
                     negative=negatives, hs=0, epochs=epochs, seed=seed, workers=workers)
    return {word: model.wv[word].astype(np.float64) for word in model.wv.index_to_key}


def spark_word2vec_vectors(sequences_df, *, dim: int, epochs: int, window: int = 5, seed: int = 13,
                           partitions: int = 1) -> dict[str, np.ndarray]:
    """Spark ML Word2Vec over a DataFrame with a ``tracks`` array<string> column: id -> vector."""
    from pyspark.ml.feature import Word2Vec

    model = Word2Vec(vectorSize=dim, windowSize=window, minCount=1, maxIter=epochs, seed=seed,
                     numPartitions=partitions, inputCol="tracks", outputCol="_v").fit(sequences_df)
    return {r["word"]: r["vector"].toArray() for r in model.getVectors().collect()}
