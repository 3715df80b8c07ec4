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

from taskselect.sections import Section
from taskselect.selectors.base import Selection, check_size, register
from taskselect.selectors.neighbourhood import round_robin
from taskselect.selectors.tsds import check_embeddings

log = logging.getLogger(__name__)


def _distances(rows: np.ndarray, row_norms: np.ndarray, centers: np.ndarray, center_norms: np.ndarray) -> np.ndarray:
    """(len(rows), len(centers)) float32 L2 distances, from the rows' and centers' squared norms."""
    return np.sqrt(np.maximum(row_norms[:, None] - 2.0 * (rows @ centers.T) + center_norms[None, :], 0.0))


def greedy_k_center(points: np.ndarray, size: int, first: int = 0, active: int = 1024,
                    chunk: int = 4096) -> tuple[np.ndarray, float]:
    """Greedy k-center: start at row `first`, then always add the row farthest (L2) from those chosen.

    points: (n, dim) float, 1 <= size <= n. Returns (size,) int64 rows in the order chosen and
    the cover radius: the largest distance from a row to its nearest chosen row, at most twice
    the smallest radius any `size` rows achieve. Ties go to the lowest row.

    Reading every row once per chosen row is bound by memory bandwidth once the rows outgrow
    the cache, so only the `active` rows farthest from those chosen are kept up to date at each
    step. Each other row keeps its distance to the rows chosen before, an upper bound of its
    gap; while an active row is farther than every bound it is the farthest row, and when none
    is, the others catch up with the rows chosen since in one matrix product (`chunk` rows at a
    time) and the farthest `active` rows are taken again. The same rule as one pass per row, up
    to the rounding of the products.
    """
    points = np.asarray(points, dtype=np.float32)
    n = len(points)
    norms = np.einsum("ij,ij->i", points, points)
    gap = _distances(points, norms, points[[first]], norms[[first]])[:, 0].astype(np.float64)
    gap[first] = -1.0  # below every distance: never chosen again, even among duplicates
    chosen = np.empty(size, dtype=np.int64)
    chosen[0] = first
    pending: list[int] = []  # chosen since the rows outside `live` were brought up to date

    def farthest():
        order = np.lexsort((np.arange(n), -gap))  # farthest first, then the lowest row
        live = np.sort(order[:active])
        return live, (gap[order[active]] if n > active else -np.inf), points[live], norms[live]

    def catch_up(live):
        outside = np.setdiff1d(np.arange(n), live, assume_unique=True)
        centers, center_norms = points[pending], norms[pending]
        for start in range(0, len(outside), chunk):
            rows = outside[start:start + chunk]
            gap[rows] = np.minimum(gap[rows], _distances(points[rows], norms[rows], centers, center_norms).min(axis=1))
        pending.clear()

    live, bound, live_points, live_norms = farthest()
    for step in tqdm(range(1, size), desc="k-center", unit="row", disable=size < 2000):
        live_gap = gap[live]
        if pending and live_gap.max() <= bound:  # a row outside may be farther
            catch_up(live)
            live, bound, live_points, live_norms = farthest()
            live_gap = gap[live]
        j = int(np.argmax(live_gap))
        chosen[step] = row = live[j]
        live_gap = np.minimum(live_gap, _distances(live_points, live_norms, points[[row]], norms[[row]])[:, 0])
        live_gap[j] = -1.0
        gap[live] = live_gap
        pending.append(row)
    if pending:
        catch_up(live)
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

    neighbourhood: float = KCenterParams.default("neighbourhood")

    def __post_init__(self):
        KCenterParams.check(self, "kcenter")

    def select(self, query, candidates, size: int, seed: int, index=None, corpus=None) -> Selection:
        candidates = check_embeddings("candidates", candidates)
        check_size(size, len(candidates))
        region = round_robin(query, candidates, int(np.ceil(self.neighbourhood * size)), seed, index)
        order, radius = greedy_k_center(candidates[region], size)
        log.info("k-center: %d rows from the %d nearest the queries, cover radius %.3f", size, region.size, radius)
        return Selection(indices=np.sort(region[order]),
                         info={"neighbourhood_rows": int(region.size), "cover_radius": radius})
