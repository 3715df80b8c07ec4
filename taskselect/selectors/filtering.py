"""A quality filter in front of any selector: drop the pool rows a score ranks lowest, let the
selector choose among the rest, and give its choice back as rows of the whole pool.

`select.filter: {method: negcliploss, keep: 0.8}` makes "TSDS on the cleaned pool" one parameter:
the text-label pairs with the lowest negCLIPLoss (taskselect.selectors.negcliploss, with the
batches and tau of select.negcliploss) are left out before any selector runs. By default the
filter scores a row by its text against the labels only (the normaliser's row term): the column
term (the label against other labels' texts) is much the same for every row of a label, so it
drops whole labels that sit near others rather than the rows whose label is wrong (on the small
airline profile with 20% of the labels flipped, ROC AUC at finding them 0.75 without it, 0.71
with it, tau tuned on the query set).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field

from taskselect.errors import TaskselectError
from taskselect.sections import Section
from taskselect.selectors.base import Corpus, Selection, Selector, require_corpus
from taskselect.selectors.negcliploss import NegCLIPLoss, share_size, top_share

log = logging.getLogger(__name__)


class FilterParams(Section):
    """filter: leave out the pool rows whose label fits their text worst before any selector runs
    (not the full pool's reference run); reads labels."""

    method: Literal["none", "negcliploss"] = Field(
        "none", description="'none', or 'negcliploss': rank the pool's text-label pairs by negCLIPLoss "
        "(scoring settings of select.negcliploss).",
    )
    keep: float = Field(0.8, gt=0, le=1, description="Share of the pool kept, the best-scored rows.")
    symmetric: bool = Field(
        False, description="negcliploss: contrast each text with the other labels only (false), or also each label "
        "with the other labels' texts, as the paper (true); the second term ranks whole labels, not rows.",
    )


def check_kept(keep: float, n_pool: int, size: int) -> None:
    """Refuse a keep that leaves fewer than `size` of n_pool rows to select from."""
    if size > (kept := share_size(keep, n_pool)):
        raise TaskselectError(f"select.filter.keep {keep}: keeps {kept} of {n_pool} pool rows, fewer than "
                              f"the {size} to select; raise keep or lower the budget")


@dataclass
class FilteredSelector:
    """`inner` run on the top `keep` share of the pool by `scorer` (needs a Corpus).

    scorer: an object with scores(query, candidates, corpus, seed) -> ((N,) scores, facts), higher
    is better (NegCLIPLoss). The inner selector sees the kept rows only, without the pool's faiss
    index (it searches them exactly); its indices, probs and scores come back as pool rows (probs
    0 and scores NaN on the dropped rows). info["filter"] records what was dropped.
    """

    inner: Selector
    scorer: NegCLIPLoss
    keep: float = FilterParams.default("keep")
    name: str = "negcliploss"  # the scorer's, in errors and info["filter"]

    def kept_rows(self, query, candidates, corpus: Corpus, seed: int) -> tuple[np.ndarray, np.ndarray, dict]:
        """(kept rows (k,) sorted, scores (N,), scorer's facts)."""
        scores, facts = self.scorer.scores(query, candidates, corpus, seed)
        return top_share(scores, self.keep), scores, facts

    def select(self, query, candidates, size: int, seed: int, index=None, corpus=None) -> Selection:
        corpus = require_corpus(corpus, f"filter {self.name}", len(candidates), len(query))
        check_kept(self.keep, len(candidates), size)
        kept, _, facts = self.kept_rows(query, candidates, corpus, seed)
        log.info("filter %s: %d of %d pool rows kept", self.name, kept.size, len(candidates))
        texts, labels = np.asarray(corpus.pool_texts, dtype=object), np.asarray(corpus.pool_labels, dtype=object)
        inner_corpus = Corpus(texts[kept].tolist(), labels[kept].tolist(), corpus.query_texts, corpus.query_labels)
        chosen = self.inner.select(query, np.asarray(candidates)[kept], size, seed, index=None, corpus=inner_corpus)
        return Selection(
            indices=kept[chosen.indices], probs=_spread(chosen.probs, kept, len(candidates), 0.0),
            scores=_spread(chosen.scores, kept, len(candidates), np.nan),
            info={**chosen.info, "filter": {"method": self.name, "keep": self.keep, "kept": int(kept.size),
                                            "dropped": int(len(candidates) - kept.size), **facts}},
        )


def _spread(values: np.ndarray | None, rows: np.ndarray, n: int, fill: float) -> np.ndarray | None:
    """(n,) float64 with `values` at `rows` and `fill` elsewhere; None stays None."""
    if values is None:
        return None
    out = np.full(n, fill)
    out[rows] = values
    return out
