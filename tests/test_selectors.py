"""Each selector beside TSDS, on small fakes: its defining property, determinism, bad input."""

from typing import get_args

import numpy as np
import pytest

from taskselect.config import Method, SelectParams
from taskselect.errors import TaskselectError
from taskselect.selectors import (
    REGISTRY, Corpus, DSIRSelector, KCenterSelector, KNNSelector, LossSelector, S2LSelector, make_selector, methods,
    register,
)
from taskselect.selectors.dsir import hashed_ngrams, log_importance_weights
from taskselect.selectors.kcenter import greedy_k_center
from taskselect.selectors.neighbourhood import round_robin
from taskselect.selectors.s2l import balanced_sample


def unit(x):
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def blobs(seed=0, n=600, dim=16, centres=6):
    """Unit embeddings in `centres` clusters; labels are the cluster numbers as strings."""
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(centres, dim)) * 3
    which = rng.integers(centres, size=n)
    return unit(means[which] + rng.normal(size=(n, dim))), which.astype(str)


def test_every_method_has_a_selector_and_a_parameter_section():
    assert list(REGISTRY) == list(methods()) == list(get_args(Method))
    params = SelectParams()
    for method in methods():
        spec = REGISTRY[method]
        assert hasattr(make_selector(method, params), "select")
        if spec.params is not None:  # its section, with its defaults, is in the select parameters
            assert getattr(params, spec.section) == spec.params()
    assert params.methods == [m for m in methods() if REGISTRY[m].default]
    with pytest.raises(TaskselectError, match="method 'magic': expected one of tsds, random, full, knn"):
        make_selector("magic", params)


def test_a_selector_is_registered_once_and_reads_embeddings_or_a_corpus():
    with pytest.raises(ValueError, match="selector 'tsds' is registered twice"):
        register("tsds")(type("Again", (), {}))
    with pytest.raises(ValueError, match="reads='labels', expected 'embeddings', 'texts' or 'corpus'"):
        register("labelly", reads="labels")
    assert "Again" not in {type(s).__name__ for s in REGISTRY.values()} and "labelly" not in REGISTRY


def test_exactly_the_selectors_declared_to_read_a_corpus_need_one():
    candidates, _ = blobs(n=60)
    for method in methods():
        selector = make_selector(method, SelectParams())
        if REGISTRY[method].reads_corpus:  # the select stage loads texts and labels for these only
            with pytest.raises(TaskselectError, match=f"{method}: needs the pool's texts and labels"):
                selector.select(candidates[:3], candidates, 5, seed=0)
        else:
            assert selector.select(candidates[:3], candidates, 5, seed=0).n_selected >= 5


def test_round_robin_gives_each_query_its_nearest_rows_in_turn():
    # candidates on a line; queries at 0 and 100: each query's nearest rows alternate
    candidates = np.array([[x, 0.0] for x in [0, 1, 2, 3, 100, 101, 102, 50]], dtype=np.float32)
    query = np.array([[0.0, 0.0], [100.0, 0.0]], dtype=np.float32)
    order = round_robin(query, candidates, 6, seed=0)
    assert {int(order[0]), int(order[1])} == {0, 4}
    assert {int(order[2]), int(order[3])} == {1, 5}
    assert set(order[4:].tolist()) == {2, 6}
    assert 7 not in order  # the far row is never reached before the budget


def test_round_robin_skips_rows_already_taken_and_deepens_the_search():
    # both queries share the same neighbours: each round's second turn takes the next row
    candidates = np.arange(20, dtype=np.float32)[:, None] * np.ones((1, 2), dtype=np.float32)
    query = np.zeros((2, 2), dtype=np.float32)
    order = round_robin(query, candidates, 8, seed=3)
    np.testing.assert_array_equal(order, np.arange(8))


def test_knn_takes_whole_rounds_of_every_querys_nearest_rows():
    candidates, _ = blobs()
    query = candidates[:5] + 0.01
    chosen = KNNSelector().select(query, candidates, 25, seed=0).indices
    assert chosen.size == np.unique(chosen).size == 25
    # rank[i, j]: place of candidate j in query i's list; a row is reached in round min_i rank
    rank = np.argsort(np.argsort(np.linalg.norm(candidates[None] - query[:, None], axis=2), axis=1), axis=1)
    reached = rank.min(axis=0)
    complete = max(r for r in range(1, 26) if np.count_nonzero(reached < r) <= 25)
    assert set(np.flatnonzero(reached < complete)) <= set(chosen.tolist())  # every complete round
    assert reached[chosen].max() <= complete  # and nothing beyond the round after them
    np.testing.assert_array_equal(chosen, KNNSelector().select(query, candidates, 25, seed=0).indices)


