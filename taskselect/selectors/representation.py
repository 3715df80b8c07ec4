"""What the embedding-based selectors (tsds, knn) measure distances on.

- semantic: the pipeline's sentence embeddings, unchanged;
- lexical: each text's hashed 1- and 2-grams (DSIR's features, taskselect.selectors.dsir),
  TF-IDF weighted (sublinear term frequency, idf from the pool), reduced to LEXICAL_DIM
  dimensions by a truncated SVD fitted on the pool (latent semantic analysis), unit rows:
  the word overlap that lets DSIR find topic-like targets, as dense vectors faiss can search;
- hybrid: [sqrt(1 - w) semantic, sqrt(w) lexical], so that the squared L2 distance (and the
  cosine) is the w-weighted mean of the two representations', renormalised to unit rows.

The lexical vectors are a function of the pool's and queries' texts alone (the SVD's seed is
fixed), so the same texts always give the same vectors: the last ones are kept for the process
(taskselect.memo), as a run's selections at several budgets and seeds read the same texts (51 s
of a hybrid selection on a 114k-row pool went to computing them).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np

from taskselect.errors import TaskselectError
from taskselect.index import unit_rows
from taskselect.memo import keep_last
from taskselect.selectors.base import Corpus, require_corpus

log = logging.getLogger(__name__)

Representation = Literal["semantic", "lexical", "hybrid"]
REPRESENTATIONS = ("semantic", "lexical", "hybrid")
REPRESENTATION_HELP = (
    "What distances are measured on: 'semantic' (the sentence embeddings), 'lexical' (hashed "
    "1- and 2-grams, TF-IDF, reduced by SVD; reads the texts) or 'hybrid' (both, weighted by lexical_weight)."
)
LEXICAL_WEIGHT_HELP = "hybrid: share of the lexical distance (0 = semantic only, 1 = lexical only)."
LEXICAL_DIM = 256  # LSA's usual order of magnitude; the 384 of MiniLM would mostly add noise dimensions
LEXICAL_BUCKETS = 10000  # DSIR's hashing, as in its paper


@keep_last(1)
def lexical_vectors(pool_texts, query_texts, dim: int = LEXICAL_DIM) -> tuple[np.ndarray, np.ndarray]:
    """((N, d), (M, d)) read-only float32 unit rows: TF-IDF of hashed 1- and 2-grams reduced by
    an SVD fitted on the pool; d = min(dim, N - 1, buckets - 1). A text with no n-gram is a zero
    row. The same texts and dim as the last call return the last call's arrays."""
    from sklearn.decomposition import TruncatedSVD  # scikit-learn where used: the CLI starts without it
    from sklearn.feature_extraction.text import TfidfTransformer

    from taskselect.selectors.dsir import hashed_ngrams  # here: importing dsir registers it, in its turn

    pool_counts = hashed_ngrams(pool_texts, LEXICAL_BUCKETS, 2)
    query_counts = hashed_ngrams(query_texts, LEXICAL_BUCKETS, 2)
    tfidf = TfidfTransformer(sublinear_tf=True).fit(pool_counts)
    d = max(1, min(dim, pool_counts.shape[0] - 1, LEXICAL_BUCKETS - 1))
    svd = TruncatedSVD(d, algorithm="randomized", n_iter=5, random_state=0)
    pool = svd.fit_transform(tfidf.transform(pool_counts))
    query = svd.transform(tfidf.transform(query_counts))
    log.info("lexical vectors: %d dimensions keep %.0f%% of the TF-IDF variance", d,
             100 * svd.explained_variance_ratio_.sum())
    return unit_rows(pool.astype(np.float32)), unit_rows(query.astype(np.float32))


def represent(
    representation: Representation, query: np.ndarray, candidates: np.ndarray, index: Any = None,
    corpus: Corpus | None = None, lexical_weight: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, Any]:
    """(query, candidates, index) in `representation`: unchanged for 'semantic'; otherwise new
    (M, d) and (N, d) float32 unit rows from the corpus' texts, and no index (the pipeline's
    index holds the semantic vectors; search is then exact).

    query: (M, dim), candidates: (N, dim) unit-normalised sentence embeddings.
    """
    if representation == "semantic":
        return query, candidates, index
    if representation not in REPRESENTATIONS:
        raise TaskselectError(f"representation {representation!r}: expected one of {', '.join(REPRESENTATIONS)}")
    corpus = require_corpus(corpus, f"representation {representation!r}", len(candidates), len(query))
    pool_lex, query_lex = lexical_vectors(corpus.pool_texts, corpus.query_texts)
    if representation == "lexical":
        return query_lex, pool_lex, None
    w = float(lexical_weight)
    if not 0.0 <= w <= 1.0:
        raise TaskselectError(f"lexical_weight {w}: expected a value in [0, 1]")

    def mix(semantic: np.ndarray, lexical: np.ndarray) -> np.ndarray:
        semantic = unit_rows(np.asarray(semantic, dtype=np.float32))
        return unit_rows(np.hstack([np.sqrt(1.0 - w) * semantic, np.sqrt(w) * lexical]).astype(np.float32))

    return mix(query, query_lex), mix(candidates, pool_lex), None
