"""KNN: the pool rows nearest to the query set.

The nearest-neighbour baselines of embedding-based selection (Liu et al., NeurIPS 2024, "TSDS",
Section 5: KNN-Uniform and KNN-KDE; and the kNN retrieval of Ivison et al. 2023, "Data-efficient
finetuning using cross-task nearest neighbors"): every query contributes its nearest rows, so
that no query's neighbourhood crowds out another's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from pydantic import Field

from taskselect.index import Metric
from taskselect.sections import Section
from taskselect.selectors.base import Selection, check_size, register
from taskselect.selectors.neighbourhood import round_robin
from taskselect.selectors.representation import LEXICAL_WEIGHT_HELP, REPRESENTATION_HELP, Representation, represent
from taskselect.selectors.sampling import sample_with_replacement, sample_without_replacement
from taskselect.selectors.tsds import TSDSParams, TSDSSelector, on_first_twin

log = logging.getLogger(__name__)


class KNNParams(Section):
    """knn: the rows nearest the query set, the queries taking turns (round-robin)."""

    metric: Literal["l2", "cosine"] = Field("l2", description="Distance between embeddings.")
    representation: Representation = Field("semantic", description=REPRESENTATION_HELP)
    lexical_weight: float = Field(0.5, ge=0, le=1, description=LEXICAL_WEIGHT_HELP)


@register("knn", KNNParams)
@dataclass
class KNNSelector:
    """The top `size` distinct rows of the queries' neighbour lists, taken round-robin.

    metric: "l2" or "cosine". The seed orders the queries within each round (it decides which
    queries give one more row when `size` is not a multiple of the number of queries).
    representation, lexical_weight: what distances are measured on (see
        taskselect.selectors.representation); 'lexical' and 'hybrid' read the corpus' texts.
    """

    metric: Metric = KNNParams.default("metric")
    representation: Representation = KNNParams.default("representation")
    lexical_weight: float = KNNParams.default("lexical_weight")

    def __post_init__(self):
        KNNParams.check(self, "knn")

    @property
    def needs_corpus(self) -> bool:
        """True when `select` reads the texts (a lexical or hybrid representation)."""
        return self.representation != "semantic"

    def select(self, query, candidates, size: int, seed: int, index=None, corpus=None) -> Selection:
        check_size(size, len(candidates))
        query, candidates, index = represent(self.representation, query, candidates, index, corpus, self.lexical_weight)
        return Selection(indices=np.sort(round_robin(query, candidates, size, seed, index, self.metric)))


class KNNUniformParams(Section):
    """knn-uniform (the TSDS paper's KNN-Uniform): each query's k nearest rows, equally likely
    (search settings, kde_k and replace come from select.tsds)."""

    k: int = Field(200, ge=1, description="Neighbours of each query the mass is spread over (rows); doubled "
                   "while they hold fewer distinct rows than the budget (without replacement).")


class KNNKDEParams(Section):
    """knn-kde (the TSDS paper's KNN-KDE): each query's k nearest rows, in inverse proportion to
    their kernel density (search settings, kde_k and replace come from select.tsds)."""

    k: int = Field(200, ge=1, description="Neighbours of each query the mass is spread over (rows); doubled "
                   "while they hold fewer distinct rows than the budget (without replacement).")
    sigma: float = Field(0.75, gt=0, description="KDE kernel width (in the distance of select.tsds.metric).")


# Decorators register bottom-up: knn-uniform, then knn-kde.
@register("knn-kde", KNNKDEParams, build=lambda p: KNNDensitySelector.tsds_search(p.tsds, p.knn_kde.k, p.knn_kde.sigma))
@register("knn-uniform", KNNUniformParams, build=lambda p: KNNDensitySelector.tsds_search(p.tsds, p.knn_uniform.k, 0.0))
@dataclass
class KNNDensitySelector:
    """KNN-Uniform (sigma 0) and KNN-KDE (sigma > 0): each query gives 1/M of the selection
    distribution to its k nearest rows, in inverse proportion to their kernel density (equally
    without KDE), and the budget is drawn from that distribution.

    The neighbour search and densities are TSDS's (`TSDSSelector.plan` with max_k = k); kde_k,
    metric, kde_exact_max and kde_nprobe mean what they mean there. replace: draw i.i.d. from
    the distribution; False draws `size` distinct rows with inclusion probabilities min(1, c p),
    which needs at least `size` distinct rows among the queries' neighbours: when the k nearest
    rows of the queries are fewer, k is doubled until they are enough (logged, and reported as
    the selection's info["k"]), as a larger budget reaches further from the queries.
    """

    k: int = KNNUniformParams.default("k")
    sigma: float = 0.0  # KNN-Uniform
    kde_k: int = TSDSParams.default("kde_k")
    metric: Metric = TSDSParams.default("metric")
    replace: bool = TSDSParams.default("replace")
    kde_exact_max: int = TSDSParams.default("kde_exact_max")
    kde_nprobe: int = TSDSParams.default("kde_nprobe")

    @classmethod
    def tsds_search(cls, tsds: TSDSParams, k: int, sigma: float) -> KNNDensitySelector:
        """k neighbours per query and kernel width sigma, with TSDS's search and density settings."""
        return cls(k=k, sigma=sigma, kde_k=tsds.kde_k, metric=tsds.metric, replace=tsds.replace,
                   kde_exact_max=tsds.kde_exact_max, kde_nprobe=tsds.kde_nprobe)

    def __post_init__(self):
        self.search = TSDSSelector(max_k=self.k, sigma=self.sigma, kde_k=self.kde_k, metric=self.metric,
                                   replace=self.replace, kde_exact_max=self.kde_exact_max, kde_nprobe=self.kde_nprobe)

    def probabilities(self, query, candidates, index=None, k: int | None = None) -> tuple[np.ndarray, dict]:
        """(N,) float64 selection distribution over each query's k (default self.k) nearest rows
        (sums to 1; a text in the pool more than once has its copies' mass on its first row), and
        the plan's facts."""
        search = self.search if k is None else replace(self.search, max_k=k)
        plan = search.plan(query, candidates, index)
        weight = 1.0 / plan.densities
        mass = weight / (weight.sum(axis=1, keepdims=True) * len(weight))  # each query: 1/M
        p = np.bincount(plan.ids.ravel(), weights=mass.ravel(), minlength=plan.n_candidates)
        # distinct texts, as TSDS draws them: a text's copies pool their mass on its first row
        return on_first_twin(p, plan.twins), {key: value for key, value in plan.info.items() if key != "params"}

    def select(self, query, candidates, size: int, seed: int, index=None, corpus=None) -> Selection:
        self.search.check_size(size, len(candidates))
        k = min(self.k, len(candidates))
        p, info = self.probabilities(query, candidates, index, k)
        support = int(np.count_nonzero(p))
        while not self.replace and support < size:  # ends: k = N reaches every row
            log.info("the queries' %d nearest rows are %d distinct rows, fewer than %d; k raised to %d",
                     k, support, size, min(2 * k, len(candidates)))
            k = min(2 * k, len(candidates))
            p, info = self.probabilities(query, candidates, index, k)
            support = int(np.count_nonzero(p))
        draw = sample_with_replacement if self.replace else sample_without_replacement
        return Selection(indices=draw(p, size, np.random.default_rng(seed)), probs=p, info={"support": support, **info})
