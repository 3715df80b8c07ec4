"""DSIR: data selection with importance resampling (Xie, Santurkar, Ma, Liang, NeurIPS 2023,
"Data selection for language models via importance resampling").

Each text becomes a bag of hashed n-grams (its unigrams and bigrams, each hashed into one of
`buckets` buckets). Two bag-of-n-grams models, one fitted on the query texts (target) and one on
the pool (raw), give every pool row a log importance weight
sum_b count_b * (log p_target[b] - log p_raw[b]); `size` rows are drawn without replacement in
proportion to the weights by Gumbel top-k. It reads texts only, no embeddings.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import Field
from scipy import sparse
from tqdm.auto import tqdm

from taskselect.memo import keep_last
from taskselect.sections import Section
from taskselect.selectors.base import Selection, SubsetSelect, check_size, require_corpus, register

log = logging.getLogger(__name__)

TOKEN = re.compile(r"\w+|[^\w\s]+")  # nltk's WordPunctTokenizer, which the DSIR code uses


def _bucket(gram: str, buckets: int) -> int:
    # sha256 as in the DSIR code: stable across processes (Python's hash() is salted)
    return int(hashlib.sha256(gram.encode("utf-8")).hexdigest(), 16) % buckets


@keep_last(2)  # a run's pool and query texts, read again by each selection (dsir, the lexical vectors)
def hashed_ngrams(texts: Sequence[str], buckets: int = 10000, ngrams: int = 2) -> sparse.csr_matrix:
    """(len(texts), buckets) int64 counts of each text's lower-cased 1- to `ngrams`-grams per
    bucket, read-only (the same texts' counts are computed once per process)."""
    cache: dict[str, int] = {}
    rows, cols = [], []
    for i, text in enumerate(tqdm(texts, desc="hashing n-grams", unit="text", disable=len(texts) < 10000)):
        words = TOKEN.findall(str(text).lower())
        grams = list(words)
        for n in range(2, ngrams + 1):
            grams += [" ".join(words[j:j + n]) for j in range(len(words) - n + 1)]
        for gram in grams:
            bucket = cache.get(gram)
            if bucket is None:
                bucket = cache[gram] = _bucket(gram, buckets)
            cols.append(bucket)
        rows.extend([i] * len(grams))
    data = np.ones(len(cols), dtype=np.int64)
    counts = sparse.csr_matrix((data, (rows, cols)), shape=(len(texts), buckets))
    counts.sum_duplicates()
    return counts


def bag_log_probs(counts: sparse.csr_matrix, smoothing: float) -> np.ndarray:
    """(buckets,) log probabilities of the bag-of-n-grams model fitted to `counts`, add-`smoothing`."""
    totals = np.asarray(counts.sum(axis=0), dtype=np.float64).ravel() + smoothing
    return np.log(totals) - np.log(totals.sum())


def log_importance_weights(
    pool_texts: Sequence[str], query_texts: Sequence[str], buckets: int = 10000, ngrams: int = 2,
    smoothing: float = 1.0,
) -> np.ndarray:
    """(N,) float64 log p_target(x) / p_raw(x) of each pool text under the two bag models."""
    pool = hashed_ngrams(pool_texts, buckets, ngrams)
    return weights_of_counts(pool, hashed_ngrams(query_texts, buckets, ngrams), bag_log_probs(pool, smoothing), smoothing)


def weights_of_counts(pool: sparse.csr_matrix, target: sparse.csr_matrix, raw: np.ndarray, smoothing: float) -> np.ndarray:
    """log_importance_weights from the pool's and the target texts' n-gram counts (N and M rows)
    and the pool's bag model `raw` (bag_log_probs of `pool`)."""
    return pool @ (bag_log_probs(target, smoothing) - raw)


def gumbel_top_k(log_weights: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """(size,) int64 distinct rows, a sample without replacement proportional to exp(log_weights)
    (the `size` largest of log_weights + Gumbel noise), sorted."""
    keys = log_weights + rng.gumbel(size=log_weights.shape)
    return np.sort(np.argpartition(-keys, size - 1)[:size]).astype(np.int64)


class DSIRParams(Section):
    """dsir: importance resampling on hashed n-grams (Xie et al., NeurIPS 2023); reads texts."""

    buckets: int = Field(10000, ge=1, description="Hash buckets of the n-gram features.")
    ngrams: int = Field(2, ge=1, le=3, description="Longest n-gram counted (2: unigrams and bigrams).")
    smoothing: float = Field(
        1.0, gt=0, description="Pseudo-count added to every bucket of both bag-of-n-grams models (Laplace: 1)."
    )


@register("dsir", DSIRParams, reads="texts")
@dataclass
class DSIRSelector:
    """DSIR on hashed n-grams of the pool and query texts (needs a Corpus).

    buckets: hash buckets of the n-gram features (the paper: 10,000).
    ngrams: longest n-gram counted (2: unigrams and bigrams, as the paper).
    smoothing: > 0, pseudo-count added to every bucket of both bag models (Laplace at 1): an
        n-gram the queries never use lowers a row's weight by a finite amount.
    """

    buckets: int = DSIRParams.default("buckets")
    ngrams: int = DSIRParams.default("ngrams")
    smoothing: float = DSIRParams.default("smoothing")

    def __post_init__(self):
        DSIRParams.check(self, "dsir")

    def query_subsets(self, query, candidates, index=None, corpus=None) -> SubsetSelect:
        """The pool's and the queries' n-gram counts once; a subset of the queries fits its own
        target model on its rows' counts."""
        corpus = require_corpus(corpus, "dsir", len(candidates), len(query))
        pool = hashed_ngrams(corpus.pool_texts, self.buckets, self.ngrams)
        queries = hashed_ngrams(corpus.query_texts, self.buckets, self.ngrams).tocsr()
        raw = bag_log_probs(pool, self.smoothing)

        def select(rows: np.ndarray, size: int, seed: int) -> Selection:
            check_size(size, len(candidates))
            return self._draw(weights_of_counts(pool, queries[rows], raw, self.smoothing), size, seed)
        return select

    def select(self, query, candidates, size: int, seed: int, index=None, corpus=None) -> Selection:
        corpus = require_corpus(corpus, "dsir", len(candidates), len(query))
        check_size(size, len(candidates))
        weights = log_importance_weights(corpus.pool_texts, corpus.query_texts, self.buckets, self.ngrams,
                                         self.smoothing)
        log.info("DSIR: log importance weights from %.1f to %.1f", weights.min(), weights.max())
        return self._draw(weights, size, seed)

    @staticmethod
    def _draw(weights: np.ndarray, size: int, seed: int) -> Selection:
        probs = np.exp(weights - weights.max())
        return Selection(indices=gumbel_top_k(weights, size, np.random.default_rng(seed)),
                         probs=probs / probs.sum(), scores=weights)
