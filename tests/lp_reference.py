"""The kNN-restricted TSDS program solved by a generic LP solver: ground truth for tests."""

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import coo_matrix, csr_matrix, hstack


def solve_tsds_lp(d: np.ndarray, rho: np.ndarray, alpha: float, C: float) -> tuple[np.ndarray, float]:
    """min (alpha/C) sum d*g + (1-alpha) M t  s.t. rows of g sum to 1/M, rho*g <= t, g >= 0."""
    M, K = d.shape
    n = M * K
    cost = np.concatenate([(alpha / C) * d.ravel(), [(1 - alpha) * M]])
    rows_sum = coo_matrix((np.ones(n), (np.repeat(np.arange(M), K), np.arange(n))), shape=(M, n))
    a_eq = hstack([rows_sum, csr_matrix((M, 1))])
    cap = coo_matrix((rho.ravel(), (np.arange(n), np.arange(n))), shape=(n, n))
    a_ub = hstack([cap, csr_matrix(-np.ones((n, 1)))])
    res = linprog(cost, A_ub=a_ub, b_ub=np.zeros(n), A_eq=a_eq, b_eq=np.full(M, 1 / M),
                  bounds=(0, None), method="highs")
    assert res.status == 0, res.message
    return res.x[:n].reshape(M, K), float(res.fun)


def objective(g: np.ndarray, d: np.ndarray, rho: np.ndarray, alpha: float, C: float) -> float:
    return float((alpha / C) * (d * g).sum() + (1 - alpha) * d.shape[0] * (rho * g).max())


def _distances(a: np.ndarray, b: np.ndarray, metric: str) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    if metric == "cosine":
        a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-300)
        b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-300)
        return 1.0 - a @ b.T
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))


def brute_force_plan(query, pool, max_k: int, sigma: float, kde_k: int, metric: str):
    """The restricted problem straight from its definition, in float64: (d, rho), both (M, K).

    d: each query's K = min(max_k, N) smallest distances, ascending; rho: the KDE of those
    neighbours, each summing max(0, 1 - d^2 / sigma^2) over its kde_k nearest points (itself
    included) of the union of all queries' neighbours.
    """
    dist = _distances(query, pool, metric)
    k = min(max_k, len(pool))
    ids = np.argsort(dist, axis=1, kind="stable")[:, :k]
    d = np.take_along_axis(dist, ids, axis=1)
    if sigma == 0:
        return d, np.ones_like(d)
    union = np.unique(ids)
    kernel = np.clip(1.0 - _distances(pool[union], pool[union], metric) ** 2 / sigma**2, 0.0, None)
    density = -np.sort(-kernel, axis=1)[:, :kde_k].sum(axis=1)
    return d, density[np.searchsorted(union, ids)]
