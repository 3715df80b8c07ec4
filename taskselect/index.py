"""faiss indexes over embeddings: exact (flat) by default, IVF or HNSW for large pools.

An index holds unit-normalised vectors compared by inner product (the pipeline's embeddings:
for unit vectors inner product ranks exactly as L2 and cosine distance do) or raw vectors
compared by L2. `nearest` turns either into distances in the selector's metric and, for an
approximate index, measures recall@k against exact search on a sample of the queries.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import faiss
import numpy as np
from tqdm.auto import tqdm

from taskselect.errors import TaskselectError
from taskselect.io import atomic_path, required

if TYPE_CHECKING:  # config imports the selectors, which import this module
    from taskselect.config import IndexParams

log = logging.getLogger(__name__)

Metric = Literal["l2", "cosine"]
RECALL_QUERIES = 100  # queries whose neighbour lists an approximate index is checked on
INDEX_RECALL_K = 100  # neighbours per query checked when an index is built
KMEANS_ITERATIONS = 5  # more barely changes IVF cells' quality here (measured on the MiniLM pool)
KMEANS_POINTS_PER_CELL = 39  # k-means trains on at most this many sampled points per cell
ADD_ROWS = 1 << 16  # rows added to an index at a time (a 96 MiB block at dim 384)


def ivf_cells(n_rows: int, nlist: int | None) -> int:
    """IVF cell count: `nlist`, or 4 * sqrt(rows) with enough rows per cell to train on."""
    if nlist is None:
        return max(1, min(round(4 * math.sqrt(n_rows)), n_rows // KMEANS_POINTS_PER_CELL))
    if nlist > n_rows:
        raise TaskselectError(f"index.nlist {nlist}: more cells than the {n_rows} rows to index")
    return nlist


def resolve_kind(n_rows: int, params: IndexParams) -> str:
    """The index kind for a pool of n_rows: params.kind, with 'auto' settled by flat_max_rows."""
    if params.kind != "auto":
        return params.kind
    return "flat" if n_rows <= params.flat_max_rows else "ivf"


def build_index(
    embeddings: np.ndarray, params: IndexParams | None = None, metric: Literal["ip", "l2"] = "ip", seed: int = 0
) -> faiss.Index:
    """faiss index over (N, dim) embeddings, which may be memory-mapped.

    metric "ip": inner product, for unit-normalised embeddings (cosine similarity; L2 distance
    is sqrt(2 - 2 ip)); "l2": squared Euclidean distance, for any embeddings.
    params.kind "flat" is exact; "ivf" and "hnsw" are approximate; "auto" picks by pool size
    (see IndexParams). IVF cells are trained on a sample of rows drawn with `seed`; rows are
    added ADD_ROWS at a time, so building holds the index and one block, never a second copy
    of the embeddings.
    """
    if params is None:
        from taskselect.config import IndexParams

        params = IndexParams()
    n, dim = embeddings.shape
    kind = resolve_kind(n, params)
    faiss_metric = faiss.METRIC_INNER_PRODUCT if metric == "ip" else faiss.METRIC_L2
    started = time.perf_counter()
    if kind == "flat":
        index = faiss.IndexFlat(dim, faiss_metric)
    elif kind == "ivf":
        nlist = ivf_cells(n, params.nlist)
        index = faiss.IndexIVFFlat(faiss.IndexFlat(dim, faiss_metric), dim, nlist, faiss_metric)
        index.cp.niter = KMEANS_ITERATIONS
        index.cp.max_points_per_centroid = KMEANS_POINTS_PER_CELL
        sample = np.sort(np.random.default_rng(seed).choice(n, min(n, nlist * KMEANS_POINTS_PER_CELL), replace=False))
        index.train(np.ascontiguousarray(embeddings[sample], dtype=np.float32))
        index.nprobe = min(params.nprobe, nlist)
    else:  # hnsw (IndexParams allows nothing else)
        index = faiss.IndexHNSWFlat(dim, params.hnsw_m, faiss_metric)
        index.hnsw.efConstruction = params.ef_construction
        index.hnsw.efSearch = params.ef_search
    for start in tqdm(range(0, n, ADD_ROWS), desc=f"{kind} index", unit="block", disable=n <= ADD_ROWS):
        index.add(np.ascontiguousarray(embeddings[start:start + ADD_ROWS], dtype=np.float32))
    log.info("%s index over %d rows built in %.1fs", kind, n, time.perf_counter() - started)
    return index


def index_kind(index: faiss.Index) -> str:
    """'flat', 'ivf' or 'hnsw' (the class name for other faiss indexes)."""
    if isinstance(index, faiss.IndexFlat):
        return "flat"
    if isinstance(index, faiss.IndexIVF):
        return "ivf"
    if isinstance(index, faiss.IndexHNSW):
        return "hnsw"
    return type(index).__name__


def write_index(index: faiss.Index, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        faiss.write_index(index, str(tmp))


def read_index(path: str | os.PathLike) -> faiss.Index:
    return faiss.read_index(str(required(path, "index", "index")))


def is_unit(x: np.ndarray, atol: float = 1e-3) -> bool:
    """Whether every row of (N, dim) `x` has norm 1 (within atol)."""
    norms = np.sqrt(np.einsum("ij,ij->i", x, x).astype(np.float64))
    return bool(np.all(np.abs(norms - 1.0) <= atol))


def unit_rows(x: np.ndarray) -> np.ndarray:
    """(N, dim) float32 rows scaled to norm 1 (zero rows stay zero); `x` itself if already so."""
    if is_unit(x):
        return x
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))[:, None]
    return x / np.maximum(norms, np.finfo(np.float32).tiny)


def to_distances(scores: np.ndarray, faiss_metric: int, metric: Metric) -> np.ndarray:
    """faiss scores (inner products of unit vectors, or squared L2) as float64 distances.

    l2: Euclidean distance; cosine: 1 - cosine similarity. Both maps are monotone, so faiss'
    order (nearest first) is kept.
    """
    scores = scores.astype(np.float64)
    if faiss_metric == faiss.METRIC_INNER_PRODUCT:
        return 1.0 - scores if metric == "cosine" else np.sqrt(np.clip(2.0 - 2.0 * scores, 0.0, None))
    squared = np.clip(scores, 0.0, None)
    return squared / 2.0 if metric == "cosine" else np.sqrt(squared)


@dataclass(frozen=True)
class Neighbours:
    """Each query's k nearest candidates.

    ids: (M, k) int64 candidate rows, nearest first.
    distances: (M, k) float64, ascending per row (l2: Euclidean, cosine: 1 - cosine similarity).
    index: 'flat' (exact search), 'ivf' or 'hnsw'.
    recall: recall@k of the lists against exact search (1.0 for exact search), measured on
        up to RECALL_QUERIES queries.
    """

    ids: np.ndarray
    distances: np.ndarray
    index: str
    recall: float


def _exact(candidates: np.ndarray, queries: np.ndarray, k: int, metric: Metric):
    """Exact search without copying the candidates into an index: (scores, ids, faiss metric)."""
    faiss_metric = faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L2
    scores, ids = faiss.knn(queries, candidates, k, metric=faiss_metric)
    return scores, ids, faiss_metric


def nearest(
    candidates: np.ndarray, queries: np.ndarray, k: int, metric: Metric,
    index: faiss.Index | None = None, seed: int = 0,
) -> Neighbours:
    """The k nearest candidates of each query.

    candidates: (N, dim) float32; queries: (M, dim) float32; 1 <= k <= N. For cosine both are
    unit-normalised here. index: a faiss index over exactly these candidates (inner product
    over unit-normalised rows, or L2; for cosine it must hold the unit-normalised rows), or
    None for exact search. An approximate index's lists
    are checked against exact search on a seeded sample of the queries (recall@k, logged).
    """
    if metric == "cosine":
        candidates, queries = unit_rows(candidates), unit_rows(queries)
    if index is None:
        scores, ids, faiss_metric = _exact(candidates, queries, k, metric)
        return Neighbours(ids.astype(np.int64), to_distances(scores, faiss_metric, metric), "flat", 1.0)

    _check_index(index, candidates, metric)
    kind = index_kind(index)
    started = time.perf_counter()
    if kind == "hnsw":  # a graph search returns at most efSearch rows
        params = faiss.SearchParametersHNSW(efSearch=max(index.hnsw.efSearch, k))
        scores, ids = index.search(queries, k, params=params)
    else:
        scores, ids = index.search(queries, k)
    distances = to_distances(scores, index.metric_type, metric)
    short = np.flatnonzero((ids < 0).any(axis=1))
    if short.size:  # an IVF probe can hold fewer than k rows: those queries are searched exactly
        log.warning("%s index returned fewer than %d neighbours for %d queries (raise nprobe); "
                    "searched them exactly", kind, k, short.size)
        exact_scores, ids[short], exact_metric = _exact(candidates, queries[short], k, metric)
        distances[short] = to_distances(exact_scores, exact_metric, metric)
    log.info("%s search: %d queries x %d neighbours in %.1fs", kind, len(queries), k, time.perf_counter() - started)
    recall = 1.0 if kind == "flat" else _recall(candidates, queries, ids, metric, seed)
    if kind != "flat":
        log.info("%s index: recall@%d %.4f against exact search", kind, k, recall)
    return Neighbours(ids.astype(np.int64), distances, kind, recall)


def _check_index(index: faiss.Index, candidates: np.ndarray, metric: Metric) -> None:
    n, dim = candidates.shape
    if index.ntotal != n or index.d != dim:
        raise TaskselectError(
            f"index: holds {index.ntotal} rows of dimension {index.d}, but the candidates are {n} x {dim}"
        )
    if index.metric_type not in (faiss.METRIC_INNER_PRODUCT, faiss.METRIC_L2):
        raise TaskselectError("index: expected an inner-product or L2 faiss index")
    if metric == "l2" and index.metric_type == faiss.METRIC_INNER_PRODUCT and not is_unit(candidates):
        raise TaskselectError(
            "index: an inner-product index ranks by L2 distance only over unit-normalised "
            "candidates; normalise them, use metric cosine, or search exactly (no index)"
        )


def _recall(candidates, queries, ids, metric: Metric, seed: int) -> float:
    """Share of the exact k nearest that the lists `ids` hold, over a sample of queries."""
    m, k = ids.shape
    sample = np.sort(np.random.default_rng(seed).choice(m, min(m, RECALL_QUERIES), replace=False))
    _, exact, _ = _exact(candidates, queries[sample], k, metric)
    # one id space per sampled query, so a single isin compares every list with its own
    offset = np.arange(sample.size, dtype=np.int64)[:, None] * len(candidates)
    found = np.isin(ids[sample].astype(np.int64) + offset, exact.astype(np.int64) + offset)
    return float(found.mean())


def index_recall(index: faiss.Index, embeddings: np.ndarray, k: int = INDEX_RECALL_K, seed: int = 0) -> float:
    """recall@k of `index` over (N, dim) `embeddings` against exact search, with RECALL_QUERIES
    of its own rows (drawn with `seed`) as queries; 1.0 for a flat index."""
    n = len(embeddings)
    sample = np.sort(np.random.default_rng(seed).choice(n, min(n, RECALL_QUERIES), replace=False))
    queries = np.ascontiguousarray(embeddings[sample], dtype=np.float32)
    return nearest(embeddings, queries, min(k, n), "l2", index, seed).recall
