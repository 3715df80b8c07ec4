"""K-center: a diverse cover of the query neighbourhood.

Greedy k-center (Gonzalez 1985; as a selection method, Sener & Savarese, ICLR 2018, "Active
learning for convolutional neural networks: a core-set approach") restricted to the rows
nearest the query set: diversity first, in the spirit of FreeSel (Xie et al., NeurIPS 2023,
"Towards free data selection with general-purpose models"), which selects in a single pass by
distances between general-purpose features, without training anything.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from pydantic import Field
from tqdm.auto import tqdm

from taskselect.errors import TaskselectError
from taskselect.sections import Section
from taskselect.selectors.base import Selection, check_size, register
from taskselect.selectors.neighbourhood import round_robin
from taskselect.selectors.tsds import check_embeddings

log = logging.getLogger(__name__)


def greedy_k_center(points: np.ndarray, size: int, first: int = 0) -> tuple[np.ndarray, float]:
    """Greedy k-center: start at row `first`, then always add the row farthest (L2) from those chosen.

    points: (n, dim) float, 1 <= size <= n. Returns (size,) int64 rows in the order chosen and
    the cover radius: the largest distance from a row to its nearest chosen row, at most twice
    the smallest radius any `size` rows achieve.
    """
    points = np.asarray(points, dtype=np.float32)
    norms = np.einsum("ij,ij->i", points, points)
    gap = np.full(len(points), np.inf)
    chosen = np.empty(size, dtype=np.int64)
    row = first
    for step in tqdm(range(size), desc="k-center", unit="row", disable=size < 2000):
        chosen[step] = row
        squared = norms - 2.0 * (points @ points[row]) + norms[row]
        gap = np.minimum(gap, np.sqrt(np.maximum(squared, 0.0)))
        gap[row] = -1.0  # below every distance: never chosen again, even among duplicates
        row = int(np.argmax(gap))
    return chosen, max(0.0, float(gap.max()))


class KCenterParams(Section):
    """kcenter: greedy k-center cover of the rows nearest the query set (diversity first)."""

    neighbourhood: float = Field(
        1.5, ge=1, description="Rows nearest the queries the cover is drawn from, per selected row (1 = knn)."
    )


@register("kcenter", KCenterParams)
@dataclass
class KCenterSelector:
    """Greedy k-center over the `neighbourhood` x size rows nearest the query set.

    neighbourhood: >= 1, how many rows per selected row the cover is drawn from, taken from
        the round-robin nearest-neighbour order (see neighbourhood.round_robin); 1 is KNN.
    The cover starts at the first row of that order (the nearest neighbour of a query chosen
    by the seed); distances are L2 between the embeddings.
    """

    neighbourhood: float = 1.5

    def __post_init__(self):
        if not self.neighbourhood >= 1:
            raise TaskselectError(f"neighbourhood {self.neighbourhood}: expected a value >= 1")

    def select(self, query, candidates, size: int, seed: int, index=None, corpus=None) -> Selection:
        candidates = check_embeddings("candidates", candidates)
        check_size(size, len(candidates))
        region = round_robin(query, candidates, int(np.ceil(self.neighbourhood * size)), seed, index)
        order, radius = greedy_k_center(candidates[region], size)
        log.info("k-center: %d rows from the %d nearest the queries, cover radius %.3f", size, region.size, radius)
        return Selection(indices=np.sort(region[order]),
                         info={"neighbourhood_rows": int(region.size), "cover_radius": radius})
