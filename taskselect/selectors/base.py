"""What every selector returns, how a budget becomes a row count, and the registry of selectors."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from taskselect.errors import TaskselectError
from taskselect.sections import Section

if TYPE_CHECKING:
    from taskselect.config import SelectParams


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
    pool_labels: (N,) the candidates' labels (str), or empty for an unlabelled pool (selectors
        registered with reads="texts" or "embeddings" only);
    query_texts: (M,) the query examples' texts;
    query_labels: (M,) the query examples' labels (str), or empty where not known.
    """

    pool_texts: Sequence[str]
    pool_labels: Sequence[str]
    query_texts: Sequence[str]
    query_labels: Sequence[str] = ()

    def check(self, method: str, n_pool: int, n_query: int) -> Corpus:
        """Itself, if its lengths match the embeddings (n_pool candidates, n_query queries)."""
        if (len(self.pool_texts) != n_pool or len(self.pool_labels) not in (0, n_pool) or len(self.query_texts) != n_query
                or len(self.query_labels) not in (0, n_query)):
            raise TaskselectError(
                f"{method}: corpus holds {len(self.pool_texts)} pool texts, {len(self.pool_labels)} pool labels "
                f"and {len(self.query_texts)} query texts ({len(self.query_labels)} labels), but the embeddings are {n_pool} pool and {n_query} query rows"
            )
        return self

    def with_queries(self, rows: np.ndarray) -> Corpus:
        """The same pool with only the query examples `rows` (row numbers of the query set)."""
        labels = [self.query_labels[i] for i in rows] if len(self.query_labels) else ()
        return Corpus(self.pool_texts, self.pool_labels, [self.query_texts[i] for i in rows], labels)


#: select(rows, size, seed): a selector's selection with only the query examples `rows`.
SubsetSelect = Callable[[np.ndarray, int, int], Selection]


def query_subsets(selector: Selector, query: np.ndarray, candidates: np.ndarray, index: Any = None,
                  corpus: Corpus | None = None) -> SubsetSelect:
    """`selector` ready to select with any subset of the query examples (auto's folds).

    A selector whose work depends partly on the pool alone declares a method
    `query_subsets(query, candidates, index, corpus) -> SubsetSelect` that computes that part
    once (TSDS's neighbour search and densities, DSIR's n-grams, S2L's loss clusters,
    negCLIPLoss's pair scores); the others select anew each time. With every query row, the result is the selector's own.
    """
    own = getattr(selector, "query_subsets", None)
    if own is not None:
        return own(query, candidates, index, corpus)
    return lambda rows, size, seed: selector.select(query[rows], candidates, size, seed, index,
                                                    None if corpus is None else corpus.with_queries(rows))


