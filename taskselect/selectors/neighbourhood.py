"""The query neighbourhood: pool rows in order of nearness to the query set, queries taking turns."""

from __future__ import annotations

import logging

import faiss
import numpy as np

from taskselect.index import Metric, nearest
from taskselect.selectors.tsds import check_embeddings

log = logging.getLogger(__name__)


def round_robin(
    query: np.ndarray, candidates: np.ndarray, n: int, seed: int,
    index: faiss.Index | None = None, metric: Metric = "l2",
) -> np.ndarray:
    """(min(n, N),) int64 distinct candidate rows, nearest first, the queries taking turns.

    Round r gives each query its r-th nearest candidate that no earlier turn took; within a
    round the queries go in one random order drawn with `seed`. Each query's neighbour list
    is searched just deep enough (doubling from ceil(n / M)) to hold n distinct rows.

    query: (M, dim), candidates: (N, dim) embeddings; index: optional faiss index over the
    candidates (taskselect.index.nearest).
    """
    candidates = check_embeddings("candidates", candidates)
    query = check_embeddings("query", query, dim=candidates.shape[1])
    n_pool, n_query = len(candidates), len(query)
    n = min(n, n_pool)
    order = np.random.default_rng(seed).permutation(n_query)
    k = min(n_pool, -(-n // n_query))
    while True:
        ids = nearest(candidates, query, k, metric, index).ids[order]
        turns = ids.T.ravel()  # round after round, the queries in `order` within each
        _, first = np.unique(turns, return_index=True)
        if first.size >= n or k == n_pool:
            log.debug("round robin: %d rows from %d neighbours per query", n, k)
            return turns[np.sort(first)[:n]]
        k = min(n_pool, 2 * k)
