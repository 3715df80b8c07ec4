"""Drawing a sample of given size from a selection distribution, robust to round-off."""

from __future__ import annotations

import numpy as np

from taskselect.errors import TaskselectError


def _normalised(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, None)
    total = p.sum()
    if not np.isfinite(total) or total <= 0:
        raise TaskselectError("selection probabilities: expected finite non-negative values with a positive sum")
    return p / total


def sample_with_replacement(p: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """`size` i.i.d. draws from p (as the TSDS paper): (size,) int64, duplicates allowed.

    Inverse-CDF sampling on the normalised cumulative sum, so p summing to 1 +- 1e-16
    never fails the way numpy's multinomial can.
    """
    cdf = np.cumsum(_normalised(p))
    cdf /= cdf[-1]
    draws = np.searchsorted(cdf, rng.random(size), side="right")
    return np.minimum(draws, p.size - 1).astype(np.int64)


def inclusion_probabilities(p: np.ndarray, size: int) -> np.ndarray:
    """pi = min(1, c * p) with sum(pi) == size: as close to size * p as a set of distinct rows allows.

    Rows that would get c * p >= 1 are taken for certain and the rest share what is left.
    Requires at least `size` rows with p > 0.
    """
    p = _normalised(p)
    support = int(np.count_nonzero(p))
    if support < size:
        raise TaskselectError(
            f"size {size}: only {support} rows have non-zero probability; "
            "sample with replacement or widen the distribution"
        )
    order = np.argsort(-p, kind="stable")
    sorted_p = p[order]
    # tail[t] = mass of the rows after the t largest; with t rows capped at 1 the scale is
    # c_t = (size - t) / tail[t]; the right t is the first whose next row stays below 1.
    tail = np.cumsum(sorted_p[::-1])[::-1][:size]
    t = np.arange(size)
    scale = (size - t) / tail
    ok = scale * sorted_p[:size] < 1.0
    n_capped = int(np.argmax(ok)) if ok.any() else size
    pi = np.empty_like(p)
    pi[order[:n_capped]] = 1.0
    rest = order[n_capped:]
    remaining = size - n_capped
    rest_mass = p[rest].sum()
    pi[rest] = np.minimum(1.0, remaining * p[rest] / rest_mass) if remaining else 0.0
    return pi


def sample_without_replacement(p: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """`size` distinct rows, row j included with probability inclusion_probabilities(p)[j].

    Systematic sampling over a random order: (size,) int64, sorted, no duplicates.
    """
    pi = inclusion_probabilities(p, size)
    certain = np.flatnonzero(pi >= 1.0 - 1e-12)
    remaining = size - certain.size
    if remaining == 0:
        return np.sort(certain).astype(np.int64)
    rest = np.flatnonzero((pi > 0) & (pi < 1.0 - 1e-12))
    rest = rest[rng.permutation(rest.size)]
    cum = np.cumsum(pi[rest])
    cum *= remaining / cum[-1]
    points = rng.random() + np.arange(remaining)
    picked = rest[np.minimum(np.searchsorted(cum, points, side="right"), rest.size - 1)]
    chosen = np.union1d(certain, picked)
    if chosen.size < size:  # round-off merged two points into one row: top up from the rest
        spare = np.setdiff1d(rest, picked)
        chosen = np.union1d(chosen, rng.choice(spare, size - chosen.size, replace=False))
    return chosen.astype(np.int64)
