"""TSDS: task-specific data selection (Liu, Karbasi, Rekatsinas, NeurIPS 2024).

Find a distribution p over the candidates that is close, in optimal-transport cost, to the
query set, while a KDE term keeps mass off dense regions (near-duplicates). Restricted to
each query's K nearest candidates the problem is the linear program

    min  (alpha / C) sum_ik d_ik g_ik + (1 - alpha) M max_ik rho_ik g_ik
    s.t. sum_k g_ik = 1/M,  g >= 0

(d: distance of query i to its k-th neighbour, rho: that neighbour's kernel density), and
p_j = sum of g_ik over the entries pointing at candidate j. `WaterFilling` solves it exactly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import faiss
import numpy as np

from taskselect.errors import TaskselectError
from taskselect.selectors.base import Selection
from taskselect.selectors.sampling import sample_with_replacement, sample_without_replacement

log = logging.getLogger(__name__)

Metric = Literal["l2", "cosine"]


class WaterFilling:
    """Exact solution of the kNN-restricted TSDS program for every alpha.

    At the optimum every query fills a prefix of its sorted neighbours at one common level s
    (neighbour k gets w_ik / (M s), w = 1 / rho) and gives what is left of its 1/M to the next
    one. Raising s lengthens prefixes; it pays while the alignment cost it adds,
    (alpha / C) * sum_i sum_{k<L_i} w_ik (d_{i,L_i} - d_ik), stays below (1 - alpha) * M.
    The breakpoints of s are the prefix sums of w; sorting all of them once makes solving for
    any alpha a search over that sorted list (no Python loop over queries or neighbours).

    distances: (M, K) float, each row sorted ascending (not squared).
    densities: (M, K) float > 0, the KDE rho of each neighbour (1 everywhere = KNN-Uniform).
    C: distance scale, > 0.
    """

    def __init__(self, distances: np.ndarray, densities: np.ndarray, C: float):
        d = np.asarray(distances, dtype=np.float64)
        rho = np.asarray(densities, dtype=np.float64)
        self.M, self.K = d.shape
        self.C = float(C)
        self.w = 1.0 / rho
        self.S = np.cumsum(self.w, axis=1)  # S[i, c]: weight of query i's first c + 1 neighbours
        dw = np.cumsum(d * self.w, axis=1)
        # spread[i, c]: alignment slope once query i's prefix holds its first c + 1 neighbours;
        # a query whose whole list is in its prefix cannot go on (infinite slope).
        spread = np.full((self.M, self.K), np.inf)
        spread[:, :-1] = d[:, 1:] * self.S[:, :-1] - dw[:, :-1]
        self.order = np.argsort(self.S, axis=None, kind="stable")
        increments = np.diff(spread, axis=1, prepend=0.0).ravel()[self.order]
        self.total_spread = np.cumsum(increments)

    def level(self, alpha: float) -> float:
        """The optimal level s for this alpha."""
        with np.errstate(invalid="ignore"):  # 0 * inf at alpha = 0: the isinf test decides
            stop_at = np.isinf(self.total_spread) | (
                alpha * self.total_spread >= (1.0 - alpha) * self.M * self.C
            )
        return float(self.S.flat[self.order[int(np.argmax(stop_at))]])

    def masses(self, alpha: float) -> np.ndarray:
        """(M, K) float64 transport plan g: mass query i sends to its k-th neighbour.

        Each row sums to exactly 1/M; a query whose nearest neighbour alone can hold its
        1/M sends all of it there.
        """
        s = self.level(alpha)
        M, K = self.M, self.K
        prefix = (self.S <= s).sum(axis=1)
        cols = np.arange(K)
        g = np.where(cols < prefix[:, None], self.w / (M * s), 0.0)
        rows = np.flatnonzero(prefix < K)
        held = np.where(prefix[rows] > 0, self.S[rows, prefix[rows] - 1], 0.0)
        g[rows, prefix[rows]] = np.maximum(0.0, 1.0 - held / s) / M  # exactly 0 when held == s
        g /= g.sum(axis=1, keepdims=True) * M  # remove round-off: each query carries 1/M
        return g


def check_embeddings(name: str, array: np.ndarray, dim: int | None = None) -> np.ndarray:
    """Validate a (rows, dim) embedding matrix at the boundary; return it as float32."""
    array = np.asarray(array)
    if array.ndim != 2:
        raise TaskselectError(f"{name}: expected a 2-D array (rows, dim), got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise TaskselectError(f"{name}: expected a non-empty array, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.number):
        raise TaskselectError(f"{name}: expected numbers, got dtype {array.dtype}")
    if dim is not None and array.shape[1] != dim:
        raise TaskselectError(f"{name}: dimension {array.shape[1]} does not match the other embeddings' {dim}")
    if not np.isfinite(array).all():
        bad = int(np.flatnonzero(~np.isfinite(array).all(axis=1))[0])
        raise TaskselectError(f"{name}: row {bad} holds NaN or infinite values")
    return np.ascontiguousarray(array, dtype=np.float32)


def _is_unit(x: np.ndarray) -> bool:
    return bool(np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-3))


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, np.finfo(np.float32).tiny)


def _search(base: np.ndarray, queries: np.ndarray, k: int, metric: Metric, index=None):
    """Exact k nearest rows of `base` for each query: (distances float64 ascending, ids int64).

    An index passed in must be an inner-product index over unit-normalised `base`.
    """
    if metric == "cosine":
        base, queries = _unit(base), _unit(queries)
    if index is not None or metric == "cosine" or (_is_unit(base) and _is_unit(queries)):
        if index is None:
            index = faiss.IndexFlatIP(base.shape[1])
            index.add(base)
        sims, ids = index.search(queries, k)
        sims = sims.astype(np.float64)
        dist = 1.0 - sims if metric == "cosine" else np.sqrt(np.clip(2.0 - 2.0 * sims, 0.0, None))
    else:
        index = faiss.IndexFlatL2(base.shape[1])
        index.add(base)
        sq, ids = index.search(queries, k)
        dist = np.sqrt(np.clip(sq.astype(np.float64), 0.0, None))
    order = np.argsort(dist, axis=1, kind="stable")  # float round-off can unsort faiss' output
    return np.take_along_axis(dist, order, 1), np.take_along_axis(ids.astype(np.int64), order, 1)


def kde_densities(points: np.ndarray, sigma: float, kde_k: int, metric: Metric) -> np.ndarray:
    """(U,) float64 kernel density of each point among its kde_k nearest points (itself included).

    kde(x) = sum over those neighbours of max(0, 1 - d^2 / sigma^2), so kde >= 1; sigma = 0
    gives 1 everywhere.
    """
    if sigma == 0:
        return np.ones(points.shape[0])
    dist, _ = _search(points, points, min(kde_k, points.shape[0]), metric)
    return np.clip(1.0 - dist**2 / sigma**2, 0.0, None).sum(axis=1)


@dataclass
class TSDSSelector:
    """TSDS selection: KNN-KDE (sigma > 0) or KNN-Uniform (sigma = 0).

    alpha: in [0, 1]; 1 sends each query's mass to its nearest candidate, lower values spread
        it for diversity.
    C: > 0, scale of distances against the diversity term (L2 distances of unit vectors lie in
        [0, 2]).
    sigma: >= 0, KDE kernel width in distance units; 0 turns the KDE off.
    max_k: neighbours per query (capped by the pool size).
    kde_k: neighbours counted in each density.
    metric: "l2" (Euclidean) or "cosine" (1 - cosine similarity).
    replace: True draws i.i.d. from p as the paper does; False draws `size` distinct rows with
        inclusion probabilities min(1, c p). If p has fewer than `size` non-zero rows, alpha is
        lowered (widening p) to the largest value whose support is large enough.
    """

    alpha: float = 0.9
    C: float = 1.0
    sigma: float = 0.75
    max_k: int = 5000
    kde_k: int = 1000
    metric: Metric = "l2"
    replace: bool = False

    def __post_init__(self):
        if not 0.0 <= self.alpha <= 1.0:
            raise TaskselectError(f"alpha {self.alpha}: expected a value in [0, 1]")
        if not self.C > 0:
            raise TaskselectError(f"C {self.C}: expected a value > 0")
        if not self.sigma >= 0:
            raise TaskselectError(f"sigma {self.sigma}: expected a value >= 0")
        for name in ("max_k", "kde_k"):
            if getattr(self, name) < 1:
                raise TaskselectError(f"{name} {getattr(self, name)}: expected an integer >= 1")
        if self.metric not in ("l2", "cosine"):
            raise TaskselectError(f"metric {self.metric!r}: expected 'l2' or 'cosine'")

    def plan(self, query: np.ndarray, candidates: np.ndarray, index=None):
        """Neighbour ids (M, K) and the solver for this query set, before choosing alpha."""
        candidates = check_embeddings("candidates", candidates)
        query = check_embeddings("query", query, dim=candidates.shape[1])
        k = min(self.max_k, candidates.shape[0])
        dist, ids = _search(candidates, query, k, self.metric, index)
        union, position = np.unique(ids, return_inverse=True)
        density = kde_densities(candidates[union], self.sigma, self.kde_k, self.metric)
        log.info("TSDS: %d queries x %d neighbours, %d distinct candidates", *ids.shape, union.size)
        return ids, WaterFilling(dist, density[position.reshape(ids.shape)], self.C)

    def probabilities(self, query: np.ndarray, candidates: np.ndarray, index=None) -> np.ndarray:
        """(N,) float64 selection distribution over the candidates (sums to 1)."""
        ids, solver = self.plan(query, candidates, index)
        return _marginal(ids, solver.masses(self.alpha), len(candidates))

    def select(
        self, query: np.ndarray, candidates: np.ndarray, size: int, seed: int, index=None
    ) -> Selection:
        n = len(candidates)
        if size < 1 or (size > n and not self.replace):
            raise TaskselectError(f"size {size}: expected 1..{n} (the number of candidates) without replacement")
        ids, solver = self.plan(query, candidates, index)
        alpha = self.alpha
        p = _marginal(ids, solver.masses(alpha), n)
        if not self.replace and np.count_nonzero(p) < size:
            alpha, p = _widen(ids, solver, n, size, alpha)
        rng = np.random.default_rng(seed)
        draw = sample_with_replacement if self.replace else sample_without_replacement
        indices = draw(p, size, rng)
        info = {"alpha_effective": alpha, "support": int(np.count_nonzero(p)), "k": ids.shape[1]}
        return Selection(indices=indices, probs=p, info=info)


def _marginal(ids: np.ndarray, g: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(ids.ravel(), weights=g.ravel(), minlength=n)


def _widen(ids, solver: WaterFilling, n: int, size: int, alpha: float):
    """Largest alpha' <= alpha whose distribution has at least `size` non-zero rows."""

    def support(a: float) -> int:
        return int(np.count_nonzero(_marginal(ids, solver.masses(a), n)))

    if support(0.0) < size:
        raise TaskselectError(
            f"size {size}: TSDS puts mass on at most {support(0.0)} distinct rows even at alpha=0; "
            "raise max_k, or sample with replacement (replace=true)"
        )
    lo, hi = 0.0, alpha
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if support(mid) >= size else (lo, mid)
    log.warning(
        "TSDS: alpha %.4g puts mass on %d rows, fewer than the %d requested distinct rows; "
        "using alpha %.4g", alpha, support(alpha), size, lo,
    )
    return lo, _marginal(ids, solver.masses(lo), n)
