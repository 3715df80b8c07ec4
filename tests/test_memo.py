"""taskselect.memo.keep_last: features of the same texts computed once per process."""

import threading

import numpy as np
import pytest
from scipy import sparse

from taskselect.memo import forget_all, keep_last
from taskselect.selectors.dsir import hashed_ngrams


def test_the_last_calls_are_kept_by_their_arguments_values_and_evicted_oldest_first():
    calls = []

    @keep_last(2)
    def lengths(texts, scale: int = 1):
        calls.append((list(texts), scale))
        return np.array([len(t) * scale for t in texts])

    first = lengths(["ab", "c"])
    assert lengths(("ab", "c"), scale=1) is first and lengths(["ab", "c"], 1) is first  # defaults filled in
    assert len(calls) == 1
    with pytest.raises(ValueError, match="read-only"):
        first[0] = 5
    lengths(["ab", "c"], 2)
    lengths(["ab", "cd"])  # a third distinct call: the oldest, first, is dropped
    assert len(calls) == 3
    assert lengths(["ab", "c"]) is not first and len(calls) == 4
    assert lengths(["ab", "c"]).tolist() == [2, 1]
    lengths.forget()
    lengths(["ab", "c"])
    assert len(calls) == 5
    forget_all()  # every keep_last function's results, this one's among them
    lengths(["ab", "c"])
    assert len(calls) == 6


def test_texts_that_differ_only_where_their_boundaries_fall_are_not_the_same_call():
    calls = []

    @keep_last(4)
    def joined(texts):
        calls.append(texts)
        return "|".join(texts)

    assert joined(["ab", "c"]) == "ab|c" and joined(["a", "bc"]) == "a|bc" and len(calls) == 2


def test_concurrent_calls_with_the_same_texts_compute_once():
    calls = []
    started = threading.Event()

    @keep_last(1)
    def slow(texts):
        calls.append(texts)
        started.wait(5)
        return np.zeros(3)

    results = []
    threads = [threading.Thread(target=lambda: results.append(slow(["x"]))) for _ in range(3)]
    for t in threads:
        t.start()
    started.set()
    for t in threads:
        t.join()
    assert len(calls) == 1 and all(r is results[0] for r in results)


def test_hashed_ngrams_of_the_same_texts_are_one_read_only_matrix():
    texts = ["the plane landed late", "soup with basil", "a late goal"]
    hashed_ngrams.forget()
    counts = hashed_ngrams(texts, 64, 2)
    assert hashed_ngrams(list(texts), buckets=64) is counts and sparse.isspmatrix_csr(counts)
    with pytest.raises(ValueError, match="read-only"):
        counts.data[0] = 7
    hashed_ngrams.forget()
    fresh = hashed_ngrams(texts, 64, 2)
    assert fresh is not counts and (fresh != counts).nnz == 0
