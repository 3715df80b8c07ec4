import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lp_reference import brute_force_plan, objective, solve_tsds_lp
from taskselect.errors import TaskselectError
from taskselect.selectors import tsds
from taskselect.selectors.tsds import TSDSPlan, TSDSSelector, WaterFilling, kde_densities


def gaussian(n_query, n_pool, dim, seed):
    """(query, pool): random float32 embeddings."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n_query, dim)).astype(np.float32), rng.normal(size=(n_pool, dim)).astype(np.float32)


@st.composite
def instances(draw, ties=False):
    """A random restricted TSDS instance: sorted distances, densities >= 1, alpha, C.

    ties=True rounds distances to a coarse grid so queries hold neighbours at equal distance.
    """
    M = draw(st.integers(1, 6))
    K = draw(st.integers(1, 8))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    d = np.sort(rng.random((M, K)) * 2, axis=1)
    if ties:
        d = np.round(d * 2) / 2
    rho = 1 + rng.random((M, K)) * draw(st.sampled_from([0, 1, 5, 50]))
    alpha = draw(st.one_of(st.sampled_from([0.0, 1.0, 0.5, 0.99]), st.floats(0, 1)))
    C = draw(st.sampled_from([0.3, 1.0, 5.0]))
    return d, rho, alpha, C


def assert_optimal(g, d, rho, alpha, C):
    _, best = solve_tsds_lp(d, rho, alpha, C)
    ours = objective(g, d, rho, alpha, C)
    # HiGHS stops within its own tolerances (~1e-9); our exact plan may only be better.
    assert ours == pytest.approx(best, rel=1e-7, abs=1e-9)
    assert ours <= best + 1e-12
    assert (g >= 0).all()
    np.testing.assert_allclose(g.sum(axis=1), 1 / d.shape[0], rtol=1e-12)


@settings(max_examples=200, deadline=None)
@given(instances())
def test_water_filling_reaches_the_linear_programs_optimum(instance):
    d, rho, alpha, C = instance
    assert_optimal(WaterFilling(d, rho, C).masses(alpha), d, rho, alpha, C)


@settings(max_examples=100, deadline=None)
@given(instances(ties=True))
def test_sharing_mass_among_equidistant_neighbours_stays_optimal(instance):
    d, rho, alpha, C = instance
    g = WaterFilling(d, rho, C).masses(alpha)
    assert_optimal(g, d, rho, alpha, C)
    # neighbours of one query at one distance carry mass in proportion to 1 / rho
    for i, k in zip(*np.nonzero(np.diff(d, axis=1) == 0)):
        assert g[i, k] * rho[i, k] == pytest.approx(g[i, k + 1] * rho[i, k + 1], rel=1e-9, abs=1e-15)


@settings(max_examples=100, deadline=None)
@given(instances())
def test_probabilities_equal_the_lp_solution_when_it_is_unique(instance):
    d, rho, alpha, C = instance
    alpha = min(max(alpha, 0.05), 0.95)  # interior alpha: the optimum is unique for generic inputs
    g = WaterFilling(d, rho, C).masses(alpha)
    g_lp, _ = solve_tsds_lp(d, rho, alpha, C)
    np.testing.assert_allclose(g, g_lp, atol=1e-8)


@st.composite
def embeddings(draw):
    """Small random query and pool embeddings (some pool rows exact duplicates) and a selector."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n, m, dim = draw(st.integers(2, 40)), draw(st.integers(1, 5)), draw(st.integers(1, 6))
    scale = draw(st.sampled_from([0.1, 1.0, 10.0]))
    pool = (rng.normal(size=(n, dim)) * scale).astype(np.float32)
    n_dup = draw(st.integers(0, n // 2))
    pool[n - n_dup:] = pool[:n_dup]
    query = (rng.normal(size=(m, dim)) * scale).astype(np.float32)
    selector = TSDSSelector(
        alpha=draw(st.sampled_from([0.0, 0.3, 0.9, 1.0])),
        C=draw(st.sampled_from([0.5, 5.0])),
        sigma=draw(st.sampled_from([0.0, 0.3, 1.0, 3.0])) * scale,
        max_k=draw(st.integers(1, n)),
        kde_k=draw(st.integers(1, n)),
        metric=draw(st.sampled_from(["l2", "cosine"])),
    )
    return query, pool, selector


@settings(max_examples=60, deadline=None)
@given(embeddings())
def test_selector_solves_the_restricted_problem_built_from_the_embeddings(case):
    query, pool, selector = case
    plan = selector.plan(query, pool)
    # the plan is the restricted problem: nearest neighbours and densities as brute force finds them
    d, rho = brute_force_plan(query, pool, selector.max_k, selector.sigma, selector.kde_k, selector.metric)
    scale = float(np.abs(pool).max())
    np.testing.assert_allclose(plan.distances, d, atol=1e-4 * max(1.0, scale))
    np.testing.assert_allclose(plan.densities, rho, atol=1e-3)
    # and its distribution is the generic LP solver's optimum of that problem
    m = len(query)
    g_lp, best = solve_tsds_lp(plan.distances, plan.densities, selector.alpha, selector.C)
    solver = WaterFilling(plan.distances, plan.densities, selector.C)
    g = solver.masses(selector.alpha)
    assert objective(g, plan.distances, plan.densities, selector.alpha, selector.C) <= best + 1e-9
    p = selector.distribution(plan)
    assert (p >= 0).all() and p.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(g.sum(axis=1), 1 / m, rtol=1e-12)
    np.testing.assert_allclose(p, np.bincount(plan.ids.ravel(), g.ravel(), minlength=len(pool)))


def test_alpha_one_sends_every_query_to_its_nearest_candidate():
    rng = np.random.default_rng(1)
    d = np.sort(rng.random((20, 30)), axis=1)
    rho = 1 + 10 * rng.random((20, 30))
    g = WaterFilling(d, rho, C=1.0).masses(1.0)
    np.testing.assert_allclose(g[:, 0], 1 / 20)
    assert g[:, 1:].sum() == 0
    pool = rng.normal(size=(200, 5)).astype(np.float32)
    query = rng.normal(size=(7, 5)).astype(np.float32)
    nearest = np.argmin(((query[:, None] - pool[None]) ** 2).sum(-1), axis=1)
    p = TSDSSelector(alpha=1.0, max_k=50, kde_k=20).probabilities(query, pool)
    np.testing.assert_allclose(p, np.bincount(nearest, minlength=200) / 7, atol=1e-15)


def test_a_query_whose_nearest_neighbour_holds_its_mass_sends_exactly_one_over_m():
    # Query 0's nearest neighbour has density 1 (weight 1), query 1's neighbours are dense:
    # at alpha near 1 the public script gave query 0 more than 1/M; the optimum caps it.
    d = np.array([[0.1, 0.5, 0.9], [0.2, 0.21, 0.22]])
    rho = np.array([[1.0, 1.0, 1.0], [8.0, 8.0, 8.0]])
    g = WaterFilling(d, rho, C=1.0).masses(0.999)
    assert g[0, 0] == pytest.approx(0.5)
    np.testing.assert_allclose(g.sum(axis=1), 0.5)


def test_sigma_zero_is_knn_uniform():
    rng = np.random.default_rng(3)
    points = rng.normal(size=(50, 4)).astype(np.float32)
    assert (kde_densities(points, sigma=0.0, kde_k=10, metric="l2")[0] == 1).all()
    assert (kde_densities(points, sigma=5.0, kde_k=10, metric="l2")[0] > 1).all()
    query = rng.normal(size=(5, 4)).astype(np.float32)
    uniform = TSDSSelector(alpha=0.5, sigma=0.0, max_k=30)
    plan = uniform.plan(query, points)
    assert (plan.densities == 1).all()
    g = WaterFilling(plan.distances, np.ones_like(plan.distances), uniform.C).masses(0.5)
    np.testing.assert_allclose(uniform.distribution(plan), np.bincount(plan.ids.ravel(), g.ravel(), minlength=50))


@pytest.mark.parametrize("alpha", [0.2, 0.7, 0.99])
def test_exact_duplicates_share_mass_under_knn_kde(alpha):
    rng = np.random.default_rng(4)
    pool = rng.normal(size=(100, 6)).astype(np.float32)
    pool[50:60] = pool[:10]  # rows 50..59 duplicate rows 0..9
    query = pool[:10] + rng.normal(scale=0.05, size=(10, 6)).astype(np.float32)
    p = TSDSSelector(alpha=alpha, C=1.0, sigma=1.0, max_k=15, kde_k=10).probabilities(query, pool)
    assert (p[:10] > 0).all()
    np.testing.assert_allclose(p[50:60], p[:10], rtol=1e-6, atol=1e-15)


def test_each_query_carries_one_over_m_on_real_size_lists():
    query, pool = gaussian(40, 3000, 16, seed=2)
    selector = TSDSSelector(alpha=0.6, sigma=4.0, max_k=500, kde_k=100)
    plan = selector.plan(query, pool)
    for alpha in (0.0, 0.3, 0.6, 0.9, 0.999, 1.0):
        g = WaterFilling(plan.distances, plan.densities, selector.C).masses(alpha)
        assert (g >= 0).all()
        np.testing.assert_allclose(g.sum(axis=1), 1 / 40, rtol=1e-12)
        p = selector.distribution(plan, alpha)
        assert p.sum() == pytest.approx(1.0, abs=1e-12)


def clustered(n_centres=60, per=20, dim=16, spread=0.15, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_centres, dim))
    points = np.repeat(centres, per, axis=0) + rng.normal(scale=spread, size=(n_centres * per, dim))
    return points.astype(np.float32)


def test_approximate_densities_probing_every_cell_are_exact_and_fewer_cells_only_miss_neighbours():
    points = clustered()
    exact, info = kde_densities(points, sigma=0.8, kde_k=50, metric="l2")
    assert info["kde"] == "exact" and exact.max() > 3
    everything, info = kde_densities(points, sigma=0.8, kde_k=50, metric="l2", exact_max=0, nprobe=10**6)
    assert info["kde"] == "approximate" and info["kde_nprobe"] == info["kde_cells"] > 1
    # the two paths get float32 squared distances from different faiss/BLAS code (about 1e-6 off
    # at these norms, each pair's kernel about 1e-5 off): equal up to that, not bit for bit
    tol = 1e-4
    np.testing.assert_allclose(everything, exact, rtol=0, atol=tol)
    few, info = kde_densities(points, sigma=0.8, kde_k=50, metric="l2", exact_max=0, nprobe=2)
    assert info["kde_nprobe"] == 2
    assert (few <= exact + tol).all()
    assert (few - 1).sum() > 0.8 * (exact - 1).sum()


def test_densities_do_not_depend_on_how_many_pairs_are_held_at_once(monkeypatch):
    points = clustered(seed=1)
    exact, _ = kde_densities(points, sigma=0.8, kde_k=7, metric="cosine")
    approx, _ = kde_densities(points, sigma=0.8, kde_k=7, metric="cosine", exact_max=0, nprobe=3)
    monkeypatch.setattr(tsds, "KDE_PAIRS_AT_ONCE", 333)
    np.testing.assert_allclose(kde_densities(points, sigma=0.8, kde_k=7, metric="cosine")[0], exact, rtol=1e-6)
    np.testing.assert_allclose(
        kde_densities(points, sigma=0.8, kde_k=7, metric="cosine", exact_max=0, nprobe=3)[0], approx, rtol=1e-6
    )


def test_selection_is_deterministic_and_spends_the_budget_on_distinct_rows():
    query, pool = gaussian(10, 500, 8, seed=5)
    selector = TSDSSelector(alpha=0.99, C=1.0, sigma=0.5, max_k=100, kde_k=50, replace=False)
    a = selector.select(query, pool, size=60, seed=7)
    b = selector.select(query, pool, size=60, seed=7)
    np.testing.assert_array_equal(a.indices, b.indices)
    assert a.n_selected == a.n_unique == 60
    with_replacement = TSDSSelector(alpha=0.99, C=1.0, sigma=0.5, max_k=100, kde_k=50, replace=True)
    assert with_replacement.select(query, pool, size=60, seed=7).n_unique < 60


def test_alpha_is_lowered_to_the_largest_value_whose_support_holds_the_budget():
    query, pool = gaussian(10, 800, 8, seed=6)
    selector = TSDSSelector(alpha=0.99, sigma=2.0, max_k=200, kde_k=50)
    plan = selector.plan(query, pool)
    assert np.count_nonzero(selector.distribution(plan)) < 150
    chosen = selector.draw(plan, size=150, seed=0)
    alpha = chosen.info["alpha_effective"]
    assert 0 < alpha < 0.99 and chosen.info["support"] >= 150 and chosen.n_unique == 150
    assert np.count_nonzero(selector.distribution(plan, alpha)) >= 150
    assert np.count_nonzero(selector.distribution(plan, alpha * (1 + 1e-9))) < 150
    strict = TSDSSelector(alpha=0.99, sigma=2.0, max_k=200, kde_k=50, lower_alpha=False)
    with pytest.raises(TaskselectError, match="only .* distinct rows; lower alpha"):
        strict.draw(plan, size=150, seed=0)
    with pytest.raises(TaskselectError, match="at most .* distinct rows .at alpha=0.; raise max_k"):
        selector.draw(plan, size=800, seed=0)


def test_plan_round_trips_and_refuses_a_selector_it_was_not_made_for(tmp_path):
    query, pool = gaussian(6, 300, 8, seed=7)
    selector = TSDSSelector(alpha=0.5, sigma=2.0, max_k=80, kde_k=30)
    plan = selector.plan(query, pool)
    plan.save(tmp_path / "plan.npz")
    loaded = TSDSPlan.load(tmp_path / "plan.npz")
    for name in ("ids", "distances", "densities"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(plan, name))
    assert loaded.info == plan.info and loaded.n_candidates == 300
    # alpha, C and the budget may change without recomputing the plan
    other = TSDSSelector(alpha=0.9, C=3.0, sigma=2.0, max_k=80, kde_k=30)
    np.testing.assert_array_equal(
        other.draw(loaded, 20, seed=1).indices, other.select(query, pool, 20, seed=1).indices
    )
    with pytest.raises(TaskselectError, match="plan: made with"):
        TSDSSelector(sigma=1.0, max_k=80, kde_k=30).draw(loaded, 20, seed=1)
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(TaskselectError, match="junk.npz: not a TSDS plan"):
        TSDSPlan.load(tmp_path / "junk.npz")
    with pytest.raises(TaskselectError, match="ascending"):
        TSDSPlan(plan.ids, plan.distances[:, ::-1], plan.densities, 300)
    with pytest.raises(TaskselectError, match=r"ids must be integers in \[0, 10\)"):
        TSDSPlan(plan.ids, plan.distances, plan.densities, 10)


@st.composite
def awkward_pools(draw):
    """Embeddings that break float32 arithmetic: duplicates, one repeated point, tiny or huge scales."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n, dim = draw(st.integers(1, 60)), draw(st.integers(1, 5))
    kind = draw(st.sampled_from(["normal", "one point", "few points", "integers"]))
    if kind == "one point":
        pool = np.repeat(rng.normal(size=(1, dim)), n, axis=0)
    elif kind == "few points":
        pool = rng.normal(size=(3, dim))[rng.integers(0, 3, n)]
    elif kind == "integers":
        pool = rng.integers(-2, 3, size=(n, dim))
    else:
        pool = rng.normal(size=(n, dim))
    scale = draw(st.sampled_from([1e-30, 1e-6, 1.0, 1e6, 1e15]))
    query = pool[rng.integers(0, n, draw(st.integers(1, 8)))]
    return query * scale, pool * scale, draw(st.integers(1, n))


@settings(max_examples=80, deadline=None)
@given(awkward_pools(), st.booleans(), st.sampled_from(["l2", "cosine"]), st.sampled_from([0.0, 0.5, 1.0]))
def test_selection_never_fails_on_round_off(case, replace, metric, alpha):
    query, pool, size = case
    selector = TSDSSelector(alpha=alpha, sigma=0.5, max_k=30, kde_k=10, metric=metric, replace=replace)
    try:
        chosen = selector.select(query, pool, size=size, seed=0)
    except TaskselectError as exc:  # the only acceptable failure: too few distinct rows reachable
        assert "distinct rows" in str(exc) and not replace
        return
    assert chosen.probs.sum() == pytest.approx(1.0, abs=1e-12) and (chosen.probs >= 0).all()
    assert chosen.n_selected == size and chosen.indices.dtype == np.int64
    assert chosen.indices.min() >= 0 and chosen.indices.max() < len(pool)
    if not replace:
        assert chosen.n_unique == size


@pytest.mark.parametrize(
    "key, value, expected",
    [("alpha", 1.5, "less than or equal to 1"), ("alpha", -0.1, "greater than or equal to 0"), ("C", 0, "greater than 0"),
     ("C", -2, "greater than 0"), ("sigma", -1, "greater than or equal to 0"), ("sigma", float("nan"), "finite number"),
     ("max_k", 0, "greater than or equal to 1"), ("max_k", 2.5, "valid integer"), ("kde_k", 0, "greater than or equal to 1"),
     ("metric", "ip", "'l2' or 'cosine'")],
)
def test_bad_parameters_are_named(key, value, expected):
    # the constraints declared once, on TSDSParams, hold for a selector built directly
    with pytest.raises(TaskselectError, match=rf"^tsds: {key}: Input should be .*{re.escape(expected)}.*; got {re.escape(repr(value))}$"):
        TSDSSelector(**{key: value})


@pytest.mark.parametrize(
    "query, pool, message",
    [
        (np.ones((2, 4)), np.ones((5, 3)), "query: dimension 4 does not match"),
        (np.ones((2, 3)), np.where(np.eye(5, 3) > 0, np.nan, 1.0), "candidates: row 0 holds NaN"),
        (np.full((2, 3), np.inf), np.ones((5, 3)), "query: row 0 holds NaN or infinite"),
        (np.ones(3), np.ones((5, 3)), "query: expected a 2-D"),
        (np.ones((2, 3)), np.ones((5, 3, 1)), "candidates: expected a 2-D"),
        (np.ones((0, 3)), np.ones((5, 3)), "query: expected a non-empty"),
        (np.ones((2, 3)), np.ones((0, 3)), "candidates: expected a non-empty"),
        (np.ones((2, 3)), np.full((5, 3), "a"), "candidates: expected numbers"),
        (np.ones((2, 3)), np.full((5, 3), 1e30), "candidates: row 0 holds values beyond"),
    ],
)
def test_bad_embeddings_are_named(query, pool, message):
    with pytest.raises(TaskselectError, match=message):
        TSDSSelector().probabilities(query, pool)


def test_budget_beyond_the_pool_without_replacement_is_refused_before_searching():
    pool = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(TaskselectError, match="size 21: more than the 20 candidates"):
        TSDSSelector().select(pool[:2], pool, size=21, seed=0)
    with pytest.raises(TaskselectError, match="size 0"):
        TSDSSelector().select(pool[:2], pool, size=0, seed=0)
    assert TSDSSelector(replace=True).select(pool[:2], pool, size=21, seed=0).n_selected == 21


@pytest.mark.parametrize("sigma", [0.0, 0.5])
def test_a_text_copied_many_times_is_drawn_once_with_the_mass_of_all_its_copies(sigma):
    """The pool holds one on-task text 60 times (row 7 and 60 copies at the end): the draw of
    distinct rows takes it at most once and fills the budget with other texts; its probability
    is the sum of its copies' (the distribution over texts is the same as without the merge)."""
    query, pool = gaussian(5, 300, 16, seed=3)
    pool[7] = query[0] + 0.01
    pool = np.vstack([pool, np.repeat(pool[7:8], 60, axis=0)])
    copies = np.r_[7, np.arange(300, 360)]
    selector = TSDSSelector(alpha=0.5, C=5.0, sigma=sigma, max_k=120, kde_k=80)
    plan = selector.plan(query, pool)
    assert plan.info["twins"] == len(plan.twins) > 0 and set(plan.twins[:, 1]) == {7}
    rows = selector.draw(plan, 40, seed=0)
    assert len(set(rows.indices)) == 40
    assert np.isin(rows.indices, copies).sum() <= 1
    by_row = selector.distribution(plan)
    assert rows.probs[7] == pytest.approx(by_row[copies].sum()) and (rows.probs[copies[1:]] == 0).all()
    assert np.delete(rows.probs, copies) == pytest.approx(np.delete(by_row, copies))
    assert TSDSSelector(alpha=0.5, C=5.0, sigma=sigma, max_k=120, kde_k=80).plan(query, pool[:300]).twins.size == 0


def test_a_plan_keeps_its_twins_through_save_and_load(tmp_path):
    query, pool = gaussian(3, 100, 8, seed=1)
    pool = np.vstack([pool, pool[:5]])
    plan = TSDSSelector(max_k=105, kde_k=50).plan(query, pool)
    plan.save(tmp_path / "plan.npz")
    assert np.array_equal(TSDSPlan.load(tmp_path / "plan.npz").twins, plan.twins) and len(plan.twins) == 5


@pytest.mark.parametrize("sigma", [0.0, 0.5])
def test_knn_uniform_and_knn_kde_draw_a_copied_text_once(sigma):
    from taskselect.selectors.knn import KNNDensitySelector

    query, pool = gaussian(5, 300, 16, seed=3)
    pool[7] = query[0] + 0.01
    pool = np.vstack([pool, np.repeat(pool[7:8], 60, axis=0)])
    copies = np.r_[7, np.arange(300, 360)]
    rows = KNNDensitySelector(k=120, sigma=sigma, kde_k=80).select(query, pool, 40, seed=0)
    assert len(set(rows.indices)) == 40 and np.isin(rows.indices, copies).sum() <= 1
    assert rows.probs.sum() == pytest.approx(1.0) and (rows.probs[copies[1:]] == 0).all()
