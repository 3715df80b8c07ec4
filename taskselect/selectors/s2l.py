"""S2L: SmallToLarge (Yang, Mishra, Chiang, Mirzasoleiman, NeurIPS 2024, "SmallToLarge (S2L):
Scalable data selection for fine-tuning large language models by summarizing training
trajectories of small models").

A small proxy model is trained on the pool while every example's loss is recorded; examples
with similar loss trajectories are alike for training, so the trajectories are clustered with
k-means and the budget is spread evenly over the clusters (smallest first, each taking what is
left divided by the clusters still open). Here the sampling is restricted to the pool rows
nearest the query set, which makes the method task-specific.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from pydantic import Field

from taskselect.memo import keep_last
from taskselect.sections import Section
from taskselect.threads import fixed_threads
from taskselect.selectors.base import Selection, SubsetSelect, check_size, require_corpus, register
from taskselect.selectors.neighbourhood import round_robin
from taskselect.selectors.proxy import loss_trajectories

log = logging.getLogger(__name__)


def balanced_sample(clusters: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """(size,) int64 positions into `clusters` (size <= its length) spread as evenly over the
    clusters as their sizes allow: the smallest clusters first, each taking min(its size, what is
    left // clusters left), so the last, largest one takes the rest; chosen uniformly at random
    within a cluster. Sorted."""
    labels, counts = np.unique(clusters, return_counts=True)
    picked = []
    left = size
    for rank, c in enumerate(np.argsort(counts, kind="stable")):
        take = min(int(counts[c]), left // (labels.size - rank))
        members = np.flatnonzero(clusters == labels[c])
        picked.append(rng.choice(members, take, replace=False))
        left -= take
    return np.sort(np.concatenate(picked)).astype(np.int64)


@keep_last(2)  # the part of a selection that depends on the pool alone: every budget and query subset reads it
def pool_clusters(candidates: np.ndarray, labels, epochs: int, clusters: int, seed: int,
                  l2: float) -> tuple[np.ndarray, np.ndarray]:
    """(N, epochs) loss trajectories of the pool's rows (proxy.loss_trajectories) and (N,) int
    their k-means cluster (min(clusters, N) of them), read-only."""
    trajectories = loss_trajectories(candidates, labels, epochs, seed, l2)
    # One thread: k-means' parallel sums depend on how many threads it gets, and a
    # borderline row could change cluster between runs sharing the cores differently.
    from sklearn.cluster import KMeans  # sklearn where used: the CLI starts without it

    with fixed_threads():
        assigned = KMeans(min(clusters, len(candidates)), n_init=1, random_state=seed).fit_predict(trajectories)
    return trajectories, assigned


class S2LParams(Section):
    """s2l: SmallToLarge (Yang et al., NeurIPS 2024): k-means on a proxy model's loss
    trajectories, the budget spread evenly over the clusters, near the query set; reads labels."""

    epochs: int = Field(5, ge=1, description="Proxy model training epochs (length of each loss trajectory).")
    clusters: int = Field(20, ge=1, description="k-means clusters of the trajectories.")
    neighbourhood: float = Field(
        1.5, ge=1, description="Rows nearest the queries sampled from, per selected row."
    )
    l2: float = Field(1e-4, gt=0, description="Proxy model's L2 penalty (SGDClassifier alpha).")


@register("s2l", S2LParams, reads="corpus")
@dataclass
class S2LSelector:
    """S2L on the proxy model's loss trajectories, sampled within the query neighbourhood (needs a Corpus).

    epochs: proxy training epochs, the length of each trajectory.
    clusters: k of the k-means over the trajectories of the whole pool.
    neighbourhood: >= 1, rows nearest the queries (round-robin order) per selected row that the
        balanced sample is drawn from.
    l2: the proxy's L2 penalty (SGDClassifier alpha).
    The seed drives the proxy's training order, k-means and the sampling.
    """

    epochs: int = S2LParams.default("epochs")
    clusters: int = S2LParams.default("clusters")
    neighbourhood: float = S2LParams.default("neighbourhood")
    l2: float = S2LParams.default("l2")

    def __post_init__(self):
        S2LParams.check(self, "s2l")

    def query_subsets(self, query, candidates, index=None, corpus=None) -> SubsetSelect:
        """Every subset of the queries selects as `select` does (the pool's clusters of a seed
        are computed once, see pool_clusters)."""
        corpus = require_corpus(corpus, "s2l", len(candidates), len(query))

        def select(rows: np.ndarray, size: int, seed: int) -> Selection:
            return self.select(query[rows], candidates, size, seed, index, corpus.with_queries(rows))
        return select

    def select(self, query, candidates, size: int, seed: int, index=None, corpus=None) -> Selection:
        corpus = require_corpus(corpus, "s2l", len(candidates), len(query))
        check_size(size, len(candidates))
        trajectories, clusters = pool_clusters(candidates, corpus.pool_labels, self.epochs, self.clusters, seed, self.l2)
        k = min(self.clusters, len(candidates))
        region = round_robin(query, candidates, int(np.ceil(self.neighbourhood * size)), seed, index)
        chosen = region[balanced_sample(clusters[region], size, np.random.default_rng(seed))]
        log.info("S2L: %d rows from %d clusters among the %d rows nearest the queries",
                 size, np.unique(clusters[chosen]).size, region.size)
        return Selection(indices=np.sort(chosen), scores=trajectories[:, -1],
                         info={"neighbourhood_rows": int(region.size),
                               "cluster_sizes": np.bincount(clusters[chosen], minlength=k).tolist(),
                               "cluster_available": np.bincount(clusters[region], minlength=k).tolist()})
