import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskselect.errors import TaskselectError
from taskselect.selectors.sampling import (
    inclusion_probabilities, sample_with_replacement, sample_without_replacement,
)


def skewed(n=40, seed=0):
    p = np.random.default_rng(seed).random(n) ** 4
    return p / p.sum()


def test_inclusion_probabilities_sum_to_the_size_and_follow_p_below_the_cap():
    p = skewed()
    pi = inclusion_probabilities(p, 15)
    assert pi.sum() == pytest.approx(15)
    assert pi.max() <= 1
    below = pi < 1
    ratio = pi[below] / p[below]
    np.testing.assert_allclose(ratio, ratio[0])  # one common scale c for the uncapped rows
    assert (p[~below].min() >= p[below].max())  # only the largest p are capped


def test_without_replacement_matches_inclusion_probabilities_empirically():
    p = skewed()
    pi = inclusion_probabilities(p, 15)
    hits = np.zeros_like(p)
    for seed in range(4000):
        rows = sample_without_replacement(p, 15, np.random.default_rng(seed))
        assert rows.size == np.unique(rows).size == 15
        hits[rows] += 1
    assert np.abs(hits / 4000 - pi).max() < 0.03


def test_with_replacement_tolerates_probabilities_that_do_not_sum_to_one():
    p = np.full(7, 1 / 7) * (1 + 1e-15)
    draws = sample_with_replacement(p, 1000, np.random.default_rng(0))
    assert draws.min() >= 0 and draws.max() < 7
    assert np.bincount(draws, minlength=7).min() > 100


def test_too_small_support_is_reported():
    p = np.array([0.5, 0.5, 0, 0])
    with pytest.raises(TaskselectError, match="only 2 rows have non-zero probability"):
        sample_without_replacement(p, 3, np.random.default_rng(0))


def test_same_seed_same_sample():
    p = skewed()
    a = sample_without_replacement(p, 10, np.random.default_rng(3))
    b = sample_without_replacement(p, 10, np.random.default_rng(3))
    c = sample_without_replacement(p, 10, np.random.default_rng(4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@st.composite
def distributions(draw):
    """Probabilities spanning many orders of magnitude, with zeros, not quite summing to 1."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(1, 300))
    p = 10.0 ** rng.uniform(-draw(st.sampled_from([1, 20, 300])), 0, n)
    p[rng.random(n) < draw(st.sampled_from([0.0, 0.5, 0.95]))] = 0.0
    if not p.any():
        p[rng.integers(n)] = 1.0
    p = p / p.sum() * (1 + draw(st.sampled_from([0.0, 1e-15, -1e-15])))
    return p, draw(st.integers(1, int(np.count_nonzero(p))))


@settings(max_examples=150, deadline=None)
@given(distributions(), st.integers(0, 2**32 - 1))
def test_sampling_never_fails_on_round_off(case, seed):
    p, size = case
    rows = sample_without_replacement(p, size, np.random.default_rng(seed))
    assert rows.size == np.unique(rows).size == size and (p[rows] > 0).all()
    pi = inclusion_probabilities(p, size)
    assert pi.sum() == pytest.approx(size) and pi.max() <= 1.0 and (pi[p == 0] == 0).all()
    draws = sample_with_replacement(p, size, np.random.default_rng(seed))
    assert draws.size == size and (p[draws] > 0).all()
