import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lp_reference import objective, solve_tsds_lp
from taskselect.errors import TaskselectError
from taskselect.selectors.tsds import TSDSSelector, WaterFilling, kde_densities


@st.composite
def instances(draw):
    """A random restricted TSDS instance: sorted distances, densities >= 1, alpha, C."""
    M = draw(st.integers(1, 6))
    K = draw(st.integers(1, 8))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    d = np.sort(rng.random((M, K)) * 2, axis=1)
    rho = 1 + rng.random((M, K)) * draw(st.sampled_from([0, 1, 5, 50]))
    alpha = draw(st.one_of(st.sampled_from([0.0, 1.0, 0.5, 0.99]), st.floats(0, 1)))
    C = draw(st.sampled_from([0.3, 1.0, 5.0]))
    return d, rho, alpha, C


@settings(max_examples=300, deadline=None)
@given(instances())
def test_water_filling_reaches_the_linear_programs_optimum(instance):
    d, rho, alpha, C = instance
    g = WaterFilling(d, rho, C).masses(alpha)
    _, best = solve_tsds_lp(d, rho, alpha, C)
    ours = objective(g, d, rho, alpha, C)
    # HiGHS stops within its own tolerances (~1e-9); our exact plan may only be better.
    assert ours == pytest.approx(best, rel=1e-7, abs=1e-9)
    assert ours <= best + 1e-12
    assert (g >= 0).all()
    np.testing.assert_allclose(g.sum(axis=1), 1 / d.shape[0], rtol=1e-12)


@settings(max_examples=100, deadline=None)
@given(instances())
def test_probabilities_equal_the_lp_solution_when_it_is_unique(instance):
    d, rho, alpha, C = instance
    alpha = min(max(alpha, 0.05), 0.95)  # interior alpha: the optimum is unique for generic inputs
    g = WaterFilling(d, rho, C).masses(alpha)
    g_lp, _ = solve_tsds_lp(d, rho, alpha, C)
    np.testing.assert_allclose(g, g_lp, atol=1e-8)


def test_alpha_one_sends_every_query_to_its_nearest_candidate():
    rng = np.random.default_rng(1)
    d = np.sort(rng.random((20, 30)), axis=1)
    rho = 1 + 10 * rng.random((20, 30))
    g = WaterFilling(d, rho, C=1.0).masses(1.0)
    np.testing.assert_allclose(g[:, 0], 1 / 20)
    assert g[:, 1:].sum() == 0


def test_a_query_whose_nearest_neighbour_holds_its_mass_sends_exactly_one_over_m():
    # Query 0's nearest neighbour has density 1 (weight 1), query 1's neighbours are dense:
    # at alpha near 1 the public script gave query 0 more than 1/M; the optimum caps it.
    d = np.array([[0.1, 0.5, 0.9], [0.2, 0.21, 0.22]])
    rho = np.array([[1.0, 1.0, 1.0], [8.0, 8.0, 8.0]])
    g = WaterFilling(d, rho, C=1.0).masses(0.999)
    assert g[0, 0] == pytest.approx(0.5)
    np.testing.assert_allclose(g.sum(axis=1), 0.5)


def test_selector_probabilities_are_a_distribution_with_each_query_carrying_one_over_m():
    rng = np.random.default_rng(2)
    pool = rng.normal(size=(300, 8)).astype(np.float32)
    query = rng.normal(size=(12, 8)).astype(np.float32)
    p = TSDSSelector(alpha=0.6, C=1.0, sigma=1.0, max_k=40, kde_k=20).probabilities(query, pool)
    assert p.shape == (300,) and (p >= 0).all()
    assert p.sum() == pytest.approx(1.0, abs=1e-12)


def test_sigma_zero_is_knn_uniform():
    points = np.random.default_rng(3).normal(size=(50, 4)).astype(np.float32)
    assert (kde_densities(points, sigma=0.0, kde_k=10, metric="l2") == 1).all()
    assert (kde_densities(points, sigma=5.0, kde_k=10, metric="l2") > 1).all()


def test_exact_duplicates_share_mass_under_knn_kde():
    rng = np.random.default_rng(4)
    pool = rng.normal(size=(100, 6)).astype(np.float32)
    pool[1] = pool[0]  # a duplicate of row 0
    query = pool[:1] + 1e-3
    kde = TSDSSelector(alpha=0.99, C=1.0, sigma=0.5, max_k=10, kde_k=10).probabilities(query, pool)
    assert kde[0] == pytest.approx(kde[1]) and kde[0] > 0
    assert kde[0] + kde[1] == pytest.approx(1.0)


def test_selection_is_deterministic_and_spends_the_budget_on_distinct_rows():
    rng = np.random.default_rng(5)
    pool = rng.normal(size=(500, 8)).astype(np.float32)
    query = rng.normal(size=(10, 8)).astype(np.float32)
    selector = TSDSSelector(alpha=0.99, C=1.0, sigma=0.5, max_k=100, kde_k=50, replace=False)
    a = selector.select(query, pool, size=60, seed=7)
    b = selector.select(query, pool, size=60, seed=7)
    np.testing.assert_array_equal(a.indices, b.indices)
    assert a.n_selected == a.n_unique == 60
    # alpha 0.99 concentrates p on few rows; alpha was lowered until 60 rows had mass
    assert a.info["alpha_effective"] < 0.99 and a.info["support"] >= 60
    with_replacement = TSDSSelector(alpha=0.99, C=1.0, sigma=0.5, max_k=100, kde_k=50, replace=True)
    assert with_replacement.select(query, pool, size=60, seed=7).n_unique < 60


@pytest.mark.parametrize(
    "kwargs, message",
    [({"alpha": 1.5}, "alpha"), ({"C": 0}, "C 0"), ({"sigma": -1}, "sigma"), ({"max_k": 0}, "max_k")],
)
def test_bad_parameters_are_named(kwargs, message):
    with pytest.raises(TaskselectError, match=message):
        TSDSSelector(**kwargs)


def test_bad_embeddings_are_named():
    pool = np.ones((5, 3), dtype=np.float32)
    with pytest.raises(TaskselectError, match="query: dimension 4"):
        TSDSSelector().probabilities(np.ones((2, 4)), pool)
    bad = pool.copy()
    bad[2, 1] = np.nan
    with pytest.raises(TaskselectError, match="candidates: row 2"):
        TSDSSelector().probabilities(np.ones((2, 3)), bad)
    with pytest.raises(TaskselectError, match="query: expected a 2-D"):
        TSDSSelector().probabilities(np.ones(3), pool)
