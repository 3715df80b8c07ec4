"""KNN: the pool rows nearest to the query set.

The nearest-neighbour baseline of embedding-based selection (e.g. Liu et al., NeurIPS 2024,
"TSDS", Section 5, and the kNN retrieval of Ivison et al. 2023, "Data-efficient finetuning using
cross-task nearest neighbors"): every query contributes its nearest rows in turn, so that no
query's neighbourhood crowds out another's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from taskselect.errors import TaskselectError
from taskselect.index import Metric
from taskselect.selectors.base import Selection, check_size
from taskselect.selectors.neighbourhood import round_robin


@dataclass
class KNNSelector:
    """The top `size` distinct rows of the queries' neighbour lists, taken round-robin.

    metric: "l2" or "cosine". The seed orders the queries within each round (it decides which
    queries give one more row when `size` is not a multiple of the number of queries).
    """

    metric: Metric = "l2"

    def __post_init__(self):
        if self.metric not in ("l2", "cosine"):
            raise TaskselectError(f"metric {self.metric!r}: expected 'l2' or 'cosine'")

    def select(self, query, candidates, size: int, seed: int, index=None, corpus=None) -> Selection:
        check_size(size, len(candidates))
        return Selection(indices=np.sort(round_robin(query, candidates, size, seed, index, self.metric)))
