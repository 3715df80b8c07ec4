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
