"""What every selector returns, and how a budget becomes a row count."""

from __future__ import annotations

from collections.abc import Sequence
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
    scores: (n_pool,) float64 per-row scores the method ranked by (DSIR's log importance weight,
        a proxy model's loss, ...), NaN where a row was not scored; None for methods without.
    info: method-specific facts worth recording (effective parameters, support size, ...).
    """

    indices: np.ndarray
    probs: np.ndarray | None = None
    scores: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_selected(self) -> int:
        return int(self.indices.size)

    @property
    def n_unique(self) -> int:
        return int(np.unique(self.indices).size)


@dataclass(frozen=True)
class Corpus:
    """What a selection may read beside the embeddings: texts and labels.

    pool_texts: (N,) the candidates' texts, row j of the candidate embeddings;
    pool_labels: (N,) the candidates' labels (str);
    query_texts: (M,) the query examples' texts;
    query_labels: (M,) the query examples' labels (str), or empty where not known.
    """

    pool_texts: Sequence[str]
    pool_labels: Sequence[str]
    query_texts: Sequence[str]
    query_labels: Sequence[str] = ()

    def check(self, method: str, n_pool: int, n_query: int) -> Corpus:
        """Itself, if its lengths match the embeddings (n_pool candidates, n_query queries)."""
        if (len(self.pool_texts) != n_pool or len(self.pool_labels) != n_pool or len(self.query_texts) != n_query
                or len(self.query_labels) not in (0, n_query)):
            raise TaskselectError(
                f"{method}: corpus holds {len(self.pool_texts)} pool texts, {len(self.pool_labels)} pool labels "
                f"and {len(self.query_texts)} query texts ({len(self.query_labels)} labels), but the embeddings are {n_pool} pool and {n_query} query rows"
            )
        return self


def check_size(size: int, n_pool: int) -> None:
    """Refuse a number of distinct rows that the pool cannot give."""
    if not 1 <= size <= n_pool:
        raise TaskselectError(f"size {size}: expected 1 to {n_pool} distinct rows (the candidates)")


def require_corpus(corpus: Corpus | None, method: str, n_pool: int, n_query: int) -> Corpus:
    """The corpus a text- or label-based selector needs, checked; a clear error without one."""
    if corpus is None:
        raise TaskselectError(f"{method}: needs the pool's texts and labels (a Corpus); embeddings alone are not enough")
    return corpus.check(method, n_pool, n_query)


class Selector(Protocol):
    """Chooses `size` training rows of `candidates` for the task shown by `query`.

    query: (M, dim), candidates: (N, dim) embeddings; index: an optional faiss index over the
    candidates; corpus: their texts and labels, for selectors that read more than embeddings
    (dsir, s2l, loss); the embedding-only selectors ignore it.
    """

    def select(
        self, query: np.ndarray, candidates: np.ndarray, size: int, seed: int, index: Any = None,
        corpus: Corpus | None = None,
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
