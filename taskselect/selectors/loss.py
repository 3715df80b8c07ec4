"""Loss-based selection with a proxy model: neither what is already learnt nor the outliers.

After "Cram Less to Fit More: Training Data Pruning Improves Memorization of Facts" (Zhao et
al., 2024), which prunes the examples a model already fits (lowest loss) to flatten the
training distribution, and the common practice of dropping the highest-loss examples as
likely noise or mislabelled (e.g. Paul et al., NeurIPS 2021; Marion et al., 2023, "When less
is more"). A proxy model trained on the pool scores every example; among the rows nearest the
query set, those below the `low` quantile or above the `high` quantile of loss are left out,
and the budget is filled with the rest, nearest first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from pydantic import Field, model_validator

from taskselect.sections import Section
from taskselect.selectors.base import Selection, check_size, require_corpus, register
from taskselect.selectors.neighbourhood import round_robin
from taskselect.selectors.proxy import loss_trajectories

log = logging.getLogger(__name__)


def middle_band(losses: np.ndarray, low: float, high: float) -> np.ndarray:
    """(n,) bool: losses within [quantile low, quantile high] of themselves."""
    lo, hi = np.quantile(losses, [low, high])
    return (losses >= lo) & (losses <= hi)


class LossParams(Section):
    """loss: rows near the query set whose proxy-model loss is neither trivially low nor
    outlier-high (after "Cram Less to Fit More", Zhao et al. 2024); reads labels."""

    low: float = Field(0.2, ge=0, lt=1, description="Rows below this quantile of loss are left out.")
    high: float = Field(0.95, gt=0, le=1, description="Rows above this quantile of loss are left out.")
    neighbourhood: float = Field(
        1.5, ge=1, description="Rows nearest the queries scored, per selected row (at least 1 / (high - low))."
    )
    epochs: int = Field(5, ge=1, description="Proxy model training epochs; the last epoch's loss is the score.")
    l2: float = Field(1e-4, gt=0, description="Proxy model's L2 penalty (SGDClassifier alpha).")

    @model_validator(mode="after")
    def _band_fills_the_budget(self) -> LossParams:
        if not self.low < self.high:
            raise ValueError(f"low {self.low}, high {self.high}: expected low < high")
        if not self.neighbourhood * (self.high - self.low) >= 1:
            raise ValueError(f"neighbourhood {self.neighbourhood}: expected at least 1 / (high - low) = "
                             f"{1 / (self.high - self.low):.3g}, or the kept band cannot fill the budget")
        return self


@register("loss", LossParams, reads="corpus")
@dataclass
class LossSelector:
    """Rows near the queries whose proxy loss is neither trivially low nor outlier-high (needs a Corpus).

    low, high: 0 <= low < high <= 1, the loss quantiles kept between, computed over the
        neighbourhood.
    neighbourhood: >= 1, rows nearest the queries (round-robin order) per selected row that are
        scored; at least 1 / (high - low) so the band can fill the budget.
    epochs, l2: the proxy model's training epochs and L2 penalty; its loss after the last epoch
        is the score.
    The seed drives the proxy's training order and the queries' turns.
    """

    low: float = LossParams.default("low")
    high: float = LossParams.default("high")
    neighbourhood: float = LossParams.default("neighbourhood")
    epochs: int = LossParams.default("epochs")
    l2: float = LossParams.default("l2")

    def __post_init__(self):
        LossParams.check(self, "loss")

    def select(self, query, candidates, size: int, seed: int, index=None, corpus=None) -> Selection:
        corpus = require_corpus(corpus, "loss", len(candidates), len(query))
        check_size(size, len(candidates))
        losses = loss_trajectories(candidates, corpus.pool_labels, self.epochs, seed, self.l2)[:, -1]
        region = round_robin(query, candidates, int(np.ceil(self.neighbourhood * size)), seed, index)
        band = middle_band(losses[region], self.low, self.high)
        log.info("loss: %d rows near the queries, %d in the band", region.size, band.sum())
        if band.sum() < size:  # the neighbourhood is the whole pool: the band first, then the nearest others
            log.warning("loss: only %d rows in the loss band; %d from outside it", band.sum(), size - band.sum())
        ranked = np.concatenate([region[band], region[~band]])
        return Selection(indices=np.sort(ranked[:size]), scores=losses,
                         info={"neighbourhood_rows": int(region.size), "in_band": int(band.sum())})