def test_knn_uniform_gives_each_querys_k_nearest_rows_equal_shares():
    candidates, _ = blobs()
    query = candidates[:4]
    selector = make_selector("knn-uniform", SelectParams(knn_uniform={"k": 10}))
    p, _ = selector.probabilities(query, candidates)
    nearest = np.argsort(np.linalg.norm(candidates[None] - query[:, None], axis=2), axis=1)[:, :10]
    counts = np.bincount(nearest.ravel(), minlength=len(candidates))
    np.testing.assert_allclose(p, counts / counts.sum())  # 1/10 of each query's 1/M
    chosen = selector.select(query, candidates, 12, seed=0).indices
    assert chosen.size == np.unique(chosen).size == 12 and set(chosen.tolist()) <= set(nearest.ravel().tolist())


def test_knn_kde_weights_each_querys_neighbours_by_inverse_density():
    rng = np.random.default_rng(1)
    # one query; around it a tight clump of 5 near-duplicates and 5 isolated rows at the same distance
    clump = np.array([1.0, 0.0]) + rng.normal(scale=1e-3, size=(5, 2))
    angles = np.linspace(1.5, 4.5, 5)  # unit distance from the query, far from each other
    spread = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    far = rng.normal(size=(40, 2)) * 0.1 + 10
    candidates = np.vstack([clump, spread, far]).astype(np.float32)
    query = np.zeros((1, 2), dtype=np.float32)
    selector = make_selector("knn-kde", SelectParams(knn_kde={"k": 10, "sigma": 0.5}, tsds={"kde_k": 10}))
    p, _ = selector.probabilities(query, candidates)
    assert p[10:].sum() == 0 and p.sum() == pytest.approx(1)
    # a clump row's density counts its 4 twins (about 5); an isolated row's only itself (1)
    assert p[:5].mean() * 4.5 < p[5:10].mean() < p[:5].mean() * 5.5
    uniform, _ = make_selector("knn-uniform", SelectParams(knn_uniform={"k": 10})).probabilities(query, candidates)
    np.testing.assert_allclose(uniform[:10], 0.1)


def test_knn_density_reaches_further_when_the_neighbours_hold_fewer_rows_than_the_budget():
    candidates, _ = blobs()
    query = candidates[:1]
    selection = make_selector("knn-kde", SelectParams(knn_kde={"k": 5})).select(query, candidates, 12, seed=0)
    assert selection.info["k"] == 20  # 5, 10: too few rows; 20 holds the 12
    nearest = np.argsort(np.linalg.norm(candidates - query, axis=1))[:20]
    assert selection.indices.size == np.unique(selection.indices).size == 12
    assert set(selection.indices.tolist()) <= set(nearest.tolist())
    kept = make_selector("knn-kde", SelectParams(knn_kde={"k": 5})).select(query, candidates, 5, seed=0)
    assert kept.info["k"] == 5 and kept.info["support"] == 5


@pytest.mark.parametrize("active", [1024, 8])  # 8: most rows wait outside and catch up many times
def test_greedy_k_center_adds_the_row_farthest_from_those_chosen(active):
    points, _ = blobs(n=200)
    chosen, radius = greedy_k_center(points, 120, active=active)
    assert np.unique(chosen).size == 120 and chosen[0] == 0
    distances = np.linalg.norm(points[:, None] - points[None], axis=2)
    for step in range(1, 120):
        gap = distances[:, chosen[:step]].min(axis=1)
        assert gap[chosen[step]] == pytest.approx(gap.max(), abs=1e-5)
    assert radius == pytest.approx(distances[:, chosen].min(axis=1).max(), abs=1e-5)


@pytest.mark.parametrize("active", [1024, 2])
def test_greedy_k_center_never_repeats_a_row_among_duplicates(active):
    points = np.repeat(np.eye(3, dtype=np.float32), 4, axis=0)  # 3 distinct points, 4 copies each
    chosen, radius = greedy_k_center(points, 5, active=active)
    assert np.unique(chosen).size == 5 and radius == 0
    assert {tuple(points[c]) for c in chosen[:3]} == {tuple(p) for p in np.eye(3)}
    assert chosen[:3].tolist() == [0, 4, 8]  # ties go to the lowest row


def test_kcenter_covers_the_query_neighbourhood_more_widely_than_knn():
    candidates, _ = blobs(n=800)
    query = candidates[:10]
    knn = KNNSelector().select(query, candidates, 40, seed=0)
    kc = KCenterSelector(neighbourhood=3).select(query, candidates, 40, seed=0)
    region = round_robin(query, candidates, 120, seed=0)
    assert set(kc.indices.tolist()) <= set(region.tolist())
    cover = lambda rows: np.linalg.norm(candidates[region][:, None] - candidates[rows][None], axis=2).min(1).max()  # noqa: E731
    assert cover(kc.indices) < cover(knn.indices)
    assert kc.info["cover_radius"] == pytest.approx(cover(kc.indices), abs=1e-5)


def test_hashed_ngrams_count_unigrams_and_bigrams_into_buckets():
    counts = hashed_ngrams(["The cat sat.", "the CAT"], buckets=97, ngrams=2)
    assert counts.shape == (2, 97)
    assert counts[0].sum() == 4 + 3  # the, cat, sat, "." and three bigrams
    assert counts[1].sum() == 2 + 1
    assert (counts[1].toarray() <= counts[0].toarray()).all()  # lower-cased: a sub-bag of the first


