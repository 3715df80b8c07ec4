"""negCLIPLoss and NormSim (Wang et al., 2024, "CLIPLoss and Norm-Based Data Selection Methods
for Multimodal Contrastive Learning"), for text-label pairs.

The paper scores an image-text pair by its alignment minus CLIP's contrastive normaliser over
random batches of other pairs:

    s_i = S_ii - (tau/2) logsumexp_j(S_ij / tau) - (tau/2) logsumexp_j(S_ji / tau),

averaged over several random partitions of the pool into batches; NormSim_p(x) = ||(f_x . f_t)_t||_p
over the target set's embeddings. It keeps the top fraction by negCLIPLoss and fills the budget
by NormSim.

Here a pool row is a pair (text, label): f_i is the text's embedding and the label's side is a
prototype g_y, the unit centroid of the pool rows carrying label y (the selector sees only the
rows' embeddings, not an embedding of the label's name; a centroid is what the rows say the
label means, and with most rows labelled right it points where the label's texts are). A row's
own label is compared with its centroid without the row itself, so a mislabelled row does not
pull its label towards itself. S_ij = f_i . g_{y_j}.

The pitfall: with few labels, most of a batch's other rows share row i's label, so its
"negatives" in the normaliser are its own label again. So the row term contrasts text i with the
*distinct* labels present in its batch (its own once), and the column term contrasts label y_i
with the batch's texts of *other* labels (and text i itself). Sums in log space (logsumexp,
float64): at tau = 0.01, exp(S / tau) reaches e^100 and overflows float32.

tau is tuned on the query set: its rows are pairs known to be right; each is scored with its
own label and with a wrong one (another label of the query set), in batches among a sample of
pool rows, and the tau whose scores separate the two best (ROC AUC) is used.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, WithJsonSchema, field_validator
from scipy.special import logsumexp

from taskselect.errors import TaskselectError
from taskselect.sections import Section
from taskselect.selectors.base import Selection, SubsetSelect, check_size, first_copies, register, require_corpus
from taskselect.selectors.tsds import check_embeddings

log = logging.getLogger(__name__)

TAU_GRID = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5)


class NegCLIPLossParams(Section):
    """negcliploss: keep the text-label pairs that match best against other labels (negCLIPLoss),
    then fill the budget with those nearest the query set (NormSim; Wang et al., 2024); reads labels.
    Its batches and tau are also those of select.filter's negcliploss filter."""

    keep: float = Field(
        0.3, gt=0, le=1,
        description="Share of the pool kept by negCLIPLoss before NormSim fills the budget (at least the budget).",
    )
    batch_size: int = Field(256, ge=2, description="Rows per random batch of the contrastive normaliser.")
    partitions: int = Field(5, ge=1, description="Random partitions of the pool into batches; scores are averaged.")
    tau: float | None = Field(
        None, gt=0, description="Temperature; null: tuned on the query set over 0.01, 0.02, 0.05, 0.1, 0.2, 0.5."
    )
    # an enum, not a const: the Prefect form then offers 'inf' to choose, not "P is a const and cannot be changed"
    p: Annotated[Literal["inf"] | float, WithJsonSchema({"anyOf": [{"type": "string", "enum": ["inf"]},
                                                                    {"type": "number", "minimum": 1}]})] = Field(
        "inf", description="NormSim's norm over the similarities to the query examples: 'inf' (the largest) or p >= 1."
    )

    @field_validator("p", mode="before")
    @classmethod
    def _inf_or_at_least_one(cls, value):
        if value == "inf" or (isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 1):
            return value
        raise ValueError(f"p {value!r}: expected 'inf' or a number >= 1")


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


