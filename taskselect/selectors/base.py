"""What every selector returns, and how a budget becomes a row count."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from taskselect.errors import TaskselectError


@dataclass(frozen=True)
class Selection:
    """A training set drawn from the pool.

    indices: (n_selected,) int64 pool row numbers, one per draw; a row drawn twice appears
        twice and is trained on twice.
    probs: (n_pool,) float64 selection distribution, or None for methods without one.
    info: method-specific facts worth recording (effective parameters, support size, ...).
    """

    indices: np.ndarray
    probs: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_selected(self) -> int:
        return int(self.indices.size)

    @property
    def n_unique(self) -> int:
        return int(np.unique(self.indices).size)


class Selector(Protocol):
    """Chooses `size` training rows of `candidates` for the task shown by `query`."""

    def select(
        self, query: np.ndarray, candidates: np.ndarray, size: int, seed: int, index: Any = None
    ) -> Selection: ...


def resolve_budget(budget: float, n_pool: int) -> int:
    """Rows to select: a whole number >= 1 is a count, a number in (0, 1) a fraction of the pool.

    1.0 (float) is the whole pool; fractions round to the nearest row, at least one.
    """
    if budget <= 0:
        raise TaskselectError(f"budget {budget}: expected a row count >= 1 or a fraction in (0, 1]")
    if isinstance(budget, float) and budget <= 1:
        size = max(1, round(budget * n_pool))
    elif budget == int(budget):
        size = int(budget)
    else:
        raise TaskselectError(f"budget {budget}: a count must be a whole number")
    if size > n_pool:
        raise TaskselectError(f"budget {budget}: {size} rows requested but the pool has {n_pool}")
    return size


def budget_label(budget: float) -> str:
    """'0.05' -> '5%', 500 -> '500': how budgets are named in paths and tables."""
    if isinstance(budget, float) and budget <= 1:
        return f"{budget * 100:g}%"
    return str(int(budget))
