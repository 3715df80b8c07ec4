"""Reference points every selection is compared against."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from taskselect.selectors.base import Selection, register


@register("random", default=True, baseline=True)
@dataclass
class RandomSelector:
    """`size` distinct pool rows drawn uniformly at random: the baseline a selector must beat."""

    def select(self, query, candidates, size: int, seed: int, index=None, corpus=None) -> Selection:
        rng = np.random.default_rng(seed)
        return Selection(indices=np.sort(rng.choice(len(candidates), size, replace=False)).astype(np.int64))


@register("full", uses_budget=False, default=True, baseline=True)
@dataclass
class FullSelector:
    """The whole pool, whatever the budget: the ceiling a small selection hopes to reach."""

    def select(self, query, candidates, size: int, seed: int, index=None, corpus=None) -> Selection:
        return Selection(indices=np.arange(len(candidates), dtype=np.int64))