@dataclass(frozen=True)
class LabelPrototypes:
    """Each label's sum of unit text embeddings over the rows carrying it.

    names: (L,) the labels, sorted; sums: (L, dim) float64.
    """

    names: np.ndarray
    sums: np.ndarray

    @classmethod
    def of(cls, embeddings: np.ndarray, labels) -> LabelPrototypes:
        names, column = np.unique(np.asarray(labels, dtype=str), return_inverse=True)
        sums = np.zeros((names.size, embeddings.shape[1]))
        np.add.at(sums, column, _unit(np.asarray(embeddings, dtype=np.float64)))
        return cls(names, sums)

    def similarities(self, embeddings: np.ndarray, labels, members: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(S, own, column) for rows (n, dim) paired with `labels` (each one of self.names).

        S: (n, L) cosine of each row with each label's unit centroid; own: (n,) with its own
        label's centroid, leaving the row out of it when `members` (the rows are among those the
        centroids were summed over; a label with no other row gives 0); column: (n,) its label's
        position in self.names.
        """
        f = _unit(np.asarray(embeddings, dtype=np.float64))
        column = np.searchsorted(self.names, np.asarray(labels, dtype=str))
        if not np.array_equal(self.names[np.minimum(column, self.names.size - 1)], np.asarray(labels, dtype=str)):
            raise TaskselectError("negcliploss: a row's label has no prototype (no pool row carries it)")
        dots = f @ self.sums.T
        s = dots / np.maximum(np.linalg.norm(self.sums, axis=1), 1e-12)
        own_sum_dot = dots[np.arange(len(f)), column]
        if members:  # |sum - f|^2 = |sum|^2 - 2 sum.f + 1 for unit f
            rest = np.sqrt(np.maximum((self.sums[column] ** 2).sum(axis=1) - 2 * own_sum_dot + 1, 0))
            own = np.where(rest > 1e-9, (own_sum_dot - 1) / np.maximum(rest, 1e-9), 0.0)
        else:
            own = s[np.arange(len(f)), column]
        return s, own, column


def negclip_scores(
    s: np.ndarray, own: np.ndarray, column: np.ndarray, tau: float, batch_size: int, partitions: int,
    rng: np.random.Generator, symmetric: bool = True,
) -> np.ndarray:
    """(n,) float64 negCLIPLoss of n text-label pairs, mean over `partitions` random partitions.

    s: (n, L) similarity of each text with each label's prototype; own: (n,) with its own
    label's (the diagonal S_ii); column: (n,) its label. In a batch B containing row i:
    row term: logsumexp over the distinct labels of B of S(i, label) / tau, its own label
    counted once as own[i]; column term: logsumexp over the rows j of B with another label than
    i's of S(j, y_i) / tau, and own[i] / tau. Score: own - tau / 2 * (row + column), or, not
    `symmetric`, own - tau * row (the text against the labels only).
    """
    n = len(own)
    batch_size = min(batch_size, n)
    total = np.zeros(n)
    for _ in range(partitions):
        order = rng.permutation(n)
        score = np.empty(n)
        for start in range(0, n, batch_size):
            b = order[start:start + batch_size]
            if b.size < 2 and n >= 2:  # a lone row has nothing to contrast with: join it to the previous batch
                b = order[start - batch_size:start + batch_size]
            y = column[b]
            present = np.unique(y)
            row = s[np.ix_(b, present)].copy()
            row[np.arange(b.size), np.searchsorted(present, y)] = own[b]
            terms = logsumexp(row / tau, axis=1)
            if symmetric:
                col = s[np.ix_(b, y)]  # col[j, i] = S(text j, label of i)
                col[y[:, None] == y[None, :]] = -np.inf
                col[np.arange(b.size), np.arange(b.size)] = own[b]
                terms = terms + logsumexp(col / tau, axis=0)
            else:
                terms = 2 * terms
            score[b] = own[b] - tau / 2 * terms  # b overlaps the previous batch only for a lone last row
        total += score
    return total / partitions


def norm_sim(candidates: np.ndarray, query: np.ndarray, p: Literal["inf"] | float = "inf") -> np.ndarray:
    """(N,) float64 NormSim_p: the p-norm over the queries of each row's cosine with them
    ('inf': the largest cosine)."""
    sims = _unit(np.asarray(candidates, dtype=np.float64)) @ _unit(np.asarray(query, dtype=np.float64)).T
    return np.linalg.norm(sims, ord=np.inf if p == "inf" else float(p), axis=1)


def wrong_labels(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n,) for each row another label drawn uniformly from the other labels in `labels`."""
    names, column = np.unique(labels, return_inverse=True)
    shift = rng.integers(1, names.size, size=labels.size)
    return names[(column + shift) % names.size]