def test_dsir_selects_rows_whose_ngrams_look_like_the_queries():
    rng = np.random.default_rng(0)
    on = ["flight delayed again today", "lost my bags again", "crew was very rude", "my flight was late"]
    off = ["stock prices fell today", "new phone released today", "rain expected tomorrow morning", "match ended in draw"]
    on_task = np.arange(200) % 5 == 0
    pool = [rng.choice(on if t else off) for t in on_task]
    query = ["my flight was delayed", "the crew lost my bags"]
    corpus = Corpus(pool, ["x"] * 200, query)
    emb = np.zeros((200, 2), dtype=np.float32)
    selection = DSIRSelector(buckets=1000).select(emb[:2], emb, 40, seed=0, corpus=corpus)
    weights = log_importance_weights(pool, query, buckets=1000)
    np.testing.assert_allclose(selection.scores, weights)
    assert weights[on_task].min() > weights[~on_task].max()  # every on-task text shares n-grams with the queries
    assert on_task[selection.indices].mean() >= 0.75  # a random 40 of the 200 would hold about 8
    assert selection.probs.sum() == pytest.approx(1)


def test_dsir_gumbel_top_k_samples_in_proportion_to_the_weights():
    # two rows with weight ratio e^1: picking one of them, the heavier wins e/(1+e) of the time
    from taskselect.selectors.dsir import gumbel_top_k

    rng = np.random.default_rng(0)
    wins = np.mean([gumbel_top_k(np.array([1.0, 0.0]), 1, rng)[0] == 0 for _ in range(4000)])
    assert wins == pytest.approx(np.e / (1 + np.e), abs=0.03)


def test_text_and_label_selectors_need_a_corpus_that_matches():
    candidates, labels = blobs(n=50)
    for selector in (DSIRSelector(), S2LSelector(), LossSelector()):
        with pytest.raises(TaskselectError, match="needs the pool's texts and labels"):
            selector.select(candidates[:3], candidates, 5, seed=0)
        with pytest.raises(TaskselectError, match="corpus holds 49 pool texts"):
            selector.select(candidates[:3], candidates, 5, seed=0, corpus=Corpus(["a"] * 49, labels, ["q"] * 3))


def test_balanced_sample_spreads_the_budget_evenly_over_clusters():
    clusters = np.repeat([0, 1, 2, 3], [3, 50, 60, 80])
    picked = balanced_sample(clusters, 40, np.random.default_rng(0))
    assert picked.size == np.unique(picked).size == 40
    counts = np.bincount(clusters[picked])
    assert counts[0] == 3  # the small cluster gives all it has
    assert counts[1:].max() - counts[1:].min() <= 1  # the rest share what is left evenly


def test_s2l_samples_every_trajectory_cluster_evenly_near_the_queries():
    candidates, labels = blobs(n=600, centres=6)
    query = candidates[:20]
    corpus = Corpus(["t"] * 600, labels, ["q"] * 20)
    selector = S2LSelector(epochs=3, clusters=4, neighbourhood=3)
    selection = selector.select(query, candidates, 60, seed=0, corpus=corpus)
    assert selection.indices.size == np.unique(selection.indices).size == 60
    assert set(selection.indices.tolist()) <= set(round_robin(query, candidates, 180, seed=0).tolist())
    taken, available = (np.array(selection.info[key]) for key in ("cluster_sizes", "cluster_available"))
    assert (taken > 0).all()  # every cluster
    open_ = taken < available  # clusters with rows left over take an equal share, within one row,
    assert taken[open_].max() - taken[open_].min() <= 1
    assert (taken[~open_] <= taken[open_].min()).all()  # and at least what an exhausted one gave
    again = selector.select(query, candidates, 60, seed=0, corpus=corpus)
    np.testing.assert_array_equal(again.indices, selection.indices)


def test_loss_leaves_out_the_lowest_and_highest_loss_rows_near_the_queries():
    candidates, labels = blobs(n=600, centres=6)
    labels = labels.copy()
    labels[::10] = "noise"  # mislabelled rows: high loss
    query = candidates[:30]
    corpus = Corpus(["t"] * 600, labels, ["q"] * 30)
    selector = LossSelector(low=0.25, high=0.9, neighbourhood=2, epochs=3)
    selection = selector.select(query, candidates, 60, seed=0, corpus=corpus)
    region = round_robin(query, candidates, 120, seed=0)
    losses = selection.scores[region]
    lo, hi = np.quantile(losses, [0.25, 0.9])
    chosen = np.isin(region, selection.indices)
    assert chosen.sum() == 60
    assert (losses[chosen] >= lo).all() and (losses[chosen] <= hi).all()
    assert not chosen[np.argmin(losses)] and not chosen[np.argmax(losses)]
    with pytest.raises(TaskselectError, match="neighbourhood 1.2: expected at least"):
        LossSelector(low=0.2, high=0.95, neighbourhood=1.2)
