"""TSDS written the straightforward way: the baseline benchmarks/selection.py measures the engine against.

The same algorithm as taskselect.selectors.tsds (kNN-restricted problem, KDE over the union of
neighbours, water-filling), implemented as one would from the paper's description: a Python
heap that extends one query's prefix at a time, a dict from candidate to density, Python loops
over queries and neighbour pairs, and an exact kde_k-nearest-neighbour search of every union
point for the densities. It exists only to be measured; the package never imports it.
"""

from __future__ import annotations

import heapq
import time

import faiss
import numpy as np


def heap_tsds(query, pool, size, seed, alpha, C, sigma, max_k, kde_k, kde_sample=None):
    """(p, indices, seconds per phase). kde_sample: search the densities of only this many union
    points and scale the KDE time up (the full search would take hours); p is then None."""
    seconds = {}
    started = time.perf_counter()
    k = min(max_k, len(pool))
    squared, ids = faiss.knn(query, pool, k, metric=faiss.METRIC_L2)
    dist = np.sqrt(np.maximum(squared.astype(np.float64), 0.0)).tolist()
    ids = ids.tolist()
    seconds["search"] = time.perf_counter() - started

    started = time.perf_counter()
    union = sorted({j for row in ids for j in row})
    points = np.ascontiguousarray(pool[union], dtype=np.float32)
    index = faiss.IndexFlatL2(points.shape[1])
    index.add(points)
    rows = len(union) if kde_sample is None else min(kde_sample, len(union))
    searching = time.perf_counter()
    squared_kde, _ = index.search(points[:rows], min(kde_k, len(union)))
    kde = np.maximum(0.0, 1.0 - squared_kde.astype(np.float64) / sigma**2).sum(axis=1)
    if kde_sample is not None:  # the search time grows with the rows searched
        seconds["kde"] = searching - started + (time.perf_counter() - searching) * len(union) / rows
        return None, None, seconds | {"extrapolated": True}
    density = {j: kde[pos] for pos, j in enumerate(union)}
    rho = [[density[j] for j in row] for row in ids]
    seconds["kde"] = time.perf_counter() - started

    started = time.perf_counter()
    p = heap_water_filling(dist, rho, ids, len(pool), alpha, C)
    seconds["solve"] = time.perf_counter() - started

    started = time.perf_counter()
    indices = np.random.default_rng(seed).choice(len(pool), size, p=p / p.sum())
    seconds["sample"] = time.perf_counter() - started
    return p, indices, seconds


def heap_water_filling(dist, rho, ids, n, alpha, C) -> np.ndarray:
    """(n,) selection probabilities from nested lists dist, rho, ids (M x K each).

    Always extend the query whose prefix holds the least weight; stop once raising the level
    costs more alignment than it saves diversity.
    """
    m, k = len(dist), len(dist[0])
    weighted_dist = [0.0] * m
    slope = [0.0] * m
    heap = [(1.0 / rho[i][0], 0, i) for i in range(m)]
    heapq.heapify(heap)
    total = 0.0
    level = heap[0][0]
    while heap:
        level, c, i = heapq.heappop(heap)
        weighted_dist[i] += dist[i][c] / rho[i][c]
        new_slope = dist[i][c + 1] * level - weighted_dist[i] if c + 1 < k else float("inf")
        total += new_slope - slope[i]
        slope[i] = new_slope
        if alpha * total >= (1.0 - alpha) * m * C:
            break
        heapq.heappush(heap, (level + 1.0 / rho[i][c + 1], c + 1, i))
    p = np.zeros(n)
    for i in range(m):
        held = 0.0
        for c in range(k):
            w = 1.0 / rho[i][c]
            if held + w > level:
                p[ids[i][c]] += max(0.0, 1.0 / m - held / (m * level))
                break
            p[ids[i][c]] += w / (m * level)
            held += w
    return p