def first_copies(vectors: np.ndarray, rows: np.ndarray, labels=None) -> np.ndarray:
    """(len(rows),) int64: for each of `rows` (ascending), the first of them whose vector is
    byte-identical to its own (and whose label is the same, when `labels` are given): the same
    text in the pool more than once."""
    block = np.ascontiguousarray(vectors[rows]).view(np.uint8).reshape(len(rows), -1)
    if labels is not None:
        codes = np.unique(np.asarray(labels, dtype=str)[rows], return_inverse=True)[1].astype(np.int64)
        block = np.ascontiguousarray(np.hstack([block, codes.reshape(-1, 1).view(np.uint8)]))
    keys = block.view(np.dtype((np.void, block.shape[1]))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return rows[first[inverse.ravel()]].astype(np.int64)


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
    (registered with reads="texts" or "corpus", or with a `needs_corpus` attribute that is
    true, as tsds and knn on a lexical or hybrid representation); the others ignore it.
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


def budget_share(budget: float, n_pool: int) -> float:
    """The budget as a fraction of a pool of `n_pool` rows: a fraction as it is, a row count divided."""
    return budget if isinstance(budget, float) and budget <= 1 else budget / n_pool


def budget_label(budget: float) -> str:
    """'0.05' -> '5%', 500 -> '500': how budgets are named in paths and tables."""
    if isinstance(budget, float) and budget <= 1:
        return f"{budget * 100:g}%"
    return str(int(budget))


@dataclass(frozen=True)
class SelectorSpec:
    """What the pipeline knows about a selector, declared by its module with `register`.

    name: the method name in select.methods, paths and tables ('knn-uniform').
    params: its typed parameter section, select.<section> in params.yaml; None if it has none.
    reads: 'embeddings' (query and pool vectors only), 'texts' (also the pool's and the query's
        texts) or 'corpus' (texts and the pool's labels): the select stage loads what is read
        beside the vectors into a Corpus, and refuses a 'corpus' selector on an unlabelled pool.
    uses_budget: False for a selector that takes the whole pool whatever the budget (the
        reference a budget's selections are compared against).
    default: listed in select.methods' default (the run a fresh clone makes).
    baseline: a reference point: every method's macro-F1 is also reported as its difference to
        this one's at the same budget (delta_<name>).
    build: makes the selector from the whole select section (it may read other selectors'
        sections, as knn-kde reads TSDS's search settings).
    query_problem: (select section, query examples) -> why the selector cannot select with that
        many query examples, naming the parameter (None if it can): checked before a run or
        stage computes anything.
    """

    name: str
    params: type[Section] | None
    reads: Literal["embeddings", "texts", "corpus"]
    uses_budget: bool
    default: bool
    baseline: bool
    build: Callable[[SelectParams], Selector]
    query_problem: Callable[[SelectParams, int], str | None] | None = None

    @property
    def section(self) -> str | None:
        """Its key under select in params.yaml ('knn-uniform' -> 'knn_uniform'), None without parameters."""
        return None if self.params is None else self.name.replace("-", "_")

    @property
    def reads_corpus(self) -> bool:
        """Whether it reads texts (a Corpus) beside the embeddings."""
        return self.reads != "embeddings"

    @property
    def needs_labels(self) -> bool:
        """Whether it reads the pool's labels: it cannot select from an unlabelled pool."""
        return self.reads == "corpus"

    def size(self, budget: float, n_pool: int) -> int:
        """Rows the selector is asked for: the budget's, or the whole pool if it uses none."""
        return resolve_budget(budget, n_pool) if self.uses_budget else n_pool

    def label(self, budget: float) -> str:
        """'tsds 5%'; '<name> full pool' for a selector that uses no budget."""
        return f"{self.name} {budget_label(budget) if self.uses_budget else 'full pool'}"


# Every selector, in the order registered (the order of select.methods' choices and sections).
REGISTRY: dict[str, SelectorSpec] = {}


def register(name: str, params: type[Section] | None = None, *,
             reads: Literal["embeddings", "texts", "corpus"] = "embeddings",
             uses_budget: bool = True, default: bool = False, baseline: bool = False,
             build: Callable[[SelectParams], Selector] | None = None,
             query_problem: Callable[[SelectParams, int], str | None] | None = None):
    """Class decorator: add the selector to REGISTRY under `name` (see SelectorSpec).

    Without `build`, the selector is made as cls(**its section's values), or cls() without params.
    Stacked decorators register bottom-up (the one nearest the class first).
    """
    if reads not in ("embeddings", "texts", "corpus"):
        raise ValueError(f"selector {name!r}: reads={reads!r}, expected 'embeddings', 'texts' or 'corpus'")

    def decorate(cls):
        if name in REGISTRY:
            raise ValueError(f"selector {name!r} is registered twice")
        section = name.replace("-", "_")
        make = (lambda p: cls(**getattr(p, section).model_dump())) if params is not None else (lambda p: cls())
        REGISTRY[name] = SelectorSpec(name, params, reads, uses_budget, default, baseline, build or make, query_problem)
        return cls

    return decorate