@dataclass
class NegCLIPLoss:
    """negCLIPLoss of every pool row as a text-label pair, tau tuned on the query set.

    batch_size, partitions: the random batches of the normaliser; tau: fixed, or None to tune it
    over `taus` on the query set (needs at least two query labels; else the grid's middle);
    symmetric: both terms of the normaliser (the paper), or the row term only (negclip_scores).
    """

    batch_size: int = NegCLIPLossParams.default("batch_size")
    partitions: int = NegCLIPLossParams.default("partitions")
    tau: float | None = NegCLIPLossParams.default("tau")
    symmetric: bool = True
    taus: tuple[float, ...] = field(default=TAU_GRID)

    def scores(self, query, candidates, corpus, seed: int) -> tuple[np.ndarray, dict]:
        """((N,) float64 negCLIPLoss of each pool row, facts: tau and how it was chosen)."""
        return self.of_pool(candidates, corpus.pool_labels)(query, corpus.query_labels, seed)

    def of_pool(self, candidates, pool_labels) -> Callable[[np.ndarray, list, int], tuple[np.ndarray, dict]]:
        """`scores` for this pool (N, dim) and its labels, as a function of (query, query labels,
        seed): the prototypes and similarities are computed once, and the pool's scores once per
        tau and seed (auto's folds tune tau on each subset of the queries, mostly to the same)."""
        candidates = check_embeddings("candidates", candidates)
        prototypes = LabelPrototypes.of(candidates, pool_labels)
        pool = prototypes.similarities(candidates, pool_labels, members=True)
        scored: dict[tuple[float, int], np.ndarray] = {}

        def scores(query, query_labels, seed: int) -> tuple[np.ndarray, dict]:
            info: dict = {"labels": int(prototypes.names.size)}
            tau = self.tau
            if tau is None:
                tau, info["tau_auc"] = self.tune_tau(query, query_labels, prototypes, pool, seed)
            if (tau, seed) not in scored:
                scored[tau, seed] = negclip_scores(*pool, tau, self.batch_size, self.partitions,
                                                   np.random.default_rng(seed), self.symmetric)
                log.info("negCLIPLoss: %d pairs over %d labels, tau %g, scores %.3f to %.3f",
                         len(scored[tau, seed]), prototypes.names.size, tau, scored[tau, seed].min(), scored[tau, seed].max())
            return scored[tau, seed], {**info, "tau": tau}
        return scores

    def tune_tau(self, query, query_labels, prototypes: LabelPrototypes, pool: tuple, seed: int,
                 companions: int = 2000) -> tuple[float, dict | None]:
        """The tau of self.taus whose scores best separate the query rows with their own labels
        from the same rows with a wrong label (ROC AUC), and each tau's AUC.

        pool: the pool rows' (S, own, column) (LabelPrototypes.similarities); the query rows are
        scored in batches among a seeded sample of `companions` pool rows, so their batches hold
        the labels a pool row's do.
        """
        from sklearn.metrics import roc_auc_score  # scikit-learn where used: the CLI starts without it

        labels = np.asarray(query_labels, dtype=str)
        known = np.isin(labels, prototypes.names)
        if np.unique(labels[known]).size < 2:
            log.warning("negCLIPLoss: fewer than two query labels known to the pool; tau %g untuned", self.taus[len(self.taus) // 2])
            return self.taus[len(self.taus) // 2], None
        query = check_embeddings("query", query)[known]
        labels = labels[known]
        rng = np.random.default_rng(seed)
        wrong = wrong_labels(labels, rng)
        sample = np.sort(rng.choice(len(pool[1]), min(companions, len(pool[1])), replace=False))
        mixed = [[np.concatenate([part[sample], extra]) for part, extra in zip(pool, prototypes.similarities(query, y, members=False))]
                 for y in (labels, wrong)]
        auc = {}
        for tau in self.taus:
            scored = [negclip_scores(*sims, tau, self.batch_size, self.partitions, np.random.default_rng(seed),
                                     self.symmetric)[sample.size:] for sims in mixed]
            auc[tau] = float(roc_auc_score(np.r_[np.ones(len(labels)), np.zeros(len(labels))], np.concatenate(scored)))
        best = max(auc, key=lambda t: (auc[t], -t))
        log.info("negCLIPLoss: tau %g separates right from wrong query labels best (AUC %.3f)", best, auc[best])
        return best, {f"{t:g}": round(a, 4) for t, a in auc.items()}


@register("negcliploss", NegCLIPLossParams, reads="corpus")
@dataclass
class NegCLIPLossSelector:
    """Keep the top `keep` share of the pool by negCLIPLoss, then the `size` rows of highest NormSim_p
    among them (needs a Corpus with labels).

    keep: (0, 1], at least size rows are kept. p: NormSim's norm ('inf' or >= 1).
    The seed drives the random batches and the wrong labels of tau's tuning.
    """

    keep: float = NegCLIPLossParams.default("keep")
    batch_size: int = NegCLIPLossParams.default("batch_size")
    partitions: int = NegCLIPLossParams.default("partitions")
    tau: float | None = NegCLIPLossParams.default("tau")
    p: Literal["inf"] | float = NegCLIPLossParams.default("p")

    def __post_init__(self):
        NegCLIPLossParams.check(self, "negcliploss")

    def query_subsets(self, query, candidates, index=None, corpus=None) -> SubsetSelect:
        """The pool's scores (once per tau and seed, NegCLIPLoss.of_pool) and distinct pairs once;
        a subset of the queries tunes its own tau and ranks the kept rows by its own NormSim."""
        corpus = require_corpus(corpus, "negcliploss", len(candidates), len(query))
        query = check_embeddings("query", query, dim=np.shape(candidates)[1])
        score = NegCLIPLoss(self.batch_size, self.partitions, self.tau).of_pool(candidates, corpus.pool_labels)
        # Distinct pairs: a (text, label) in the pool many times is kept once (its copies score
        # alike and would otherwise fill the budget: BENCHMARKS.md "Duplicate robustness").
        rows = np.arange(len(candidates))
        distinct = rows[first_copies(candidates, rows, corpus.pool_labels) == rows]

        def select(subset: np.ndarray, size: int, seed: int) -> Selection:
            check_size(size, len(candidates))
            scores, info = score(query[subset], corpus.with_queries(subset).query_labels, seed)
            among = distinct if distinct.size >= size else rows  # fewer distinct pairs than the budget: copies fill it
            kept = among[top_share(scores[among], self.keep, size)]
            similarity = norm_sim(candidates[kept], query[subset], self.p)
            chosen = kept[np.argsort(-similarity, kind="stable")[:size]]
            return Selection(indices=np.sort(chosen), scores=scores,
                             info={**info, "kept": int(kept.size), "copies": int(len(candidates) - distinct.size)})
        return select

    def select(self, query, candidates, size: int, seed: int, index=None, corpus=None) -> Selection:
        check_size(size, len(candidates))
        return self.query_subsets(query, candidates, index, corpus)(np.arange(len(query)), size, seed)


def share_size(share: float, n: int, at_least: int = 1) -> int:
    """How many of n rows a share keeps: round(share * n), at least `at_least`, at most n."""
    return min(n, max(round(share * n), at_least))


def top_share(scores: np.ndarray, share: float, at_least: int = 1) -> np.ndarray:
    """(k,) int64 sorted rows of the k highest scores, k = share_size(share, n, at_least); ties by row."""
    return np.sort(np.argsort(-scores, kind="stable")[:share_size(share, len(scores), at_least)]).astype(np.int64)
