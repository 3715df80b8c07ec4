"""MATES: model-aware data selection with a data influence model (Yu, Das, Xiong, NeurIPS 2024,
"MATES: Model-Aware Data Selection for Efficient Pretraining with Data Influence Models").

MATES measures an *oracle* influence for a sample of candidates by probing the current model
(one optimiser step on the candidate, then the change of the loss on a reference set), trains a
small *data influence model* to predict that oracle from the candidate alone (MSE on
standardised scores; its Spearman correlation on held-out probes says how well it does),
predicts the influence of every candidate, takes the most helpful ones (top-k after Gumbel
noise) and repeats over rounds as the model trains on what was selected.

Here, with our choices named (each is a parameter of MatesParams):
- the model probed is a proxy of the head trainer: softmax regression on the frozen embeddings
  over every label of the pool and the query set, L2-penalised as the head (C), warm-started on
  a first selection (`warmup`: the rows nearest the queries) and refitted on the selection after
  every round;
- the reference set is the query examples, less a held-out share (`holdout_queries`) on which
  the influence model is also checked: the influence it predicts should carry over to task
  examples the oracle never saw;
- the oracle of a candidate (x, y) is the decrease of the mean cross-entropy on the reference
  set after one gradient step of size `step` on (x, y) alone; for a linear softmax model it is
  exact and cheap (no retraining), computed for `probes` rows per round;
- the influence model reads the row's embedding and its label (one-hot) and is an MLP
  (`influence_model: mlp`, `hidden` units) or ridge regression, fitted by MSE on the oracle
  standardised over the round's probes; `holdout_probes` of them are kept out for its Spearman
  correlation and its MSE against a constant predictor;
- it probes and predicts for the rows nearest the queries (`neighbourhood` rows per selected
  row; 0: every candidate, as the paper). The oracle of a linear proxy rewards a row mostly for
  its label (any positive text helps the positive queries), not for its domain, and a sample of
  a pool mostly off-task holds few of the task's own rows: on the small airline profile at 5%,
  the whole pool gave 21% airline tweets in the selection, three rows per selected row 51%
  (the influence model's held-out Spearman about 0.85 either way);
- each round takes an equal share of the rest of the budget: the top-k of predicted influence /
  `temperature` plus Gumbel noise (MATES's sampling: higher temperature, more randomness).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field, field_validator
from scipy.special import log_softmax, logsumexp, softmax

from taskselect.errors import TaskselectError
from taskselect.sections import Section
from taskselect.threads import fixed_threads
from taskselect.selectors.base import Selection, check_size, register, require_corpus
from taskselect.selectors.dsir import gumbel_top_k
from taskselect.selectors.neighbourhood import round_robin
from taskselect.selectors.tsds import check_embeddings

log = logging.getLogger(__name__)


class MatesParams(Section):
    """mates: MATES (Yu et al., NeurIPS 2024): a small model learns which rows lower the query set's
    loss when a proxy classifier takes a step on them, over rounds as the proxy trains on the
    selection; reads labels."""

    rounds: int = Field(4, ge=1, description="Selection rounds; the proxy is refitted on the selection after each.")
    warmup: float = Field(
        0.1, gt=0, lt=1, description="Share of the budget first taken nearest the queries, to warm-start the proxy."
    )
    probes: int = Field(1000, ge=10, description="Candidates whose oracle influence is measured per round (rows).")
    holdout_probes: float = Field(
        0.2, gt=0, lt=1, description="Share of the probes kept out of the influence model's fit to measure it."
    )
    holdout_queries: float = Field(
        0.3, ge=0, lt=1, description="Share of the query examples kept out of the reference set to check the influence model on."
    )
    step: float = Field(1.0, gt=0, description="Learning rate of the oracle's one gradient step on a candidate.")
    proxy_C: float = Field(10.0, gt=0, description="The proxy's inverse L2 penalty (as the head trainer's C).")
    influence_model: Literal["mlp", "ridge"] = Field(
        "mlp", description="Data influence model on embedding + label one-hot: a one-hidden-layer MLP or ridge."
    )
    hidden: int = Field(64, ge=1, description="mlp: hidden units.")
    l2: float = Field(1e-2, gt=0, description="The influence model's L2 penalty (MLP alpha, ridge alpha).")
    temperature: float = Field(
        0.5, gt=0, description="Gumbel top-k: predicted standardised influence divided by this, plus Gumbel noise."
    )
    neighbourhood: float = Field(
        3.0, ge=0,
        description="Rows nearest the queries probed and predicted for, per selected row (>= 1); 0: the whole "
        "pool, as the paper.",
    )

    @field_validator("neighbourhood")
    @classmethod
    def _whole_pool_or_at_least_the_budget(cls, value: float) -> float:
        if 0 < value < 1:
            raise ValueError(f"neighbourhood {value}: expected 0 (the whole pool) or >= 1 (rows per selected row)")
        return value


@dataclass
class SoftmaxProxy:
    """Multinomial logistic regression over fixed classes, so a class with no training row yet
    keeps its place (the reference set's labels need one from the start).

    weights: (C, dim + 1) float64, the last column the bias. Objective: mean cross-entropy +
    ||W||^2 / (2 C n) on n rows (sklearn's LogisticRegression(C) scaled by 1 / n).
    """

    n_classes: int
    dim: int
    C: float = 10.0

    def __post_init__(self):
        self.weights = np.zeros((self.n_classes, self.dim + 1))

    @staticmethod
    def _design(x: np.ndarray) -> np.ndarray:
        return np.hstack([np.asarray(x, dtype=np.float64), np.ones((len(x), 1))])

    def fit(self, x: np.ndarray, y: np.ndarray, max_iter: int = 200) -> SoftmaxProxy:
        """Refit on rows x (n, dim) with classes y (n,) ints, starting from the current weights."""
        from scipy.optimize import minimize  # 0.5 s to import: not at every CLI start

        a = self._design(x)
        onehot = np.eye(self.n_classes)[y]
        penalty = 1.0 / (self.C * len(x))

        def objective(flat):
            w = flat.reshape(self.weights.shape)
            logp = log_softmax(a @ w.T, axis=1)
            grad = (np.exp(logp) - onehot).T @ a / len(x)
            grad[:, :-1] += penalty * w[:, :-1]
            return -(logp * onehot).sum() / len(x) + penalty / 2 * (w[:, :-1] ** 2).sum(), grad.ravel()

        found = minimize(objective, self.weights.ravel(), jac=True, method="L-BFGS-B", options={"maxiter": max_iter})
        self.weights = found.x.reshape(self.weights.shape)
        return self

    def losses(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """(n,) cross-entropy of each row."""
        return -log_softmax(self._design(x) @ self.weights.T, axis=1)[np.arange(len(x)), y]

    def oracle(self, x: np.ndarray, y: np.ndarray, ref_x: np.ndarray, ref_y: np.ndarray, step: float,
               chunk: int = 256) -> np.ndarray:
        """(n,) decrease of the mean reference cross-entropy after one gradient step of size `step`
        on each candidate (x_i, y_i) alone: positive helps the reference set.

        The step changes W by -step (p_i - e_{y_i}) [x_i, 1]^T, so every reference logit moves by
        -step (p_i - e_{y_i}) ([x_i, 1] . [q, 1]): exact, without refitting.
        """
        a, ref = self._design(x), self._design(ref_x)
        ref_logits = ref @ self.weights.T  # (R, C)
        before = -log_softmax(ref_logits, axis=1)[np.arange(len(ref)), ref_y].mean()
        out = np.empty(len(x))
        for start in range(0, len(x), chunk):
            rows = slice(start, start + chunk)
            grad = softmax(a[rows] @ self.weights.T, axis=1)
            grad[np.arange(grad.shape[0]), y[rows]] -= 1.0  # (P, C) = p - e_y
            logits = ref_logits[None] - step * (a[rows] @ ref.T)[:, :, None] * grad[:, None, :]  # (P, R, C)
            after = logsumexp(logits, axis=2) - logits[:, np.arange(len(ref)), ref_y]
            out[rows] = before - after.mean(axis=1)
        return out


def held_out(labels: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted rows holding `share` of each label's rows (rounded), drawn at random: the reference
    set and the held-out queries keep the same label mix, or the influence on one would be the
    influence of moving between label priors."""
    out = [rng.permutation(rows)[:int(round(share * rows.size))] for rows in
           (np.flatnonzero(labels == label) for label in np.unique(labels))]
    return np.sort(np.concatenate(out)).astype(np.int64)


def standardised(values: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(z-scores, mean, std) of values; a constant array gives zeros."""
    mean, std = float(values.mean()), float(values.std())
    return (values - mean) / (std if std > 0 else 1.0), mean, std


@register("mates", MatesParams, reads="corpus")
@dataclass
class MATESSelector:
    """MATES over `rounds`, with a softmax proxy of the head trainer (needs a Corpus with labels;
    query labels form the reference set). Parameters as MatesParams. The seed drives the split of
    the query set, the probes, the influence model's initialisation and the Gumbel noise.
    """

    rounds: int = MatesParams.default("rounds")
    warmup: float = MatesParams.default("warmup")
    probes: int = MatesParams.default("probes")
    holdout_probes: float = MatesParams.default("holdout_probes")
    holdout_queries: float = MatesParams.default("holdout_queries")
    step: float = MatesParams.default("step")
    proxy_C: float = MatesParams.default("proxy_C")
    influence_model: Literal["mlp", "ridge"] = MatesParams.default("influence_model")
    hidden: int = MatesParams.default("hidden")
    l2: float = MatesParams.default("l2")
    temperature: float = MatesParams.default("temperature")
    neighbourhood: float = MatesParams.default("neighbourhood")

    def __post_init__(self):
        MatesParams.check(self, "mates")

    def _influence_model(self, seed: int):
        from sklearn.linear_model import Ridge  # scikit-learn where used: the CLI starts without it
        from sklearn.neural_network import MLPRegressor

        if self.influence_model == "ridge":
            return Ridge(alpha=self.l2)
        return MLPRegressor(hidden_layer_sizes=(self.hidden,), alpha=self.l2, max_iter=300, early_stopping=False, random_state=seed)

    def select(self, query, candidates, size: int, seed: int, index=None, corpus=None) -> Selection:
        from scipy.stats import spearmanr  # 0.4 s to import: not at every CLI start

        corpus = require_corpus(corpus, "mates", len(candidates), len(query))
        check_size(size, len(candidates))
        candidates = check_embeddings("candidates", candidates)
        query = check_embeddings("query", query, dim=candidates.shape[1])
        if len(corpus.query_labels) != len(query):
            raise TaskselectError("mates: the query examples' labels are needed (they are its reference set)")
        rng = np.random.default_rng(seed)
        classes, codes = np.unique(np.r_[np.asarray(corpus.pool_labels, dtype=str),
                                         np.asarray(corpus.query_labels, dtype=str)], return_inverse=True)
        pool_y, query_y = codes[:len(candidates)], codes[len(candidates):]
        held = held_out(query_y, self.holdout_queries, rng)
        ref = np.setdiff1d(np.arange(len(query)), held)

        region = (np.arange(len(candidates)) if self.neighbourhood == 0
                  else np.sort(round_robin(query, candidates, int(np.ceil(self.neighbourhood * size)), seed, index)))
        first = round_robin(query, candidates, max(1, int(round(self.warmup * size))), seed, index)
        chosen = np.zeros(len(candidates), dtype=bool)
        chosen[first] = True
        # One row in the pool's features: the embedding and the label, one-hot.
        features = np.hstack([candidates, np.eye(classes.size, dtype=np.float32)[pool_y]])
        proxy = SoftmaxProxy(classes.size, candidates.shape[1], self.proxy_C)
        scores = np.full(len(candidates), np.nan)
        history = []
        for r in range(self.rounds):
            rows = np.flatnonzero(chosen)
            proxy.fit(candidates[rows], pool_y[rows])
            open_rows = region[~chosen[region]]
            take = min(open_rows.size, -(-(size - rows.size) // (self.rounds - r)))
            if take <= 0:
                break
            probed = rng.choice(open_rows, min(self.probes, open_rows.size), replace=False)
            if probed.size < 10:  # too few rows left to learn from: the nearest others fill the budget below
                break
            oracle, _, _ = standardised(proxy.oracle(candidates[probed], pool_y[probed], query[ref], query_y[ref], self.step))
            n_test = max(2, int(round(self.holdout_probes * probed.size)))
            test, train = np.arange(n_test), np.arange(n_test, probed.size)
            from sklearn.exceptions import ConvergenceWarning

            with fixed_threads(), warnings.catch_warnings():  # one thread: the same sums on any machine load
                warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter is the MLP's training budget
                model = self._influence_model(seed + r).fit(features[probed[train]], oracle[train])
                predicted = model.predict(features[open_rows])
            scores[open_rows] = predicted
            at = np.searchsorted(open_rows, probed[test])
            facts = {"round": r, "selected": int(rows.size), "probes": int(probed.size),
                     "spearman": float(spearmanr(predicted[at], oracle[test]).statistic),
                     "mse": float(np.mean((predicted[at] - oracle[test]) ** 2)),
                     "mse_constant": float(np.mean((oracle[train].mean() - oracle[test]) ** 2)),
                     "reference_loss": float(proxy.losses(query[ref], query_y[ref]).mean())}
            if held.size:
                facts["heldout_query_loss"] = float(proxy.losses(query[held], query_y[held]).mean())
                on_held = proxy.oracle(candidates[probed[test]], pool_y[probed[test]], query[held], query_y[held], self.step)
                facts["spearman_heldout_queries"] = float(spearmanr(predicted[at], on_held).statistic)
            history.append(facts)
            picked = open_rows[gumbel_top_k(predicted / self.temperature, take, rng)]
            chosen[picked] = True
            log.info("MATES round %d: influence model Spearman %.3f on held-out probes, %d rows taken",
                     r, facts["spearman"], take)
        indices = np.flatnonzero(chosen)
        if indices.size < size:  # the region ran out: the nearest other rows
            extra = round_robin(query, candidates, size + indices.size, seed, index)
            indices = np.union1d(indices, extra[~chosen[extra]][:size - indices.size])
        return Selection(indices=indices.astype(np.int64), scores=scores, info={
            "spearman": float(np.nanmean([h["spearman"] for h in history])) if history else None,
            "rounds": history, "reference_queries": int(ref.size), "heldout_queries": int(held.size),
            "region_rows": int(region.size),
        })
